"""MMG-Vid: segments, marginal-gain budgets, temporal-guided DPC selection."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.errors import ConfigError
from vidcost.methods import get_method
from vidcost.methods.common import keep_count
from vidcost.spec import load_spec

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)


def scenes_video(scenes: int = 3, frames_per_scene: int = 4, per_frame: int = 16, dim: int = 32,
                 noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """[scenes·F, P, D]: every frame of a scene is the scene's token grid plus small noise."""
    generator = torch.Generator().manual_seed(seed)
    grids = torch.randn(scenes, 1, per_frame, dim, generator=generator)
    video = grids.expand(-1, frames_per_scene, -1, -1) + noise * torch.randn(
        scenes, frames_per_scene, per_frame, dim, generator=generator)
    return video.reshape(scenes * frames_per_scene, per_frame, dim)


def test_plan_is_pre_llm_only():
    method = get_method("mmgvid")
    spec = load_spec("llava-onevision-7b")
    schedule = method.plan(spec, 0.25)
    assert schedule.visual_tokens == (1568,) * 28
    assert schedule.mean_visual_fraction == pytest.approx(0.25)


def test_three_scenes_give_three_segments():
    result = get_method("mmgvid").select_visual(scenes_video(), 0.25)
    assert result.segments == ((0, 3), (4, 7), (8, 11))


def test_segment_budget_favours_the_new_content():
    # scene 0 is static, scene 1 changes every frame: marginal gains send it more tokens
    generator = torch.Generator().manual_seed(1)
    base = torch.randn(1, 16, 32, generator=generator)
    static = base.expand(4, -1, -1) + 0.01 * torch.randn(4, 16, 32, generator=generator)
    direction = torch.nn.functional.normalize(torch.randn(32, generator=generator), dim=0)
    moving = 3.0 * direction + torch.randn(4, 16, 32, generator=generator)  # new tokens every frame
    result = get_method("mmgvid", threshold=0.5).select_visual(torch.cat([static, moving]), 0.25)
    assert result.segments == ((0, 3), (4, 7))
    in_static = int((result.positions < 4 * 16).sum())
    assert in_static < result.positions.numel() - in_static


def test_static_segment_keeps_its_first_frame():
    # the first frame is unique in its segment; the copies after it add nothing
    frame = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(2))
    video = frame.expand(6, -1, -1).contiguous()
    result = get_method("mmgvid").select_visual(video, 16 / 96)
    assert result.positions.tolist() == list(range(16))


def test_redundancy_spreads_picks_over_distinct_tokens():
    # one frame, tokens in 4 tight groups of 4: with the redundancy term, 4 picks cover all groups
    generator = torch.Generator().manual_seed(3)
    groups = torch.randn(4, 1, 32, generator=generator).expand(4, 4, 32) + 0.01 * torch.randn(4, 4, 32, generator=generator)
    video = groups.reshape(1, 16, 32)
    result = get_method("mmgvid", redundancy_weight=2.0).select_visual(video, 0.25)
    assert sorted((result.positions // 4).tolist()) == [0, 1, 2, 3]


def test_kept_tokens_are_the_original_features():
    video = scenes_video(seed=4)
    result = get_method("mmgvid").select_visual(video, 0.3)
    assert torch.equal(result.tokens, video.reshape(-1, video.shape[-1])[result.positions])


def test_tiny_budget_keeps_one_token_per_merged_segment():
    video = scenes_video()
    result = get_method("mmgvid").select_visual(video, 2 / video.shape[0] / video.shape[1])
    assert result.positions.numel() == 2
    assert len(result.segments) == 2  # three scenes, two tokens: the two most similar scenes merge
    for (first, last) in result.segments:
        frames = result.positions // video.shape[1]
        assert int(((frames >= first) & (frames <= last)).sum()) == 1


def test_one_frame_video():
    video = torch.randn(1, 10, 8)
    result = get_method("mmgvid").select_visual(video, 0.5)
    assert result.positions.numel() == 5 and result.segments == ((0, 0),)


@pytest.mark.parametrize("name, value", [("threshold", 1.5), ("uniqueness_weight", -0.1), ("k", 0),
                                         ("min_segment_frames", 0), ("redundancy_weight", -1.0)])
def test_parameters_out_of_range(name, value):
    with pytest.raises(ConfigError, match=name):
        get_method("mmgvid", **{name: value}).select_visual(torch.randn(2, 4, 4), 0.5)


def test_bad_budget_and_shape():
    method = get_method("mmgvid")
    with pytest.raises(ConfigError, match="budget"):
        method.select_visual(torch.randn(2, 4, 4), 0.0)
    with pytest.raises(ConfigError, match="frames, tokens_per_frame, dim"):
        method.select_visual(torch.randn(8, 4), 0.5)


@st.composite
def videos(draw):
    frames, per_frame, dim = draw(st.integers(1, 6)), draw(st.integers(1, 12)), draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**16))
    budget = draw(st.floats(0.01, 1.0))
    generator = torch.Generator().manual_seed(seed)
    if draw(st.booleans()):
        features = torch.randn(frames, per_frame, dim, generator=generator)
    else:
        features = scenes_video(1, frames, per_frame, dim, 0.05, seed)
    return features, budget, seed


@SETTINGS
@given(videos())
def test_properties(case):
    features, budget, seed = case
    method = get_method("mmgvid")
    frames, per_frame, dim = features.shape
    before = features.clone()
    result = method.select_visual(features, budget, seed=seed)
    plan = method.plan(load_spec("tiny", frames=frames, tokens_per_frame=per_frame), budget)
    count = keep_count(frames * per_frame, budget)
    assert plan.visual_tokens[0] == count and result.positions.shape == (count,)
    assert result.tokens.shape == (count, dim)
    assert bool((result.positions[1:] > result.positions[:-1]).all())
    assert 0 <= int(result.positions.min()) and int(result.positions.max()) < frames * per_frame
    assert torch.equal(features, before)
    again = method.select_visual(features, budget, seed=seed)
    assert torch.equal(again.positions, result.positions) and again.segments == result.segments
    assert sum(last - first + 1 for first, last in result.segments) == frames
    full = method.select_visual(features, 1.0)
    assert torch.equal(full.tokens, features.reshape(-1, dim))


def test_plan_does_not_import_torch():
    code = ("import sys; from vidcost.methods import get_method; from vidcost.spec import load_spec; "
            "get_method('mmgvid').plan(load_spec('llava-onevision-7b'), 0.25); "
            "assert 'torch' not in sys.modules, 'plan imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
