"""Accuracy records: evaluated scores of one configuration, and accuracy rows for Pareto fronts and reports.

`AccuracyResult` is one benchmark score (0–100) of one evaluated configuration, `EvaluatedRun` what one
evaluation says (its configuration and scores) and turns into the store's accuracy records, and
`accuracy_rows` turns those records into rows relative to the model's vanilla run. Reading lmms-eval's own
files into an `EvaluatedRun` is `vidcost.lmms_eval` (every lmms-eval format in one place); the bootstrap
interval of a mean over samples is `bootstrap_interval`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vidcost.errors import ConfigError
from vidcost.published import AVERAGE_BENCHMARK  # here: the mean over the benchmarks of the model's vanilla run

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AccuracyResult:
    """One benchmark score of one evaluated configuration.

    Attributes:
        benchmark: lmms-eval task or group name.
        metric: metric name without its filter ("acc", "videomme_perception_score").
        filter: lmms-eval filter ("none"), None in the older key style.
        score: score on a 0–100 scale.
        stderr: standard error on the same scale, None when "N/A" or absent.
        rescaled: the file gave this metric on a 0–1 scale and it was multiplied by 100.
        n_samples: evaluated samples, None when the file does not say.
        group: the group this task belongs to, None for a top-level benchmark.
        subtasks: for a group, the tasks it was averaged from (empty when it reported its own score).
        aggregation: "reported", or how the group score was computed.
        ci_low / ci_high: bootstrap confidence interval of the mean (0–100), None without samples.
        ci_level: confidence level of that interval.
    """

    benchmark: str
    metric: str
    filter: str | None
    score: float
    stderr: float | None
    rescaled: bool = False
    n_samples: int | None = None
    higher_is_better: bool | None = None
    group: str | None = None
    subtasks: tuple[str, ...] = ()
    aggregation: str = "reported"
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None

    def __str__(self) -> str:
        err = f" ± {self.stderr:.2f}" if self.stderr is not None else ""
        ci = f" [{self.ci_low:.1f}, {self.ci_high:.1f}]" if self.ci_low is not None else ""
        return f"{self.benchmark} {self.metric}: {self.score:.2f}{err}{ci}" + (" (rescaled)" if self.rescaled else "")


@dataclass(frozen=True)
class EvaluatedRun:
    """What one results file says: the configuration evaluated and its scores."""

    source_file: str
    model: str
    method: str
    budget: float
    frames: int | None
    model_args: dict[str, str]
    results: tuple[AccuracyResult, ...]
    notes: tuple[str, ...] = field(default=())
    evaluated_at: str | None = None  # when lmms-eval ran (its `date`), ISO 8601; the latest run of a key wins

    @property
    def rescaled(self) -> list[str]:
        return sorted({f"{r.benchmark}/{r.metric}" for r in self.results if r.rescaled})

    def __str__(self) -> str:
        return (f"{Path(self.source_file).name}: {self.model} {self.method} @ {self.budget:g}, "
                f"{len(self.results)} scores")

    def to_records(self) -> list[dict[str, Any]]:
        """Accuracy records (kind "accuracy") for `vidcost.store.append_record`."""
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        common = {"kind": "accuracy", "schema_version": SCHEMA_VERSION, "created_at": created,
                  "source": "lmms-eval", "source_file": self.source_file, "model": self.model,
                  "method": self.method, "budget": self.budget, "frames": self.frames,
                  "model_args": self.model_args, "evaluated_at": self.evaluated_at}
        records = []
        for result in self.results:
            record = dict(common, record_id=uuid.uuid4().hex, benchmark=result.benchmark, metric=result.metric,
                          filter=result.filter, score=result.score, stderr=result.stderr,
                          rescaled=result.rescaled, n_samples=result.n_samples,
                          higher_is_better=result.higher_is_better, group=result.group,
                          subtasks=list(result.subtasks), aggregation=result.aggregation,
                          ci_low=result.ci_low, ci_high=result.ci_high, ci_level=result.ci_level)
            records.append(record)
        return records


def bootstrap_interval(values: Sequence[float], *, level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean (scipy.stats.bootstrap)."""
    import numpy as np
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size < 2 or np.all(data == data[0]):
        return float(data.mean()), float(data.mean())  # no spread to resample
    result = stats.bootstrap((data,), np.mean, confidence_level=level, n_resamples=resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)



def accuracy_rows(records: Iterable[Mapping[str, Any]], *, benchmark: str = AVERAGE_BENCHMARK
                  ) -> list[dict[str, Any]]:
    """Evaluated accuracy of each (model, frames, method, budget) on one benchmark (or "avg": the mean over
    the benchmarks the model's vanilla run has, for configurations evaluated on all of them), with the score
    relative to the vanilla run with the same frames (or the model's only vanilla run). Subtasks of a group
    are left out; the latest evaluation of a key wins (`evaluated_at`, the lmms-eval run's own date, then
    when it was ingested). `eval_frames` is the frame count evaluated.

    Raises:
        ConfigError: the benchmark does not occur (the ones that do are listed).
    """
    latest: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for record in sorted((r for r in records if r.get("kind") == "accuracy" and not r.get("group")),
                         key=lambda r: (str(r.get("evaluated_at") or ""), str(r.get("created_at", "")))):
        latest[(record.get("model"), record.get("frames"), record.get("method"), record.get("budget"),
                record.get("benchmark"))] = record
    scores: dict[tuple[Any, ...], dict[str, float]] = defaultdict(dict)
    for (model, frames, method, budget, bench), record in latest.items():
        scores[(model, frames, method, budget)][bench] = float(record["score"])
    if benchmark != AVERAGE_BENCHMARK and not any(benchmark in s for s in scores.values()):
        names = sorted({b for s in scores.values() for b in s} | {AVERAGE_BENCHMARK})
        raise ConfigError(f"benchmark '{benchmark}' is not in the store's accuracy records; choose one of {names}")
    vanilla = {key[:2]: s for key, s in scores.items() if key[2] == "vanilla"}
    rows = []
    for (model, frames, method, budget), by_bench in sorted(scores.items(), key=lambda kv: str(kv[0])):
        only = [s for (m, _), s in vanilla.items() if m == model]
        base = vanilla.get((model, frames), only[0] if len(only) == 1 else {})
        score, base_score = _pick(by_bench, base, benchmark)
        if score is None:
            continue
        rows.append({"model": model, "eval_frames": frames, "method": method, "budget": budget,
                     "benchmark": benchmark, "score": score,
                     "relative_pct": 100.0 * score / base_score if base_score else None, "provenance": "evaluated"})
    return rows


def _pick(scores: Mapping[str, float], base: Mapping[str, float], benchmark: str
          ) -> tuple[float | None, float | None]:
    if benchmark != AVERAGE_BENCHMARK:
        return scores.get(benchmark), base.get(benchmark)
    names = sorted(base) or sorted(scores)
    if not names or any(n not in scores for n in names):
        return None, None
    mean = sum(scores[n] for n in names) / len(names)
    return mean, (sum(base[n] for n in names) / len(names) if base else None)
