"""Join: evaluated accuracy beside the measured cost of the same configuration — never another model's.

An accuracy row (lmms-eval, `vidcost.accuracy.accuracy_rows`) and a profile row (`vidcost.report.profile_rows`)
belong together when they agree on the model (as `vidcost.spec.canonical_model` names it: a preset and its
Hugging Face checkpoints are one model), the frames per video, the method and the budget. A row without such
a partner is kept on its own and `JoinResult.unjoined` says why, naming the nearest miss (the same
configuration measured on another model or frame count), so that a 7B accuracy is never paired with the
latency of a `tiny` CPU stand-in and the user learns what to profile or evaluate next.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from vidcost.spec import canonical_model

JOIN_KEYS = ("model", "frames", "method", "budget")


@dataclass(frozen=True)
class Unjoined:
    """A row that found no partner: which side it is from, its configuration, and why."""

    side: str  # "accuracy" or "profile"
    model: Any
    frames: Any
    method: Any
    budget: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.side} {self.model} {self.frames} frames {self.method} @ {_budget_text(self.budget)}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class JoinResult:
    """The joined table (partnered rows merged, the others kept with their own columns) and what did not join."""

    rows: tuple[dict[str, Any], ...]
    unjoined: tuple[Unjoined, ...]

    @property
    def joined(self) -> int:
        """Rows holding both an evaluated accuracy and a measured cost."""
        return sum(1 for r in self.rows if r.get("provenance") == JOINED)

    def notes(self, limit: int = 5) -> list[str]:
        """One line per unjoined row (at most `limit`, then a count), for a report or the CLI."""
        lines = [f"not joined: {u}" for u in self.unjoined[:limit]]
        if len(self.unjoined) > limit:
            lines.append(f"not joined: {len(self.unjoined) - limit} more row(s)")
        return lines


JOINED = "evaluated accuracy, measured cost"


def join_key(row: Mapping[str, Any], frames_column: str = "frames") -> tuple[Any, ...]:
    """(model, frames, method, budget) of a row, normalised for comparison."""
    frames = row.get(frames_column)
    return (canonical_model(row.get("model")), None if frames is None else int(frames), row.get("method"),
            budget_key(row.get("budget")))


def budget_key(budget: Any) -> float | None:
    """A budget rounded so that 0.25 and 0.2500000001 match."""
    return None if budget is None else round(float(budget), 6)


def join_rows(accuracy: Sequence[Mapping[str, Any]], profiles: Sequence[Mapping[str, Any]]) -> JoinResult:
    """Outer join of accuracy rows (frames in `eval_frames`) and profile rows (`frames`) on `JOIN_KEYS`.

    A configuration measured on several devices joins once per device. The joined row keeps the accuracy's
    `model` and the profile's as `profile_model`.
    """
    by_key: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
    for profile in profiles:
        by_key[join_key(profile)].append(profile)
    rows: list[dict[str, Any]] = []
    unjoined: list[Unjoined] = []
    used: set[tuple[Any, ...]] = set()
    for row in accuracy:
        key = join_key(row, "eval_frames")
        partners = by_key.get(key, []) if key[1] is not None else []
        if partners:
            used.add(key)
            rows.extend(_merge(row, partner) for partner in partners)
        else:
            rows.append(dict(row))
            unjoined.append(Unjoined("accuracy", *_shown(row, "eval_frames"), _accuracy_miss(key, by_key)))
    evaluated = [join_key(row, "eval_frames") for row in accuracy]
    for key, members in by_key.items():
        if key in used:
            continue
        for profile in members:
            rows.append(dict(profile))
            unjoined.append(Unjoined("profile", *_shown(profile, "frames"), _profile_miss(key, evaluated)))
    return JoinResult(tuple(rows), tuple(unjoined))


def attach_measured(rows: Iterable[Mapping[str, Any]], profiles: Sequence[Mapping[str, Any]]
                    ) -> list[dict[str, Any]]:
    """Published rows with the measured `speedup` of a profile of the same model, frames, method and budget."""
    measured = {join_key(p): p.get("speedup") for p in profiles if p.get("speedup") is not None}
    attached = []
    for row in rows:
        speedup = measured.get(join_key(row))
        attached.append(dict(row, speedup=speedup) if speedup is not None else dict(row))
    return attached


def _merge(accuracy: Mapping[str, Any], profile: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(profile)
    row["profile_model"] = profile.get("model")
    row.update(accuracy)
    row["provenance"] = JOINED
    return row


def _shown(row: Mapping[str, Any], frames_column: str) -> tuple[Any, ...]:
    return row.get("model"), row.get(frames_column), row.get("method"), row.get("budget")


def _accuracy_miss(key: tuple[Any, ...], by_key: Mapping[tuple[Any, ...], Any]) -> str:
    model, frames, method, budget = key
    if frames is None:
        return ("the results do not say how many frames were evaluated (no max_frames_num in model_args); "
                "pass `vidcost ingest lmms-eval --frames N`")
    other_frames = sorted({k[1] for k in by_key if (k[0], k[2], k[3]) == (model, method, budget)})
    if other_frames:
        return f"profiled at {other_frames} frames only; run `vidcost profile` with --frames {frames}"
    other_models = sorted({str(k[0]) for k in by_key if (k[1], k[2], k[3]) == (frames, method, budget)})
    if other_models:
        return (f"profiled on {other_models} only, never on this model; run `vidcost profile --model {model}`")
    return f"no profile of {method} at budget {_budget_text(budget)} on this model"


def _profile_miss(key: tuple[Any, ...], evaluated: Sequence[tuple[Any, ...]]) -> str:
    model, frames, method, budget = key
    other_models = sorted({str(k[0]) for k in evaluated if (k[1], k[2], k[3]) == (frames, method, budget)})
    if other_models:
        return f"evaluated on {other_models} only; its accuracy says nothing about this model"
    return "no evaluated accuracy for this configuration (`vidcost ingest lmms-eval`)"


def _budget_text(budget: Any) -> str:
    return "?" if budget is None else f"{float(budget):g}"
