"""HieraVid: merge-ratio segmentation, static merging, segment budgets, relevance DPP, layer stages."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import keep_count
from vidcost.methods.hieravid import instruction_relevance, merge_static, segment_budgets, segment_dpp
from vidcost.spec import load_spec


@pytest.mark.parametrize("budget", [0.05, 0.1, 0.2, 0.3, 0.5, 0.8])
def test_plan_mean_fraction_is_the_relative_token_budget(budget):
    method = get_method("hieravid")
    spec = load_spec("llava-onevision-7b")
    schedule = method.plan(spec, budget)
    total = spec.num_visual_tokens
    assert abs(schedule.mean_visual_fraction - budget) <= 1.0 / total
    assert schedule.visual_tokens[0] >= keep_count(total, budget)
    starts = [first for first, _, _ in schedule.segments()]
    assert starts == ([0, 7, 14, 21] if budget < 0.5 else [0])  # n = 4 stages of 7 layers


def test_plan_at_30_percent_merges_half_then_shrinks():
    schedule = get_method("hieravid").plan(load_spec("llava-onevision-7b"), 0.3)
    counts = [n for _, _, n in schedule.segments()]
    assert counts[0] == 3136  # 1 − merge_ratio
    ratios = [b / a for a, b in zip(counts, counts[1:])]
    assert ratios == pytest.approx([ratios[0]] * 3, abs=0.01) and 0.5 < ratios[0] < 1.0


def test_plan_on_a_shallow_model_still_meets_the_budget():
    schedule = get_method("hieravid").plan(load_spec("tiny"), 0.25)
    assert abs(schedule.mean_visual_fraction - 0.25) <= 1 / 1024


def question(dim: int, seed: int = 9) -> torch.Tensor:
    return torch.randn(3, dim, generator=torch.Generator().manual_seed(seed))


def test_three_scenes_give_three_segments(scenes_video):
    result = get_method("hieravid").select_visual(scenes_video(per_frame=64), 0.3, query=question(32))
    assert result.segments == ((0, 3), (4, 7), (8, 11))


def test_static_video_keeps_one_token_per_position_of_its_one_segment():
    frame = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    video = frame.expand(8, -1, -1).contiguous()
    budget = 0.125 * (1 + 0.5 + 0.25 + 0.125) / 4  # stage 1 keeps 1/8 = one frame's 16 tokens
    result = get_method("hieravid").select_visual(video, budget, query=question(32))
    assert result.segments == ((0, 7),)
    spatial = result.positions % 16
    # The DPP avoids copies: every kept token is a different one of the frame's 16, except that min-max
    # relevance (Eq. 8) gives the least relevant token r = 0, so its place goes to a near-copy.
    assert len(set(spatial.tolist())) >= 15 and result.positions.numel() == 16
    assert torch.allclose(result.tokens, frame[0][spatial], atol=1e-5)


def test_one_k_for_segmentation_and_merging():
    """Eq. 2's Top-K and Eq. 3's merge use the same K = R_merge·N; at 30 % the merge alone meets layer 0."""
    video = torch.randn(8, 16, 32, generator=torch.Generator().manual_seed(2))
    method = get_method("hieravid")
    result = method.select_visual(video, 0.3, query=question(32))
    k = round(0.5 * 128)
    tokens, positions = merge_static(video, k)
    assert torch.equal(result.positions, positions) and torch.allclose(result.tokens, tokens)
    assert result.segments == method.segment(video, 0.4, k)


def test_low_budgets_are_met_by_the_dpp_not_by_merging_more():
    video = torch.randn(8, 16, 32, generator=torch.Generator().manual_seed(3))
    result = get_method("hieravid").select_visual(video, 0.05, query=question(32))
    _, merged_positions = merge_static(video, round(0.5 * 128))  # still only K merges
    assert set(result.positions.tolist()) < set(merged_positions.tolist())
    assert result.positions.numel() == keep_count(128, get_method("hieravid").stage_fractions(0.05)[0])


def test_relevance_changes_with_the_question():
    """Eq. 8 from the question's last token: two questions about different tokens keep different tokens."""
    video = torch.nn.functional.normalize(torch.randn(2, 30, 16, generator=torch.Generator().manual_seed(4)), dim=-1)
    method = get_method("hieravid")
    about_a = torch.stack([torch.randn(16), video[0, 3] * 8])  # the last question token looks like token 3
    about_b = torch.stack([torch.randn(16), video[0, 17] * 8])  # … like token 17
    kept_a = method.select_visual(video, 0.03, query=about_a).positions.tolist()
    kept_b = method.select_visual(video, 0.03, query=about_b).positions.tolist()
    assert kept_a != kept_b
    assert 3 in kept_a and 17 in kept_b


