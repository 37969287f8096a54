"""MethodInfo: what `vidcost methods` lists about a pruning method — stage, parameters, budget rule, paper.

Built from the class alone (its declared `parameters`, `paper`, `budget_rule`), without torch, for every
built-in and installed method and for any `module:Class` / `file.py:Class` the user names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from vidcost.methods import METHODS, installed_methods, method_class, method_names


@dataclass(frozen=True)
class MethodInfo:
    """One method as listed.

    Attributes:
        name: the name to pass to `--method`.
        stage: "before the LLM", "inside the LLM", "before and inside the LLM" or "none".
        source: "built-in", "installed (entry point)" or "plug-in".
        paper: the paper it follows.
        budget_rule: how its plan meets the budget (see `vidcost.methods.base.BudgetRule`).
        data_dependent_counts: its plan is an estimate and the data decide the counts.
        attention_need: the attention rows its in-LLM stage needs ("none", "last", "question").
        position_rule: how its surviving sequence is numbered for RoPE (`vidcost.methods.base.PositionRule`).
        sequence_order: the order of its kept tokens (`vidcost.methods.base.SequenceOrder`).
        parameters: each declared parameter as a dict (name, default, kind, range, doc).
        attention_precision: the dtype its attention is computed in (`vidcost.methods.base.AttentionPrecision`).
        official: the budget or parameters of its official configuration, where vidcost solves a ratio.
    """

    name: str
    stage: str
    source: str
    paper: str
    budget_rule: str
    data_dependent_counts: bool
    attention_need: str
    parameters: tuple[dict[str, Any], ...]
    position_rule: str = "original"
    sequence_order: str = "position"
    attention_precision: str = "float32"
    official: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stage": self.stage, "source": self.source, "paper": self.paper,
                "budget_rule": self.budget_rule, "data_dependent_counts": self.data_dependent_counts,
                "attention_need": self.attention_need, "position_rule": self.position_rule,
                "sequence_order": self.sequence_order, "attention_precision": self.attention_precision,
                "official": self.official, "parameters": list(self.parameters)}

    def __str__(self) -> str:
        return f"{self.name} ({self.stage}; {len(self.parameters)} parameters)"


def describe(name: str) -> MethodInfo:
    """The listing of one method (a registered name, `module:Class` or `file.py:Class`)."""
    cls = method_class(name)
    source = "built-in" if name in METHODS else "installed (entry point)" if name in installed_methods() else "plug-in"
    return MethodInfo(name=name, stage=cls.stage(), source=source, paper=cls.paper or "(not given)",
                      budget_rule=cls.budget_rule, data_dependent_counts=bool(cls.data_dependent_counts),
                      attention_need=cls.attention_need, parameters=tuple(p.to_dict() for p in cls.parameters),
                      position_rule=cls.position_rule, sequence_order=cls.sequence_order,
                      attention_precision=cls.attention_precision, official=cls.official)


def list_methods(extra: Sequence[str] = ()) -> list[MethodInfo]:
    """Every built-in and installed method, then each of `extra` (plug-ins named on the command line)."""
    names = method_names() + [name for name in extra if name not in method_names()]
    return [describe(name) for name in names]


def variant(name: str, spec: Any, budget: float) -> str:
    """"official" where a method that solves one of its ratios for the budget runs its official
    configuration at this budget, "vidcost's variant" where it solves the ratio, "" for every other method
    (its budget is its own) or a method vidcost cannot load."""
    try:
        cls = method_class(name)
    except Exception:  # noqa: BLE001 - a record of a method this install does not have: no label
        return ""
    if not cls.official:
        return ""
    official = cls().official_budget(spec)
    return "official" if official is not None and round(budget, 3) == official else "vidcost's variant"
