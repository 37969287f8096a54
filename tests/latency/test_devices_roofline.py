"""The device table, device JSON, Hockney's fit, the local microbenchmark and the roofline's bounds."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vidcost.devices import ALIASES, DEVICES, DeviceSpec, fit_hockney, load_device, measure_local_device
from vidcost.errors import DataFormatError
from vidcost.latency import Configuration
from vidcost.roofline import RooflineModel
from vidcost.schedule import Schedule
from vidcost.spec import load_spec

REQUIRED = {"a100-sxm-80gb", "a100-sxm-40gb", "a800", "h100-sxm", "h100-pcie", "h200", "b200", "l40s", "rtx-4090",
            "v100-sxm", "mi300x"}


def test_the_table_has_every_device_with_its_source() -> None:
    assert REQUIRED <= set(DEVICES)
    assert ALIASES == {"a100": "a100-sxm-80gb", "h100": "h100-sxm"}
    for spec in DEVICES.values():
        assert "datasheet" in spec.source or "whitepaper" in spec.source
        assert spec.memory_bandwidth > 1e11 and min(spec.peak_flops.values()) > 1e13
    assert load_device("A100") is DEVICES["a100-sxm-80gb"]
    assert DEVICES["h100-sxm"].flops_per_second("bfloat16") == pytest.approx(989.4e12)


def test_a_device_json_round_trips_and_bad_fields_are_named(tmp_path) -> None:
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(DEVICES["l40s"].to_dict()))
    assert load_device(str(path)) == DEVICES["l40s"]
    assert DEVICES["l40s"].weight_read_bandwidth == DEVICES["l40s"].memory_bandwidth  # a datasheet: no stream rate
    streamed = dataclasses.replace(DEVICES["l40s"], weight_stream_bandwidth=700e9)
    path.write_text(json.dumps(streamed.to_dict()))
    assert load_device(str(path)) == streamed and streamed.weight_read_bandwidth == 700e9
    path.write_text(json.dumps({"name": "x", "peak_tflops": {"bfloat16": "fast"}, "memory_bandwidth_gbps": 100}))
    with pytest.raises(DataFormatError, match="'peak_tflops.bfloat16' must be a positive finite number, got 'fast'"):
        load_device(str(path))
    path.write_text(json.dumps({"name": "x"}))
    with pytest.raises(DataFormatError, match="missing 'peak_tflops'"):
        load_device(str(path))
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match=f"device JSON '{path}' cannot be read"):
        load_device(str(path))


def test_hockney_fit_recovers_rate_and_half_size() -> None:
    rate, half = 2e12, 300.0
    sizes = [16, 64, 256, 1024, 4096]
    work = [2 * n * 4096 * 4096 for n in sizes]
    seconds = [w / rate * (1 + half / n) for w, n in zip(work, sizes)]
    fit = fit_hockney(sizes, work, seconds)
    assert fit.rate == pytest.approx(rate, rel=1e-6) and fit.half_size == pytest.approx(half, rel=1e-6)
    # Efficiency that falls with size is no Hockney curve: the rate alone is kept.
    falling = fit_hockney(sizes, work, [w / rate * (n / 16) ** 0.2 for w, n in zip(work, sizes)])
    assert falling.half_size < 1e-6


def test_the_local_microbenchmark_measures_this_machine() -> None:
    local = measure_local_device(repeats=2)
    assert local.measured and local.name.startswith("local (")
    assert 1e8 < local.peak_flops["float32"] < 1e14 and local.memory_bandwidth > 1e8
    assert local.gemm_half_rows >= 0 and "measured by vidcost" in local.source
    # a one-row GEMM streams its weights from memory: slower than the peak FLOP rate allows, at most what a
    # copy reaches (read + write counted) times a few — a number, measured, not the copy's
    assert 1e8 < local.weight_stream_bandwidth < 10 * local.memory_bandwidth
    assert local.weight_read_bandwidth == local.weight_stream_bandwidth
    assert 1e-7 < local.host_op_seconds < 1e-3 and not local.host_overlaps  # a CPU: dispatch and kernel add


def test_the_host_cost_per_op_is_a_forwards_time_over_the_ops_it_dispatches() -> None:
    """With a clock that advances 1 ms per reading, each timed forward takes 1 ms: the cost per op is 1 ms over
    the ops one forward of the 2-layer Qwen2 dispatches (its embedding, two layers of ~70 ops, norm, head)."""
    import itertools

    import torch

    from vidcost.devices import _module_op_seconds

    ticks = itertools.count()
    per_op = _module_op_seconds(torch, torch.float32, "cpu", lambda: next(ticks) * 1e-3)
    dispatched = round(1e-3 / per_op)
    assert 100 < dispatched < 400


def config(tokens: int, layers_kept: int | None = None) -> Configuration:
    spec = load_spec("llava-onevision-7b", frames=8)
    return Configuration(spec, Schedule.constant(spec.num_layers, tokens, spec.text_tokens, spec.num_visual_tokens),
                         "uniform", "bfloat16")


def test_roofline_is_compute_bound_at_many_tokens_and_memory_bound_for_decode() -> None:
    device = DEVICES["a100-sxm-80gb"]
    roofline = RooflineModel(device, "bfloat16")
    big = roofline.stage_ms(config(1568))
    # Decode reads every layer's weights and the LM head once: at least their bytes over the bandwidth.
    from vidcost.cost import estimate_cost, layer_parameters

    spec = config(1568).spec
    read = (spec.num_layers * layer_parameters(spec) + spec.vocab_size * spec.hidden_size) * 2
    assert big["decode"] >= 1e3 * read / device.memory_bandwidth

    flops = estimate_cost(spec, config(1568).schedule, convention="exact", causal=True).layer_flops
    assert big["llm_prefill"] == pytest.approx(1e3 * flops / device.peak_flops["bfloat16"], rel=0.05)
    assert big["selection"] == 0.0


def test_a_measured_half_size_slows_small_token_counts_most() -> None:
    peak = RooflineModel(DEVICES["a100-sxm-80gb"], "bfloat16")
    curved = RooflineModel(DeviceSpec("curve", DEVICES["a100-sxm-80gb"].peak_flops, 2039e9, gemm_half_rows=256,
                                      attention_half_tokens=256), "bfloat16")
    small, large = config(196), config(6272 // 4)
    slow_small = curved.stage_ms(small)["llm_prefill"] / peak.stage_ms(small)["llm_prefill"]
    slow_large = curved.stage_ms(large)["llm_prefill"] / peak.stage_ms(large)["llm_prefill"]
    assert slow_small > slow_large > 1.0
