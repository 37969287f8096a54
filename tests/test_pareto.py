"""Pareto fronts (a known answer from HieraVid Table 2, ties, duplicates) and the budget recommendation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.errors import ConfigError
from vidcost.pareto import (SPEEDUP_FLOPS_IDEAL, SPEEDUP_MEASURED, SPEEDUP_PUBLISHED, compute_fronts,
                            flops_ideal_speedup, interpolate, monotone_fit, pareto_front, recommend)
from vidcost.published import PUBLISHED_DIR, published_rows, read_published


@pytest.fixture(scope="module")
def table2():
    rows = published_rows(read_published([PUBLISHED_DIR / "hieravid_2026.csv"]))
    return [r for r in rows if r["source_table"] == "Table 2"]


def _labels(front):
    return [p.label for p in front.points]


def test_table2_front_of_average_score_vs_flops(table2):
    (front,) = compute_fronts(table2, x="flops_t", y="score", label_columns=("method", "budget"))
    # By hand: at 3.4 T FrameFusion (52.0) beats PruMerge (49.2); HieraVid 3.8 T / 53.5 then beats
    # PruneVid 4.3 / 52.3 and FastV 6.037 / 49.1; the 6.9 T tie goes to FrameFusion (54.2); and so on.
    assert _labels(front) == ["framefusion 10%", "hieravid 10%", "framefusion 20%", "hieravid 20%",
                              "framefusion 30%", "hieravid 30%", "vanilla 100%"]
    assert [p.x for p in front.points] == [3.4, 3.8, 6.9, 7.5, 10.6, 10.7, 40.8]
    assert front.total == 19


def test_exact_duplicates_both_stay_on_the_front(table2):
    copy = dict(next(r for r in table2 if r["method"] == "hieravid" and r["budget"] == 0.3), method="copy")
    (front,) = compute_fronts(table2 + [copy], x="flops_t", y="score", label_columns=("method", "budget"))
    assert "copy 30%" in _labels(front) and "hieravid 30%" in _labels(front)
    assert len(front.points) == 8


def test_ties_in_x_keep_only_the_best_y_and_ties_in_y_keep_the_cheapest():
    assert pareto_front([1, 1, 1], [5, 7, 7]) == [1, 2]
    assert pareto_front([1, 2, 3], [5, 5, 6]) == [0, 2]
    assert pareto_front([], []) == []


def test_groups_give_one_front_each(table2):
    rows = table2 + [dict(r, model="other") for r in table2]
    fronts = compute_fronts(rows, x="flops_ratio", y="relative_pct", group="model")
    assert [f.group for f in fronts] == ["llava-onevision-7b", "other"]
    assert len(fronts[0].points) == len(fronts[1].points) == 8  # PruMerge 10% is cheapest in ratio


def test_missing_column_is_named_with_the_columns_there(table2):
    with pytest.raises(ConfigError, match=r"column 'latency_ms' \(from --x\).*'flops_t'"):
        compute_fronts(table2, x="latency_ms", y="score")


def test_nan_is_rejected():
    with pytest.raises(ConfigError, match="NaN"):
        pareto_front([1.0, float("nan")], [1.0, 2.0])


points = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40)


@given(points)
@settings(max_examples=150, deadline=None)
def test_front_is_exactly_the_non_dominated_set(pts):
    xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
    front = set(pareto_front(xs, ys))

    def dominated(i):
        return any(xs[j] <= xs[i] and ys[j] >= ys[i] and (xs[j] < xs[i] or ys[j] > ys[i]) for j in range(len(xs)))

    assert front == {i for i in range(len(xs)) if not dominated(i)}


def test_monotone_fit_pools_violators():
    assert monotone_fit([90, 95, 93, 99]) == [90, 94, 94, 99]
    assert monotone_fit([1, 2, 3]) == [1, 2, 3]


def test_interpolate_and_its_range():
    assert interpolate([0.1, 0.3], [90, 96], 0.2) == pytest.approx(93)
    with pytest.raises(ConfigError, match="outside"):
        interpolate([0.1, 0.3], [90, 96], 0.05)


def _rows(extra=None):
    extra = extra or {}
    return [dict(model="x", method="m", budget=b, relative_pct=r, **extra.get(b, {}))
            for b, r in ((0.1, 90.0), (0.2, 96.0), (0.3, 99.0))]


def test_recommend_smallest_budget_meeting_both_targets():
    speedup = lambda model, budget: 1 / budget  # noqa: E731 - a FLOPs-ideal stand-in, exact and simple
    (rec,) = recommend(_rows(), max_drop_pct=2.0, min_speedup=3.0, ideal_speedup=speedup)
    # drop ≤ 2 needs relative ≥ 98: between 0.2 (96) and 0.3 (99) at 0.2 + 0.1·2/3 → grid 0.27
    assert rec.budget == pytest.approx(0.27) and rec.interpolated
    assert rec.speedup == pytest.approx(1 / 0.27) and rec.speedup_source == SPEEDUP_FLOPS_IDEAL
    (rec,) = recommend(_rows(), max_drop_pct=2.0, min_speedup=3.6, ideal_speedup=speedup)
    assert rec.budget == pytest.approx(0.27)
    assert recommend(_rows(), max_drop_pct=2.0, min_speedup=4.0, ideal_speedup=speedup) == []


def test_recommend_prefers_a_measured_speedup():
    rows = _rows({0.3: {"speedup": 2.5}})
    (rec,) = recommend(rows, max_drop_pct=1.0, min_speedup=2.0, ideal_speedup=lambda m, b: 10.0)
    assert (rec.budget, rec.speedup, rec.speedup_source, rec.interpolated) == (0.3, 2.5, SPEEDUP_MEASURED, False)


def test_recommend_monotone_curve_ignores_a_lucky_low_budget():
    rows = [dict(model="x", method="m", budget=0.1, relative_pct=99.5),
            dict(model="x", method="m", budget=0.2, relative_pct=97.0)]
    (rec,) = recommend(rows, max_drop_pct=1.0, min_speedup=1.0, ideal_speedup=lambda m, b: 1 / b)
    assert rec.budget > 0.2  # pooled (98.25 at 0.1 and 0.2) never meets 99 before interpolating to 1.0


def test_recommend_falls_back_to_published_flops_ratio():
    rows = _rows({0.1: {"flops_ratio": 0.12}, 0.3: {"flops_ratio": 0.32}})
    (rec,) = recommend(rows, max_drop_pct=1.0, min_speedup=2.0, ideal_speedup=lambda m, b: None)
    assert rec.speedup_source == SPEEDUP_PUBLISHED and rec.speedup == pytest.approx(1 / 0.32)


def test_recommend_rejects_bad_targets():
    with pytest.raises(ConfigError, match="targets"):
        recommend(_rows(), max_drop_pct=-1, min_speedup=2)


def test_flops_ideal_speedup_of_a_preset_and_an_unknown_model():
    speedup = flops_ideal_speedup("llava-onevision-7b", 0.25)
    assert 4.0 < speedup < 5.0  # 25 % of tokens: linear terms ×4, attention terms ×16 → a bit over 4×
    assert flops_ideal_speedup("not-a-preset", 0.25) is None


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=30))
@settings(max_examples=150, deadline=None)
def test_monotone_fit_is_non_decreasing_and_keeps_the_mean(values):
    fitted = monotone_fit(values)
    assert len(fitted) == len(values)
    assert all(a <= b + 1e-9 for a, b in zip(fitted, fitted[1:]))
    assert sum(fitted) == pytest.approx(sum(values))
