"""PyramidDrop: staged last-instruction-token ranking on the official stages, λ solved for the budget."""

from __future__ import annotations


import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import LayerContext, get_method
from vidcost.methods.common import rank_keep
from vidcost.methods.pdrop import default_stage_layers, pyramid_counts
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


@pytest.mark.parametrize("budget", [0.3, 0.4, 0.5, 0.7])
def test_other_budgets_solve_lambda_on_the_official_stages(budget):
    """vidcost's variant: the official four stages (7/14/21 of 28), λ the smallest whose mean fraction ≥ budget."""
    schedule = get_method("pdrop").plan(SPEC, budget)
    assert [first for first, _, _ in schedule.segments()] == [0, 7, 14, 21]
    assert budget <= schedule.mean_visual_fraction <= budget + 1 / 6272
    counts = [count for _, _, count in schedule.segments()]
    assert counts == sorted(counts, reverse=True) and counts[-1] >= 2  # a pyramid, never one token


def test_a_budget_the_official_stages_cannot_reach_names_the_range():
    """The first stage keeps every token: the official stages cannot go below ≈ 0.27 (no 12-stage plans)."""
    with pytest.raises(ConfigError, match=r"reaches mean visual fractions \[0.26\d+, 1\].*not budget 0.1"):
        get_method("pdrop").plan(SPEC, 0.1)
    schedule = get_method("pdrop", layers=(2, 4, 6)).plan(SPEC, 0.1)  # earlier stages reach it
    assert 0.1 <= schedule.mean_visual_fraction <= 0.1 + 1 / 6272


def test_an_explicit_lambda_must_be_the_budgets():
    assert get_method("pdrop", ratio=0.5).plan(SPEC, 0.46875).visual_tokens[-1] == 784
    with pytest.raises(ConfigError, match=r"λ=0.5 .* mean visual fraction of 0.469, not budget 0.3"):
        get_method("pdrop", ratio=0.5).plan(SPEC, 0.3)


def test_ranking_uses_the_dropping_layers_own_attention():
    """`pdrop_rank_drop` ranks with `self.layers[rank_layer]`'s q/k on the states entering that layer."""
    assert get_method("pdrop").attention_source == "current"


def test_fixed_stages_solve_lambda_for_the_budget():
    schedule = get_method("pdrop", layers=(8, 16, 24)).plan(SPEC, 0.5)
    assert 0.5 <= schedule.mean_visual_fraction <= 0.5 + 1 / 6272 * 4
    assert [first for first, _, _ in schedule.segments()] == [0, 8, 16, 24]


def test_explicit_layers_that_cannot_reach_the_budget_are_an_error():
    with pytest.raises(ConfigError, match=r"layers \[8, 16, 24\] of 28 reaches mean visual fractions.*not budget 0.2"):
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


def test_the_official_budget_is_lambda_one_half_and_a_fixed_plan_has_none():
    from vidcost.methods.catalog import variant
    from vidcost.spec import load_spec

    spec = load_spec("llava-onevision-7b")
    assert get_method("pdrop").official_budget(spec) == 0.469
    assert get_method("pdrop", layers=[4, 8]).official_budget(spec) is None  # not the official layers
    assert variant("pdrop", spec, 0.469) == "official" and variant("pdrop", spec, 0.5) == "vidcost's variant"
