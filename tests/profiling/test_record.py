"""The record vocabulary: schema-1 records read as schema 2, and every ratio from the values beside it."""

from __future__ import annotations

import pytest

from vidcost.profiling.record import SCHEMA_VERSION, ProfileRecord, compare_records, ratio_or_none, upgrade_record

OLD = {"kind": "profile", "schema_version": 1, "run_id": "r", "method": "fastv", "params": {}, "budget": 0.25,
       "model": {"name": "tiny", "frames": 4, "hidden_size": 256, "vocab_size": 4096}, "device": "cpu",
       "dtype": "float32", "prefill_ms": 12.0, "stages_ms": {"vision": 2.0, "llm_prefill": 8.0, "total": 12.0},
       "samples_ms": {"total": [12.0, 13.0]}, "stats_ms": {"total": {"median": 12.0}},
       "flops": {"paper": 10, "exact": 3_000_000, "exact_with_vision": 5_000_000}, "avg_power_w": 100.0}


def test_schema_1_reads_in_the_current_vocabulary():
    new = upgrade_record(OLD)
    assert new["schema_version"] == SCHEMA_VERSION and "prefill_ms" not in new
    assert new["ttft_ms"] == 12.0 and new["llm_prefill_ms"] == 8.0
    assert "total" not in new["stages_ms"] and new["samples_ms"] == {"ttft": [12.0, 13.0]}
    # schema 1's exact count had the LM head on the last position: 2 · d · V taken off
    assert new["flops"] == {"paper": 10, "llm_prefill": 3_000_000 - 2 * 256 * 4096, "ttft": 5_000_000}
    assert new["power_w"] == 100.0
    assert ProfileRecord.from_dict(OLD).ttft_ms == 12.0
    assert upgrade_record(new) == new  # current records pass through


def test_comparison_ratios_come_from_the_values_beside_them():
    vanilla = {"ttft_ms": 30.0, "llm_prefill_ms": 20.0, "decode_ms_per_token": 4.0, "kv_cache_bytes": 800,
               "flops": {"llm_prefill": 100.0, "ttft": 150.0}}
    method = {"ttft_ms": 15.0, "llm_prefill_ms": 5.0, "decode_ms_per_token": None, "kv_cache_bytes": 200,
              "flops": {"llm_prefill": 25.0, "ttft": 75.0}}
    compared = compare_records(vanilla, method)
    assert compared["speedup"] == compared["vanilla_ttft_ms"] / compared["ttft_ms"] == 2.0
    assert compared["llm_prefill_speedup"] == 4.0 and compared["flops_speedup"] == 4.0
    assert compared["ttft_flops_speedup"] == 2.0 and compared["decode_speedup"] is None
    assert compared["vanilla_kv_cache_bytes"] == 800 and compared["kv_cache_bytes"] == 200


@pytest.mark.parametrize("a, b", [(None, 1.0), (1.0, 0.0), (float("nan"), 1.0), ("x", 2.0)])
def test_ratio_of_missing_values_is_none(a, b):
    assert ratio_or_none(a, b) is None
