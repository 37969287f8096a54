"""SinkWindow: the first (sink) tokens and the most recent ones, before the LLM; it is not StreamingLLM."""

from __future__ import annotations

import pytest
import torch

from vidcost.cost import estimate_cost, vanilla_schedule
from vidcost.errors import ConfigError
from vidcost.methods import get_method, method_names
from vidcost.published import read_published
from vidcost.spec import load_spec


def test_keeps_sinks_and_the_most_recent_tokens():
    features = torch.randn(4, 10, 8)  # 40 tokens
    result = get_method("sinkwindow").select_visual(features, 0.25)  # 10 tokens
    assert result.positions.tolist() == [0, 1, 2, 3, 34, 35, 36, 37, 38, 39]
    assert torch.equal(result.tokens, features.reshape(40, 8)[result.positions])
    assert result.segments == ()


def test_budget_below_the_sinks_keeps_the_first_tokens():
    result = get_method("sinkwindow", sink_tokens=8).select_visual(torch.randn(2, 10, 4), 0.2)  # 4 tokens
    assert result.positions.tolist() == [0, 1, 2, 3]


def test_no_sinks_keeps_only_the_recent_window():
    result = get_method("sinkwindow", sink_tokens=0).select_visual(torch.randn(3, 4, 4), 0.25)  # 3 tokens
    assert result.positions.tolist() == [9, 10, 11]


def test_plan_is_constant_at_the_kept_count():
    schedule = get_method("sinkwindow").plan(load_spec("llava-onevision-7b"), 0.3)
    assert schedule.visual_tokens == (round(0.3 * 6272),) * 28


@pytest.mark.parametrize("sinks", [-1, 2000])
def test_sink_tokens_out_of_range_names_the_valid_range(sinks):
    with pytest.raises(ConfigError, match=r"sink_tokens=.*\[0, 1024\]"):
        get_method("sinkwindow", sink_tokens=sinks).plan(load_spec("tiny"), 0.5)


def test_non_integer_sinks_are_rejected():
    with pytest.raises(ConfigError, match=r"sink_tokens='four' must be a whole number"):
        get_method("sinkwindow", sink_tokens="four").plan(load_spec("tiny"), 0.5)


def test_no_method_claims_the_published_streamingllm_rows():
    """The published StreamingLLM rows join no vidcost method: 'streamingllm' is not a method name."""
    assert "streamingllm" not in method_names()
    with pytest.raises(ConfigError, match="Unknown pruning method 'streamingllm'"):
        get_method("streamingllm")


@pytest.mark.parametrize("model", ["llava-video-7b", "llava-onevision-7b"])
def test_published_streamingllm_cost_is_below_what_a_full_token_prefill_can_cost(model):
    """Why there is no `streamingllm`: StreamingLLM runs every token through the projections and the MLP
    (its window only shortens attention), so its paper-convention cost is at least that linear share —
    and the published ratios are below it, so no sinks-plus-window configuration has the published cost."""
    spec = load_spec(model)
    layers = estimate_cost(spec, vanilla_schedule(spec), convention="paper").layers
    linear_share = sum(l.projection_flops + l.mlp_flops for l in layers) / sum(l.flops for l in layers)
    ratios = [row.flops_ratio for row in read_published() if row.method == "streamingllm" and row.model == model]
    assert ratios and min(ratios) < linear_share