def test_merge_static_runs_cross_segment_boundaries():
    video = torch.tensor([[[1.0, 0.0]], [[1.0, 0.1]], [[0.0, 1.0]], [[0.1, 1.0]]])  # [4, 1, 2]
    tokens, positions = merge_static(video, remove=2)  # the two similar pairs: frames 1 and 3
    assert positions.tolist() == [0, 2]
    assert torch.allclose(tokens, torch.tensor([[1.0, 0.05], [0.05, 1.0]]))
    tokens, positions = merge_static(video, remove=3)  # "across the whole video": one run
    assert positions.tolist() == [0] and torch.allclose(tokens[0], video.mean(0)[0])


def test_a_token_equal_to_the_query_ranks_first():
    tokens = torch.nn.functional.normalize(torch.randn(20, 16, generator=torch.Generator().manual_seed(2)), dim=-1)
    query = tokens[13].clone()
    relevance = instruction_relevance(tokens, query)
    assert int(torch.argmax(relevance)) == 13 and relevance.min() == 0.0 and relevance.max() == 1.0


def test_pre_llm_dpp_keeps_the_query_token():
    tokens = torch.nn.functional.normalize(torch.randn(1, 40, 16, generator=torch.Generator().manual_seed(3)), dim=-1)
    query = torch.stack([torch.randn(16), tokens[0, 27]])  # the question's last token is token 27
    result = get_method("hieravid").select_visual(tokens, 0.05, query=query)
    assert 27 in result.positions.tolist()
    assert result.positions.numel() == keep_count(40, get_method("hieravid").stage_fractions(0.05)[0])


def test_segment_budgets_sum_exactly_and_follow_eq_4():
    # segments 0 and 1 point in orthogonal directions; segment 2 repeats segment 1
    generator = torch.Generator().manual_seed(4)
    direction = torch.eye(8)[[0, 1, 1]]
    seg = torch.arange(3).repeat_interleave(10)
    tokens = direction[seg] + 0.01 * torch.randn(30, 8, generator=generator)
    quotas = segment_budgets(tokens, seg, [10, 10, 10], keep=12, lam=0.0, r_var=0.2)
    assert sum(quotas) == 12 and all(q >= 1 for q in quotas)
    # λ = 0: b_m = 1 − s(g_m, ḡ_l), novelty w.r.t. earlier segments; the repeat gets the fewest tokens
    assert quotas[2] < quotas[0] and quotas[2] < quotas[1]
    assert segment_budgets(tokens, seg, [10, 10, 10], keep=12, lam=0.0, r_var=0.0) == [4, 4, 4]


def test_in_llm_stage_keeps_exactly_and_prefers_the_attended_token():
    method = get_method("hieravid")
    generator = torch.Generator().manual_seed(7)
    hidden = torch.nn.functional.normalize(torch.randn(20, 16, generator=generator), dim=-1)
    attention = torch.full((2, 2, 20), 0.01)  # [question rows, heads, tokens]
    attention[-1, :, 9] = 0.5  # the question's last token attends to token 9
    attention[0, :, 4] = 0.9  # an earlier question token does not count (Eq. 8 uses the last one)
    context = LayerContext(layer=3, hidden=hidden, positions=torch.arange(20) + 5, attention=attention,
                           num_frames=4, tokens_per_frame=8, segments=((0, 3),))
    reduction = method.reduce_in_llm(context, 1)
    assert reduction.keep.tolist() == [9]
    wider = method.reduce_in_llm(context, 7)
    assert wider.keep.numel() == 7 and bool((wider.keep[1:] > wider.keep[:-1]).all())


