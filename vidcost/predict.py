"""Prediction: the latency, speedup and memory of a pruning budget before it is deployed.

`predict` prices a method's plan (or a schedule) on a model with a fitted `Calibration`
(`vidcost.latency`; calibrated: the error band is the held-out error of that fit), or a device's per-operator
model (`vidcost.operators`: each kernel priced from the device's numbers; banded when those numbers were
fitted to profiles by `vidcost fit --per-operator-out`, which measures their held-out error by regime) or its
roofline at datasheet peak (`vidcost.roofline`, `roofline="peak"`: a lower bound, no band). Speedups are vanilla
over method, both predicted by the same model. Memory comes from the cost model (`estimate_memory`:
weights and the larger of the vision tower's transient and the KV cache under the schedule with the LLM
prefill's activation peak; `vidcost.memory_plan` says what fits under a limit; `analysis/bench_memory.py`
compares them with measured peaks).

`predict_curve` runs it at several budgets; `budget_for_speedup` finds the largest budget whose
predicted speedup still meets a target (bisection: the predicted speedup falls as the budget grows).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from vidcost.cost import DTYPE_BYTES, estimate_memory
from vidcost.errors import ConfigError
from vidcost.latency import (REGIMES, Calibration, Configuration, LatencyModel, load_calibration,
                             predict_stages, regime_of, vanilla_configuration)
from vidcost.schedule import Schedule
from vidcost.spec import ModelSpec, load_spec

SPEEDUP_KEYS = ("speedup", "llm_prefill_speedup")
# The smallest budget the target search tries: below it a method keeps almost nothing.
MIN_BUDGET = 0.01
ROOFLINE_PEAK = "peak"
# What prices a prediction, as tables, figures and JSON name it.
CALIBRATED, PER_OPERATOR, PEAK = "calibrated", "per-operator", "roofline at peak"


class VidcostPredictionWarning(UserWarning):
    """A prediction made outside what its calibration was fitted on (another family, device or model)."""


@dataclass(frozen=True)
class Prediction:
    """What a budget is predicted to buy, in the vocabulary of `vidcost profile --json`.

    Attributes:
        model / frames / method / budget / params: what was priced (budget None for a schedule).
        device / dtype: where: the calibration's device, or the roofline's.
        calibrated: True when fitted on profiles of that device; False for a device model.
        kind: what priced it — CALIBRATED, PER_OPERATOR (the device's per-operator model) or PEAK (the
            datasheet roofline, a lower bound).
        stages_ms / vanilla_stages_ms: predicted stages of TTFT.
        ttft_ms / vanilla_ttft_ms, llm_prefill_ms / vanilla_llm_prefill_ms: predicted.
        speedup: TTFT speedup (vision encoder and selection included); llm_prefill_speedup: the decoder's.
        speedup_low / speedup_high (and llm_prefill_*): the band from the held-out error; None for a device model
            nothing was fitted to.
        decode_ms_per_token / vanilla_decode_ms_per_token: one decode step (None if never measured).
        kv_cache_bytes / peak_memory_bytes (and vanilla_*): from the cost model.
        errors: quantity → relative half-width of its band (the held-out max error in the prediction's
            regime, of a calibration or of a per-operator device fitted to profiles; empty for a datasheet or
            `local` device, or outside the range where the fit measured no error).
        notes: what the prediction does not cover, in words.
        regime: where it stands against what was fitted (`vidcost.latency.REGIMES`: "inside",
            "other_model", "other_frames"); None for a device model nothing was fitted to.
    """

    model: str
    frames: int
    method: str | None
    budget: float | None
    params: Mapping[str, Any]
    device: str
    dtype: str
    calibrated: bool
    stages_ms: Mapping[str, float]
    vanilla_stages_ms: Mapping[str, float]
    ttft_ms: float
    vanilla_ttft_ms: float
    llm_prefill_ms: float
    vanilla_llm_prefill_ms: float
    speedup: float | None
    llm_prefill_speedup: float | None
    decode_ms_per_token: float | None
    vanilla_decode_ms_per_token: float | None
    kv_cache_bytes: int
    vanilla_kv_cache_bytes: int
    peak_memory_bytes: int
    vanilla_peak_memory_bytes: int
    visual_tokens: tuple[int, ...] = ()
    errors: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    regime: str | None = None
    kind: str = CALIBRATED

    def band(self, key: str) -> tuple[float | None, float | None]:
        """Where the measured value lies, from the held-out error e = max |predicted / measured − 1|:
        [value / (1 + e), value / (1 − e)], the high end unbounded (inf) once e ≥ 1; (None, None) without
        an error."""
        value, error = getattr(self, key), self.errors.get(key)
        if value is None or error is None:
            return None, None
        return value / (1 + error), (value / (1 - error) if error < 1 else math.inf)

    def to_dict(self) -> dict[str, Any]:
        finite = lambda pair: tuple(None if v is not None and math.isinf(v) else v for v in pair)  # noqa: E731 - JSON
        speedup_low, speedup_high = finite(self.band("speedup"))
        prefill_low, prefill_high = finite(self.band("llm_prefill_speedup"))
        ttft_low, ttft_high = finite(self.band("ttft_ms"))
        decode_low, decode_high = finite(self.band("decode_ms_per_token"))
        return {
            "model": self.model, "frames": self.frames, "method": self.method, "budget": self.budget,
            "params": dict(self.params), "device": self.device, "dtype": self.dtype, "calibrated": self.calibrated,
            "ttft_ms": self.ttft_ms, "ttft_ms_low": ttft_low, "ttft_ms_high": ttft_high,
            "vanilla_ttft_ms": self.vanilla_ttft_ms,
            "speedup": self.speedup, "speedup_low": speedup_low, "speedup_high": speedup_high,
            "llm_prefill_ms": self.llm_prefill_ms, "vanilla_llm_prefill_ms": self.vanilla_llm_prefill_ms,
            "llm_prefill_speedup": self.llm_prefill_speedup, "llm_prefill_speedup_low": prefill_low,
            "llm_prefill_speedup_high": prefill_high,
            "stages_ms": dict(self.stages_ms), "vanilla_stages_ms": dict(self.vanilla_stages_ms),
            "decode_ms_per_token": self.decode_ms_per_token, "decode_ms_per_token_low": decode_low,
            "decode_ms_per_token_high": decode_high, "vanilla_decode_ms_per_token": self.vanilla_decode_ms_per_token,
            "kv_cache_bytes": self.kv_cache_bytes, "vanilla_kv_cache_bytes": self.vanilla_kv_cache_bytes,
            "peak_memory_bytes": self.peak_memory_bytes, "vanilla_peak_memory_bytes": self.vanilla_peak_memory_bytes,
            "visual_tokens": list(self.visual_tokens), "errors": dict(self.errors), "notes": list(self.notes),
            "regime": self.regime, "kind": self.kind,
        }

    def __str__(self) -> str:
        what = f"{self.method} @ {self.budget:g}" if self.method and self.budget is not None else "schedule"
        return (f"Prediction({self.model}, {self.frames} frames, {what} on {self.device}: TTFT {self.ttft_ms:.1f} ms, "
                f"speedup {self.speedup:.2f}×, {self.kind})")


def coverage_warning(fitted: Any, spec: Any, method: str | None) -> None:
    """One warning when a prediction leaves what its source was fitted on (`fitted_source`: a calibration or a
    fitted per-operator device; another model, a frame count outside its range, a method it never saw): the
    terms still price it, but its printed band was measured inside that range only."""
    coverage = fitted.coverage if fitted is not None else {}
    if not coverage:
        return
    outside = []
    if coverage.get("models") and spec.name not in coverage["models"]:
        outside.append(f"model {spec.name} (fitted on {', '.join(coverage['models'])})")
    frames = coverage.get("frames") or []
    if len(frames) == 2 and not frames[0] <= spec.frames <= frames[1]:
        outside.append(f"{spec.frames} frames (fitted on {frames[0]}–{frames[1]})")
    methods = coverage.get("methods") or []
    if method is not None and methods and method not in methods:
        outside.append(f"method {method} (fitted on {', '.join(methods)})")
    if outside:
        regime = regime_of(coverage, spec)
        band = (f"the band is {REGIMES[regime].split('(')[1].rstrip(')')}'s" if fitted.errors_for(regime)
                else "no band: no held-out error was measured there")
        if regime == "inside":  # only the method is new: its selection time is not in the fit
            band = "the band was measured on the fitted methods"
        warnings.warn(f"extrapolating beyond the fit: {'; '.join(outside)} — {band}",
                      VidcostPredictionWarning, stacklevel=2)


def latency_source(calibration: str | Calibration | None = None, device_spec: str | None = None, *,
                   dtype: str | None = None, roofline: str | None = None, attention: str = "sdpa",
                   vision_attention: str = "sdpa") -> tuple[Any, Calibration | None]:
    """The model that prices stages — a calibration's `LatencyModel`, else the device's per-operator model
    (`vidcost.operators.OperatorModel`), or with `roofline="peak"` its `RooflineModel` at datasheet peak (the
    lower bound) — and the calibration itself (None for the device models).

    Args:
        attention / vision_attention: the attention implementation the per-operator model prices in the LLM /
            in the vision tower ("sdpa", "flash_attention_2", "eager").

    Raises:
        ConfigError: neither given, an unknown device, roofline or attention implementation.
    """
    from vidcost.operators import ATTENTION_IMPLEMENTATIONS

    if roofline not in (None, ROOFLINE_PEAK):
        raise ConfigError(f"--roofline '{roofline}' is not known; the one roofline is '{ROOFLINE_PEAK}' (datasheet "
                          "peak, a lower bound); leave it out for the per-operator model")
    for implementation in (attention, vision_attention):
        if implementation not in ATTENTION_IMPLEMENTATIONS:
            raise ConfigError(f"attention implementation '{implementation}' is not one of "
                              f"{', '.join(ATTENTION_IMPLEMENTATIONS)}")
    if calibration is not None and roofline is not None:
        raise ConfigError("--roofline prices a device from its datasheet; a calibration has its own fitted terms: "
                          "drop one of --roofline and --calibration")
    if calibration is not None:
        loaded = load_calibration(calibration) if isinstance(calibration, str) else calibration
        if device_spec is not None and not _same_device(device_spec, loaded.model.device):
            warnings.warn(f"the calibration was fitted on '{loaded.model.device}', not on '{device_spec}': "
                          "its terms describe that device; use --device-spec alone for a roofline of "
                          f"'{device_spec}'", VidcostPredictionWarning, stacklevel=3)
        return loaded.model, loaded
    if device_spec is None:
        raise ConfigError("give --calibration FILE (written by `vidcost fit`) or --device-spec NAME (a roofline: "
                          "see `vidcost predict --help` for the device names)")
    from vidcost.devices import load_device
    from vidcost.operators import OperatorModel
    from vidcost.roofline import RooflineModel

    dtype = dtype or "bfloat16"
    device = load_device(device_spec, dtype=dtype)
    device.flops_per_second(dtype)  # a dtype the device has no peak for fails here, before any pricing
    if roofline == ROOFLINE_PEAK:
        return RooflineModel(device, dtype), None
    return OperatorModel(device, dtype, attention, vision_attention), None


def source_kind(latency: Any, calibration: Calibration | None) -> str:
    """What prices a prediction: CALIBRATED, PER_OPERATOR or PEAK."""
    from vidcost.roofline import RooflineModel

    if calibration is not None:
        return CALIBRATED
    return PEAK if isinstance(latency, RooflineModel) else PER_OPERATOR


def _same_device(device_spec: str, fitted_on: str) -> bool:
    """Whether a device name (a table name, alias or free text) names the device a calibration was fitted on:
    the table entry's model number ("a100", "4090", "mi300x") appears in the name the profiles recorded."""
    from vidcost.devices import ALIASES, DEVICES

    key = device_spec.strip().lower()
    key = ALIASES.get(key, key)
    if key in DEVICES:
        key = key.removeprefix("rtx-").split("-")[0]
    squash = lambda text: "".join(c for c in text.lower() if c.isalnum())  # noqa: E731
    return squash(key) in squash(fitted_on)


