"""PruneVid: temporal segments, static-token merging, DPC-kNN clustering, attention stage, budget solve."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import keep_count
from vidcost.methods.prunevid import _static_positions
from vidcost.spec import load_spec

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def scenes_video(scenes: int = 3, frames_per_scene: int = 4, per_frame: int = 16, dim: int = 32,
                 noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    grids = torch.randn(scenes, 1, per_frame, dim, generator=generator)
    video = grids.expand(-1, frames_per_scene, -1, -1) + noise * torch.randn(
        scenes, frames_per_scene, per_frame, dim, generator=generator)
    return video.reshape(scenes * frames_per_scene, per_frame, dim)


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


def test_three_scenes_give_three_segments():
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


@st.composite
def videos(draw):
    frames, per_frame, dim = draw(st.integers(1, 8)), draw(st.integers(1, 12)), draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**16))
    budget = draw(st.floats(0.01, 1.0))
    kind = draw(st.sampled_from(["random", "static", "scenes"]))
    generator = torch.Generator().manual_seed(seed)
    if kind == "random":
        features = torch.randn(frames, per_frame, dim, generator=generator)
    elif kind == "static":
        features = torch.randn(1, per_frame, dim, generator=generator).expand(frames, -1, -1).contiguous()
    else:
        features = scenes_video(2, frames, per_frame, dim, 0.05, seed)
    return features, budget, seed


@SETTINGS
@given(videos())
def test_properties(case):
    features, budget, seed = case
    method = get_method("prunevid")
    frames, per_frame, dim = features.shape
    before = features.clone()
    result = method.select_visual(features, budget, seed=seed)
    plan = method.plan(load_spec("tiny", frames=frames, tokens_per_frame=per_frame), budget)
    count = plan.visual_tokens[0]
    assert count >= keep_count(frames * per_frame, budget)
    assert result.positions.shape == (count,) and result.tokens.shape == (count, dim)
    assert bool((result.positions[1:] > result.positions[:-1]).all())
    assert 0 <= int(result.positions.min()) and int(result.positions.max()) < frames * per_frame
    assert torch.equal(features, before)
    assert sum(last - first + 1 for first, last in result.segments) == frames
    again = method.select_visual(features, budget, seed=seed)
    assert torch.equal(again.positions, result.positions) and torch.equal(again.tokens, result.tokens)
    full = method.select_visual(features, 1.0)
    assert torch.equal(full.tokens, features.reshape(-1, dim))


def test_plan_does_not_import_torch():
    code = ("import sys; from vidcost.methods import get_method; from vidcost.spec import load_spec; "
            "get_method('prunevid').plan(load_spec('llava-onevision-7b'), 0.25); "
            "assert 'torch' not in sys.modules, 'plan imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(1, 6), st.sampled_from([4, 9, 16]), st.floats(0.02, 1.0), st.integers(0, 2**16))
def test_in_llm_stages_follow_the_plan(frames, per_frame, budget, seed):
    method = get_method("prunevid")
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(frames, per_frame, 8, generator=generator)
    plan = method.plan(load_spec("tiny", frames=frames, tokens_per_frame=per_frame), budget)
    result = method.select_visual(features, budget)
    hidden, positions = result.tokens, result.positions
    rows = 1 if method.attention_need == "last" else 3
    for layer in range(1, plan.num_layers):
        keep = plan.visual_tokens[layer]
        if keep == hidden.shape[0]:
            continue
        attention = torch.rand(rows, 2, hidden.shape[0], generator=generator)
        context = LayerContext(layer=layer, hidden=hidden, positions=positions, attention=attention,
                               num_frames=frames, tokens_per_frame=per_frame)
        reduction = method.reduce_in_llm(context, keep)
        assert reduction.keep.shape == (keep,) and reduction.keep.dtype == torch.long
        assert bool((reduction.keep[1:] > reduction.keep[:-1]).all())
        assert 0 <= int(reduction.keep.min()) and int(reduction.keep.max()) < hidden.shape[0]
        again = method.reduce_in_llm(context, keep)
        assert torch.equal(again.keep, reduction.keep)
        hidden, positions = hidden[reduction.keep], positions[reduction.keep]
    assert hidden.shape[0] == plan.visual_tokens[-1]
