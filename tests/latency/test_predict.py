"""Predictions from a calibration or a roofline: monotone in the kept tokens, a target's boundary budget,
bands from the held-out error, and warnings outside the calibration."""

from __future__ import annotations

import pytest

from vidcost.errors import ConfigError
from vidcost.latency import Calibration, fit_latency, observations
from vidcost.predict import (VidcostPredictionWarning, budget_for_speedup, coverage_warning, predict, predict_curve)
from vidcost.schedule import Schedule
from vidcost.spec import load_spec
from vidcost.validation import leave_one_configuration_out

# Below 1: at 1.0 a method keeps every token and runs no selection, whose own time a smaller budget pays.
BUDGETS = [b / 20 for b in range(1, 20)]


@pytest.fixture(scope="module")
def calibration(synthetic) -> Calibration:
    data = observations(synthetic(models=("tiny",), noise=0.01))
    return Calibration(fit_latency(data), leave_one_configuration_out(data).summary(), len(data), 33, "synthetic")


@pytest.mark.parametrize("method", ["fastv", "mmgvid", "uniform", "divprune"])
@pytest.mark.parametrize("source", ["calibration", "roofline"])
def test_predictions_are_monotone_in_the_kept_tokens(calibration, method: str, source: str) -> None:
    where = {"calibration": calibration} if source == "calibration" else {"device_spec": "h100"}
    # On an H100 the tiny model's layers are bound by the host's dispatch: fewer tokens buy nothing there and
    # a selection only adds its kernels. The per-operator model is checked where tokens cost time: a 7B model.
    model = "tiny" if source == "calibration" else "llava-onevision-7b"
    curve = predict_curve(model, BUDGETS, method=method, frames=8, **where)
    kept = [sum(p.visual_tokens) for p in curve]
    assert kept == sorted(kept)
    for fewer, more in zip(curve, curve[1:]):
        if sum(fewer.visual_tokens) < sum(more.visual_tokens):
            assert fewer.ttft_ms <= more.ttft_ms and fewer.llm_prefill_ms <= more.llm_prefill_ms
            assert fewer.speedup >= more.speedup and fewer.kv_cache_bytes <= more.kv_cache_bytes


def test_more_tokens_in_any_layer_never_predict_faster(calibration) -> None:
    spec = load_spec("tiny", frames=8)
    base = Schedule((512, 512, 100, 100, 100, 100), spec.text_tokens, 512)
    for last in range(2, 6):
        tokens = list(base.visual_tokens)
        for layer in range(2, last + 1):
            tokens[layer] += 50
        wider = Schedule(tuple(tokens), spec.text_tokens, 512)
        assert predict(spec, schedule=wider, calibration=calibration).llm_prefill_ms > \
            predict(spec, schedule=base, calibration=calibration).llm_prefill_ms


def test_target_speedup_returns_the_boundary_budget(calibration) -> None:
    found = budget_for_speedup("tiny", 1.5, method="mmgvid", frames=16, calibration=calibration)
    assert found.speedup >= 1.5
    above = predict("tiny", method="mmgvid", frames=16, budget=found.budget + 1e-3, calibration=calibration)
    assert above.speedup < 1.5
    # On an A100 the tiny model's prefill is bound by the host's dispatch (pruning buys it nothing): a 7B one.
    prefill = budget_for_speedup("llava-onevision-7b", 2.0, key="llm_prefill_speedup", method="fastv", frames=16,
                                 device_spec="a100")
    assert prefill.llm_prefill_speedup >= 2.0 > predict("llava-onevision-7b", method="fastv", frames=16,
                                                        budget=prefill.budget + 1e-3,
                                                        device_spec="a100").llm_prefill_speedup


def test_an_unreachable_target_names_the_best_speedup(calibration) -> None:
    with pytest.raises(ConfigError, match=r"target speedup 40× is unreachable: the largest predicted is \d+\.\d\d×"):
        budget_for_speedup("tiny", 40, method="mmgvid", calibration=calibration)
    with pytest.raises(ConfigError, match="must exceed 1"):
        budget_for_speedup("tiny", 1.0, method="mmgvid", calibration=calibration)


