"""Pareto: which (method, budget) rows are non-dominated in cost vs accuracy, and which budget to deploy.

A row is on the front when no other row costs no more *and* scores no less while being strictly better in
one of the two (lower x, higher y). Rows with identical (x, y) do not dominate each other, so ties and
duplicates stay on the front together. The recommendation picks, per method, the smallest budget whose
accuracy drop (from a monotone, linearly interpolated accuracy-vs-budget curve) is at most δ and whose
speedup is at least s: measured where profiled, else predicted on the user's device where a latency source
is given (`vidcost.predict.DeviceLatency`), else the FLOPs-ideal speedup, and says which it used.
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import lru_cache
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from vidcost.errors import ConfigError
from vidcost.spec import canonical_model

LABEL_COLUMNS = ("model", "method", "variant", "budget")
SPEEDUP_MEASURED = "measured"
SPEEDUP_FLOPS_IDEAL = "flops-ideal"
SPEEDUP_PUBLISHED = "published FLOPs ratio"


@dataclass(frozen=True)
class ParetoPoint:
    """One row on a front: its label, cost `x`, accuracy `y`, index in the input rows, and the configuration
    it stands for (`model`, `frames`, `method`, `budget`; None where the table has no such column)."""

    label: str
    x: float
    y: float
    row: int
    model: str | None = None
    frames: int | None = None
    method: str | None = None
    budget: float | None = None

    def __str__(self) -> str:
        return f"{self.label}: x={self.x:g}, y={self.y:g}"

    @classmethod
    def of_row(cls, row: Mapping[str, Any], index: int, x: float, y: float,
               label_columns: Sequence[str]) -> "ParetoPoint":
        """The point of table row `index` (frames from `frames`, or an accuracy row's `eval_frames`)."""
        frames = _number(row.get("frames", row.get("eval_frames")))
        model, method = row.get("model"), row.get("method")
        return cls(_label(row, label_columns), x, y, index, None if model is None else str(model),
                   None if frames is None else int(frames), None if method is None else str(method),
                   _number(row.get("budget")))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ParetoFront:
    """The non-dominated rows of one group, sorted by ascending cost.

    Attributes:
        x_column: cost column (lower is better), e.g. `flops_ratio`, `ttft_ms`, `peak_memory_bytes`.
        y_column: accuracy column (higher is better), e.g. `score`, `relative_pct`.
        group: the value of the group column for this front, None when ungrouped.
        points: the front, ascending x (and descending y among equal x).
        total: rows considered (with both x and y present).
        skipped: rows left out because x or y was missing.
    """

    x_column: str
    y_column: str
    group: Any
    points: tuple[ParetoPoint, ...]
    total: int
    skipped: int = 0

    def __str__(self) -> str:
        where = f"[{self.group}] " if self.group is not None else ""
        return (f"{where}front of {self.y_column} vs {self.x_column}: {len(self.points)} of {self.total} rows "
                f"non-dominated")

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x_column, "y": self.y_column, "group": self.group, "total": self.total,
                "skipped": self.skipped,
                "points": [p.to_dict() for p in self.points]}


