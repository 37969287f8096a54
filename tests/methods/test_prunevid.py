"""PruneVid: temporal segments, static-token merging, DPC-kNN clustering, attention stage, budget solve."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import keep_count
from vidcost.methods.prunevid import _static_positions
from vidcost.spec import load_spec


@pytest.mark.parametrize("budget", [0.1, 0.2, 0.25, 0.3, 0.5, 0.7])
def test_plan_mean_fraction_is_the_budget(budget):
    method = get_method("prunevid")
    spec = load_spec("llava-onevision-7b")
    schedule = method.plan(spec, budget)
    total = spec.num_visual_tokens
    assert abs(schedule.mean_visual_fraction - budget) <= 1.0 / total
    assert schedule.visual_tokens[0] >= keep_count(total, budget)
    runs = schedule.segments()
    assert len(runs) == 2 and runs[1][0] == 10  # the attention stage runs before layer 10
    if schedule.visual_tokens[0] < total:  # α = 0.4 of the pre-LLM tokens survive layer 10
        assert runs[1][2] / runs[0][2] == pytest.approx(0.4, abs=0.01)


def test_plan_scales_the_prune_layer_to_other_depths():
    method = get_method("prunevid")
    assert method.attention_layer(28) == 10 and method.attention_layer(6) == 2
    assert method.plan(load_spec("tiny"), 1.0).visual_tokens == (1024,) * 6


def test_three_scenes_give_three_segments(scenes_video):
    result = get_method("prunevid").select_visual(scenes_video(), 0.25)
    assert result.segments == ((0, 3), (4, 7), (8, 11))


def test_static_video_collapses_to_one_frame():
    frame = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    video = frame.expand(12, -1, -1).contiguous()
    static = _static_positions(video, ((0, 11),), tau=0.8, target=16)
    assert bool(static[0].all())  # every position is static: temporal merging leaves P tokens
    method = get_method("prunevid")
    budget = 0.05  # K0 = round(0.05·192 / 0.614) = 16 tokens: exactly one frame
    result = method.select_visual(video, budget)
    assert result.segments == ((0, 11),)
    assert result.positions.tolist() == list(range(16))
    assert torch.allclose(result.tokens, frame[0], atol=1e-6)  # averages of identical tokens


def test_static_positions_are_relaxed_to_meet_a_high_budget():
    video = torch.randn(1, 8, 16).expand(4, -1, -1).contiguous()  # fully static, 32 tokens
    static = _static_positions(video, ((0, 3),), tau=0.8, target=20)
    # each static position saves 3 tokens; at most 12 may be saved → 4 static positions
    assert int(static[0].sum()) == 4


def test_spatial_clusters_are_means_of_similar_tokens():
    # one frame, two groups of identical tokens → two clusters, each exactly its group's token
    a, b = torch.full((4, 8), 1.0), torch.full((4, 8), -1.0)
    a[:, 0], b[:, 0] = 3.0, -3.0
    video = torch.cat([a, b]).unsqueeze(0)
    budget = 2 / 8 * (10 / 28 + 0.4 * 18 / 28)  # K0 = 2
    result = get_method("prunevid").select_visual(video, budget)
    assert result.tokens.shape == (2, 8)
    assert torch.allclose(result.tokens[0], a[0]) and torch.allclose(result.tokens[1], b[0])
    assert result.positions[0] < 4 <= result.positions[1]


def test_attention_stage_keeps_the_most_attended_tokens():
    method = get_method("prunevid")
    hidden = torch.randn(10, 8)
    attention = torch.rand(3, 2, 10) * 0.1
    attention[1, 0, 7] = 0.9  # one question token, one head: max over both picks it
    attention[2, 1, 2] = 0.8
    context = LayerContext(layer=10, hidden=hidden, positions=torch.arange(10) * 3, attention=attention,
                           num_frames=5, tokens_per_frame=6)
    reduction = method.reduce_in_llm(context, 2)
    assert reduction.keep.tolist() == [2, 7] and reduction.hidden is None


def test_attention_stage_without_attention_prefers_distinct_tokens():
    hidden = torch.ones(6, 4)
    hidden[4] = torch.tensor([1.0, -1.0, 1.0, -1.0])
    context = LayerContext(layer=2, hidden=hidden, positions=torch.arange(6), attention=None,
                           num_frames=1, tokens_per_frame=6)
    assert get_method("prunevid").reduce_in_llm(context, 1).keep.tolist() == [4]


def test_one_frame_video_clusters_spatially():
    video = torch.randn(1, 20, 8)
    result = get_method("prunevid").select_visual(video, 0.3)
    assert result.segments == ((0, 0),)
    assert result.positions.numel() == keep_count(20, 0.3 / (10 / 28 + 0.4 * 18 / 28))


@pytest.mark.parametrize("name, value", [("tau", 1.2), ("alpha", 0.0), ("temporal_segment_ratio", 0.0),
                                         ("k", 0), ("prune_layer", 0)])
def test_parameters_out_of_range(name, value):
    with pytest.raises(ConfigError, match=name):
        get_method("prunevid", **{name: value}).plan(load_spec("tiny"), 0.5)


def test_a_one_layer_model_cannot_hold_the_attention_stage():
    one_layer = dataclasses.replace(load_spec("tiny"), num_layers=1)
    with pytest.raises(ConfigError, match="needs 2 layers or more; the model has 1"):
        get_method("prunevid").plan(one_layer, 0.25)
    assert get_method("prunevid").plan(one_layer, 1.0).visual_tokens == (1024,)
