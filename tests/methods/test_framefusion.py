"""FrameFusion: threshold merging into the previous surviving same-position token, then pruning to the cost."""

from __future__ import annotations

import math

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.framefusion import FusionState, merge_marked, patch_similarity, pruning_ratio
from vidcost.spec import load_spec


def rotated(similarities: list[float]) -> torch.Tensor:
    """Two frames: frame 1's token p has cosine similarities[p] with frame 0's token p (orthogonal bases)."""
    per_frame = len(similarities)
    dim = 2 * per_frame
    basis = torch.linalg.qr(torch.randn(dim, dim, generator=torch.Generator().manual_seed(0)))[0]
    frame0 = basis[:per_frame].clone()  # [P, D], orthonormal rows
    frame1 = torch.stack([math.cos(math.acos(s)) * frame0[p] + math.sin(math.acos(s)) * basis[(p + per_frame) % dim]
                          for p, s in enumerate(similarities)])
    return torch.stack([frame0, frame1])


def test_never_merges_a_pair_below_the_threshold():
    similarities = [0.9, 0.62, 0.6005, 0.5995, 0.59, 0.2, -0.5]
    video = rotated(similarities)
    result = get_method("framefusion").select_visual(video, 0.5)
    kept = set(result.positions.tolist())
    merged = {p for p in range(7) if 7 + p not in kept}
    assert merged == {0, 1, 2}  # exactly the pairs at or above 0.6
    assert set(range(7)) <= kept  # frame 0 has nothing before it
    assert result.state.sparsity == (3 / 14,)


def test_merged_token_is_the_plain_mean_of_its_run():
    tokens = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.2], [1.0, -0.2]])  # positions 0, 1, 2, 4 (P = 2)
    positions = torch.tensor([0, 1, 2, 4])  # position 0 in frames 0, 1, 2; position 1 in frame 0
    order, similarity = patch_similarity(tokens, positions, per_frame=2, frames=3)
    assert order.tolist() == [0, 2, 3, 1]  # patch-major: position 0's frames, then position 1
    marked = similarity >= 0.6
    keep, merged = merge_marked(tokens, order, marked)
    assert keep.tolist() == [0, 1]
    assert torch.allclose(merged[0], tokens[[0, 2, 3]].mean(0)) and torch.equal(merged[1], tokens[1])


def test_the_previous_token_is_the_previous_surviving_one():
    """Frame 1's token is gone: frame 2 at that position is compared with frame 0's, not with a missing frame."""
    tokens = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    positions = torch.tensor([0, 1, 4])  # frames 0 (p 0, p 1) and frame 2 (p 0); P = 2
    order, similarity = patch_similarity(tokens, positions, per_frame=2, frames=3)
    assert similarity[order.tolist().index(2)] == pytest.approx(1 / math.sqrt(1.01), abs=1e-6)


def test_pruning_ratio_is_the_official_cost_solve():
    # one merge step of 30 % on 28 layers at cost 0.3: 1 − (28·0.3 − 0.7) / (27·0.7)
    assert pruning_ratio((0.3,), 0.3, 28) == pytest.approx(1 - 7.7 / 18.9)
    assert pruning_ratio((), 0.3, 28) == pytest.approx(0.7)  # the first step's bound is 1 − cost
    assert pruning_ratio((), 1.0, 28) == 0.0


def test_merging_stops_below_the_ratio_bound_and_the_next_stage_prunes_to_the_cost():
    video = rotated([0.95] + [0.1] * 19)  # one merge of 40 tokens: 2.5 % < 10 % → merging finishes
    method = get_method("framefusion")
    selection = method.select_visual(video, 0.3)
    assert selection.positions.numel() == 39 and selection.state.finish_merging
    attention = torch.linspace(0, 1, 39)[None, None]  # the last tokens rank first
    context = LayerContext(layer=1, hidden=selection.tokens, positions=selection.positions, attention=attention,
                           num_frames=2, tokens_per_frame=20, state=selection.state, num_layers=28)
    reduction = method.reduce_in_llm(context, 12)
    kept = round(39 * (1 - pruning_ratio((1 / 40,), 0.3, 28)))
    assert reduction.keep.tolist() == list(range(39 - kept, 39)) and reduction.state.finish_pruning
    after = LayerContext(layer=2, hidden=selection.tokens[reduction.keep], positions=selection.positions[reduction.keep],
                         attention=attention[..., :kept], num_frames=2, tokens_per_frame=20, state=reduction.state,
                         num_layers=28)
    assert method.reduce_in_llm(after, 5).keep.numel() == kept  # nothing more happens


