"""Median / IQR / min of raw samples, and the noise warning."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidcost.errors import ProfilingError
from vidcost.profiling.stats import NoisyMeasurementWarning, summarize


def test_known_values():
    stats = summarize([10.0, 11.0, 12.0, 13.0, 14.0], warn=False)
    assert (stats.median, stats.iqr, stats.min, stats.count) == (12.0, 2.0, 10.0, 5)
    assert summarize([7.0]).iqr == 0.0


def test_noisy_samples_warn_and_tight_ones_do_not():
    with pytest.warns(NoisyMeasurementWarning, match="stage 'llm_prefill' is noisy"):
        summarize([10.0, 10.0, 20.0, 30.0], stage="llm_prefill")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarize([10.0, 10.1, 10.2, 10.3], stage="total")


def test_no_samples_is_an_error():
    with pytest.raises(ProfilingError, match="no timing samples"):
        summarize([], stage="vision")


@given(st.lists(st.floats(0.001, 1e6), min_size=1, max_size=30))
def test_summary_properties(samples):
    stats = summarize(samples, warn=False)
    assert stats.min == min(samples)
    assert min(samples) <= stats.median <= max(samples)
    assert 0 <= stats.iqr <= max(samples) - min(samples) + 1e-9
