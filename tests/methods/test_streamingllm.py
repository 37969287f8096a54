"""StreamingLLM: the attention-sink tokens and the most recent tokens are kept."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import get_method
from vidcost.spec import load_spec


def test_keeps_sinks_and_the_most_recent_tokens():
    features = torch.randn(4, 10, 8)  # 40 tokens
    result = get_method("streamingllm").select_visual(features, 0.25)  # 10 tokens
    assert result.positions.tolist() == [0, 1, 2, 3, 34, 35, 36, 37, 38, 39]
    assert torch.equal(result.tokens, features.reshape(40, 8)[result.positions])
    assert result.segments == ()


def test_budget_below_the_sinks_keeps_the_first_tokens():
    result = get_method("streamingllm", sink_tokens=8).select_visual(torch.randn(2, 10, 4), 0.2)  # 4 tokens
    assert result.positions.tolist() == [0, 1, 2, 3]


def test_no_sinks_keeps_only_the_recent_window():
    result = get_method("streamingllm", sink_tokens=0).select_visual(torch.randn(3, 4, 4), 0.25)  # 3 tokens
    assert result.positions.tolist() == [9, 10, 11]


def test_plan_is_constant_at_the_kept_count():
    spec = load_spec("llava-onevision-7b")
    schedule = get_method("streamingllm").plan(spec, 0.3)
    assert schedule.visual_tokens == (round(0.3 * 6272),) * 28
    assert schedule.mean_visual_fraction == pytest.approx(0.3, abs=1 / 6272)


@pytest.mark.parametrize("sinks", [-1, 2000])
def test_sink_tokens_out_of_range_names_the_valid_range(sinks):
    with pytest.raises(ConfigError, match=r"sink_tokens=.*\[0, 1024\]"):
        get_method("streamingllm", sink_tokens=sinks).plan(load_spec("tiny"), 0.5)


def test_non_integer_sinks_are_rejected():
    with pytest.raises(ConfigError, match=r"sink_tokens='four' must be a whole number"):
        get_method("streamingllm", sink_tokens="four").plan(load_spec("tiny"), 0.5)