def plan_schedule(spec: ModelSpec, method: str | None, budget: float | None,
                  params: Mapping[str, Any] | None = None) -> tuple[Schedule, str, float, dict[str, Any]]:
    """A method's planned schedule for a budget: (schedule, method name, budget, resolved parameters)."""
    from vidcost.methods import budget_for, get_method

    resolved = get_method(method or "vanilla", **dict(params or {}))
    budget = budget_for(resolved.name, budget)
    return resolved.plan(spec.method_view(), budget), resolved.name, budget, resolved.resolved_params()


def predict(model: str | ModelSpec, *, frames: int | None = None, method: str | None = None,
            budget: float | None = None, params: Mapping[str, Any] | None = None, schedule: Schedule | None = None,
            calibration: str | Calibration | None = None, device_spec: str | None = None, dtype: str | None = None,
            decode_tokens: int = 0, text_tokens: int | None = None, tokens_per_frame: int | None = None,
            source: Any = None, roofline: str | None = None, attention: str = "sdpa",
            vision_attention: str = "sdpa") -> Prediction:
    """Predict a budget's latency, speedup and memory (see the module docstring).

    Args:
        model: a preset, a config.json path, or a `ModelSpec`.
        frames / text_tokens / tokens_per_frame: override the model's.
        method / budget / params: the plan to price (or `schedule`, token counts per layer).
        calibration: a calibration file or object (`vidcost fit`); or `device_spec`: a device table name,
            a device JSON or "local", priced by its per-operator model (`roofline="peak"`: at datasheet peak;
            `attention` / `vision_attention`: the implementations priced) — see `latency_source`.
        dtype: the device model's dtype (default bfloat16); a calibration has its own.
        decode_tokens: decode steps after the prefill (the KV cache they read grows).
        source: an already built latency source (`latency_source`), to price many budgets.

    Raises:
        ConfigError: bad input (the value and the fix), before any pricing.
    """
    if isinstance(model, ModelSpec):
        spec = model.with_overrides(frames=frames, text_tokens=text_tokens, tokens_per_frame=tokens_per_frame)
    else:
        spec = load_spec(model, frames=frames, text_tokens=text_tokens, tokens_per_frame=tokens_per_frame)
    if decode_tokens < 0:
        raise ConfigError(f"decode tokens must be 0 or more, got {decode_tokens}")
    latency, calibration_used = source if source is not None else latency_source(
        calibration, device_spec, dtype=dtype, roofline=roofline, attention=attention,
        vision_attention=vision_attention)
    run_dtype = latency.dtype
    if schedule is not None:
        if method is not None or budget is not None:
            raise ConfigError("a schedule gives the token counts itself; drop the method and budget")
        from vidcost.cost import check_schedule

        check_schedule(spec, schedule)
        name, resolved_params, plan = None, {}, schedule
    else:
        plan, name, budget, resolved_params = plan_schedule(spec, method, budget, params)
    config = Configuration(spec, plan, name or "schedule", run_dtype, decode_tokens)
    notes = _notes(latency, calibration_used, spec, name)
    unpruned = vanilla_configuration(config)
    predicted = predict_stages(latency, config)
    vanilla = predict_stages(latency, unpruned)
    memory = estimate_memory(spec, plan, dtype_bytes=DTYPE_BYTES[run_dtype], generated_tokens=decode_tokens)
    vanilla_memory = estimate_memory(spec, unpruned.schedule, dtype_bytes=DTYPE_BYTES[run_dtype],
                                     generated_tokens=decode_tokens)
    errors, regime = {}, None
    fitted = fitted_source(latency, calibration_used)
    if fitted is not None:
        regime = regime_of(fitted.coverage, spec)
        errors = fitted.errors_for(regime)
        if regime != "inside" and not errors:
            notes += (f"extrapolating to {REGIMES[regime].split(' (')[0]}: no held-out error was measured for that "
                      "(the fit's store holds one model / frame count), so no band is printed",)
    return Prediction(
        model=spec.name, frames=spec.frames, method=name, budget=budget, params=resolved_params,
        device=_device_name(latency), dtype=run_dtype,
        calibrated=calibration_used is not None,
        stages_ms=dict(predicted.stages_ms), vanilla_stages_ms=dict(vanilla.stages_ms),
        ttft_ms=predicted.ttft_ms, vanilla_ttft_ms=vanilla.ttft_ms, llm_prefill_ms=predicted.llm_prefill_ms,
        vanilla_llm_prefill_ms=vanilla.llm_prefill_ms,
        speedup=_ratio(vanilla.ttft_ms, predicted.ttft_ms),
        llm_prefill_speedup=_ratio(vanilla.llm_prefill_ms, predicted.llm_prefill_ms),
        decode_ms_per_token=predicted.decode_ms_per_token, vanilla_decode_ms_per_token=vanilla.decode_ms_per_token,
        kv_cache_bytes=memory.kv_cache_bytes, vanilla_kv_cache_bytes=vanilla_memory.kv_cache_bytes,
        peak_memory_bytes=memory.total_bytes, vanilla_peak_memory_bytes=vanilla_memory.total_bytes,
        visual_tokens=plan.visual_tokens, errors=errors, notes=notes, regime=regime,
        kind=source_kind(latency, calibration_used))


