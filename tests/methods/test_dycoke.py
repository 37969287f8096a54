"""DyCoke TTM: groups of 4 frames, the anchor whole, one keep count per other frame, least similar first."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import get_method
from vidcost.methods.dycoke import per_frame_count, reference_frames
from vidcost.spec import load_spec


def test_reference_frames_follow_the_official_pairs():
    # frames 1, 2 → 0; 3 → 2; the next group starts at 4
    assert reference_frames(9) == [0, 0, 0, 2, 4, 4, 4, 6, 8]


def four_frame_group(per_frame: int = 10, dim: int = 16) -> torch.Tensor:
    """Frame 0 random; frames 1 and 2 copy it except at known positions; frame 3 copies frame 2 except one."""
    generator = torch.Generator().manual_seed(0)
    anchor = torch.randn(per_frame, dim, generator=generator)
    video = anchor.expand(4, -1, -1).clone()
    video[1, [2, 7]] = torch.randn(2, dim, generator=generator)  # frame 1 differs from 0 at 2 and 7
    video[2, [4, 5]] = torch.randn(2, dim, generator=generator)  # frame 2 differs from 0 at 4 and 5
    video[3] = video[2]
    video[3, 9] = torch.randn(dim, generator=generator)  # frame 3 differs from frame 2 at 9 only
    return video


def test_per_frame_counts_in_a_four_frame_group():
    """Anchor whole, then exactly c tokens in each other frame: the positions that differ from its reference."""
    video = four_frame_group()
    budget = (10 + 3 * 2) / 40  # c = 2
    result = get_method("dycoke").select_visual(video, budget)
    frame_of = result.positions // 10
    assert torch.bincount(frame_of, minlength=4).tolist() == [10, 2, 2, 2]
    by_frame = {f: (result.positions[frame_of == f] % 10).tolist() for f in range(4)}
    assert sorted(by_frame[1]) == [2, 7] and sorted(by_frame[2]) == [4, 5]
    # frame 3 is compared with frame 2 (not with the anchor): position 9 is its one change; positions 4 and 5,
    # which differ from the anchor but equal frame 2, are not kept; the second token is the lowest tie
    assert 9 in by_frame[3] and not {4, 5} & set(by_frame[3])
    assert get_method("dycoke").plan(load_spec("tiny", frames=4, tokens_per_frame=10), budget).visual_tokens[0] == 16


def test_the_sequence_follows_the_official_order():
    """Frame by frame; an anchor in place; another frame's kept tokens in ascending similarity to its
    reference (`dycole_ttm` appends frame_tokens[similarity.topk(c, largest=False).indices])."""
    video = torch.randn(8, 10, 16, generator=torch.Generator().manual_seed(1))
    result = get_method("dycoke").select_visual(video, (2 * 10 + 6 * 3) / 80)  # c = 3
    frames = (result.positions // 10).tolist()
    assert frames == sorted(frames)  # frame order
    reference = reference_frames(8)
    for frame in range(8):
        kept = result.positions[result.positions // 10 == frame] % 10
        if frame % 4 == 0:
            assert kept.tolist() == list(range(10))
            continue
        similarity = torch.nn.functional.cosine_similarity(video[frame], video[reference[frame]], dim=-1)
        assert kept.tolist() == similarity.topk(3, largest=False).indices.tolist()


def test_keep_count_is_solved_for_the_budget():
    # 32 frames × 196: 8 anchors; the official dycoke_k = 0.7 keeps int(0.3·196) = 58 per other frame
    official_budget = (8 * 196 + 24 * 58) / (32 * 196)
    assert per_frame_count(32, 196, official_budget) == 58
    schedule = get_method("dycoke").plan(load_spec("llava-onevision-7b"), 0.5)
    count = per_frame_count(32, 196, 0.5)
    assert schedule.visual_tokens == (8 * 196 + 24 * count,) * 28
    assert abs(schedule.visual_tokens[0] - 0.5 * 6272) <= 24 / 2  # the nearest reachable count


def test_no_frame_sampling_below_the_lowest_budget():
    """At 25 % of 8 frames DyCoke cannot keep two anchors and a token of each other frame: a named error."""
    spec = load_spec("tiny", frames=8, tokens_per_frame=16)
    lowest = (2 * 16 + 6) / (8 * 16)
    with pytest.raises(ConfigError, match=rf"budget 0.2 .*reaches budgets in \[{lowest:.4g}, 1\]"):
        get_method("dycoke").plan(spec, 0.2)
    assert get_method("dycoke").plan(spec, lowest).visual_tokens[0] == 38


def test_static_video_keeps_the_anchors_and_the_fewest_other_tokens():
    frame = torch.randn(1, 9, 8)
    result = get_method("dycoke").select_visual(frame.expand(8, -1, -1), (2 * 9 + 6) / 72)
    kept = result.positions.tolist()
    assert set(range(9)) <= set(kept) and set(range(36, 45)) <= set(kept)  # frames 0 and 4 whole
    assert len(kept) == 24


def test_one_frame_video_keeps_the_frame_or_refuses():
    result = get_method("dycoke").select_visual(torch.randn(1, 10, 4), 1.0)
    assert result.positions.numel() == 10
    with pytest.raises(ConfigError, match=r"reaches budgets in \[1, 1\]"):
        get_method("dycoke").select_visual(torch.randn(1, 10, 4), 0.5)


def test_dycoke_takes_no_parameters():
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) \['window'\]"):
        get_method("dycoke", window=4)


def _decode_context(attention, state=None, step=0):
    from vidcost.methods.base import DecodeContext

    return DecodeContext(step=step, attention=attention, state=state)


def test_the_decode_stage_keeps_the_most_attended_fifth_and_refreshes_as_the_official_code():
    """`dycoke_pruning`: int(Nv·(1 − 0.8)) rows by the head-mean attention; a step whose attention has a cosine
    ≥ 0.9 with the previous one attends to the whole cache (the official kv_cache is reset every step)."""
    method = get_method("dycoke")
    first = torch.zeros(2, 20)
    first[:, [3, 7, 11]] = torch.tensor([1.0, 0.9, 0.8])
    answer = method.reduce_in_decode(_decode_context(first))
    # int(20 · (1 − 0.8)) as the official computes it in floating point: 3 (20 · 0.19999999999999996)
    assert int(20 * (1 - 0.8)) == 3 and sorted(answer.keep.tolist()) == [3, 7, 11]
    similar = method.reduce_in_decode(_decode_context(first * 1.01, answer.state, 1))
    assert similar.keep is None  # the official code: the whole cache on a similar step
    reuse = get_method("dycoke", reuse_when_similar=True).reduce_in_decode(_decode_context(first, answer.state, 1))
    assert sorted(reuse.keep.tolist()) == [3, 7, 11]  # the paper: the previous rows
    moved = torch.zeros(2, 20)
    moved[:, [0, 1, 2]] = torch.tensor([1.0, 0.9, 0.8])
    assert sorted(method.reduce_in_decode(_decode_context(moved, answer.state, 1)).keep.tolist()) == [0, 1, 2]


def test_decoding_attends_to_the_kept_visual_rows_from_decode_layer_on():
    from vidcost.runtime import StagedRuntime, build_inputs, build_model

    loaded = build_model(load_spec("tiny", frames=4), seed=3)
    runtime, inputs = StagedRuntime(loaded), build_inputs(loaded, seed=5)
    seen = []

    def record(module, args, kwargs):
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        if kwargs["hidden_states"].shape[1] == 1:  # a decode step
            seen.append([int(layer.keys.shape[-2]) for layer in cache.layers])

    hooks = [layer.self_attn.register_forward_pre_hook(record, with_kwargs=True) for layer in runtime.lm.layers[2:4]]
    try:
        result = runtime.prefill(inputs, get_method("dycoke"), 0.5, decode_tokens=2)
    finally:
        for hook in hooks:
            hook.remove()
    visual = result.executed.kv_visual_tokens[0]
    full = result.executed.text_tokens + visual
    # per step: layer 2 (below dycoke_l = 3) sees the whole cache; layer 3 the text, int(0.2·Nv) visual rows
    # and the generated tokens (the first step always re-picks)
    layer2, layer3 = seen[0][2], seen[1][3]
    assert layer2 == full and layer3 == full - visual + int(visual * (1 - 0.8))
    assert result.kv_cache_bytes > 0


def test_decode_stage_keeping_every_row_generates_what_plain_decoding_does():
    from vidcost.runtime import StagedRuntime, build_inputs, build_model

    loaded = build_model(load_spec("tiny", frames=4), seed=3)
    runtime, inputs = StagedRuntime(loaded), build_inputs(loaded, seed=5)
    plain = runtime.prefill(inputs, get_method("dycoke", decode_layer=0), 0.5, decode_tokens=4).generated
    every = runtime.prefill(inputs, get_method("dycoke", decode_prune=0.0), 0.5, decode_tokens=4).generated
    pruned = runtime.prefill(inputs, get_method("dycoke"), 0.5, decode_tokens=4).generated
    assert every == plain and len(pruned) == len(plain) == 5


def test_the_official_budget_plans_the_official_count_and_others_are_named_vidcosts():
    from vidcost.methods.catalog import variant
    from vidcost.methods.dycoke import per_frame_count
    from vidcost.spec import load_spec

    spec = load_spec("llava-onevision-7b")  # 32 frames × 196
    official = get_method("dycoke").official_budget(spec)
    assert official == 0.472 and per_frame_count(32, 196, official) == int(0.3 * 196)  # dycoke_k = 0.7
    assert variant("dycoke", spec, official) == "official"
    assert variant("dycoke", spec, 0.6) == "vidcost's variant" and variant("fastv", spec, 0.6) == ""