def test_bands_come_from_the_held_out_error(calibration) -> None:
    p = predict("tiny", method="fastv", budget=0.3, frames=8, calibration=calibration)
    error = calibration.held_out["speedup"]["max"]
    payload = p.to_dict()
    # |predicted / measured − 1| ≤ e puts the measured value in [predicted / (1 + e), predicted / (1 − e)]
    assert p.calibrated and p.regime == "inside"
    assert payload["speedup_low"] == pytest.approx(p.speedup / (1 + error))
    assert payload["speedup_high"] == pytest.approx(p.speedup / (1 - error))
    roofline = predict("tiny", method="fastv", budget=0.3, device_spec="a100").to_dict()
    assert roofline["calibrated"] is False and roofline["speedup_low"] is None
    assert any("per-operator model" in note for note in roofline["notes"])


def test_json_keys_speak_the_profile_vocabulary(calibration) -> None:
    keys = {"ttft_ms", "vanilla_ttft_ms", "speedup", "speedup_low", "speedup_high", "llm_prefill_ms",
            "vanilla_llm_prefill_ms", "llm_prefill_speedup", "stages_ms", "decode_ms_per_token", "kv_cache_bytes",
            "peak_memory_bytes", "calibrated", "device", "budget"}
    payload = predict("tiny", method="fastv", budget=0.3, calibration=calibration).to_dict()
    assert keys <= set(payload)
    assert payload["speedup"] == pytest.approx(payload["vanilla_ttft_ms"] / payload["ttft_ms"])
    assert sum(payload["stages_ms"].values()) == pytest.approx(payload["ttft_ms"])


def test_another_family_warns_naming_both(calibration) -> None:
    with pytest.warns(VidcostPredictionWarning, match="fitted on the llava_onevision family; 'tiny-qwen2.5-vl' is qwen2_5_vl"):
        predict("tiny-qwen2.5-vl", method="fastv", budget=0.3, calibration=calibration)


def test_another_device_warns_naming_both(calibration) -> None:
    with pytest.warns(VidcostPredictionWarning, match="fitted on 'Synthetic CPU \\(1 thread\\)', not on 'h100'"):
        predict("tiny", method="fastv", budget=0.3, calibration=calibration, device_spec="h100")