def fitted_source(latency: Any, calibration: Calibration | None) -> Any:
    """What was fitted to profiles and measured held out — a calibration, or a per-operator device written by
    `vidcost fit --per-operator-out` (both have `coverage` and `errors_for`) — or None (nothing measured it)."""
    if calibration is not None:
        return calibration
    device = getattr(latency, "device", None)
    return device if source_kind(latency, None) == PER_OPERATOR and device.coverage else None


def _device_name(latency: Any) -> str:
    """The device a latency source prices: a calibration's recorded name, or the roofline's table name."""
    return latency.device if isinstance(latency, LatencyModel) else latency.device.name


def _source_from(kwargs: dict[str, Any]) -> tuple[Any, Calibration | None]:
    """The latency source of `predict_curve` / `budget_for_speedup`: given, or built once from their
    calibration / device_spec / dtype keywords (taken out of `kwargs`, which then go to `predict`)."""
    return kwargs.pop("source", None) or latency_source(kwargs.pop("calibration", None),
                                                        kwargs.pop("device_spec", None), dtype=kwargs.get("dtype"),
                                                        roofline=kwargs.pop("roofline", None),
                                                        attention=kwargs.pop("attention", "sdpa"),
                                                        vision_attention=kwargs.pop("vision_attention", "sdpa"))


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _notes(latency: Any, calibration: Calibration | None, spec: ModelSpec, method: str | None) -> tuple[str, ...]:
    """What the prediction does not cover, with a warning where it reaches outside its calibration."""
    notes = ["peak memory from the cost model: weights + the larger of the vision tower's transient (all frames "
             "in one batch) and the LLM prefill's KV cache + activation peak (--memory-limit: what fits)"]
    if calibration is None:
        if source_kind(latency, None) == PEAK:
            notes.append("roofline at datasheet peak: no selection time, no launch overheads; a lower bound on "
                         "latency, and no error band (`analysis/roofline_vs_published.py` shows how far below "
                         "measured numbers it lands)")
        else:
            device = latency.device
            fitted = ("its numbers fitted to profiles of it (the band: their held-out error in this prediction's "
                      "regime)" if device.coverage else
                      "from the device's numbers, not from profiles of it — no error band "
                      "(`analysis/roofline_vs_published.py` measures it against published latencies)")
            notes.append(f"per-operator model of {device.name} ({latency.attention} attention, "
                         f"{latency.vision_attention} in the vision tower): every kernel priced "
                         + fitted + "; a pre-LLM selection is its method's own kernels at these token counts "
                         "(traced at default parameters on random features), an in-LLM stage's selection is "
                         "not priced"
                         + (f"; kernel numbers: {device.kernel_source}" if device.kernel_source else
                            "; this device has no kernel-level numbers: GEMMs and attention at peak, no launch or "
                            "host cost"))
        return tuple(notes)
    fitted = calibration.model
    if spec.architecture != fitted.family:
        message = (f"the calibration was fitted on the {fitted.family} family; '{spec.name}' is {spec.architecture}: "
                   "the prediction extrapolates across families")
        warnings.warn(message, VidcostPredictionWarning, stacklevel=4)
        notes.append(message)
    elif spec.name not in fitted.models:
        notes.append(f"'{spec.name}' was not in the fit ({', '.join(fitted.models)}): its per-layer terms are "
                     "carried over from those models")
    if method not in (None, "vanilla", "schedule") and method not in fitted.methods:
        notes.append(f"no profile of {method} was fitted: its selection time is not in the prediction "
                     f"(fitted: {', '.join(fitted.methods) or 'none'})")
    if "decode" not in fitted.stages:
        notes.append("no profile timed decoding (vidcost profile --decode-tokens N): no decode prediction")
    return tuple(notes)


