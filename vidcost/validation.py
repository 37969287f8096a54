"""HeldOut: the error of a latency model on profiles it was not fitted on.

Vidur reports < 9 % error measured in-sample; a prediction made before a budget is deployed is made on a
configuration the fit has not seen, so vidcost measures its error that way: the observations are split
into groups, and each group is predicted by a model fitted on all the others (`held_out`). Three splits:

* `leave_one_configuration_out` — every (model, frames, method, budget) in turn, the vanilla measured beside
  it left out too (what `vidcost fit` reports: the band of a prediction inside the calibration's range);
* `leave_one_model_out` / `leave_one_frame_count_out` — every model / frame count in turn: the band of a
  prediction for a model, or a frame count, the calibration has not seen (`vidcost fit` when the store
  holds two or more);
* `leave_one_budget_out` — every budget in turn, all methods and frame counts at it at once;
* `extrapolate_frames` — fitted on some frame counts, predicting others (4 and 8 → 16).

A speedup is compared as vanilla over method: measured from the two records of one run (`run_id`),
predicted from the model's two predictions.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

from vidcost.errors import FitError
from vidcost.latency import Observation, fit_latency, predict_stages, vanilla_configuration

QUANTITIES = ("speedup", "llm_prefill_speedup", "ttft_ms", "llm_prefill_ms", "decode_ms_per_token")


@dataclass(frozen=True)
class HeldOutRow:
    """One held-out observation: measured and predicted values (None where not defined)."""

    group: str
    model: str
    frames: int
    method: str
    budget: float
    measured: Mapping[str, float | None]
    predicted: Mapping[str, float | None]

    def error(self, quantity: str) -> float | None:
        """predicted / measured − 1, or None."""
        measured, predicted = self.measured.get(quantity), self.predicted.get(quantity)
        if measured in (None, 0) or predicted is None:
            return None
        return predicted / measured - 1

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "model": self.model, "frames": self.frames, "method": self.method,
                "budget": self.budget, "measured": dict(self.measured), "predicted": dict(self.predicted),
                "error": {q: self.error(q) for q in QUANTITIES}}


@dataclass(frozen=True)
class HeldOut:
    """The result of one split.

    Attributes:
        split: its name.
        rows: one per held-out observation.
        skipped: groups that could not be predicted (the rest was too little to fit), with why.
    """

    split: str
    rows: tuple[HeldOutRow, ...]
    skipped: tuple[str, ...] = ()

    def errors(self, quantity: str) -> list[float]:
        return [abs(e) for e in (row.error(quantity) for row in self.rows) if e is not None]

    def summary(self) -> dict[str, dict[str, float]]:
        """quantity → {"median", "max", "count"} of |predicted / measured − 1|."""
        out = {}
        for quantity in QUANTITIES:
            values = self.errors(quantity)
            if values:
                out[quantity] = {"median": statistics.median(values), "max": max(values), "count": len(values)}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "summary": self.summary(), "rows": [row.to_dict() for row in self.rows],
                "skipped": list(self.skipped)}

    def __str__(self) -> str:
        parts = [f"{q} median {v['median']:.1%} max {v['max']:.1%} (n={v['count']})"
                 for q, v in self.summary().items()]
        return f"HeldOut({self.split}: " + "; ".join(parts) + ")"


def measured_values(observation: Observation, vanilla: Observation | None) -> dict[str, float | None]:
    """An observation's measured values, speedups from its run's vanilla."""
    values: dict[str, float | None] = {
        "ttft_ms": observation.ttft_ms, "llm_prefill_ms": observation.llm_prefill_ms,
        "decode_ms_per_token": observation.stages_ms.get("decode"), "speedup": None, "llm_prefill_speedup": None}
    if vanilla is not None and observation.config.method != "vanilla":
        values["speedup"] = vanilla.ttft_ms / observation.ttft_ms
        values["llm_prefill_speedup"] = vanilla.llm_prefill_ms / observation.llm_prefill_ms
    return values


def predicted_values(model: Any, observation: Observation) -> dict[str, float | None]:
    """What a model (a `LatencyModel`, an `OperatorModel`) predicts for an observation's configuration, speedups
    against the vanilla one."""
    prediction = predict_stages(model, observation.config)
    values: dict[str, float | None] = {
        "ttft_ms": prediction.ttft_ms, "llm_prefill_ms": prediction.llm_prefill_ms,
        "decode_ms_per_token": prediction.decode_ms_per_token, "speedup": None, "llm_prefill_speedup": None}
    if observation.config.method != "vanilla":
        vanilla = predict_stages(model, vanilla_configuration(observation.config))
        values["speedup"] = vanilla.ttft_ms / prediction.ttft_ms if prediction.ttft_ms > 0 else None
        values["llm_prefill_speedup"] = (vanilla.llm_prefill_ms / prediction.llm_prefill_ms
                                         if prediction.llm_prefill_ms > 0 else None)
    return values


def held_out(data: Sequence[Observation], group_of: Callable[[Observation], Hashable | None], split: str,
             *, train: Callable[[Observation, Hashable], bool] | None = None,
             progress: Callable[[int, int], None] | None = None, fixed: Any = None,
             fit: Callable[[Sequence[Observation]], Any] | None = None) -> HeldOut:
    """Predict each group of observations with a model fitted on the others.

    Args:
        data: observations of one device, dtype and family.
        group_of: an observation's group, or None for one that is only ever fitted on (never held out).
        split: the split's name.
        train: which observations to fit on when predicting a group (default: every one not in it).
        progress: called with (groups done, groups) after each.
        fixed: terms set from a device measurement, passed to every refit (`fit_latency`'s `fixed`).
        fit: what fits a model to observations (anything with `stage_ms(config)`): default `fit_latency`
            with `fixed`; `vidcost.operator_fit.operator_fitter` measures the per-operator model the same way.

    Raises:
        FitError: no group could be predicted.
    """
    vanilla_of = {o.run_id: o for o in data if o.config.method == "vanilla"}
    groups = sorted({g for g in (group_of(o) for o in data) if g is not None}, key=str)
    rows, skipped = [], []
    for index, group in enumerate(groups, 1):
        held = [o for o in data if group_of(o) == group]
        fitted = [o for o in data if (train(o, group) if train else group_of(o) != group)]
        try:
            model = fit(fitted) if fit is not None else fit_latency(fitted, fixed)
        except FitError as err:
            skipped.append(f"{group}: {err}")
            continue
        for observation in held:
            name, frames, method, budget = observation.key
            rows.append(HeldOutRow(str(group), name, frames, method, budget,
                                   measured_values(observation, vanilla_of.get(observation.run_id)),
                                   predicted_values(model, observation)))
        if progress:
            progress(index, len(groups))
    if not rows:
        raise FitError(f"no group of the {split} split could be predicted: " + "; ".join(skipped))
    return HeldOut(split, tuple(rows), tuple(skipped))


def leave_one_configuration_out(data: Sequence[Observation], **kwargs: Any) -> HeldOut:
    """Each (model, frames, method, budget) predicted by a fit on every other one — without the vanilla
    of the same model and frames either, whose measurement a held-out speedup is the ratio to."""
    label = "{} {} frames {} @ {:g}".format
    cell = {label(*o.key): o.key[:2] for o in data}

    def train(observation: Observation, group: Hashable) -> bool:
        same_cell = observation.key[:2] == cell[group]
        return label(*observation.key) != group and not (same_cell and observation.config.method == "vanilla")

    return held_out(data, lambda o: label(*o.key), "leave-one-configuration-out", train=train, **kwargs)


def leave_one_model_out(data: Sequence[Observation], **kwargs: Any) -> HeldOut:
    """Each model predicted by a fit on the others: the error of a prediction for a model not fitted on.

    Raises:
        FitError: fewer than two models (nothing to hold out), or none could be predicted.
    """
    models = {o.config.spec.name for o in data}
    if len(models) < 2:
        raise FitError(f"leave-one-model-out needs profiles of two or more models, the store has {sorted(models)}")
    return held_out(data, lambda o: o.config.spec.name, "leave-one-model-out", **kwargs)


def leave_one_frame_count_out(data: Sequence[Observation], **kwargs: Any) -> HeldOut:
    """Each frame count (of every model at once) predicted by a fit on the other frame counts.

    Raises:
        FitError: fewer than two frame counts, or none could be predicted.
    """
    counts = {o.config.spec.frames for o in data}
    if len(counts) < 2:
        raise FitError(f"leave-one-frame-count-out needs two or more frame counts, the store has {sorted(counts)}")
    return held_out(data, lambda o: f"{o.config.spec.frames} frames", "leave-one-frame-count-out", **kwargs)


REGIME_SPLITS = {"other_model": leave_one_model_out, "other_frames": leave_one_frame_count_out}


def leave_one_budget_out(data: Sequence[Observation], **kwargs: Any) -> HeldOut:
    """Each budget predicted (every method and frame count at it) by a fit on the other budgets and
    vanilla; vanilla observations are fitted on, never held out."""
    return held_out(data, lambda o: None if o.config.method == "vanilla" else f"budget {o.budget:g}",
                    "leave-one-budget-out", **kwargs)


def extrapolate_frames(data: Sequence[Observation], train_frames: Iterable[int], test_frames: Iterable[int],
                       **kwargs: Any) -> HeldOut:
    """Fitted on `train_frames`, every observation at `test_frames` predicted (vanilla's TTFT included)."""
    train_set, test_set = set(train_frames), set(test_frames)
    return held_out(data, lambda o: f"{o.config.spec.frames} frames" if o.config.spec.frames in test_set else None,
                    f"fit on {sorted(train_set)} frames, predict {sorted(test_set)}",
                    train=lambda o, _group: o.config.spec.frames in train_set, **kwargs)


def summary_table(result: HeldOut, quantities: Sequence[str] = QUANTITIES) -> list[dict[str, Any]]:
    """One row per quantity of `result.summary()` (for a table)."""
    summary = result.summary()
    return [{"quantity": q, **summary[q]} for q in quantities if q in summary]

