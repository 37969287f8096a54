"""EvalConfig: the `vidcost` backend's `model_args`, checked before any model is built.

lmms-eval hands a model its `--model_args` as keyword arguments (`model=tiny,method=fastv,budget=0.25`,
values already turned into numbers where they look like numbers). Method parameters pass through as
`param.NAME=VALUE`; a plug-in method is named as `vidcost profile` takes it (`my_norm.py:NormPrune`).
Everything that can be checked without the model is checked here: the method and its parameters at the
budget, the frame count, the device and dtype names, the model directory, the batch size and the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidcost.errors import ConfigError

DEFAULT_MODEL = "tiny"
KNOWN_KEYS = ("model", "model_path", "method", "budget", "frames", "device", "dtype", "store", "seed",
              "batch_size", "attn_implementation")
PARAM_PREFIX = "param."


@dataclass(frozen=True)
class EvalConfig:
    """One backend configuration.

    Attributes:
        model: a preset, a config.json, or the model directory (default: `model_path`, else `tiny`).
        model_path: a local Hugging Face model directory (weights, tokenizer, processor); None runs the
            embedded model with random weights and a tokenizer and processor built offline.
        method / budget / params: the pruning method, its kept fraction and its parameters.
        frames: frames sampled uniformly from each video (default: the model spec's).
        device / dtype: where and in what precision the model runs (dtype None: the device's default).
        store: the vidcost store each request's cost record is appended to (None: not stored).
        seed: seeds the random weights of the embedded model and the methods' selections.
        batch_size: must be 1 (the runtime answers one request at a time).
        attn_implementation: "sdpa" or "eager".
    """

    model: str | None = None
    model_path: str | None = None
    method: str = "vanilla"
    budget: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    frames: int | None = None
    device: str = "cpu"
    dtype: str | None = None
    store: str | None = None
    seed: int = 0
    batch_size: int = 1
    attn_implementation: str = "sdpa"

    def __post_init__(self) -> None:
        if self.model is None:  # the spec is read from the directory's config.json, else the embedded default
            object.__setattr__(self, "model", self.model_path or DEFAULT_MODEL)

    def configuration_hash(self, tasks: list[str] | tuple[str, ...] = (), limit: int | None = None) -> str:
        """A stable hash of what decides the answers and the cost (not where they are stored)."""
        payload = {k: v for k, v in asdict(self).items() if k != "store"}
        payload.update(tasks=sorted(tasks), limit=limit)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def model_args(self) -> str:
        """The `--model_args` string lmms-eval takes for this configuration (its results record it).

        `batch_size` is left out: lmms-eval passes its own `--batch_size` to the model beside `model_args`,
        and a key in both is an error ("got multiple values for keyword argument").
        """
        values = {k: v for k, v in asdict(self).items() if k not in ("params", "batch_size") and v is not None}
        values.update({f"{PARAM_PREFIX}{k}": v for k, v in self.params.items()})
        for key, value in values.items():
            if "," in str(value) or "=" in str(value):
                raise ConfigError(f"model_args value {key}={value!r} holds ',' or '=', which lmms-eval's "
                                  "model_args cannot carry; rename the path or value")
        return ",".join(f"{k}={v}" for k, v in values.items())


def parse_model_args(kwargs: dict[str, Any]) -> EvalConfig:
    """An EvalConfig from lmms-eval's keyword arguments (unknown keys are an error naming them).

    Raises:
        ConfigError: an unknown key, a bad value, batch size > 1.
    """
    values = dict(kwargs)
    params = {k[len(PARAM_PREFIX):]: values.pop(k) for k in list(values) if k.startswith(PARAM_PREFIX)}
    unknown = sorted(set(values) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(f"unknown vidcost model_args {unknown}; use {list(KNOWN_KEYS)} or param.NAME=VALUE "
                          "for a method parameter")
    model, model_path = values.get("model"), values.get("model_path")
    config = EvalConfig(model=None if model is None else str(model),
                        model_path=None if model_path is None else str(model_path),
                        method=str(values.get("method", "vanilla")), budget=_number(values, "budget", 1.0),
                        params=params, frames=_whole(values, "frames", None, 1),
                        device=str(values.get("device", "cpu")), dtype=values.get("dtype"),
                        store=None if values.get("store") is None else str(values["store"]),
                        seed=_whole(values, "seed", 0, 0), batch_size=_whole(values, "batch_size", 1, 1),
                        attn_implementation=str(values.get("attn_implementation", "sdpa")))
    check_batch_size(config.batch_size)
    return config


def check_batch_size(batch_size: Any) -> None:
    """Raises ConfigError unless the batch size is 1: each request's cost is that of its own forward pass."""
    if batch_size != 1:
        raise ConfigError(f"batch_size {batch_size}: the vidcost backend answers one request at a time "
                          "(its cost is per request); use batch size 1")


def check_config(config: EvalConfig) -> Any:
    """Check everything that needs no model; return (spec, method) for the run.

    Raises:
        ConfigError: a missing model directory, an unknown model, method, parameter, budget the method
            cannot reach, frames < 1, a bad device or dtype, an unwritable store.
        ProfilingError: CUDA asked for without CUDA.
    """
    from vidcost.methods import budget_for, get_method
    from vidcost.runtime.model import resolve_device, resolve_dtype
    from vidcost.spec import load_spec
    from vidcost.store import check_writable

    if config.model_path is not None:
        directory = Path(config.model_path)
        if not (directory / "config.json").is_file():
            raise ConfigError(f"model_path '{config.model_path}' is not a model directory (no config.json); pass "
                              "a local Hugging Face directory, or `vidcost save-model --out DIR` to write one")
    spec = load_spec(config.model, frames=config.frames)
    method = get_method(config.method, **config.params)
    budget = budget_for(method.name, config.budget)
    method.plan(spec.method_view(), budget)  # a budget the method cannot reach fails here
    resolve_dtype(config.dtype, resolve_device(config.device))
    if config.store is not None:
        check_writable(config.store)
    return spec, method


def unsupported_request(request_type: str) -> str:
    """The one-line message for a request type the backend does not answer."""
    return (f"the vidcost backend answers generate_until video requests, not {request_type} requests; choose a "
            "generate_until task (multiple choice answered by generation, e.g. videomme)")


def _number(values: dict[str, Any], key: str, default: float) -> float:
    value = values.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"model_args {key}={value!r} is not a number") from None


def _whole(values: dict[str, Any], key: str, default: int | None, low: int) -> int | None:
    value = values.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise ConfigError(f"model_args {key}={value!r} is not a whole number")
    if int(value) < low:
        raise ConfigError(f"model_args {key}={value} must be ≥ {low}")
    return int(value)