def test_in_llm_stages_use_the_segments_of_the_run_not_of_the_instance():
    """The runtime hands the pre-LLM segments back: each segment's block keeps its own share."""
    method = get_method("hieravid")
    hidden = torch.nn.functional.normalize(torch.randn(16, 8, generator=torch.Generator().manual_seed(8)), dim=-1)
    positions = torch.arange(16)  # 4 frames × 4 tokens
    attention = torch.ones(1, 2, 16) / 16
    two = LayerContext(layer=3, hidden=hidden, positions=positions, attention=attention, num_frames=4,
                       tokens_per_frame=4, segments=((0, 1), (2, 3)))
    keep = method.reduce_in_llm(two, 2).keep
    assert (keep < 8).sum() == 1 and (keep >= 8).sum() == 1  # one token per segment (Eq. 5 with equal b)


@pytest.mark.parametrize("name, value", [("beta", 1.5), ("lam", -0.1), ("stages", 0), ("merge_ratio", 1.0),
                                         ("stage_keep_min", 0.0), ("r_var", 2.0)])
def test_parameters_out_of_range(name, value):
    with pytest.raises(ConfigError, match=name):
        get_method("hieravid", **{name: value}).plan(load_spec("tiny"), 0.5)


def test_query_of_the_wrong_width_or_no_question_is_a_config_error():
    video = torch.randn(2, 20, 16, generator=torch.Generator().manual_seed(5))
    method = get_method("hieravid")
    with pytest.raises(ConfigError, match=r"question embeddings shaped \[tokens, 16\].*\(3, 8\)"):
        method.select_visual(video, 0.05, query=torch.randn(3, 8))
    for missing in (None, torch.zeros(0, 16)):
        with pytest.raises(ConfigError, match="got no question"):
            method.select_visual(video, 0.05, query=missing)
    context = LayerContext(layer=3, hidden=torch.randn(6, 4), positions=torch.arange(6), attention=None,
                           num_frames=2, tokens_per_frame=3)
    with pytest.raises(ConfigError, match="run it with a question"):
        method.reduce_in_llm(context, 2)


def test_a_one_layer_model_cannot_hold_the_in_llm_stages():
    one_layer = dataclasses.replace(load_spec("tiny"), num_layers=1)
    with pytest.raises(ConfigError, match="needs 2 layers or more; the model has 1"):
        get_method("hieravid").plan(one_layer, 0.25)  # stage 1 keeps 50 %: the mean could not be 25 %
    assert get_method("hieravid").plan(one_layer, 0.6).visual_tokens == (keep_count(1024, 0.6),)


def test_segment_dpp_equals_the_brute_force_argmax_of_the_relevance_weighted_block_kernel():
    # Two segments (frames 0–1 and 2–3), each of 3 orthogonal directions shown twice with distinct norms:
    # with 3 picks per segment the best det(L̃_S) takes one item per direction, the larger copy (Eq. 7–10).
    generator = torch.Generator().manual_seed(6)
    directions = torch.eye(6)
    tokens = torch.cat([directions[[0, 1, 2, 0, 1, 2]], directions[[3, 4, 5, 3, 4, 5]]])  # [12, 6]
    tokens = tokens * (1.0 + torch.rand(12, 1, generator=generator))
    relevance = 0.5 + 0.5 * torch.rand(12, generator=generator)
    frames = torch.arange(4).repeat_interleave(3)  # 3 tokens per frame
    picked = segment_dpp(tokens, frames, ((0, 1), (2, 3)), 6, relevance, lam=0.5, r_var=0.0)
    scaled = relevance.unsqueeze(-1) * tokens
    kernel = torch.block_diag(scaled[:6] @ scaled[:6].T, scaled[6:] @ scaled[6:].T).double() / 6  # L̃, Eq. 9–10
    best = max((a + b for a in itertools.combinations(range(6), 3) for b in itertools.combinations(range(6, 12), 3)),
               key=lambda s: float(torch.linalg.det(kernel[list(s)][:, list(s)])))
    assert sorted(picked.tolist()) == list(best)