def test_a_device_named_as_the_calibrations_does_not_warn(calibration) -> None:
    import dataclasses
    import warnings

    from vidcost.predict import _same_device

    assert _same_device("a100", "NVIDIA A100-SXM4-80GB") and _same_device("rtx-4090", "NVIDIA GeForce RTX 4090")
    assert not _same_device("h100", "NVIDIA A100-SXM4-80GB")
    on_h100 = dataclasses.replace(calibration, model=dataclasses.replace(calibration.model, device="NVIDIA H100 80GB HBM3"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", VidcostPredictionWarning)
        predict("tiny", method="fastv", budget=0.3, calibration=on_h100, device_spec="h100-sxm")


def test_a_method_never_fitted_is_noted(calibration) -> None:
    p = predict("tiny", method="divprune", budget=0.3, calibration=calibration)
    assert any("no profile of divprune was fitted" in note for note in p.notes)


def test_bad_input_fails_before_pricing() -> None:
    with pytest.raises(ConfigError, match="unknown --device-spec 'h900'.*a100-sxm-80gb.*local"):
        predict("tiny", method="fastv", budget=0.3, device_spec="h900")
    with pytest.raises(ConfigError, match="--calibration FILE.*--device-spec NAME"):
        predict("tiny", method="fastv", budget=0.3)
    with pytest.raises(ConfigError, match="no float32 peak"):
        predict("tiny", method="fastv", budget=0.3, device_spec="a100", dtype="float32")
    with pytest.raises(ConfigError, match="does not exist"):
        predict("tiny", method="fastv", budget=0.3, calibration="/nonexistent/calib.json")


def test_predict_is_in_the_api_and_imports_no_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, vidcost; p = vidcost.predict('tiny', method='fastv', budget=0.3, device_spec='a100'); "
            "print(p.calibrated, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_bands_say_where_they_hold(synthetic) -> None:
    """Inside the range the band is leave-one-configuration-out's; for another model or frame count it is
    the error measured in that regime, and none where the store could not measure one."""
    from vidcost.validation import leave_one_frame_count_out, leave_one_model_out

    one_model = observations(synthetic(models=("tiny",), noise=0.01))
    coverage = {"models": ["tiny"], "frames": [min(o.config.spec.frames for o in one_model),
                                               max(o.config.spec.frames for o in one_model)], "methods": []}
    outside = {"other_frames": leave_one_frame_count_out(one_model).summary()}
    fitted = Calibration(fit_latency(one_model), leave_one_configuration_out(one_model).summary(), len(one_model),
                         0, "synthetic", coverage, outside)
    inside = predict("tiny", method="fastv", budget=0.3, frames=coverage["frames"][0], calibration=fitted)
    assert inside.regime == "inside" and inside.errors["speedup"] == fitted.held_out["speedup"]["max"]
    far = predict("tiny", method="fastv", budget=0.3, frames=4 * coverage["frames"][1], calibration=fitted)
    assert far.regime == "other_frames" and far.errors["speedup"] == outside["other_frames"]["speedup"]["max"]
    with pytest.warns(VidcostPredictionWarning, match="leave-one-frame-count-out"):  # what the CLI says
        coverage_warning(fitted, load_spec("tiny", frames=far.frames), "fastv")
    other = predict("llava-onevision-0.5b", method="fastv", budget=0.3, frames=8, calibration=fitted)
    assert other.regime == "other_model" and other.errors == {} and other.band("speedup") == (None, None)
    assert any("no band" in note for note in other.notes)
    with pytest.warns(VidcostPredictionWarning, match="no band"):
        coverage_warning(fitted, load_spec("llava-onevision-0.5b", frames=8), "fastv")
    with pytest.raises(Exception, match="two or more models"):
        leave_one_model_out(one_model)


def test_held_out_values_lie_in_their_bands(synthetic) -> None:
    """Every observation held out of a fit lies inside the band its regime's error gives the prediction."""
    from vidcost.validation import leave_one_model_out

    data = observations(synthetic(models=("tiny", "llava-onevision-0.5b"), noise=0.02))
    for split in (leave_one_configuration_out, leave_one_model_out):
        result = split(data)
        summary = result.summary()
        for row in result.rows:
            for quantity, values in summary.items():
                measured, predicted = row.measured.get(quantity), row.predicted.get(quantity)
                if measured is None or predicted is None:
                    continue
                e = values["max"]
                high = predicted / (1 - e) if e < 1 else float("inf")
                assert predicted / (1 + e) * (1 - 1e-9) <= measured <= high * (1 + 1e-9), (split, quantity, row)


def test_the_committed_stores_held_out_values_lie_in_their_printed_bands() -> None:
    """On the profiles in profiles/ (tiny and LLaVA-OV-0.5B on this CPU): every configuration held out of a
    fit, and every model held out of one, lies in the band `vidcost predict` prints for its regime."""
    from pathlib import Path

    from vidcost.store import iter_records
    from vidcost.validation import leave_one_model_out

    root = Path(__file__).resolve().parents[2] / "profiles"
    data = observations([r for name in ("latency_cpu_tiny.jsonl", "latency_cpu_0.5b.jsonl")
                         for r in iter_records(root / name, kind="profile")])
    for split, regime in ((leave_one_configuration_out, "inside"), (leave_one_model_out, "other_model")):
        result = split(data)
        calibration = Calibration(fit_latency(data), result.summary() if regime == "inside" else {}, len(data), 0,
                                  "profiles", {}, {} if regime == "inside" else {regime: result.summary()})
        errors = calibration.errors_for(regime)
        for row in result.rows:
            for quantity, e in errors.items():
                measured, predicted = row.measured.get(quantity), row.predicted.get(quantity)
                if measured is None or predicted is None:
                    continue
                high = predicted / (1 - e) if e < 1 else float("inf")
                assert predicted / (1 + e) * (1 - 1e-9) <= measured <= high * (1 + 1e-9), (regime, quantity, row)
