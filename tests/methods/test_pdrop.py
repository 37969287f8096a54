"""PyramidDrop: staged last-query attention ranking; the stage ratio λ is solved for the budget."""

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


def test_stage_counts_shrink_geometrically():
    assert pyramid_counts(1000, 0.5, 3) == [500, 250, 125]


@pytest.mark.parametrize("budget", [0.6, 0.5, 0.3, 0.25, 0.1])
def test_plan_meets_the_budget_as_mean_fraction(budget):
    schedule = get_method("pdrop").plan(SPEC, budget)
    assert budget <= schedule.mean_visual_fraction <= budget + 1 / 6272
    assert schedule.visual_tokens[0] == 6272  # nothing is dropped before the LLM
    assert len(schedule.segments()) == 4  # four stages


def test_paper_stages_kept_while_lambda_stays_at_least_one_half():
    pdrop = get_method("pdrop")
    assert pdrop.stage_layers(28, 6272, 0.5) == (7, 14, 21)
    early = pdrop.stage_layers(28, 6272, 0.25)
    assert early[0] < 7  # 25 % is below what the quarter stages reach with λ ≥ 0.5


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
