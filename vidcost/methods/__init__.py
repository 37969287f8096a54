"""Pruning methods: `get_method(name)` returns one; `Method` is the interface (see `base`).

The registry is one dict from name to "module:Class". Method modules import torch inside the functions
that touch tensors, so planning (`vidcost flops --method X`) never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult, check_budget

METHODS: dict[str, str] = {
    "vanilla": "vidcost.methods.baselines:Vanilla",
    "uniform": "vidcost.methods.baselines:Uniform",
    "random": "vidcost.methods.baselines:RandomSelection",
    "fastv": "vidcost.methods.fastv:FastV",
    "pdrop": "vidcost.methods.pdrop:PyramidDrop",
    "streamingllm": "vidcost.methods.streamingllm:StreamingLLM",
    "divprune": "vidcost.methods.divprune:DivPrune",
    "dycoke": "vidcost.methods.dycoke:DyCoke",
    "framefusion": "vidcost.methods.framefusion:FrameFusion",
    "prunevid": "vidcost.methods.prunevid:PruneVid",
    "hieravid": "vidcost.methods.hieravid:HieraVid",
    "mmgvid": "vidcost.methods.mmgvid:MMGVid",
}


def method_names() -> list[str]:
    """Registered method names, sorted."""
    return sorted(METHODS)


def get_method(name: str, **params: Any) -> Method:
    """The method registered as `name`, with parameters overriding its defaults.

    Raises:
        ConfigError: unknown name (the valid names are listed) or unknown parameter.
    """
    target = METHODS.get(name)
    if target is None:
        raise ConfigError(f"Unknown pruning method '{name}'; choose one of {method_names()}")
    module_name, class_name = target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"Pruning method '{name}' is not available in this build ({err})") from err
    method = cls(params=dict(params))
    method.resolved_params()  # reject unknown parameter names now, not mid-run
    return method


__all__ = ["LayerContext", "LayerReduction", "METHODS", "Method", "SelectionResult", "check_budget",
           "get_method", "method_names"]
