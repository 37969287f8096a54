"""Param: one declared parameter of a pruning method — its default, its valid range, what it means.

A method lists its parameters once (`Method.parameters`); the same declaration gives its defaults,
validates every value a user passes (`--param NAME=VALUE`), and is what `vidcost methods` prints. A
range that depends on the model (a layer index below L) is declared with its static part and checked
again where the model is known.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

from vidcost.errors import ConfigError

ParamKind = Literal["float", "int", "bool", "layers", "any"]


@dataclass(frozen=True)
class Param:
    """A method parameter.

    Attributes:
        name: the key of `--param NAME=VALUE`.
        default: the value used when none is given (None: decided by the method, e.g. from the budget).
        kind: "float" (a real number in the range), "int" (a whole number in the range), "bool" (true or
            false; `--param NAME=true` arrives as a bool), "layers" (a
            non-empty ascending list of layer numbers, from a sequence or a "4,12,20" string), "any"
            (not checked: a plug-in method's parameter declared only through `defaults`).
        low, high: the inclusive bounds (None: unbounded on that side).
        low_open, high_open: the bound itself is excluded.
        doc: one line for `vidcost methods`.
    """

    name: str
    default: Any
    kind: ParamKind = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    doc: str = ""

    @property
    def range_text(self) -> str:
        """The valid values as an interval, e.g. "[0.0, 1.0)" or "whole number in [1, 10000]"."""
        if self.kind == "any":
            return "any"
        if self.kind == "bool":
            return "true or false"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        bracket = ("(" if self.low_open or self.low is None else "[") + f"{low}, {high}" + (
            ")" if self.high_open or self.high is None else "]")
        if self.kind == "int":
            return f"whole number in {bracket}"
        if self.kind == "layers":
            return f"ascending layer numbers in {bracket}"
        return bracket

    def check(self, method: str, value: Any) -> Any:
        """The validated value (a layer list becomes a tuple of ints); None passes when the default is None.

        Raises:
            ConfigError: naming the method, the parameter, the value and the valid range.
        """
        if value is None and self.default is None:
            return None
        if self.kind == "any":
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{method} parameter {self.name}={value!r} must be true or false")
            return value
        if self.kind == "layers":
            return tuple(self._check_number(method, layer, whole=True) for layer in _layer_list(method, self.name, value))
        return self._check_number(method, value, whole=self.kind == "int")

    def _check_number(self, method: str, value: Any, *, whole: bool) -> Any:
        if (isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value)
                or (whole and not float(value).is_integer())):
            # `--param beta=abc` arrives as a string, `=true` as a bool, `=2.5` for a layer would truncate
            kind = "a whole number" if whole else "a number"
            raise ConfigError(f"{method} parameter {self.name}={value!r} must be {kind} in {self._bounds()}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise ConfigError(f"{method} parameter {self.name}={value!r} is outside {self._bounds()}")
        return int(value) if whole else value

    def _bounds(self) -> str:
        return self.range_text.replace("whole number in ", "").replace("ascending layer numbers in ", "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "default": self.default, "kind": self.kind, "range": self.range_text,
                "doc": self.doc}


def _layer_list(method: str, name: str, value: Any) -> list[Any]:
    """A non-empty strictly ascending list from an int, a sequence or a "4,12,20" / "4 12 20" string."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value]
    elif isinstance(value, str):
        parts = [part for part in value.replace(",", " ").split() if part]
        try:
            value = [int(part) for part in parts]
        except ValueError:
            raise ConfigError(f"{method} parameter {name}={value!r} must be layer numbers, e.g. 8,16,24") from None
    try:
        layers = list(value)
    except TypeError:
        raise ConfigError(f"{method} parameter {name}={value!r} must be layer numbers, e.g. 8,16,24") from None
    if not layers or any(b <= a for a, b in zip(layers, layers[1:]) if _is_number(a) and _is_number(b)):
        raise ConfigError(f"{method} parameter {name}={value!r} must be non-empty and strictly ascending")
    return layers


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def params_from_defaults(defaults: dict[str, Any]) -> tuple[Param, ...]:
    """Unchecked declarations for a method that gives only a `defaults` dict (a plug-in's shortcut)."""
    return tuple(Param(name, value, kind="any") for name, value in defaults.items())
