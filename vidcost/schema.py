"""Record schema: the fields of each stored kind that vidcost's readers use, and the types they must have.

Stores are written by vidcost, by other tools and by hand, so `vidcost.store.iter_records` checks every
record here once, as it reads it: a record whose field has the wrong type or range (a budget that is a word,
a model that is a list) is reported — file, line, field, value — and skipped, so every reader (report, pareto,
export, fit, eval) gets records it can use. Only the fields readers index are checked; anything else a
record holds is kept as it is. A record of a kind vidcost does not know passes unchecked (another tool's).
Pure Python.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

Check = Callable[[Any], bool]


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_or_nan(value: Any) -> bool:
    """A number; NaN is allowed (the store writes NaN for a timing that could not be taken)."""
    return _number(value) and (math.isfinite(value) or math.isnan(value))


def _budget(value: Any) -> bool:
    return _number(value) and 0.0 < value <= 1.0


def _whole(low: int) -> Check:
    return lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= low


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _model(value: Any) -> bool:
    """A name, or (profile records) the spec as an object with its name."""
    return _text(value) or (isinstance(value, Mapping) and _text(value.get("name")))


def _object_of_numbers(value: Any) -> bool:
    return isinstance(value, Mapping) and all(_optional(_finite_or_nan)(v) for v in value.values())


# kind → field → (check, what it must be). A field missing from a record is the readers' business (each
# reads optional fields with .get); a field present must have the type they assume.
SCHEMAS: dict[str, dict[str, tuple[Check, str]]] = {
    "profile": {
        "model": (_model, "a model name or a spec object with a name"),
        "method": (_text, "a method name"),
        "budget": (_budget, "a kept fraction in (0, 1]"),
        "frames": (_optional(_whole(1)), "a whole number ≥ 1"),
        "status": (_text, "'ok' or 'failed'"),
        "device": (_optional(_text), "a device name"),
        "dtype": (_optional(_text), "a dtype name"),
        "run_id": (_optional(_text), "a run id"),
        "ttft_ms": (_optional(_finite_or_nan), "a number of milliseconds"),
        "llm_prefill_ms": (_optional(_finite_or_nan), "a number of milliseconds"),
        "stages_ms": (_optional(_object_of_numbers), "an object of stage → milliseconds"),
    },
    "accuracy": {
        "model": (_text, "a model name"),
        "method": (_text, "a method name"),
        "budget": (_budget, "a kept fraction in (0, 1]"),
        "frames": (_optional(_whole(1)), "a whole number ≥ 1"),
        "benchmark": (_text, "a benchmark name"),
        "metric": (_optional(_text), "a metric name"),
        "score": (_finite_or_nan, "a score"),
    },
    "request": {
        "task": (_text, "an lmms-eval task name"),
        "doc_id": (_whole(0), "a document index ≥ 0"),
        "model": (_text, "a model name"),
        "frames": (_whole(1), "a whole number ≥ 1"),
        "method": (_text, "a method name"),
        "budget": (_budget, "a kept fraction in (0, 1]"),
        "status": (_text, "'ok' or 'failed'"),
        "device": (_optional(_text), "a device name"),
        "dtype": (_optional(_text), "a dtype name"),
        "config_hash": (_optional(_text), "a configuration hash"),
        "ttft_ms": (_optional(_finite_or_nan), "a number of milliseconds"),
        "llm_prefill_ms": (_optional(_finite_or_nan), "a number of milliseconds"),
        "decode_ms_per_token": (_optional(_finite_or_nan), "a number of milliseconds"),
        "stages_ms": (_optional(_object_of_numbers), "an object of stage → milliseconds"),
    },
}


def record_problem(record: Mapping[str, Any]) -> str | None:
    """Why a record cannot be read (the first bad field, named with its value), or None when it can."""
    kind = record.get("kind")
    if kind is not None and not isinstance(kind, str):
        return f"field 'kind' is {_shown(kind)}, not a record kind"
    for name, (check, expected) in SCHEMAS.get(kind, {}).items():
        if name in record and not check(record[name]):
            return f"{kind} record field '{name}' is {_shown(record[name])}, expected {expected}"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
