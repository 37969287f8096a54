"""Held-out splits: each group predicted by a fit that never saw it."""

from __future__ import annotations

import pytest

from vidcost.latency import observations
from vidcost.validation import extrapolate_frames, leave_one_budget_out, leave_one_configuration_out


def test_noise_free_data_is_predicted_exactly_held_out(synthetic) -> None:
    data = observations(synthetic(models=("tiny",), frames=(1, 2, 3, 4, 8), noise=0.0))
    for result in (leave_one_configuration_out(data), leave_one_budget_out(data),
                   extrapolate_frames(data, [1, 2, 3, 4], [8])):
        summary = result.summary()
        assert summary["speedup"]["max"] < 1e-6 and summary["ttft_ms"]["max"] < 1e-6, result.split


def test_splits_hold_out_what_they_say(synthetic) -> None:
    data = observations(synthetic(models=("tiny",), noise=0.01))
    by_budget = leave_one_budget_out(data)
    assert {row.group for row in by_budget.rows} == {f"budget {b:g}" for b in (0.1, 0.2, 0.3, 0.5, 0.7)}
    assert all(row.method != "vanilla" for row in by_budget.rows)
    frames = extrapolate_frames(data, [2, 4], [8])
    assert {row.frames for row in frames.rows} == {8}
    configurations = leave_one_configuration_out(data)
    assert len({row.group for row in configurations.rows}) == 33  # 3 frames × (2 methods × 5 budgets + vanilla)
    # A noisy store has a held-out error, and the speedup's is computed from the run's own vanilla.
    assert 0 < configurations.summary()["speedup"]["median"] < 0.05
    row = next(r for r in configurations.rows if r.method == "fastv")
    assert row.measured["speedup"] == pytest.approx(
        next(o.ttft_ms for o in data if o.run_id == f"tiny-{row.frames}-fastv-{row.budget}" and o.config.method == "vanilla")
        / next(o.ttft_ms for o in data if o.key == ("tiny", row.frames, "fastv", row.budget)))
