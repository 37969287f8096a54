"""MMG-Vid: segments, marginal-gain budgets, temporal-guided DPC selection."""

from __future__ import annotations


import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import get_method
from vidcost.methods.mmgvid import _token_scores, greedy_segments
from vidcost.spec import load_spec


def test_plan_is_pre_llm_only():
    method = get_method("mmgvid")
    spec = load_spec("llava-onevision-7b")
    schedule = method.plan(spec, 0.25)
    assert schedule.visual_tokens == (1568,) * 28
    assert schedule.mean_visual_fraction == pytest.approx(0.25)


def test_three_scenes_give_three_segments(scenes_video):
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


def test_kept_tokens_are_the_original_features(scenes_video):
    video = scenes_video(seed=4)
    result = get_method("mmgvid").select_visual(video, 0.3)
    assert torch.equal(result.tokens, video.reshape(-1, video.shape[-1])[result.positions])


def test_tiny_budget_keeps_one_token_per_merged_segment(scenes_video):
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


def per_segment_greedy(score, gram, quota, redundancy_weight):
    """Reference: one segment's greedy, one argmax over its T·P gains per pick."""
    frames, per_frame = score.shape
    if quota >= frames * per_frame:
        return list(range(frames * per_frame))
    redundancy, taken, picks = torch.zeros(frames, per_frame), torch.zeros(frames * per_frame, dtype=torch.bool), []
    for _ in range(quota):
        gain = (score.reshape(-1) - redundancy_weight * redundancy.reshape(-1)).masked_fill(taken, -float("inf"))
        j = int(torch.argmax(gain))
        frame, token = divmod(j, per_frame)
        redundancy[frame] = torch.maximum(redundancy[frame], gram[frame, token].clamp_min(0))
        taken[j] = True
        picks.append(j)
    return picks


@pytest.mark.parametrize("seed", range(6))
def test_segments_picking_together_equal_one_greedy_per_segment(seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(9, 7, 8, generator=generator)
    x[4:6] = x[3]  # duplicated frames: exact ties in the scores
    segments, quotas = ((0, 1), (2, 5), (6, 6), (7, 8)), [3, 11, 7, 2]  # segment 2 is kept whole
    score, gram = _token_scores(x, segments, 3, 0.5)
    expected = sorted(p + a * 7 for (a, b), q in zip(segments, quotas)
                      for p in per_segment_greedy(score[a:b + 1], gram[a:b + 1], q, 0.5))
    assert greedy_segments(score, gram, segments, quotas, 0.5).tolist() == expected
