"""The latency model's fit: known coefficients recovered, collinear terms named, bad stores refused."""

from __future__ import annotations

import math

import pytest

from vidcost.errors import FitError
from vidcost.latency import (Calibration, fit_latency, load_calibration, observations, predict_stages,
                             selection_steps)
from vidcost.schedule import Schedule


def fitted_terms(model) -> dict[str, dict[str, float]]:
    return {stage: {term.name: term.value for term in fit.terms} for stage, fit in model.stages.items()}


def test_known_coefficients_are_recovered_within_two_percent(synthetic, true_terms) -> None:
    model = fit_latency(observations(synthetic(noise=0.001)))
    fitted = fitted_terms(model)
    for stage, terms in true_terms.items():
        for name, true in terms.items():
            assert fitted[stage].get(name, 0.0) == pytest.approx(true, rel=0.02), (stage, name)
    # Terms the data were made without come out at (about) zero.
    assert fitted["selection"].get("fastv.tokens_squared", 0.0) * 6272 ** 2 < 1e-4
    for stage, fit in model.stages.items():
        assert fit.rms_relative_error < 0.01, stage
        assert all(term.stderr is not None and term.stderr >= 0 for term in fit.terms)


def test_one_model_size_cannot_tell_fixed_from_weight_bytes_and_says_so(synthetic) -> None:
    model = fit_latency(observations(synthetic(models=("tiny",), noise=0.0)))
    prefill = model.stages["llm_prefill"]
    assert "weight_bytes" in prefill.unidentified and "weight_bytes" not in {t.name for t in prefill.terms}
    # The per-layer term carries what the weight bytes did: predictions stay exact.
    data = observations(synthetic(models=("tiny",), noise=0.0, budgets=(0.25,)))
    for o in data:
        assert predict_stages(model, o.config).llm_prefill_ms == pytest.approx(o.llm_prefill_ms, rel=1e-6)


def test_too_few_profiles_says_how_many_of_what(synthetic) -> None:
    data = observations(synthetic(models=("tiny",), frames=(4,), budgets=(0.25,), methods=("fastv",)))
    with pytest.raises(FitError, match=r"too few profiles to fit: 2 usable profile record\(s\) of 2 configuration"):
        fit_latency(data)


def test_mixed_devices_or_dtypes_are_refused_naming_the_groups(synthetic) -> None:
    records = synthetic(models=("tiny",)) + synthetic(models=("tiny",), device_name="NVIDIA H100")
    with pytest.raises(FitError, match=r"2 device/dtype/family groups .*NVIDIA H100.*Synthetic CPU.*--device-name"):
        fit_latency(observations(records))
    records = synthetic(models=("tiny",)) + synthetic(models=("tiny",), dtype="bfloat16")
    with pytest.raises(FitError, match="bfloat16.*float32.*--dtype"):
        fit_latency(observations(records))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0])
def test_non_finite_timings_are_reported_and_skipped(synthetic, bad: float) -> None:
    records = synthetic(models=("tiny",), frames=(4, 8))
    records[0]["stages_ms"]["vision"] = bad
    records[3]["ttft_ms"] = bad
    messages: list[str] = []
    kept = observations(records, warn=messages.append)
    assert len(kept) == len(records) - 2
    assert messages == ["skipped 2 record(s) with a NaN, inf or non-positive timing (or no executed schedule)"]
    with pytest.warns(UserWarning, match="skipped 2 record"):
        observations(records)


def test_failed_records_are_not_fitted(synthetic) -> None:
    records = synthetic(models=("tiny",), frames=(4,))
    records.append({"kind": "profile", "status": "failed", "error": "out of memory", "method": "fastv"})
    assert len(observations(records)) == len(records) - 1


def test_selection_steps_read_from_the_schedule() -> None:
    pre = Schedule((64, 64, 64), 8, 256)
    assert selection_steps(pre) == [(256, 64)]
    staged = Schedule((256, 256, 100, 100, 40), 8, 256)
    assert selection_steps(staged) == [(256, 100), (100, 40)]
    assert selection_steps(Schedule.constant(4, 256, 8)) == []


def test_calibration_round_trips_through_json(synthetic, tmp_path) -> None:
    model = fit_latency(observations(synthetic(models=("tiny",))))
    calibration = Calibration(model, {"speedup": {"median": 0.01, "max": 0.03, "count": 5}}, 60, 33, "store")
    path = tmp_path / "calib.json"
    calibration.save(str(path))
    loaded = load_calibration(str(path))
    assert loaded.to_dict() == calibration.to_dict()
    assert fitted_terms(loaded.model) == fitted_terms(model)


def test_a_bandwidth_measured_apart_carries_one_models_decode_to_another(synthetic, true_terms) -> None:
    """One model's profiles cannot separate the per-layer time from the weight bytes of a decode step; with
    the weight-read bandwidth given (`bandwidth_terms`, as `vidcost fit --device-spec` sets it), the layer
    term is what is left, and another model's decode is predicted from its own bytes."""
    from vidcost.latency import bandwidth_terms, predict_stages

    tiny = observations(synthetic(models=("tiny",)))
    other = [o for o in observations(synthetic(models=("llava-onevision-0.5b",), frames=(4,)))
             if o.config.method == "vanilla"][0]
    measured = other.stages_ms["decode"]
    plain = fit_latency(tiny)
    assert "weight_bytes" in plain.stages["decode"].unidentified
    rate = 1 / true_terms["decode"]["weight_bytes"]
    given = fit_latency(tiny, {"decode": bandwidth_terms(rate, "a test device")["decode"]})
    terms = {t.name: t for t in given.stages["decode"].terms}
    assert terms["weight_bytes"].source == "a test device" and terms["weight_bytes"].value == 1 / rate
    assert terms["layers"].value == pytest.approx(true_terms["decode"]["layers"], rel=0.05)
    with_bandwidth = predict_stages(given, other.config).decode_ms_per_token
    without = predict_stages(plain, other.config).decode_ms_per_token
    assert abs(with_bandwidth / measured - 1) < 0.05 < abs(without / measured - 1)
