"""DivPrune: greedy max–min diversity on cosine distance (Alvar et al. 2025, Algorithm 1)."""

from __future__ import annotations

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.methods import divprune, get_method
from vidcost.spec import load_spec


def reference_greedy(flat: torch.Tensor, keep: int) -> list[int]:
    """Algorithm 1 written plainly on the full distance matrix: the definition the fast code must match."""
    unit = torch.nn.functional.normalize(flat.double(), dim=-1)
    distance = 1.0 - unit @ unit.T
    off = distance + torch.diag(torch.full((flat.shape[0],), float("inf"), dtype=torch.double))
    picks = [int(torch.argmax(off.min(dim=1).values))]
    while len(picks) < keep:
        best, best_score = -1, -float("inf")
        for i in range(flat.shape[0]):
            if i in picks:
                continue
            score = min(float(distance[i, j]) for j in picks)
            if score > best_score + 1e-9:
                best, best_score = i, score
        picks.append(best)
    return sorted(picks)


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_plain_greedy_algorithm(seed):
    torch.manual_seed(seed)
    features = torch.randn(3, 7, 6)
    result = get_method("divprune").select_visual(features, 0.3)
    assert result.positions.tolist() == reference_greedy(features.reshape(21, 6), 6)


def test_keeps_one_token_per_cluster():
    torch.manual_seed(0)
    centres = torch.eye(3, 16) * 5  # three orthogonal directions
    cluster_of = torch.arange(24) % 3
    features = (centres[cluster_of] + 0.05 * torch.randn(24, 16)).reshape(4, 6, 16)
    result = get_method("divprune").select_visual(features, 3 / 24)
    assert sorted(cluster_of[result.positions].tolist()) == [0, 1, 2]


def test_identical_tokens_still_give_distinct_positions():
    result = get_method("divprune").select_visual(torch.ones(2, 8, 4), 0.5)
    assert result.positions.unique().numel() == 8


def test_blocked_nearest_neighbour_equals_the_direct_one(monkeypatch):
    torch.manual_seed(1)
    flat = torch.randn(50, 8)
    direct = divprune.nearest_neighbour_distance(flat)
    monkeypatch.setattr(divprune, "_ROW_BLOCK", 7)
    assert torch.allclose(divprune.nearest_neighbour_distance(flat), direct)
    unit = torch.nn.functional.normalize(flat, dim=-1)
    expected = (1 - unit @ unit.T + torch.diag(torch.full((50,), 9.0))).min(dim=1).values
    assert torch.allclose(direct, expected, atol=1e-6)


def test_plan_keeps_the_budget_from_layer_zero():
    schedule = get_method("divprune").plan(load_spec("llava-onevision-7b"), 0.25)
    assert schedule.visual_tokens == (1568,) * 28


def test_unknown_parameter_is_rejected():
    with pytest.raises(ConfigError, match="threshold"):
        get_method("divprune", threshold=0.1)


def test_streamed_rows_pick_what_the_full_matrix_picks(monkeypatch):
    torch.manual_seed(2)
    features = torch.randn(4, 9, 12)
    with_matrix = get_method("divprune").select_visual(features, 0.4).positions
    monkeypatch.setattr(divprune, "_MAX_MATRIX_TOKENS", 0)
    assert torch.equal(get_method("divprune").select_visual(features, 0.4).positions, with_matrix)
