"""HieraVid: merge-ratio segmentation, static merging, segment budgets, relevance DPP, layer stages."""

from __future__ import annotations


import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import keep_count
from vidcost.methods.hieravid import instruction_relevance, merge_static, segment_budgets
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


def test_three_scenes_give_three_segments(scenes_video):
    result = get_method("hieravid").select_visual(scenes_video(per_frame=64), 0.3)
    assert result.segments == ((0, 3), (4, 7), (8, 11))


def test_static_video_collapses_to_one_frame():
    frame = torch.randn(1, 16, 32, generator=torch.Generator().manual_seed(1))
    video = frame.expand(8, -1, -1).contiguous()
    budget = 0.125 * (1 + 0.5 + 0.25 + 0.125) / 4  # stage 1 keeps 1/8 = one frame's 16 tokens
    result = get_method("hieravid").select_visual(video, budget)
    assert result.segments == ((0, 7),)
    assert result.positions.tolist() == list(range(16))
    assert torch.allclose(result.tokens, frame[0], atol=1e-6)


def test_merge_static_averages_runs_inside_segments():
    video = torch.tensor([[[1.0, 0.0]], [[1.0, 0.1]], [[0.0, 1.0]], [[0.1, 1.0]]])  # [4, 1, 2]
    tokens, positions = merge_static(video, ((0, 1), (2, 3)), remove=3)
    assert positions.tolist() == [0, 2]  # one run per segment: the boundary is never crossed
    assert torch.allclose(tokens, torch.tensor([[1.0, 0.05], [0.05, 1.0]]))


def test_a_token_equal_to_the_query_ranks_first():
    tokens = torch.nn.functional.normalize(torch.randn(20, 16, generator=torch.Generator().manual_seed(2)), dim=-1)
    query = tokens[13].clone()
    relevance = instruction_relevance(tokens, query)
    assert int(torch.argmax(relevance)) == 13 and relevance.min() == 0.0 and relevance.max() == 1.0


def test_pre_llm_dpp_keeps_the_query_token():
    tokens = torch.nn.functional.normalize(torch.randn(1, 40, 16, generator=torch.Generator().manual_seed(3)), dim=-1)
    query = torch.stack([torch.randn(16), tokens[0, 27]])  # the last instruction row is token 27
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
    method.select_visual(torch.randn(4, 8, 16), 0.2)  # remembers the segments
    hidden = torch.nn.functional.normalize(torch.randn(20, 16), dim=-1)
    attention = torch.full((1, 2, 20), 0.01)
    attention[0, :, 9] = 0.5
    context = LayerContext(layer=3, hidden=hidden, positions=torch.arange(20) + 5, attention=attention,
                           num_frames=4, tokens_per_frame=8)
    reduction = method.reduce_in_llm(context, 1)
    assert reduction.keep.tolist() == [9]
    wider = method.reduce_in_llm(context, 7)
    assert wider.keep.numel() == 7 and bool((wider.keep[1:] > wider.keep[:-1]).all())


@pytest.mark.parametrize("name, value", [("beta", 1.5), ("lam", -0.1), ("stages", 0), ("merge_ratio", 1.0),
                                         ("stage_keep_min", 0.0), ("r_var", 2.0)])
def test_parameters_out_of_range(name, value):
    with pytest.raises(ConfigError, match=name):
        get_method("hieravid", **{name: value}).plan(load_spec("tiny"), 0.5)
