"""Pruning methods: `get_method(name)` returns one; `Method` is the interface (see `base`).

The built-in registry is one dict from name to "module:Class". Method modules import torch inside the
functions that touch tensors, so planning (`vidcost flops --method X`) never imports torch.

A user's own method plugs in three ways, all resolved here so that every command accepts them:

* `my_pkg.module:MyMethod` — import that module (and its package) and take the class;
* `path/to/file.py:MyMethod` — load that one file as a module and take the class;
* an installed package that registers `name = "my_pkg.module:MyMethod"` under the entry-point group
  `vidcost.methods` (`[project.entry-points."vidcost.methods"]` in its pyproject.toml): `name` then
  works like a built-in one and `vidcost methods` lists it.

The class must subclass `vidcost.methods.Method`. Nothing else of the user's code runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult
from vidcost.methods.common import check_budget
from vidcost.methods.params import Param

METHODS: dict[str, str] = {
    "vanilla": "vidcost.methods.baselines:Vanilla",
    "uniform": "vidcost.methods.baselines:Uniform",
    "random": "vidcost.methods.baselines:RandomSelection",
    "fastv": "vidcost.methods.fastv:FastV",
    "pdrop": "vidcost.methods.pdrop:PyramidDrop",
    "sinkwindow": "vidcost.methods.sinkwindow:SinkWindow",
    "divprune": "vidcost.methods.divprune:DivPrune",
    "dycoke": "vidcost.methods.dycoke:DyCoke",
    "framefusion": "vidcost.methods.framefusion:FrameFusion",
    "prunevid": "vidcost.methods.prunevid:PruneVid",
    "hieravid": "vidcost.methods.hieravid:HieraVid",
    "mmgvid": "vidcost.methods.mmgvid:MMGVid",
}
ENTRY_POINT_GROUP = "vidcost.methods"


def installed_methods() -> dict[str, str]:
    """Methods that installed packages register under the entry-point group `vidcost.methods`."""
    from importlib.metadata import entry_points

    return {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)
            if entry.name not in METHODS}


def method_names() -> list[str]:
    """Registered method names (built-in and installed), sorted."""
    return sorted({**METHODS, **installed_methods()})


def get_method(name: str, **params: Any) -> Method:
    """The method `name` (a registered name, `module:Class` or `file.py:Class`) with parameters set.

    Raises:
        ConfigError: unknown name (the valid names are listed), a plug-in whose file, module or class
            is missing or is not a `Method`, or an unknown parameter.
    """
    cls = method_class(name)
    method = cls(params=dict(params))
    method.resolved_params()  # reject unknown parameter names now, not mid-run
    return method


def method_class(name: str) -> type[Method]:
    """The `Method` subclass that `name` designates (see the module docstring)."""
    target = METHODS.get(name)
    if target is None and ":" not in name:
        target = installed_methods().get(name)
    if target is None and ":" not in name:
        raise ConfigError(f"Unknown pruning method '{name}'; choose one of {method_names()}, or pass your own "
                          "as module:Class or path/to/file.py:Class")
    if target is not None:  # a built-in or installed name: its module is part of an installed package
        module_name, class_name = target.split(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as err:
            raise ConfigError(f"Pruning method '{name}' is not available in this build ({err})") from err
        return _checked_class(cls, name)
    source, _, class_name = name.rpartition(":")
    if not source or not class_name:
        raise ConfigError(f"method '{name}' must be module:Class or path/to/file.py:Class")
    module = _load_file(source, name) if _looks_like_path(source) else _import_module(source, name)
    if not hasattr(module, class_name):
        raise ConfigError(f"method '{name}': {source} defines no '{class_name}'")
    return _checked_class(getattr(module, class_name), name)


def _looks_like_path(source: str) -> bool:
    return source.endswith(".py") or "/" in source or "\\" in source


def _import_module(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise ConfigError(f"method '{spec}': no module named '{module_name}' (is it installed or on "
                              "PYTHONPATH?)") from err
        raise ConfigError(f"method '{spec}': importing '{module_name}' failed: {err}") from err
    except Exception as err:  # the user's module raised while importing: one line, not a traceback
        raise ConfigError(f"method '{spec}': importing '{module_name}' failed: {type(err).__name__}: {err}") from err


def _load_file(path_text: str, spec: str) -> Any:
    """Execute one .py file as a module of its own (under a name derived from its resolved path)."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ConfigError(f"method '{spec}': no such file '{path_text}'")
    resolved = path.resolve()
    module_name = f"vidcost_plugin_{resolved.stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:8]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    loader_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(f"method '{spec}': '{path_text}' is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise ConfigError(f"method '{spec}': loading '{path_text}' failed: {type(err).__name__}: {err}") from err
    return module


def _checked_class(cls: Any, spec: str) -> type[Method]:
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ConfigError(f"method '{spec}' is {cls!r}, not a subclass of vidcost.methods.Method")
    if not cls.name:  # a plug-in without a name is known by how it was given
        cls.name = spec
    return cls


def budget_for(method: str, budget: float | None, *, default: float | None = None) -> float:
    """The budget a run of `method` (a resolved method's name) uses.

    Vanilla keeps every visual token: its budget is 1.0, and another budget given to it is ignored with a
    warning (stored as given, it would never join with vanilla's accuracy). Any other method takes
    `budget`, else `default`.

    Raises:
        ConfigError: a pruning method with neither a budget nor a default, or a budget outside (0, 1].
    """
    if method == "vanilla":
        if budget is not None and budget != 1.0:
            warnings.warn(f"vanilla keeps every visual token: budget {budget:g} is ignored (vanilla runs at 1.0)",
                          stacklevel=2)
        return 1.0
    if budget is None:
        if default is None:
            raise ConfigError(f"method '{method}' needs a budget; pass --budget B (kept fraction in (0, 1])")
        budget = default
    return check_budget(budget)


__all__ = ["ENTRY_POINT_GROUP", "LayerContext", "LayerReduction", "METHODS", "Method", "Param", "SelectionResult",
           "budget_for", "check_budget", "get_method", "installed_methods", "method_class", "method_names"]
