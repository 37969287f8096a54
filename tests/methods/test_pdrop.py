"""PyramidDrop: staged last-instruction-token ranking, λ = 0.5, the budget reached by the number of stages."""

from __future__ import annotations


import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import rank_keep
from vidcost.methods.pdrop import default_stage_layers, mean_fraction, pyramid_counts, pyramid_schedule
from vidcost.spec import load_spec

SPEC = load_spec("llava-onevision-7b")


def test_default_stages_are_the_papers_quarters():
    assert default_stage_layers(32) == (8, 16, 24)
    assert default_stage_layers(28) == (7, 14, 21)


def test_stage_counts_shrink_geometrically_and_floor_as_the_official_int():
    assert pyramid_counts(1000, 0.5, 3) == [500, 250, 125]
    assert pyramid_counts(999, 0.5, 3) == [499, 249, 124]


def test_the_official_configuration_is_the_plan_at_its_own_budget():
    """`--layer_list [8,16,24] --image_token_ratio_list [0.5,0.25,0.125]` scaled to 28 layers: 7/14/21, λ = 0.5."""
    schedule = get_method("pdrop").plan(SPEC, 0.469)
    assert [first for first, _, _ in schedule.segments()] == [0, 7, 14, 21]
    assert [count for _, _, count in schedule.segments()] == [6272, 3136, 1568, 784]


@pytest.mark.parametrize("budget, stages", [(0.47, 4), (0.4, 5), (0.25, 8), (0.1, 19)])
def test_lower_budgets_take_more_stages_at_lambda_one_half(budget, stages):
    """The paper's ablation reaches other costs with the number of stages S, λ = 0.5, layers spread evenly."""
    layers = get_method("pdrop").stage_layers(28, 6272, budget)
    assert layers == default_stage_layers(28, stages)
    schedule = get_method("pdrop").plan(SPEC, budget)
    assert schedule.visual_tokens == tuple(pyramid_schedule(28, 6272, layers, 0.5))
    means = {s: mean_fraction(28, 6272, default_stage_layers(28, s), 0.5) for s in range(1, 29)}
    assert min(means, key=lambda s: abs(means[s] - budget)) == stages  # no other S is nearer


def test_a_budget_below_every_stage_count_names_the_reachable_range():
    with pytest.raises(ConfigError, match=r"reaches mean visual fractions \[0.07\d+, 1\].*not budget 0.05"):
        get_method("pdrop").plan(SPEC, 0.05)


def test_ranking_uses_the_dropping_layers_own_attention():
    """`pdrop_rank_drop` ranks with `self.layers[rank_layer]`'s q/k on the states entering that layer."""
    assert get_method("pdrop").attention_source == "current"


def test_fixed_stages_solve_lambda_for_the_budget():
    schedule = get_method("pdrop", layers=(8, 16, 24)).plan(SPEC, 0.5)
    assert 0.5 <= schedule.mean_visual_fraction <= 0.5 + 1 / 6272 * 4
    assert [first for first, _, _ in schedule.segments()] == [0, 8, 16, 24]


def test_explicit_layers_that_cannot_reach_the_budget_are_an_error():
    with pytest.raises(ConfigError, match=r"cannot reach budget 0.2.*lowest mean fraction"):
        get_method("pdrop", layers=(8, 16, 24)).plan(SPEC, 0.2)


@pytest.mark.parametrize("layers", [(0, 8), (8, 28), (16, 8), "a,b"])
def test_bad_layers_are_named(layers):
    with pytest.raises(ConfigError, match="layers"):
        get_method("pdrop", layers=layers).plan(SPEC, 0.5)


def test_layers_parse_from_a_cli_string():
    schedule = get_method("pdrop", layers="4,12,20").plan(SPEC, 0.4)
    assert [first for first, _, _ in schedule.segments()] == [0, 4, 12, 20]


def test_token_equal_to_the_query_ranks_first():
    torch.manual_seed(0)
    keys = torch.randn(40, 16)
    query = keys[23:24].clone()  # the last query row equals token 23
    keys = torch.nn.functional.normalize(keys, dim=-1) * 4
    attention = (query @ keys.T).softmax(-1).expand(2, -1)[None]  # [Q=1, H=2, N]
    context = LayerContext(layer=8, hidden=keys, positions=torch.arange(40), attention=attention,
                           num_frames=4, tokens_per_frame=10)
    assert get_method("pdrop").reduce_in_llm(context, 1).keep.tolist() == [23]


def test_ranking_averages_over_heads():
    attention = torch.tensor([[[0.9, 0.0, 0.1], [0.0, 0.6, 0.4]]])  # [1, 2, 3]: head means .45 .30 .25
    assert rank_keep(attention, 3, 2, "pdrop").tolist() == [0, 1]


def test_missing_attention_is_a_config_error():
    context = LayerContext(layer=8, hidden=torch.randn(5, 4), positions=torch.arange(5), attention=None,
                           num_frames=1, tokens_per_frame=5)
    with pytest.raises(ConfigError, match="attention"):
        get_method("pdrop").reduce_in_llm(context, 2)


def test_select_visual_passes_every_token():
    features = torch.randn(2, 3, 4)
    result = get_method("pdrop").select_visual(features, 0.3)
    assert result.positions.tolist() == list(range(6))
    assert torch.equal(result.tokens, features.reshape(6, 4))