def test_merging_continues_inside_the_llm_while_it_merges_enough():
    video = rotated([0.95] * 6 + [0.1] * 14)  # 6 of 40 merge (15 % ≥ 10 %): merging goes on
    method = get_method("framefusion")
    selection = method.select_visual(video, 0.3)
    assert not selection.state.finish_merging
    hidden = selection.tokens.clone()
    hidden[20:] = hidden[6:20]  # frame 1's remaining tokens now equal frame 0's: all merge in the LLM
    context = LayerContext(layer=1, hidden=hidden, positions=selection.positions, attention=torch.rand(1, 2, 34),
                           num_frames=2, tokens_per_frame=20, state=selection.state, num_layers=28)
    reduction = method.reduce_in_llm(context, 12)
    assert reduction.keep.tolist() == list(range(20)) and reduction.hidden is not None


def test_a_static_video_merges_to_the_cost_and_never_prunes():
    frame = torch.randn(1, 9, 8)
    result = get_method("framefusion").select_visual(frame.expand(6, -1, -1).contiguous(), 1 / 6)
    assert result.positions.numel() == 54 - int((1 - 1 / 6) * 54)
    assert result.state.finish_pruning
    assert torch.allclose(result.tokens[:9], frame[0], atol=1e-6)


@pytest.mark.parametrize("budget", [0.8, 0.3, 0.25, 0.1])
def test_plan_estimate_meets_the_budget_as_mean_fraction(budget):
    method = get_method("framefusion")
    assert method.data_dependent_counts
    schedule = method.plan(load_spec("llava-onevision-7b"), budget)
    assert schedule.mean_visual_fraction == pytest.approx(budget, abs=1 / 6272)
    assert schedule.visual_tokens[0] == min(round(0.7 * 6272), 6272) or budget >= 0.7


def test_a_cost_the_merging_already_spent_names_the_reachable_budget():
    features = torch.randn(1, 4, 4)  # one frame: nothing merges, layer 0 alone is 1/6 of 6 layers
    method = get_method("framefusion")
    selection = method.select_visual(features, 0.125)
    context = LayerContext(layer=1, hidden=selection.tokens, positions=selection.positions,
                           attention=torch.rand(1, 2, 4), num_frames=1, tokens_per_frame=4, state=selection.state,
                           num_layers=6)
    with pytest.raises(ConfigError, match=r"budget 0.125: on this video it reaches budgets from 0.1667"):
        method.reduce_in_llm(context, 1)


@pytest.mark.parametrize("params, pattern", [
    ({"estimated_merge": 1.0}, r"estimated_merge=1.0 is outside \[0, 1\)"),
    ({"threshold": 1.5}, r"threshold=1.5 is outside \[-1, 1\]"),
    ({"ratio_lower_bound": "lots"}, r"ratio_lower_bound='lots' must be a number"),
])
def test_parameters_out_of_range_name_the_valid_range(params, pattern):
    with pytest.raises(ConfigError, match=pattern):
        get_method("framefusion", **params).plan(load_spec("tiny"), 0.3)


def test_attention_over_other_tokens_is_a_config_error():
    context = LayerContext(layer=2, hidden=torch.randn(12, 8), positions=torch.arange(12),
                           attention=torch.rand(1, 2, 10), num_frames=3, tokens_per_frame=4,
                           state=FusionState(cost=0.3, sparsity=(0.0,), finish_merging=True))
    with pytest.raises(ConfigError, match="attention over 10 tokens for 12 hidden states"):
        get_method("framefusion").reduce_in_llm(context, 3)
