"""A fake clock shared by the profiling tests (timer: nanoseconds, NVML sampler: seconds)."""

from __future__ import annotations

import pytest


class StepClock:
    """A clock that advances by a fixed step at each read, from 0."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def step_clock():
    """The `StepClock` class: `step_clock(0.05)` is a clock advancing 0.05 per read."""
    return StepClock
