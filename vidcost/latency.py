"""LatencyModel: the latency of every stage of a Video-LLM prefill, and of a decode step, as a sum of
physical terms with non-negative coefficients fitted to measured profiles (scipy's bounded least squares).

What the field knows, and why the terms are these:

* a roofline at peak is far off at the token counts pruning produces — LLM-Viewer's (Yuan et al.,
  "LLM Inference Unveiled", 2024) roofline under-predicts LLaMA-7B prefill on an A100 by 57 % at 128
  tokens and 16 % at 2048; llm-analysis (Li, 2023) multiplies peaks by hand-set efficiencies (≈ 0.7 for
  FLOPs, 0.9 for memory); Vidur (Agrawal et al., MLSys 2024) fits per-operator regressors on token counts
  and reports < 9 % error, measured in-sample;
* a GEMM's efficiency rises with its rows: in Hockney's form t = W / r∞ · (1 + n½ / n), and for a
  decoder layer's GEMMs W / n is 2 · (the layer's parameters), so the n½ term is a fixed time per layer
  proportional to the weight bytes it reads — the memory-bound end of the roofline;
* a layer also has a fixed cost (kernel launches, norms, the host), and the pruning step costs time.

So each stage is Σ_k c_k · x_k(configuration), with x_k computed from the model's dimensions and the
executed token schedule (`stage_work`) and every c_k ≥ 0 in seconds per unit:

* ``llm_prefill``: per decoder layer, GEMM FLOPs (c = 1/r∞), attention FLOPs, a fixed per-layer time, and
  the layer's weight bytes (Hockney's n½ term; only identifiable beside the fixed term when the store
  holds more than one model size — otherwise the fixed term carries it, see `StageFit.unidentified`);
* ``vision``: tower FLOPs and frames; ``projector``: its FLOPs and a constant; ``first_token``: the LM
  head's FLOPs and a constant; ``other`` (TTFT beyond the stage windows: embedding, merging): the
  visual tokens and a constant;
* ``selection``: per method, per selection step: a fixed cost, the tokens it scores (n) and keeps (k) — work
  done per frame or segment, e.g. MMG-Vid's per-segment greedy, grows linearly with them — and the global
  pairwise work n² (similarities over the whole video, DPC-kNN) and n · k (a greedy pass over all tokens per
  kept one, DivPrune);
* ``decode`` (one step): KV-cache bytes read, a fixed per-layer time and the weight bytes.

Rows are weighted by 1 / measured, so the fit minimises relative error — what a speedup needs. A term
that is a linear combination of earlier ones on this store's data is left out and named (its effect is
carried by the others). The uncertainty of each coefficient is its standard error from the residuals.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from vidcost.cost import (DTYPE_BYTES, decode_kv_lengths, estimate_cost, layer_parameters, llm_parameters,
                          projector_flops, vision_flops)
from vidcost.errors import FitError
from vidcost.schedule import Schedule
from vidcost.spec import ModelSpec

# Stages of TTFT, in order; "other" is TTFT beyond the stage windows. "decode" is one step.
PREFILL_STAGES = ("vision", "projector", "selection", "llm_prefill", "first_token", "other")
DECODE = "decode"
MODELLED = PREFILL_STAGES + (DECODE,)

# Each stage's terms in the order they are tried (an earlier term wins a collinear pair), with units.
STAGE_TERMS: dict[str, tuple[tuple[str, str], ...]] = {
    "vision": (("vision_flops", "s/FLOP"), ("frames", "s/frame")),
    "projector": (("projector_flops", "s/FLOP"), ("constant", "s")),
    "llm_prefill": (("gemm_flops", "s/FLOP"), ("attention_flops", "s/FLOP"), ("layers", "s/layer"),
                    ("weight_bytes", "s/B")),
    "first_token": (("lm_head_flops", "s/FLOP"), ("constant", "s")),
    "other": (("visual_tokens", "s/token"), ("constant", "s")),
    "decode": (("kv_bytes", "s/B"), ("layers", "s/layer"), ("weight_bytes", "s/B")),
}
# Local work first (per frame or segment: linear in the tokens scored and kept), global pairwise work after.
SELECTION_TERMS = (("steps", "s/step"), ("tokens", "s/token"), ("kept", "s/token"), ("tokens_squared", "s/token²"),
                   ("tokens_kept", "s/token²"))
# Relative singular value below which a term adds nothing the earlier ones do not already span.
_COLLINEAR = 1e-6


@dataclass(frozen=True)
class Configuration:
    """What a latency depends on: the model, its executed token schedule and the method that made it.

    Attributes:
        spec: the model (frames and text tokens included).
        schedule: visual tokens entering each decoder layer.
        method: the pruning method ("vanilla" for none).
        dtype: the dtype the weights and KV cache are in.
        decode_tokens: decode steps after the prefill (the KV cache grows by one per step).
    """

    spec: ModelSpec
    schedule: Schedule
    method: str = "vanilla"
    dtype: str = "float32"
    decode_tokens: int = 0

    @property
    def dtype_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]


def selection_steps(schedule: Schedule) -> list[tuple[int, int]]:
    """(tokens scored, tokens kept) of every selection step a schedule shows: one before the LLM when its
    first layer sees fewer tokens than the video has, one at each layer that sees fewer than the one before."""
    steps = []
    if schedule.visual_tokens[0] < schedule.initial_visual_tokens:
        steps.append((schedule.initial_visual_tokens, schedule.visual_tokens[0]))
    for before, after in zip(schedule.visual_tokens, schedule.visual_tokens[1:]):
        if after < before:
            steps.append((before, after))
    return steps


def stage_work(config: Configuration) -> dict[str, dict[str, float]]:
    """The work terms x_k of every stage (see the module docstring), stage → term → value."""
    spec, schedule = config.spec, config.schedule
    dtype_bytes = config.dtype_bytes
    cost = estimate_cost(spec, schedule, convention="exact")
    gemm = sum(layer.projection_flops + layer.mlp_flops for layer in cost.layers)
    attention = sum(layer.attention_flops for layer in cost.layers)
    layer_bytes = layer_parameters(spec) * dtype_bytes
    head_flops = cost.lm_head_flops
    tower = vision_flops(spec)
    projector = projector_flops(spec)
    work = {
        "vision": {"vision_flops": tower - projector, "frames": spec.frames},
        "projector": {"projector_flops": projector, "constant": 1.0},
        "llm_prefill": {"gemm_flops": gemm, "attention_flops": attention, "layers": spec.num_layers,
                        "weight_bytes": spec.num_layers * layer_bytes},
        "first_token": {"lm_head_flops": head_flops, "constant": 1.0},
        "other": {"visual_tokens": schedule.initial_visual_tokens, "constant": 1.0},
    }
    steps = selection_steps(schedule)
    if steps and config.method != "vanilla":
        work["selection"] = {
            f"{config.method}.steps": len(steps),
            f"{config.method}.tokens": sum(n for n, _ in steps),
            f"{config.method}.kept": sum(kept for _, kept in steps),
            f"{config.method}.tokens_squared": sum(n * n for n, _ in steps),
            f"{config.method}.tokens_kept": sum(n * kept for n, kept in steps),
        }
    # A decode step reads every layer's cache, about half-way through the steps (it grows by one each).
    lengths = decode_kv_lengths(schedule, generated_tokens=config.decode_tokens // 2)
    # A step reads every weight but the input embedding table (one row of it), unless tied to the LM head.
    embedding = 0 if spec.tie_word_embeddings else spec.vocab_size * spec.hidden_size
    work["decode"] = {"kv_bytes": 2 * sum(lengths) * spec.kv_dim * dtype_bytes, "layers": spec.num_layers,
                      "weight_bytes": (llm_parameters(spec) - embedding) * dtype_bytes}
    return work


@dataclass(frozen=True)
class Term:
    """One coefficient: seconds per unit of its work term, its standard error, and where it comes from.

    Attributes:
        source: "" when fitted to the profiles; else the device measurement that set it (`fixed` terms of
            `fit_latency`: a bandwidth the store's profiles cannot separate from the per-layer time).
    """

    name: str
    unit: str
    value: float
    stderr: float | None
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "unit": self.unit, "value": self.value, "stderr": self.stderr}
        return {**out, "source": self.source} if self.source else out

    def __str__(self) -> str:
        if self.source:
            return f"{self.name} = {self.value:.4g} {self.unit} (set from {self.source})"
        spread = f" ± {self.stderr:.3g}" if self.stderr is not None else ""
        return f"{self.name} = {self.value:.4g}{spread} {self.unit}"


@dataclass(frozen=True)
class StageFit:
    """The fitted terms of one stage.

    Attributes:
        stage: the stage's name.
        terms: identified terms, fitted (value ≥ 0).
        unidentified: terms this store cannot tell from the earlier ones (left at 0; the others carry them).
        rows / configurations: measurements and distinct configurations fitted.
        rms_relative_error: in-sample RMS of (predicted − measured) / measured (the measured value floored
            at 1 % of the TTFT, as fitted).
    """

    stage: str
    terms: tuple[Term, ...]
    unidentified: tuple[str, ...] = ()
    rows: int = 0
    configurations: int = 0
    rms_relative_error: float = 0.0

    def predict_ms(self, work: Mapping[str, float]) -> float:
        return 1e3 * sum(term.value * work.get(term.name, 0.0) for term in self.terms)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "terms": [term.to_dict() for term in self.terms],
                "unidentified": list(self.unidentified), "rows": self.rows, "configurations": self.configurations,
                "rms_relative_error": self.rms_relative_error}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StageFit":
        return cls(data["stage"], tuple(Term(**term) for term in data["terms"]), tuple(data.get("unidentified", ())),
                   int(data.get("rows", 0)), int(data.get("configurations", 0)),
                   float(data.get("rms_relative_error", 0.0)))


@dataclass(frozen=True)
class LatencyModel:
    """Fitted stage models for one (device, dtype, model family).

    Attributes:
        device: the device the profiles were measured on (its name, threads on a CPU).
        dtype: the dtype they ran in.
        family: the model family (`ModelSpec.architecture`).
        stages: stage → `StageFit`; a stage the store never measured is absent (predicted as 0).
        models: the model names fitted.
        methods: the methods whose selection time is fitted.
    """

    device: str
    dtype: str
    family: str
    stages: Mapping[str, StageFit]
    models: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()

    def stage_ms(self, config: Configuration) -> dict[str, float]:
        """Predicted milliseconds of every stage of a configuration (TTFT's stages and one decode step)."""
        work = stage_work(config)
        return {stage: fit.predict_ms(work.get(stage, {})) for stage, fit in self.stages.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "dtype": self.dtype, "family": self.family,
                "stages": {name: fit.to_dict() for name, fit in self.stages.items()},
                "models": list(self.models), "methods": list(self.methods)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyModel":
        return cls(data["device"], data["dtype"], data["family"],
                   {name: StageFit.from_dict(fit) for name, fit in data["stages"].items()},
                   tuple(data.get("models", ())), tuple(data.get("methods", ())))


@dataclass(frozen=True)
class Observation:
    """One measured configuration, as the fit sees a profile record.

    Attributes:
        config: what was run.
        stages_ms: measured medians of the modelled stages (TTFT's, "other", and "decode" when timed).
        ttft_ms / llm_prefill_ms: measured medians.
        run_id: pairs a method's observation with its vanilla's.
        budget: the budget the record was run at.
        device: `record_device` of the record.
        threads: the torch CPU threads it ran with (None on a GPU, or when the record does not say).
    """

    config: Configuration
    stages_ms: Mapping[str, float]
    ttft_ms: float
    llm_prefill_ms: float
    run_id: str
    budget: float
    device: str
    threads: int | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """(model, frames, method, budget): one configuration, whatever its repeats."""
        return (self.config.spec.name, self.config.spec.frames, self.config.method, self.budget)


def spec_from_record(model: Mapping[str, Any]) -> ModelSpec:
    """The `ModelSpec` a profile record stores (`record["model"]`)."""
    names = {f.name for f in dataclasses.fields(ModelSpec)}
    return ModelSpec(**{k: v for k, v in model.items() if k in names})


def record_device(record: Mapping[str, Any]) -> str:
    """The device a record was measured on, as a fit keys it: the GPU's or CPU's name (with the torch
    threads on a CPU, which change its speed)."""
    environment = record.get("environment") or {}
    name = environment.get("device_name") or record.get("device") or "unknown"
    if str(record.get("device", "")).startswith("cuda"):
        return str(name)
    threads = environment.get("threads")
    return f"{name} ({threads} thread{'s' if threads != 1 else ''})" if threads else str(name)


def observations(records: Iterable[Mapping[str, Any]],
                 warn: Callable[[str], None] | None = None) -> list[Observation]:
    """The fit's view of profile records: `ok` records with a finite, positive TTFT and schedule.

    A record with a NaN, inf or non-positive timing is skipped and counted in one warning (`warn`, or
    `warnings.warn`): it is never fitted, and never silently dropped.
    """
    kept, skipped = [], Counter()
    for record in records:
        if record.get("kind", "profile") != "profile" or record.get("status") != "ok":
            continue
        stages = dict(record.get("stages_ms") or {})
        ttft, prefill = record.get("ttft_ms"), record.get("llm_prefill_ms")
        values = [ttft, prefill, *stages.values()]
        if record.get("decode_ms_per_token") is not None:
            values.append(record["decode_ms_per_token"])
        if not all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values) \
                or not record.get("executed_schedule"):
            skipped["a NaN, inf or non-positive timing (or no executed schedule)"] += 1
            continue
        spec = spec_from_record(record["model"])
        schedule = Schedule.from_dict(record["executed_schedule"])
        config = Configuration(spec, schedule, record["method"], record["dtype"], int(record.get("decode_tokens") or 0))
        measured = {stage: float(stages[stage]) for stage in PREFILL_STAGES if stage in stages}
        measured["other"] = max(float(ttft) - sum(float(v) for v in stages.values()), 0.0)
        if record.get("decode_ms_per_token") is not None:
            measured[DECODE] = float(record["decode_ms_per_token"])
        threads = (record.get("environment") or {}).get("threads")
        on_cpu = not str(record.get("device", "")).startswith("cuda")
        kept.append(Observation(config, measured, float(ttft), float(prefill), str(record.get("run_id")),
                                float(record["budget"]), record_device(record),
                                int(threads) if on_cpu and isinstance(threads, int) else None))
    if skipped:
        message = "; ".join(f"{count} record(s) with {why}" for why, count in skipped.items())
        (warn or (lambda text: warnings.warn(text, stacklevel=3)))(f"skipped {message}")
    return kept


MIN_CONFIGURATIONS = 3


def bandwidth_terms(bandwidth: float, source: str) -> dict[str, dict[str, Term]]:
    """The byte terms a device's measured memory bandwidth sets (seconds per byte = 1 / bandwidth): a decode
    step's weight and KV-cache reads, and the prefill's per-layer weight read (Hockney's n½ end).

    One model's profiles cannot separate a per-layer time from the weight bytes (each layer reads the same
    bytes in every profile), so a fit on them puts the whole decode step into the per-layer term and
    mispredicts a model of another size by its weight ratio; with the bandwidth measured apart, the layer
    term is what is left — the launch and framework time of a step that transfers across sizes.
    """
    per_byte = 1.0 / bandwidth
    term = lambda name: Term(name, "s/B", per_byte, None, source)  # noqa: E731
    return {DECODE: {"weight_bytes": term("weight_bytes"), "kv_bytes": term("kv_bytes")},
            "llm_prefill": {"weight_bytes": term("weight_bytes")}}


def fit_latency(data: Sequence[Observation], fixed: Mapping[str, Mapping[str, Term]] | None = None) -> LatencyModel:
    """Fit every stage's terms to observations of one device, dtype and model family.

    Args:
        data: the observations.
        fixed: stage → term name → a `Term` set from a device measurement (`bandwidth_terms`): kept as
            given, its time taken off the measured one before the other terms are fitted.

    Raises:
        FitError: observations of several devices, dtypes or families (which ones, and how to choose),
            or too few to fit (how many, of what).
    """
    import numpy as np

    groups = Counter((o.device, o.config.dtype, o.config.spec.architecture) for o in data)
    if len(groups) > 1:
        listed = "; ".join(f"{d} / {t} / {f}: {n} records" for (d, t, f), n in sorted(groups.items()))
        raise FitError(f"the profiles come from {len(groups)} device/dtype/family groups ({listed}); a latency "
                       "model holds one: choose with --device-name, --dtype and --family")
    configurations = {o.key for o in data}
    if len(configurations) < MIN_CONFIGURATIONS:
        raise FitError(f"too few profiles to fit: {len(data)} usable profile record(s) of {len(configurations)} "
                       f"configuration(s); the fit needs at least {MIN_CONFIGURATIONS} configurations (e.g. "
                       "`vidcost sweep --methods fastv --budgets 0.25,0.5` measures vanilla and two budgets)")
    (group_device, group_dtype, group_family), = groups
    work_of = [stage_work(o.config) for o in data]  # once per observation, read by every stage
    stages: dict[str, StageFit] = {}
    for stage in MODELLED:
        chosen = [i for i, o in enumerate(data)
                  if stage in o.stages_ms and (stage != "selection" or o.config.method != "vanilla")]
        if not chosen:
            continue
        rows = [data[i] for i in chosen]
        works = [work_of[i].get(stage, {}) for i in chosen]
        if stage == "selection":
            methods = sorted({o.config.method for o in rows})
            candidates = [(f"{m}.{name}", unit) for m in methods for name, unit in SELECTION_TERMS]
        else:
            candidates = list(STAGE_TERMS[stage])
        measured = np.array([o.stages_ms[stage] for o in rows]) / 1e3
        # Relative error, with a floor of 1 % of the TTFT: a stage of a few microseconds (or none left
        # over for "other") must not weigh as much as the prefill.
        weights = 1 / np.maximum(measured, 0.01 * np.array([o.ttft_ms for o in rows]) / 1e3)
        given = dict((fixed or {}).get(stage, {}))
        known = np.array([sum(t.value * w.get(name, 0.0) for name, t in given.items()) for w in works])
        candidates = [(name, unit) for name, unit in candidates if name not in given]
        fit = _fit_stage(stage, candidates, works, measured - known, weights, len({o.key for o in rows}), np,
                         offset=known)
        stages[stage] = dataclasses.replace(fit, terms=fit.terms + tuple(given.values()))
    return LatencyModel(group_device, group_dtype, group_family, stages,
                        tuple(sorted({o.config.spec.name for o in data})),
                        tuple(sorted({o.config.method for o in data} - {"vanilla"})))


def _fit_stage(stage: str, candidates: list[tuple[str, str]], works: list[Mapping[str, float]],
               measured: Any, weights: Any, configurations: int, np: Any, offset: Any = 0.0) -> StageFit:
    """Bounded least squares of `measured` (seconds, after any fixed terms' `offset` is taken off) on the
    candidate terms, in relative error (`weights`); the reported RMS error is of the whole stage."""
    from scipy.optimize import lsq_linear

    columns, kept, unidentified = [], [], []
    for name, unit in candidates:
        column = np.array([w.get(name, 0.0) for w in works], dtype=float) * weights
        if not np.any(column):
            continue  # a term this stage's rows never exercise (another family's, say)
        trial = np.column_stack(columns + [column])
        normed = trial / np.linalg.norm(trial, axis=0)
        singular = np.linalg.svd(normed, compute_uv=False)
        if singular[-1] / singular[0] < _COLLINEAR or trial.shape[1] > max(configurations - 1, 1):
            unidentified.append(name)
            continue
        columns.append(column)
        kept.append((name, unit))
    if not columns:
        residual = -measured * weights  # nothing fitted: the fixed terms alone, `measured` being what they leave
        return StageFit(stage, (), tuple(unidentified), len(works), configurations,
                        float(np.sqrt(np.mean(residual ** 2))))
    design = np.column_stack(columns)
    scale = np.abs(design).max(axis=0)
    target = measured * weights
    result = lsq_linear(design / scale, target, bounds=(0, np.inf), method="bvls")
    coefficients = result.x / scale
    residual = design @ coefficients - target
    dof = len(target) - len(kept)
    stderr: list[float | None] = [None] * len(kept)
    if dof > 0:
        sigma2 = float(residual @ residual) / dof
        try:
            covariance = sigma2 * np.linalg.inv(design.T @ design)
            stderr = [float(math.sqrt(max(covariance[i, i], 0.0))) for i in range(len(kept))]
        except np.linalg.LinAlgError:
            pass
    terms = tuple(Term(name, unit, float(value), error) for (name, unit), value, error in zip(kept, coefficients, stderr))
    return StageFit(stage, terms, tuple(unidentified), len(works), configurations,
                    float(np.sqrt(np.mean(residual ** 2))))


def derived_quantities(model: LatencyModel, spec: ModelSpec, dtype: str) -> dict[str, float]:
    """Physical readings of the fitted terms: achieved GEMM and attention TFLOP/s of the decoder layers,
    and the GEMM rows at which the fixed per-layer time equals the FLOP time (Hockney's n½, with the
    fixed overheads in it: an upper bound)."""
    fit = model.stages.get("llm_prefill")
    if fit is None:
        return {}
    values = {term.name: term.value for term in fit.terms}
    derived: dict[str, float] = {}
    if values.get("gemm_flops"):
        derived["gemm_tflops"] = 1e-12 / values["gemm_flops"]
        per_row = 2 * layer_parameters(spec)  # GEMM FLOPs per token per layer (biases aside)
        fixed = values.get("layers", 0.0) + values.get("weight_bytes", 0.0) * layer_parameters(spec) * DTYPE_BYTES[dtype]
        derived["gemm_half_rows"] = fixed / (values["gemm_flops"] * per_row)
    if values.get("attention_flops"):
        derived["attention_tflops"] = 1e-12 / values["attention_flops"]
    return derived


@dataclass(frozen=True)
class StagePrediction:
    """Predicted milliseconds of one configuration.

    Attributes:
        stages_ms: TTFT's stages ("other" included) — each a fitted sum, 0 where the store had no such stage.
        ttft_ms: their sum.
        llm_prefill_ms: the decoder layers' share.
        decode_ms_per_token: one decode step, or None when no profile timed decoding.
    """

    stages_ms: Mapping[str, float]
    ttft_ms: float
    llm_prefill_ms: float
    decode_ms_per_token: float | None


def predict_stages(model: LatencyModel, config: Configuration) -> StagePrediction:
    """What `model` predicts for `config`."""
    stages = model.stage_ms(config)
    prefill = {stage: stages.get(stage, 0.0) for stage in PREFILL_STAGES}
    return StagePrediction(prefill, sum(prefill.values()), prefill["llm_prefill"], stages.get(DECODE))


def vanilla_configuration(config: Configuration) -> Configuration:
    """The same model, frames and text with every visual token in every layer."""
    schedule = Schedule.constant(config.spec.num_layers, config.schedule.initial_visual_tokens,
                                 config.schedule.text_tokens)
    return dataclasses.replace(config, schedule=schedule, method="vanilla")


CALIBRATION_KIND = "vidcost-calibration"
CALIBRATION_VERSION = 1


def coverage_of(observations: Sequence[Observation]) -> dict[str, Any]:
    """The models, frame range and methods a fit saw (what `Calibration.coverage` records)."""
    frames = [o.config.spec.frames for o in observations]
    return {"models": sorted({o.config.spec.name for o in observations}),
            "frames": [min(frames), max(frames)] if frames else [],
            "methods": sorted({o.config.method for o in observations})}


REGIMES = {"inside": "inside the calibration's range (leave-one-configuration-out)",
           "other_model": "a model it was not fitted on (leave-one-model-out)",
           "other_frames": "a frame count outside the range it was fitted on (leave-one-frame-count-out)"}


def regime_of(coverage: Mapping[str, Any], spec: ModelSpec) -> str:
    """Where a prediction for `spec` stands against what a calibration was fitted on: "inside", or
    extrapolating to "other_model" (checked first) or "other_frames" (`REGIMES`)."""
    if coverage.get("models") and spec.name not in coverage["models"]:
        return "other_model"
    frames = coverage.get("frames") or []
    if len(frames) == 2 and not frames[0] <= spec.frames <= frames[1]:
        return "other_frames"
    return "inside"


@dataclass(frozen=True)
class Calibration:
    """A fitted `LatencyModel` with the error it showed on data it was not fitted on.

    Attributes:
        model: the fitted stage models.
        held_out: quantity → {"median", "max", "count"} of |predicted / measured − 1| under
            leave-one-configuration-out (`vidcost.validation`); the error bands of `vidcost predict`.
        records / configurations: how much the fit saw.
        source: the store it was fitted from.
        coverage: what it was fitted on — {"models": [...], "frames": [lowest, highest], "methods": [...]}
            (`coverage_of`); empty for a calibration written before vidcost recorded it.
        held_out_outside: regime ("other_model", "other_frames") → the same summary under
            leave-one-model-out / leave-one-frame-count-out: the bands of predictions outside the range.
            A regime is missing when the store could not measure it (one model, one frame count).
    """

    model: LatencyModel
    held_out: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    records: int = 0
    configurations: int = 0
    source: str = ""
    coverage: Mapping[str, Any] = field(default_factory=dict)
    held_out_outside: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)

    def errors_for(self, regime: str) -> dict[str, float]:
        """quantity → the held-out max error measured in `regime` (empty: none measured there)."""
        summary = self.held_out if regime == "inside" else self.held_out_outside.get(regime, {})
        return {key: float(values["max"]) for key, values in summary.items() if "max" in values}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CALIBRATION_KIND, "version": CALIBRATION_VERSION, "latency_model": self.model.to_dict(),
                "held_out": {k: dict(v) for k, v in self.held_out.items()}, "records": self.records,
                "configurations": self.configurations, "source": self.source, "coverage": dict(self.coverage),
                "held_out_outside": {regime: {k: dict(v) for k, v in summary.items()}
                                     for regime, summary in self.held_out_outside.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "calibration") -> "Calibration":
        from vidcost.errors import DataFormatError

        if data.get("kind") != CALIBRATION_KIND:
            raise DataFormatError(f"{where} is not a vidcost calibration (kind {data.get('kind')!r}); "
                                  "write one with `vidcost fit --store STORE --out FILE`")
        if data.get("version") != CALIBRATION_VERSION:
            raise DataFormatError(f"{where} has calibration version {data.get('version')!r}; this vidcost reads "
                                  f"version {CALIBRATION_VERSION}: fit it again with `vidcost fit`")
        try:
            model = LatencyModel.from_dict(data["latency_model"])
        except (KeyError, TypeError) as err:
            raise DataFormatError(f"{where}: its latency model is incomplete ({err}); fit it again") from err
        coverage = data.get("coverage") if isinstance(data.get("coverage"), Mapping) else {}
        outside = data.get("held_out_outside") if isinstance(data.get("held_out_outside"), Mapping) else {}
        return cls(model, data.get("held_out") or {}, int(data.get("records", 0)),
                   int(data.get("configurations", 0)), str(data.get("source", "")), coverage,
                   {regime: summary for regime, summary in outside.items() if regime in REGIMES})

    def save(self, path: str) -> None:
        """Write the JSON atomically (`vidcost.store.write_json_atomic`)."""
        from vidcost.store import write_json_atomic

        write_json_atomic(path, self.to_dict())


def load_calibration(path: str) -> Calibration:
    """Read a calibration JSON written by `vidcost fit`.

    Raises:
        ConfigError: no such file.
        DataFormatError: not a calibration, or of another version.
    """
    from pathlib import Path

    from vidcost.errors import ConfigError
    from vidcost.store import read_json_object

    if not Path(path).is_file():
        raise ConfigError(f"calibration '{path}' does not exist; write one with `vidcost fit --store STORE --out "
                          f"{path}`, or predict from a device's numbers with --device-spec NAME")
    where = f"calibration '{path}'"
    return Calibration.from_dict(read_json_object(path, where), where=where)
