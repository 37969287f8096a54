"""`fit_operator_device` recovers the device numbers that produced a set of stage times, and the device it
returns prices a model it was not fitted on as the true device does (issue #19 item 2: a calibration is the
same object as a datasheet device with measured efficiencies)."""

from __future__ import annotations

import dataclasses

import pytest

from vidcost.devices import DEVICES
from vidcost.latency import Configuration, Observation
from vidcost.operator_fit import FITTED, PRICED_STAGES, fit_operator_device
from vidcost.operators import OperatorModel
from vidcost.schedule import Schedule
from vidcost.spec import load_spec

# A datasheet A100 (efficiencies 1, no launch or host cost) with its 108 SMs, and the "true" device the stage
# times come from: numbers of the order cuBLAS, FlashAttention and a copy kernel reach, a few µs per kernel.
BASE = dataclasses.replace(DEVICES["a100-sxm-80gb"], sm_count=108)
TRUE = dataclasses.replace(BASE, gemm_efficiency=0.62, flash_efficiency=0.45, memory_efficiency=0.8,
                           host_op_seconds=2e-6, launch_seconds=3e-6)


def _configuration(model: str, frames: int, kept: float) -> Configuration:
    spec = load_spec(model, frames=frames)
    visual = max(1, round(kept * spec.frames * spec.patches_per_frame))
    return Configuration(spec, Schedule.constant(spec.num_layers, visual, spec.text_tokens),
                         "vanilla" if kept == 1 else "divprune", "bfloat16", decode_tokens=4)


def _observations(device, models, frames, kept) -> list[Observation]:
    model = OperatorModel(device, "bfloat16")
    data = []
    for name in models:
        for count in frames:
            for fraction in kept:
                config = _configuration(name, count, fraction)
                stages = model.stage_ms(config)
                data.append(Observation(config, stages, sum(stages[s] for s in PRICED_STAGES[:-1]),
                                        stages["llm_prefill"], f"{name}-{count}", fraction, "NVIDIA A100"))
    return data


def test_the_fit_recovers_the_device_numbers_the_stages_came_from():
    data = _observations(TRUE, ("llava-onevision-0.5b", "llava-onevision-7b"), (8, 32), (1.0, 0.5, 0.25, 0.1))
    fitted = fit_operator_device(data, BASE, source="synthetic")
    for name in FITTED:
        assert getattr(fitted, name) == pytest.approx(getattr(TRUE, name), rel=0.05), name
    assert "synthetic" in fitted.kernel_source and "RMS log error" in fitted.kernel_source


def test_the_fitted_device_prices_a_model_and_frame_count_it_was_not_fitted_on():
    data = _observations(TRUE, ("llava-onevision-0.5b",), (8, 16), (1.0, 0.5, 0.2))
    data += _observations(TRUE, ("llava-onevision-7b",), (8,), (1.0, 0.3))
    fitted = OperatorModel(fit_operator_device(data, BASE), "bfloat16")
    true = OperatorModel(TRUE, "bfloat16")
    for kept in (1.0, 0.25):
        config = _configuration("llava-onevision-7b", 32, kept)
        predicted, expected = fitted.stage_ms(config), true.stage_ms(config)
        for stage in ("vision", "llm_prefill", "decode"):
            assert predicted[stage] == pytest.approx(expected[stage], rel=0.03), (kept, stage)


def test_a_datasheet_peak_bounds_the_fitted_efficiencies():
    """Stages faster than the datasheet peak allows cannot be explained by an efficiency above 1: the fit
    stops at 1 (the peak) instead of reporting a GEMM at 150 % of it."""
    data = _observations(dataclasses.replace(TRUE, peak_flops={k: 1.5 * v for k, v in TRUE.peak_flops.items()},
                                             gemm_efficiency=1.0, flash_efficiency=1.0),
                         ("llava-onevision-7b",), (16, 32), (1.0, 0.5))
    fitted = fit_operator_device(data, BASE)
    assert fitted.gemm_efficiency <= 1.0 and fitted.flash_efficiency <= 1.0
    assert fitted.peak_flops == BASE.peak_flops
