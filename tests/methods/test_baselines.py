"""vanilla, uniform (spatial pooling to the budget) and random: plans, selections, properties."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.errors import ConfigError
from vidcost.methods import get_method
from vidcost.methods.baselines import RandomSelection, Uniform, Vanilla, frame_grid, pooled_grid
from vidcost.methods.common import keep_count
from vidcost.spec import load_spec

SPEC = load_spec("tiny", frames=4)


def test_vanilla_keeps_everything_at_any_budget():
    plan = Vanilla().plan(SPEC, 0.1)
    assert plan.visual_tokens == (256,) * 6 and plan.text_tokens == SPEC.text_tokens


def test_uniform_pools_each_frame_grid():
    features = torch.arange(2 * 16 * 1, dtype=torch.float32).reshape(2, 16, 1)  # two 4×4 frames
    result = Uniform().select_visual(features, 0.25)
    # 4×4 → 2×2 cells of 2×2: the mean of each cell, at the cell centre's position.
    assert result.tokens[:4, 0].tolist() == [2.5, 4.5, 10.5, 12.5]
    assert result.positions.tolist() == [0, 2, 8, 10, 16, 18, 24, 26]
    assert Uniform().plan(load_spec("tiny", frames=2, tokens_per_frame=16), 0.25).visual_tokens[0] == 8


def test_uniform_on_llava_onevision_grid():
    spec = load_spec("llava-onevision-7b")
    assert frame_grid(196) == (14, 14) and pooled_grid(196, 0.25) == (7, 7)
    assert Uniform().plan(spec, 0.25).visual_tokens[0] == 32 * 49


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.sampled_from([4, 9, 16, 64, 196, 6]), st.floats(0.01, 1.0), st.integers(0, 99))
def test_uniform_and_random_properties(frames, per_frame, budget, seed):
    spec = load_spec("tiny", frames=frames, tokens_per_frame=per_frame)
    features = torch.randn(frames, per_frame, 8, generator=torch.Generator().manual_seed(seed))
    for method in (Uniform(), RandomSelection()):
        plan = method.plan(spec, budget)
        result = method.select_visual(features, budget, seed=seed)
        positions = result.positions
        assert result.tokens.shape == (plan.visual_tokens[0], 8) == (positions.numel(), 8)
        assert bool((positions[1:] > positions[:-1]).all()) and 0 <= int(positions.min())
        assert int(positions.max()) < frames * per_frame
        assert set(plan.visual_tokens) == {plan.visual_tokens[0]}
    # random keeps exactly round(budget·T·P) and copies the chosen tokens unchanged
    kept = RandomSelection().select_visual(features, budget, seed=seed)
    assert kept.positions.numel() == keep_count(frames * per_frame, budget)
    assert torch.equal(kept.tokens, features.reshape(-1, 8)[kept.positions])


def test_uniform_count_is_close_to_the_budget():
    for budget in (0.1, 0.25, 0.3, 0.5, 0.75):
        rows, cols = pooled_grid(196, budget)
        assert abs(rows * cols - budget * 196) <= 0.08 * 196


def test_budget_one_is_the_identity():
    features = torch.randn(3, 16, 5)
    for method in (Uniform(), RandomSelection()):
        result = method.select_visual(features, 1.0)
        assert torch.equal(result.positions, torch.arange(48))
        torch.testing.assert_close(result.tokens, features.reshape(48, 5))


def test_random_is_seeded():
    features = torch.randn(4, 16, 3)
    a, b, c = (RandomSelection().select_visual(features, 0.25, seed=s).positions for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("name", ["vanilla", "uniform", "random"])
@pytest.mark.parametrize("budget", [0.0, 1.5, -0.1, "0.5"])
def test_bad_budget(name, budget):
    with pytest.raises(ConfigError, match="outside \\(0, 1\\]"):
        get_method(name).plan(SPEC, budget)


def test_unknown_parameter():
    with pytest.raises(ConfigError, match="Unknown parameter"):
        get_method("uniform", stride=2)


def test_planning_does_not_import_torch():
    code = ("import sys; from vidcost.methods import get_method; from vidcost.spec import load_spec; "
            "[get_method(n).plan(load_spec('tiny'), 0.25) for n in ('vanilla', 'uniform', 'random', 'fastv')]; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
