"""profile_method: records in the agreed schema, shared run_id, executed = planned, failed records on OOM."""

from __future__ import annotations

import json

import pytest
import torch

from vidcost.errors import ConfigError, ProfilingError
from vidcost.profiling import ProfileRecord, profile_method
from vidcost.runtime import StagedRuntime
from vidcost.spec import load_spec
from vidcost.store import read_records

SPEC = load_spec("tiny", frames=2)
# Timings on a shared machine are noisy; the warning itself is tested in test_stats.py.
pytestmark = pytest.mark.filterwarnings("ignore::vidcost.profiling.stats.NoisyMeasurementWarning")
SCHEMA_KEYS = {"kind", "schema_version", "run_id", "created_at", "status", "error", "method", "params", "budget",
               "model", "frames", "device", "dtype", "planned_schedule", "executed_schedule", "stages_ms",
               "samples_ms", "stats_ms", "prefill_ms", "peak_memory_bytes", "memory_source", "energy_j",
               "avg_power_w", "flops", "environment"}
ENVIRONMENT_KEYS = {"device_name", "driver", "cuda", "torch", "transformers", "dtype", "threads", "vidcost_git",
                    "python", "platform", "seed"}


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "runs.jsonl"
    messages: list[str] = []
    comparison = profile_method(spec=SPEC, method="fastv", budget=0.25, params={"layer": 3}, repeats=3, warmup=1,
                                seed=2, store=store, progress=messages.append)
    return comparison, read_records(store), messages


def test_two_records_share_a_run_id_and_follow_the_schema(stored):
    comparison, records, _ = stored
    assert [r["method"] for r in records] == ["vanilla", "fastv"]
    assert records[0]["run_id"] == records[1]["run_id"] == comparison.method.run_id
    for record in records:
        assert SCHEMA_KEYS <= set(record) and record["kind"] == "profile" and record["status"] == "ok"
        assert ENVIRONMENT_KEYS <= set(record["environment"]) and record["environment"]["seed"] == 2
        assert set(record["stages_ms"]) >= {"vision", "projector", "llm_prefill", "first_token", "total"}
        assert all(len(v) == 3 for v in record["samples_ms"].values())
        assert record["prefill_ms"] == record["stages_ms"]["total"] == record["stats_ms"]["total"]["median"]
        assert record["peak_memory_bytes"] > 50 * 2**20 and record["memory_source"] in ("rss", "rss_lifetime")
        assert record["frames"] == 2 and record["device"] == "cpu" and record["dtype"] == "float32"
        assert ProfileRecord.from_dict(record).to_dict() == record
    assert records[1]["params"] == {"layer": 3} and "selection" in records[1]["stages_ms"]


def test_executed_schedule_and_flops(stored):
    comparison, records, _ = stored
    method = records[1]
    assert method["executed_schedule"] == method["planned_schedule"]
    assert method["executed_schedule"]["visual_tokens"] == [128, 128, 128, 32, 32, 32]
    assert records[0]["executed_schedule"]["visual_tokens"] == [128] * 6
    assert method["flops"]["exact"] < records[0]["flops"]["exact"]
    assert method["flops"]["paper"] < method["flops"]["exact"] < method["flops"]["exact_with_vision"]
    assert comparison.flops_speedup == pytest.approx(records[0]["flops"]["exact"] / method["flops"]["exact"])
    assert comparison.speedup == pytest.approx(records[0]["prefill_ms"] / method["prefill_ms"])


def test_json_summary_and_progress(stored):
    comparison, _, messages = stored
    payload = json.loads(json.dumps(comparison.to_dict()))
    for key in ("method", "budget", "prefill_ms", "vanilla_prefill_ms", "speedup", "flops_speedup", "samples_ms",
                "peak_memory_bytes", "planned_schedule", "executed_schedule", "stages_ms", "device"):
        assert key in payload
    assert payload["achieved_tflops"] > 0
    assert messages[0].startswith("building tiny") and messages[-1] == "repeat 3/3"


def test_bad_arguments_are_config_errors(tmp_path):
    store = tmp_path / "runs.jsonl"
    with pytest.raises(ConfigError, match="choose one of"):
        profile_method(spec=SPEC, method="mmg", budget=0.25, store=store)
    with pytest.raises(ConfigError, match="outside \\(0, 1\\]"):
        profile_method(spec=SPEC, method="uniform", budget=0.0, store=store)
    with pytest.raises(ConfigError, match="--repeats"):
        profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=0, store=store)
    with pytest.raises(ConfigError, match="Unknown parameter"):
        profile_method(spec=SPEC, method="fastv", budget=0.5, params={"k": 2}, store=store)
    assert not store.exists()


def test_out_of_memory_writes_failed_records_and_says_what_to_lower(tmp_path, monkeypatch):
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kind": "accuracy", "score": 1}\n')

    def exhausted(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(StagedRuntime, "prefill", exhausted)
    with pytest.raises(ProfilingError, match="out of memory .* lower --frames"):
        profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=1, warmup=0, store=store)
    records = read_records(store)
    assert records[0] == {"kind": "accuracy", "score": 1}
    failed = records[1:]
    assert [r["method"] for r in failed] == ["vanilla", "uniform"]
    assert all(r["status"] == "failed" and "lower --frames" in r["error"] for r in failed)
    assert failed[0]["run_id"] == failed[1]["run_id"]


class _FakeNvml:
    """pynvml's units: bytes, milliwatts, millijoules."""

    energy_mj = 0.0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetMemoryInfo(self, handle):
        return type("Memory", (), {"used": 3 * 2**30})()

    def nvmlDeviceGetPowerUsage(self, handle):
        return 300_000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        _FakeNvml.energy_mj += 1_500.0
        return _FakeNvml.energy_mj


def test_nvml_sampling_reaches_the_record(tmp_path, monkeypatch):
    """The GPU-only NVML path of a session, driven on the CPU through a fake NVML module."""
    from vidcost.profiling import nvml, session

    monkeypatch.setattr(session, "_nvml_sampler",
                        lambda device: nvml.NvmlSampler(nvml=_FakeNvml(), min_energy_window_s=0.0))
    comparison = profile_method(spec=SPEC, method="uniform", budget=0.5, repeats=2, warmup=0, store=None)
    for record in (comparison.vanilla, comparison.method):
        assert record.avg_power_w == pytest.approx(300.0)   # mW → W
        assert record.energy_j == pytest.approx(1.5)        # mJ → J, per prefill
        assert record.nvml_peak_used_bytes == 3 * 2**30


@pytest.mark.gpu
def test_profile_on_cuda(tmp_path):
    comparison = profile_method(spec=SPEC, method="fastv", budget=0.25, repeats=2, device="cuda",
                                store=tmp_path / "runs.jsonl")
    record = comparison.method
    assert record.device == "cuda:0" and record.dtype == "bfloat16"
    assert record.memory_source == "cuda_max_allocated" and record.peak_memory_bytes > 0
    assert record.executed_schedule == record.planned_schedule
