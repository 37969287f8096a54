"""FrameFusion: temporal merging into the previous frame's same-position token, then attention pruning."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.framefusion import merge_into_previous
from vidcost.spec import load_spec


def test_static_video_collapses_to_its_first_frame():
    frame = torch.randn(1, 9, 8)
    features = frame.expand(6, -1, -1).contiguous()
    method = get_method("framefusion", merge_ratio=5 / 6)
    result = method.select_visual(features, 1 / 6)
    assert result.positions.tolist() == list(range(9))
    assert torch.allclose(result.tokens, frame[0])


def test_moving_tokens_survive_the_merge():
    torch.manual_seed(0)
    base = torch.randn(1, 8, 16).expand(4, -1, -1).clone()
    base[1:, 5] = torch.randn(3, 16)  # position 5 changes in frames 1..3; the rest is static
    method = get_method("framefusion", merge_ratio=0.5)  # 32 tokens → 16 = frame 0 + 3·2 + … merges
    result = method.select_visual(base, 0.5)
    kept = set(result.positions.tolist())
    assert {8 + 5, 16 + 5, 24 + 5} <= kept  # no moving token was merged away
    assert set(range(8)) <= kept  # frame 0 has nothing to merge into


def test_merged_token_is_the_mean_of_its_run():
    tokens = torch.tensor([[1.0, 0.0], [1.0, 0.2], [1.0, -0.2], [0.0, 1.0]])  # frames 0,1,2 at p=0; frame 0 p=1
    frame, spatial = torch.tensor([0, 1, 2, 0]), torch.tensor([0, 0, 0, 1])
    keep, merged = merge_into_previous(tokens, frame, spatial, None, 2)
    assert keep.tolist() == [0, 3]
    assert torch.allclose(merged[0], tokens[:3].mean(0))
    assert torch.equal(merged[1], tokens[3])


def test_in_llm_merge_collapses_static_hidden_states_before_pruning():
    frames, per_frame = 4, 6
    hidden = torch.randn(1, per_frame, 8).expand(frames, -1, -1).reshape(-1, 8)
    attention = torch.linspace(0, 1, frames * per_frame)[None, None]  # favours the last frame
    context = LayerContext(layer=2, hidden=hidden, positions=torch.arange(24), attention=attention,
                           num_frames=frames, tokens_per_frame=per_frame)
    reduction = get_method("framefusion").reduce_in_llm(context, per_frame)
    assert reduction.keep.tolist() == list(range(per_frame))  # merged into frame 0, not pruned by attention
    assert torch.allclose(reduction.hidden, hidden[:per_frame])


def test_below_threshold_the_in_llm_stage_prunes_by_attention():
    torch.manual_seed(0)
    hidden = torch.randn(12, 8)
    attention = torch.zeros(1, 2, 12)
    attention[..., [3, 7, 11]] = 1.0
    context = LayerContext(layer=2, hidden=hidden, positions=torch.arange(12), attention=attention,
                           num_frames=3, tokens_per_frame=4)
    reduction = get_method("framefusion", threshold=1.0).reduce_in_llm(context, 3)
    assert reduction.keep.tolist() == [3, 7, 11]


@pytest.mark.parametrize("budget", [0.8, 0.3, 0.25, 0.1])
def test_plan_meets_the_budget_as_mean_fraction(budget):
    schedule = get_method("framefusion").plan(load_spec("llava-onevision-7b"), budget)
    assert schedule.mean_visual_fraction == pytest.approx(budget, abs=1 / 6272)
    assert schedule.visual_tokens[0] >= round(budget * 6272)


def test_select_visual_returns_the_planned_layer_zero_count():
    spec = load_spec("tiny", frames=5, tokens_per_frame=9)
    for budget in (0.9, 0.5, 0.2):
        result = get_method("framefusion").select_visual(torch.randn(5, 9, 4), budget)
        assert result.positions.numel() == get_method("framefusion").plan(spec, budget).visual_tokens[0]


@pytest.mark.parametrize("params, pattern", [
    ({"merge_ratio": 1.0}, r"merge_ratio=1.0 is outside \[0.0, 1.0\)"),
    ({"threshold": 1.5}, r"threshold=1.5 is outside \[-1.0, 1.0\]"),
    ({"prune_layer": 6}, r"prune_layer=6 is outside \[1, 5\]"),
])
def test_parameters_out_of_range_name_the_valid_range(params, pattern):
    with pytest.raises(ConfigError, match=pattern):
        get_method("framefusion", **params).plan(load_spec("tiny"), 0.3)


def test_budget_too_small_for_the_depth_is_a_clear_error():
    with pytest.raises(ConfigError, match="raise the budget"):
        get_method("framefusion").plan(load_spec("tiny", frames=2, tokens_per_frame=4), 0.05)


def test_non_numeric_parameter_is_named():
    with pytest.raises(ConfigError, match="merge_ratio='lots' is not a number"):
        get_method("framefusion", merge_ratio="lots").plan(load_spec("tiny"), 0.3)


def test_one_frame_video_has_nothing_to_merge_and_prunes_in_the_llm():
    features = torch.randn(1, 16, 8)
    result = get_method("framefusion").select_visual(features, 0.25)
    assert result.positions.tolist() == list(range(16))
    schedule = get_method("framefusion").plan(load_spec("llava-onevision-7b", frames=1, tokens_per_frame=16), 0.25)
    assert schedule.visual_tokens[0] == 16 and schedule.visual_tokens[-1] == 3  # 28 layers: (0.25·28·16 − 32)/26
    with pytest.raises(ConfigError, match="raise the budget"):  # 6 layers cannot average 25 % after 2 full ones
        get_method("framefusion").plan(load_spec("tiny", frames=1, tokens_per_frame=16), 0.25)


def test_attention_over_other_tokens_is_a_config_error():
    context = LayerContext(layer=2, hidden=torch.randn(12, 8), positions=torch.arange(12),
                           attention=torch.rand(1, 2, 10), num_frames=3, tokens_per_frame=4)
    with pytest.raises(ConfigError, match="attention over 10 tokens for 12 hidden states"):
        get_method("framefusion").reduce_in_llm(context, 3)
