"""`vidcost predict --memory-limit`: the most frames and the largest budget whose predicted peak fits."""

from __future__ import annotations

import json

import pytest

from vidcost.cli import main
from vidcost.cost import estimate_memory
from vidcost.errors import ConfigError
from vidcost.memory_plan import memory_fit, parse_bytes
from vidcost.predict import plan_schedule
from vidcost.spec import load_spec

GIB = 2 ** 30


def peak(model: str, frames: int, method: str, budget: float) -> int:
    spec = load_spec(model, frames=frames)
    return estimate_memory(spec, plan_schedule(spec, method, budget)[0], dtype_bytes=2).total_bytes


@pytest.mark.parametrize("text, expected", [("24GiB", 24 * GIB), ("80GB", 80 * 10 ** 9), ("24G", 24 * GIB),
                                            ("1.5 gib", int(1.5 * GIB)), ("2.5e10", 25_000_000_000)])
def test_sizes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["24XB", "-3GB", "0", "lots", ""])
def test_bad_sizes_name_the_units(text):
    with pytest.raises(ConfigError, match="GiB"):
        parse_bytes(text)


@pytest.mark.parametrize("model, method, budget", [("llava-onevision-7b", "fastv", 0.25),
                                                   ("llava-onevision-7b", "dycoke", 0.5),
                                                   ("qwen2.5-vl-7b", "uniform", 0.25)])
def test_the_frames_found_are_the_last_that_fit(model, method, budget):
    spec = load_spec(model)
    limit = peak(model, 48, method, budget) + 1  # something between 48 and the next frame count fits
    fit = memory_fit(spec, limit, method=method, budget=budget, dtype_bytes=2)
    assert fit.max_frames >= 48
    assert peak(model, fit.max_frames, method, budget) <= limit < peak(model, fit.max_frames + 1, method, budget)
    assert fit.vanilla_max_frames <= fit.max_frames  # pruning never needs more memory


def test_the_budget_found_is_the_largest_that_fits_and_below_it_the_tower_decides():
    # Qwen2.5-VL at many frames: the LLM's KV cache and activations set the peak, pruning lowers it
    spec = load_spec("qwen2.5-vl-7b", frames=256)
    vanilla = peak("qwen2.5-vl-7b", 256, "vanilla", 1.0)
    fit = memory_fit(spec, vanilla - GIB // 2, method="uniform", budget=0.25, dtype_bytes=2)
    assert 0 < fit.max_budget < 1 and fit.fits
    assert peak("qwen2.5-vl-7b", 256, "uniform", fit.max_budget) <= fit.limit_bytes
    assert peak("qwen2.5-vl-7b", 256, "uniform", min(1.0, fit.max_budget + 0.01)) > fit.limit_bytes
    # LLaVA-OV at 32 frames: SigLIP's hidden states set the peak, so no budget fits under it
    ov = load_spec("llava-onevision-7b")
    tower = estimate_memory(ov, plan_schedule(ov, "vanilla", 1.0)[0], dtype_bytes=2)
    assert tower.peak_phase == "vision"
    fit = memory_fit(ov, tower.total_bytes - 1, method="uniform", budget=0.1, dtype_bytes=2)
    assert fit.max_budget is None and not fit.fits and fit.phase == "vision"


def test_the_cli_answers_without_a_latency_source(capsys):
    assert main(["predict", "--model", "llava-onevision-7b", "--method", "fastv", "--budget", "0.25",
                 "--memory-limit", "24GiB", "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)["memory_fit"]
    assert fit["fits"] and fit["phase"] == "vision" and fit["limit_bytes"] == 24 * GIB and fit["dtype"] == "bfloat16"
    assert peak("llava-onevision-7b", fit["max_frames"], "fastv", 0.25) <= 24 * GIB
