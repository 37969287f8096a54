"""Profile records synthesised from known latency coefficients (no model is run): the fit must find them."""

from __future__ import annotations

import random
from typing import Any, Callable

import pytest

from vidcost.latency import Configuration, stage_work
from vidcost.predict import plan_schedule
from vidcost.schedule import Schedule
from vidcost.spec import load_spec

# Seconds per unit of each term (physically plausible for a CPU; every one contributes to its stage).
TRUE_TERMS: dict[str, dict[str, float]] = {
    "vision": {"vision_flops": 2e-11, "frames": 2e-3},
    "projector": {"projector_flops": 2e-11, "constant": 1e-3},
    "llm_prefill": {"gemm_flops": 1.5e-11, "attention_flops": 1e-11, "layers": 5e-4, "weight_bytes": 1e-10},
    "first_token": {"lm_head_flops": 4e-10, "constant": 2e-3},
    "other": {"visual_tokens": 1e-6, "constant": 3e-4},
    "selection": {"fastv.steps": 1e-3, "fastv.tokens": 1e-6, "mmgvid.steps": 5e-3, "mmgvid.tokens_kept": 3e-8,
                  "mmgvid.tokens_squared": 2e-8},
    "decode": {"kv_bytes": 1e-10, "layers": 8e-4, "weight_bytes": 5e-11},
}
MODELS = ("tiny", "llava-onevision-0.5b")
FRAMES = (2, 4, 8)
BUDGETS = (0.1, 0.2, 0.3, 0.5, 0.7)


def stage_ms(config: Configuration, terms: dict[str, dict[str, float]] = TRUE_TERMS) -> dict[str, float]:
    work = stage_work(config)
    return {stage: 1e3 * sum(value * work.get(stage, {}).get(name, 0.0) for name, value in stage_terms.items())
            for stage, stage_terms in terms.items()}


def synthetic_record(config: Configuration, budget: float, run_id: str, *, noise: float, rng: random.Random,
                     device_name: str = "Synthetic CPU", dtype: str = "float32") -> dict[str, Any]:
    times = {k: v * (1 + rng.gauss(0, noise)) for k, v in stage_ms(config).items()}
    other, decode = times.pop("other"), times.pop("decode")
    if config.method == "vanilla":
        times.pop("selection")
    return {"kind": "profile", "schema_version": 2, "status": "ok", "run_id": run_id, "method": config.method,
            "budget": budget, "params": {}, "model": config.spec.to_dict(), "frames": config.spec.frames,
            "device": "cpu", "dtype": dtype, "executed_schedule": config.schedule.to_dict(),
            "stages_ms": times, "ttft_ms": sum(times.values()) + other, "llm_prefill_ms": times["llm_prefill"],
            "decode_tokens": config.decode_tokens, "decode_ms_per_token": decode,
            "environment": {"device_name": device_name, "threads": 1}}


def synthetic_store(*, models=MODELS, frames=FRAMES, budgets=BUDGETS, methods=("fastv", "mmgvid"),
                    noise: float = 0.002, seed: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """One cell (method record + its vanilla, one run_id) per model, frame count, method and budget."""
    rng = random.Random(seed)
    records = []
    for model in models:
        for count in frames:
            spec = load_spec(model, frames=count)
            vanilla = Configuration(spec, Schedule.constant(spec.num_layers, spec.num_visual_tokens, spec.text_tokens),
                                    "vanilla", kwargs.get("dtype", "float32"), 4)
            for method in methods:
                for budget in budgets:
                    schedule, name, _, _ = plan_schedule(spec, method, budget)
                    run_id = f"{model}-{count}-{method}-{budget}"
                    config = Configuration(spec, schedule, name, kwargs.get("dtype", "float32"), 4)
                    records.append(synthetic_record(config, budget, run_id, noise=noise, rng=rng, **kwargs))
                    records.append(synthetic_record(vanilla, 1.0, run_id, noise=noise, rng=rng, **kwargs))
    return records


@pytest.fixture(scope="session")
def synthetic() -> Callable[..., list[dict[str, Any]]]:
    """`synthetic_store`: records made from `TRUE_TERMS` (keyword arguments choose the grid and noise)."""
    return synthetic_store


@pytest.fixture(scope="session")
def true_terms() -> dict[str, dict[str, float]]:
    return TRUE_TERMS


@pytest.fixture(scope="session")
def true_terms() -> dict[str, dict[str, float]]:
    """`TRUE_TERMS`: the coefficients the synthetic records were made from."""
    return TRUE_TERMS