def pareto_front(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points (lower x, higher y), sorted by ascending x then descending y.

    Point i is dominated when some j has x_j ≤ x_i and y_j ≥ y_i with at least one strict; identical points
    never dominate each other. O(n log n): sweep by x, keeping the best y seen at strictly smaller x.

    Raises:
        ConfigError: the sequences differ in length or hold NaN.
    """
    if len(xs) != len(ys):
        raise ConfigError(f"x and y have different lengths ({len(xs)} vs {len(ys)})")
    if any(math.isnan(v) for v in (*xs, *ys)):
        raise ConfigError("x or y holds NaN; drop rows with missing values before computing a front")
    order = sorted(range(len(xs)), key=lambda i: (xs[i], -ys[i]))
    front: list[int] = []
    best_y = -math.inf  # best accuracy among strictly cheaper points
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and xs[order[end]] == xs[order[start]]:
            end += 1
        top = ys[order[start]]  # equal-x group, sorted by descending y
        if top > best_y:
            front.extend(i for i in order[start:end] if ys[i] == top)
            best_y = top
        start = end
    return front


def compute_fronts(rows: Sequence[Mapping[str, Any]], *, x: str, y: str, group: str | None = None,
                   label_columns: Sequence[str] = LABEL_COLUMNS) -> list[ParetoFront]:
    """Fronts of `y` vs `x` over table rows, one per value of `group` (or one for all rows).

    Raises:
        ConfigError: a column missing from the rows (named, with the columns available), or no row with
            both values present.
    """
    columns = set().union(*(r.keys() for r in rows)) if rows else set()
    for role, name in (("--x", x), ("--y", y), ("--group", group)):
        if name is not None and name not in columns:
            raise ConfigError(f"column '{name}' (from {role}) is not in the table; columns are {sorted(columns)}")
    groups: dict[Any, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[row.get(group) if group else None].append(index)
    fronts = []
    for key in sorted(groups, key=lambda k: str(k)):
        members = [i for i in groups[key] if _number(rows[i].get(x)) is not None
                   and _number(rows[i].get(y)) is not None]
        if not members:
            continue
        xs = [_number(rows[i][x]) for i in members]
        ys = [_number(rows[i][y]) for i in members]
        points = tuple(ParetoPoint.of_row(rows[members[j]], members[j], xs[j], ys[j], label_columns)
                       for j in pareto_front(xs, ys))
        fronts.append(ParetoFront(x, y, key, points, len(members), len(groups[key]) - len(members)))
    if not fronts:
        raise ConfigError(f"no row has both '{x}' and '{y}'; check the columns or the --benchmark filter")
    return fronts


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _label(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    parts = []
    for name in columns:
        value = row.get(name)
        if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
            continue
        parts.append(f"{value:.0%}" if name == "budget" and isinstance(value, (int, float)) else str(value))
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------- recommend

@dataclass(frozen=True)
class Recommendation:
    """The smallest budget of one method that meets an accuracy-drop and a speedup target.

    Attributes:
        model: model the accuracy belongs to.
        method: pruning method.
        budget: fraction of visual tokens kept.
        accuracy_drop_pct: drop of the monotone interpolated relative score, in points of % of vanilla.
        speedup: prefill speedup over vanilla (×) at that budget.
        speedup_source: "measured", "predicted on DEVICE (calibrated|per-operator|roofline at peak)", "flops-ideal" (cost
            model, constant schedule of round(budget·T·P) tokens) or "published FLOPs ratio" (1 / the
            paper's ratio, interpolated).
        max_drop_pct: the accuracy target δ asked for.
        min_speedup: the speedup target s asked for.
        interpolated: the budget lies between evaluated budgets (its accuracy is interpolated).
    """

    model: str
    method: str
    budget: float
    accuracy_drop_pct: float
    speedup: float
    speedup_source: str
    max_drop_pct: float
    min_speedup: float
    interpolated: bool = False

    def __str__(self) -> str:
        where = ", interpolated between evaluated budgets" if self.interpolated else ""
        return (f"{self.model} {self.method}: budget {self.budget:.0%} — accuracy drop "
                f"{self.accuracy_drop_pct:.2f} pt (≤ {self.max_drop_pct:g}{where}), speedup {self.speedup:.2f}× "
                f"({self.speedup_source}; ≥ {self.min_speedup:g})")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def monotone_fit(values: Sequence[float]) -> list[float]:
    """Least-squares non-decreasing fit (pool-adjacent-violators) of values ordered by budget.

    Accuracy should not fall as the budget grows; where a table says it does, the violating neighbours
    are pooled to their mean, so the curve never claims an accuracy a larger budget did not reach.
    """
    blocks: list[list[float]] = []  # [sum, count]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted: list[float] = []
    for total, count in blocks:
        fitted.extend([total / count] * int(count))
    return fitted


def interpolate(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """Piecewise-linear interpolation on ascending `xs` (x must lie within them)."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    if xs and x == xs[0]:
        return ys[0]
    raise ConfigError(f"budget {x:g} is outside the measured range [{xs[0]:g}, {xs[-1]:g}]")


@lru_cache(maxsize=4096)
def flops_ideal_speedup(model: str, budget: float) -> float | None:
    """1 / FLOPs ratio of a constant schedule of round(budget·T·P) visual tokens (a pre-LLM method).

    Uses `vidcost.cost.flops_ratio` (paper convention) on the model's preset; None when the model is not a
    preset or the cost model is not part of this build.
    """
    try:
        from vidcost.cost import flops_ratio
        from vidcost.schedule import Schedule
        from vidcost.spec import load_spec

        spec = load_spec(model)
    except (ImportError, ConfigError):
        return None
    initial = spec.num_visual_tokens
    schedule = Schedule.constant(spec.num_layers, round(budget * initial), spec.text_tokens, initial)
    ratio = flops_ratio(spec, schedule)
    return 1.0 / ratio if ratio > 0 else None


def recommend(rows: Sequence[Mapping[str, Any]], *, max_drop_pct: float, min_speedup: float,
              step: float = 0.01,
              ideal_speedup: Callable[[str, float], float | None] = flops_ideal_speedup,
              predicted: Any = None) -> list[Recommendation]:
    """Per (model, method), the smallest budget meeting both targets; methods that cannot are left out.

    `rows` hold `model`, `method`, `budget`, `relative_pct` (score as % of vanilla; vanilla rows may be
    absent, budget 1.0 is taken as 100 %), and optionally a measured `speedup` (TTFT; used only when its
    `profile_model`, if given, is the row's model — `vidcost.join` never pairs others) and `flops_ratio`. Candidate
    budgets are the rows' budgets plus a grid of `step` between the smallest and 1.0. With `predicted` (a
    `vidcost.predict.DeviceLatency`), a budget without a measured speedup takes the speedup predicted on
    that device, before the FLOPs-ideal one.

    Raises:
        ConfigError: a negative, NaN or infinite target, or no row with a relative score.
    """
    # NaN compares false with everything: `not (x >= 0)` refuses it where `x < 0` would let it through.
    if not (math.isfinite(max_drop_pct) and max_drop_pct >= 0 and math.isfinite(min_speedup) and min_speedup > 0):
        raise ConfigError(f"targets must be a finite drop ≥ 0 and a finite speedup > 0, got {max_drop_pct} and "
                          f"{min_speedup}")
    curves = _curves(rows)
    if not curves:
        raise ConfigError("no row has a relative score (relative_pct); pass rows with vanilla baselines")
    found = []
    for (model, method), curve in sorted(curves.items()):
        pick = _smallest_budget(model, method, curve, max_drop_pct, min_speedup, step, ideal_speedup, predicted)
        if pick is not None:
            found.append(pick)
    return found


@dataclass(frozen=True)
class _Curve:
    budgets: tuple[float, ...]
    relative_pct: tuple[float, ...]  # monotone fit
    measured: dict[float, float]
    flops_ratio: dict[float, float]


def _curves(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], _Curve]:
    points: dict[tuple[str, str], dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    measured: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    ratios: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for row in rows:
        budget, relative = _number(row.get("budget")), _number(row.get("relative_pct"))
        if row.get("method") == "vanilla" or budget is None:
            continue
        key = (str(row.get("model")), str(row.get("method")))
        if relative is None:
            continue  # a cost without an accuracy: pairing it with one is the join's job, not this curve's
        points[key][budget].append(relative)
        # A speedup measured on another model (e.g. a small CPU stand-in) says nothing about this one.
        same_model = canonical_model(row.get("profile_model", row.get("model"))) == canonical_model(key[0])
        if _number(row.get("speedup")) is not None and same_model:
            measured[key][budget] = _number(row["speedup"])
        if _number(row.get("flops_ratio")) is not None:
            ratios[key][budget] = _number(row["flops_ratio"])
    curves = {}
    for key, by_budget in points.items():
        budgets = sorted(by_budget)
        values = [sum(by_budget[b]) / len(by_budget[b]) for b in budgets]
        if budgets[-1] < 1.0:  # vanilla anchors the curve at 100 % and a FLOPs ratio of 1
            budgets.append(1.0)
            values.append(100.0)
        if ratios[key]:
            ratios[key].setdefault(1.0, 1.0)
        curves[key] = _Curve(tuple(budgets), tuple(monotone_fit(values)), measured[key], ratios[key])
    return curves


def _smallest_budget(model: str, method: str, curve: _Curve, max_drop_pct: float, min_speedup: float,
                     step: float, ideal_speedup: Callable[[str, float], float | None],
                     predicted: Any = None) -> Recommendation | None:
    low = curve.budgets[0]
    grid = {round(low + k * step, 6) for k in range(int((1.0 - low) / step) + 1)}
    for budget in sorted(grid | set(curve.budgets)):
        if budget > 1.0:
            continue
        drop = 100.0 - interpolate(curve.budgets, curve.relative_pct, budget)
        if drop > max_drop_pct + 1e-9:
            continue
        speedup, source = _speedup_at(model, method, budget, curve, ideal_speedup, predicted)
        if speedup is not None and speedup >= min_speedup:
            evaluated = any(abs(budget - b) < 1e-9 for b in curve.budgets)
            return Recommendation(model, method, budget, max(drop, 0.0), speedup, source, max_drop_pct,
                                  min_speedup, interpolated=not evaluated)
    return None


def _speedup_at(model: str, method: str, budget: float, curve: _Curve,
                ideal_speedup: Callable[[str, float], float | None], predicted: Any = None) -> tuple[float | None, str]:
    for measured_budget, speedup in curve.measured.items():
        if abs(measured_budget - budget) < 1e-9:
            return speedup, SPEEDUP_MEASURED
    if predicted is not None:
        speedup = predicted.speedup(model, method, budget)
        if speedup is not None:
            return speedup, predicted.label
    ideal = ideal_speedup(model, budget)
    if ideal is not None:
        return ideal, SPEEDUP_FLOPS_IDEAL
    ratios = sorted(curve.flops_ratio.items())
    if ratios and ratios[0][0] <= budget <= ratios[-1][0]:
        ratio = interpolate([b for b, _ in ratios], [r for _, r in ratios], budget)
        return (1.0 / ratio if ratio > 0 else None), SPEEDUP_PUBLISHED
    return None, ""