def predict_curve(model: str | ModelSpec, budgets: Sequence[float], **kwargs: Any) -> list[Prediction]:
    """`predict` at each budget (the latency source built once)."""
    source = _source_from(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("once", VidcostPredictionWarning)
        return [predict(model, budget=budget, source=source, **kwargs) for budget in budgets]


def budget_for_speedup(model: str | ModelSpec, target: float, *, key: str = "speedup",
                       tolerance: float = 1e-3, **kwargs: Any) -> Prediction:
    """The largest budget whose predicted `key` ("speedup" or "llm_prefill_speedup") is at least `target`.

    Bisection on (MIN_BUDGET, 1]: the plan keeps fewer tokens as the budget falls, and the predicted
    speedup rises with it (`tests/latency/test_predict.py` checks the monotony). The returned prediction's budget
    meets the target; one `tolerance` above it does not.

    Raises:
        ConfigError: a key that is not a speedup, a target of 1 or less, or one no budget down to
            MIN_BUDGET reaches (the largest speedup predicted is named).
    """
    if key not in SPEEDUP_KEYS:
        raise ConfigError(f"target key '{key}' is not one of {list(SPEEDUP_KEYS)}")
    if not target > 1:
        raise ConfigError(f"a target speedup must exceed 1 (vanilla is 1), got {target:g}")
    source = _source_from(kwargs)

    def at(budget: float) -> Prediction:
        return predict(model, budget=round(budget, 6), source=source, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("once", VidcostPredictionWarning)
        low = at(MIN_BUDGET)
        if (getattr(low, key) or 0) < target:
            raise ConfigError(f"target {key} {target:g}× is unreachable: the largest predicted is "
                              f"{getattr(low, key):.2f}× at budget {MIN_BUDGET:g}; lower the target")
        high = at(1.0)
        if (getattr(high, key) or 0) >= target:
            return high
        lo, hi = MIN_BUDGET, 1.0
        best = low
        while hi - lo > tolerance:
            middle = (lo + hi) / 2
            candidate = at(middle)
            if (getattr(candidate, key) or 0) >= target:
                lo, best = middle, candidate
            else:
                hi = middle
        return best


@dataclass
class DeviceLatency:
    """Predicted latency of table rows (published or ingested accuracy) on one device, for Pareto fronts and
    recommendations on the user's hardware (`vidcost pareto|report --calibration|--device-spec`).

    A row's method that vidcost does not implement (a paper's own) is priced as its kept token count before
    the LLM — a constant schedule — with no selection time. Predictions are cached per configuration.

    Attributes:
        source: a `latency_source` pair.
        label: "predicted on DEVICE (KIND)" (`source_kind`), for tables and figures.
    """

    source: tuple[Any, Calibration | None]
    label: str
    _cache: dict[tuple[Any, ...], Prediction | None] = field(default_factory=dict, repr=False)

    @classmethod
    def from_options(cls, calibration: str | None, device_spec: str | None, dtype: str | None = None, *,
                     roofline: str | None = None, attention: str = "sdpa",
                     vision_attention: str = "sdpa") -> "DeviceLatency":
        source = latency_source(calibration, device_spec, dtype=dtype, roofline=roofline, attention=attention,
                                vision_attention=vision_attention)
        latency, fitted = source
        return cls(source, f"predicted on {_device_name(latency)} ({source_kind(latency, fitted)})")

    def prediction(self, model: str, method: str, budget: float, frames: int | None = None) -> Prediction | None:
        """The row's prediction, or None when its model is not a preset or its method cannot plan that budget."""
        key = (model, method, round(budget, 6), frames)
        if key not in self._cache:
            self._cache[key] = self._predict(model, method, budget, frames)
        return self._cache[key]

    def _predict(self, model: str, method: str, budget: float, frames: int | None) -> Prediction | None:
        from vidcost.methods import method_names

        try:
            spec = load_spec(model, frames=frames)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VidcostPredictionWarning)  # the label says where it was priced
                if method in method_names():
                    return predict(spec, method=method, budget=budget, source=self.source)
                initial = spec.num_visual_tokens
                schedule = Schedule.constant(spec.num_layers, max(1, round(budget * initial)), spec.text_tokens,
                                             initial)
                return predict(spec, schedule=schedule, source=self.source)
        except ConfigError:
            return None

    def speedup(self, model: str, method: str, budget: float) -> float | None:
        """Predicted TTFT speedup of a row (for `vidcost.pareto.recommend`)."""
        prediction = self.prediction(model, method, budget)
        return prediction.speedup if prediction else None


PREDICTED_COLUMNS = ("predicted_ttft_ms", "predicted_speedup", "predicted_llm_prefill_ms",
                     "predicted_llm_prefill_speedup", "predicted_peak_memory_bytes")


def attach_predicted(rows: Sequence[Mapping[str, Any]], latency: DeviceLatency) -> tuple[list[dict[str, Any]], int]:
    """Rows with `PREDICTED_COLUMNS` and `latency_source` added, and how many rows could not be priced."""
    out, unpriced = [], 0
    for row in rows:
        row = dict(row)
        budget = row.get("budget")
        frames = row.get("frames")
        prediction = None
        if row.get("model") and row.get("method") and isinstance(budget, (int, float)):
            method = str(row["method"])
            prediction = latency.prediction(str(row["model"]), method, 1.0 if method == "vanilla" else float(budget),
                                            int(frames) if isinstance(frames, (int, float)) and math.isfinite(frames) else None)
        if prediction is None:
            unpriced += 1
        else:
            row.update(predicted_ttft_ms=prediction.ttft_ms, predicted_speedup=prediction.speedup,
                       predicted_llm_prefill_ms=prediction.llm_prefill_ms,
                       predicted_llm_prefill_speedup=prediction.llm_prefill_speedup,
                       predicted_peak_memory_bytes=prediction.peak_memory_bytes, latency_source=latency.label)
        out.append(row)
    return out, unpriced
