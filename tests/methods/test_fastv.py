"""FastV: the plan (full until layer K, then the budget), the ranking by last-token attention."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import keep_count
from vidcost.spec import load_spec

SPEC = load_spec("llava-onevision-7b")


def test_plan_keeps_everything_before_layer_k():
    plan = get_method("fastv").plan(SPEC, 0.5)
    total = 32 * 196
    assert plan.visual_tokens == (total, total) + (keep_count(total, 0.5),) * 26
    later = get_method("fastv", layer=5).plan(SPEC, 0.25)
    assert later.visual_tokens[4] == total and later.visual_tokens[5] == keep_count(total, 0.25)
    assert later.mean_visual_fraction == pytest.approx((5 + 23 * 0.25) / 28, abs=1e-3)


@pytest.mark.parametrize("layer", [0, 28, -1, 2.5, "two"])
def test_layer_out_of_range(layer):
    with pytest.raises(ConfigError, match="fastv parameter layer"):
        get_method("fastv", layer=layer).plan(SPEC, 0.5)


def test_layer_from_the_cli_is_a_whole_number():
    from vidcost.cli.common import parse_params

    params = parse_params(["layer=3"])  # the CLI hands methods numbers, not strings
    schedule = get_method("fastv", **params).plan(SPEC, 0.5)
    assert schedule.visual_tokens[2] == SPEC.num_visual_tokens > schedule.visual_tokens[3]
    with pytest.raises(ConfigError, match=r"layer='3' must be a whole number"):
        get_method("fastv", layer="3").plan(SPEC, 0.5)


def _context(attention: torch.Tensor) -> LayerContext:
    n = attention.shape[-1]
    return LayerContext(layer=2, hidden=torch.randn(n, 4), positions=torch.arange(n) * 3, attention=attention,
                        num_frames=1, tokens_per_frame=n)


def test_keeps_the_most_attended_tokens_in_order():
    # [Q=1, H=2, N=6]: head means 0.15, 0.4, 0.05, 0.3, 0.05, 0.05
    attention = torch.tensor([[[0.1, 0.5, 0.0, 0.4, 0.0, 0.0], [0.2, 0.3, 0.1, 0.2, 0.1, 0.1]]])
    reduction = get_method("fastv").reduce_in_llm(_context(attention), keep=3)
    assert reduction.keep.tolist() == [0, 1, 3] and reduction.hidden is None


def test_ties_break_to_the_earlier_token():
    reduction = get_method("fastv").reduce_in_llm(_context(torch.full((1, 4, 8), 0.1)), keep=3)
    assert reduction.keep.tolist() == [0, 1, 2]


def test_needs_attention():
    assert get_method("fastv").attention_need == "last"
    context = LayerContext(layer=2, hidden=torch.randn(5, 4), positions=torch.arange(5), attention=None,
                           num_frames=1, tokens_per_frame=5)
    with pytest.raises(ConfigError, match="last-query attention"):
        get_method("fastv").reduce_in_llm(context, keep=2)


def test_bad_budget():
    with pytest.raises(ConfigError, match="outside \\(0, 1\\]"):
        get_method("fastv").plan(SPEC, 0)
