"""vidcost: what visual-token pruning really buys a Video LLM deployment.

The pipeline, one module per noun: `spec` (ModelSpec) → `schedule` (Schedule) → `cost` (CostEstimate)
→ `methods` (pruning methods) → `runtime` (a real transformers forward) → `profiling` (ProfileRecord)
→ `store` → `fit` / `predict` → `pareto` / `report`.

The Python API for notebooks is importable from here — `ModelSpec`, `load_spec`, `Schedule`,
`estimate_cost`, `get_method`, `profile_method`, `load_frame`, `pareto_front`, `compute_fronts`,
`recommend` (and `predict` where this build has `vidcost.predict`) — each imported on first use
(PEP 562 module `__getattr__`), so `import vidcost` stays cheap and torch is imported only by what needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from vidcost.errors import ConfigError, DataFormatError, FitError, ProfilingError, VidcostError

__version__ = "0.1.0"

# Public name → "module:attribute". One table: a name added by a later module (predict) is one line here.
_API: dict[str, str] = {
    "ModelSpec": "vidcost.spec:ModelSpec",
    "load_spec": "vidcost.spec:load_spec",
    "Schedule": "vidcost.schedule:Schedule",
    "estimate_cost": "vidcost.cost:estimate_cost",
    "estimate_memory": "vidcost.cost:estimate_memory",
    "get_method": "vidcost.methods:get_method",
    "method_names": "vidcost.methods:method_names",
    "profile_method": "vidcost.profiling:profile_method",
    "compare_records": "vidcost.profiling.record:compare_records",
    "load_frame": "vidcost.export:load_frame",
    "read_records": "vidcost.store:read_records",
    "pareto_front": "vidcost.pareto:pareto_front",
    "compute_fronts": "vidcost.pareto:compute_fronts",
    "recommend": "vidcost.pareto:recommend",
    "predict": "vidcost.predict:predict",
}

__all__ = ["ConfigError", "DataFormatError", "FitError", "ProfilingError", "VidcostError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'vidcost' has no attribute '{name}'")
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise  # a dependency missing inside the module: its own error says which
        raise AttributeError(f"vidcost.{name} is not part of this build (no module {module_name})") from err
    value = getattr(module, attribute)
    # Cached over any submodule of the same name the import just set (vidcost.predict the module → the function).
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
