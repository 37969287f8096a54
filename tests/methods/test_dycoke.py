"""DyCoke temporal token merging: windows of frames, anchors kept, the most dissimilar tokens kept."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import get_method
from vidcost.methods.dycoke import window_bounds
from vidcost.spec import load_spec


def test_static_video_collapses_to_one_frame():
    frame = torch.randn(1, 9, 8)
    result = get_method("dycoke").select_visual(frame.expand(8, -1, -1), 1 / 8)
    assert result.positions.tolist() == list(range(9))
    assert torch.equal(result.tokens, frame[0])


def test_keeps_the_anchor_and_the_changing_tokens():
    torch.manual_seed(0)
    video = torch.randn(1, 10, 16).expand(4, -1, -1).clone()
    video[1:, [2, 7]] = torch.randn(3, 2, 16)  # two positions change after the anchor
    result = get_method("dycoke").select_visual(video, 16 / 40)  # anchor 10 + 3 frames × 2
    expected = list(range(10)) + [f * 10 + p for f in (1, 2, 3) for p in (2, 7)]
    assert result.positions.tolist() == expected


def test_every_window_keeps_its_anchor_frame():
    result = get_method("dycoke").select_visual(torch.randn(8, 5, 6), 0.5)
    kept = set(result.positions.tolist())
    assert set(range(5)) <= kept and set(range(20, 25)) <= kept  # frames 0 and 4
    assert len(kept) == 20


def test_windows_widen_when_the_anchors_exceed_the_budget():
    assert window_bounds(8, 4, 0.5) == [(0, 3), (4, 7)]
    assert window_bounds(8, 4, 0.2) == [(0, 4), (5, 7)]
    assert window_bounds(8, 4, 0.01) == [(0, 7)]


def test_one_frame_video_keeps_the_budget():
    result = get_method("dycoke").select_visual(torch.randn(1, 10, 4), 0.3)
    assert result.positions.numel() == 3


def test_plan_is_round_budget_tokens():
    schedule = get_method("dycoke").plan(load_spec("llava-onevision-7b"), 0.25)
    assert schedule.visual_tokens == (1568,) * 28


@pytest.mark.parametrize("window", [0, 5000])
def test_window_out_of_range_names_the_valid_range(window):
    with pytest.raises(ConfigError, match=r"window=.*\[1, 1024\]"):
        get_method("dycoke", window=window).plan(load_spec("tiny"), 0.5)


def test_budget_smaller_than_the_windows_is_a_clear_error():
    # 5 one-token frames at 26 %: round(1.3) = 1 token, but windows of ⌈1/0.26⌉ = 4 frames make two.
    spec = load_spec("tiny", frames=5, tokens_per_frame=1)
    with pytest.raises(ConfigError, match=r"budget 0.26 keeps 1 tokens for 2 windows.*raise the budget"):
        get_method("dycoke").plan(spec, 0.26)


def test_fractional_window_is_rejected():
    with pytest.raises(ConfigError, match=r"window=2.5 must be a whole number"):
        get_method("dycoke", window=2.5).plan(load_spec("tiny"), 0.5)
