"""Does it fit: the largest frame count, and at a frame count the largest budget, whose predicted peak memory
stays under a device's memory (`vidcost predict --memory-limit 24GiB`).

The peak is the cost model's (`vidcost.cost.estimate_memory`): the weights plus the larger of the vision
tower's transient — every frame in one batch, as the runtime and the stock forward run it — and the LLM
prefill's KV cache, activation peak and visual features. Both grow with the frames; only the second shrinks with pruning,
so at many frames the vision tower decides what fits whatever the budget (the answer says which phase sets
the peak). `analysis/bench_memory.py` checks the estimate against the measured whole-run peak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from vidcost.cost import estimate_memory, format_bytes
from vidcost.errors import ConfigError
from vidcost.predict import MIN_BUDGET, plan_schedule
from vidcost.spec import ModelSpec

MAX_FRAMES = 4096  # the search's ceiling: "at least this many" beyond it
FIRST_FRAMES = 64  # a method that plans a budget on none of the first 64 frame counts fits none
_BISECTION_STEPS = 30
_UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12,
          "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30,
          "t": 2 ** 40}


def parse_bytes(text: str) -> int:
    """'24GiB', '80GB', '24G' (binary, as nvidia-smi prints), '2.5e10' → bytes.

    Raises:
        ConfigError: not a positive size, naming the units understood.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", str(text).lower())
    if not match or match.group(2) not in _UNITS or float(match.group(1)) <= 0:
        raise ConfigError(f"memory size '{text}' is not a positive size such as 24GiB, 80GB or 24G "
                          "(units: B, KB/MB/GB/TB, KiB/MiB/GiB/TiB; K/M/G/T mean KiB/MiB/GiB/TiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class MemoryFit:
    """What fits under a memory limit.

    Attributes:
        limit_bytes: the limit.
        method / budget / frames: the configuration asked about.
        peak_bytes / phase: its predicted peak and the phase that sets it ("vision" or "llm_prefill").
        max_frames: the most frames the method at that budget fits with (None: not even one frame).
        vanilla_max_frames: the same without pruning.
        max_budget: at `frames`, the largest budget that fits (1.0: unpruned fits; None: no budget does).
        capped: True when `max_frames` is the search's ceiling (`MAX_FRAMES`), not a limit found.
    """

    limit_bytes: int
    method: str
    budget: float
    frames: int
    peak_bytes: int
    phase: str
    max_frames: int | None
    vanilla_max_frames: int | None
    max_budget: float | None
    capped: bool = False

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.limit_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"limit_bytes": self.limit_bytes, "method": self.method, "budget": self.budget, "frames": self.frames,
                "peak_bytes": self.peak_bytes, "phase": self.phase, "fits": self.fits, "max_frames": self.max_frames,
                "vanilla_max_frames": self.vanilla_max_frames, "max_budget": self.max_budget, "capped": self.capped}

    def __str__(self) -> str:
        most = "none" if self.max_frames is None else f"{'≥ ' if self.capped else ''}{self.max_frames}"
        vanilla = "none" if self.vanilla_max_frames is None else str(self.vanilla_max_frames)
        budget = ("no budget" if self.max_budget is None else
                  "unpruned" if self.max_budget >= 1.0 else f"budgets up to {self.max_budget:.3g}")
        return (f"memory limit {format_bytes(self.limit_bytes)}: {self.method} @ {self.budget:g} on {self.frames} "
                f"frames peaks at {format_bytes(self.peak_bytes)} (set by {self.phase}) — "
                f"{'fits' if self.fits else 'does not fit'}; most frames that fit: {most} ({vanilla} unpruned); "
                f"at {self.frames} frames {budget} fit")


def peak_bytes(spec: ModelSpec, method: str, budget: float, params: Mapping[str, Any] | None, dtype_bytes: int,
               decode_tokens: int = 0) -> tuple[int, str] | None:
    """(predicted peak bytes, the phase setting it) of a configuration; None where its plan is impossible."""
    try:
        schedule = plan_schedule(spec, method, budget, params)[0]
    except ConfigError:  # a budget this method cannot reach at this frame count (DyCoke's anchors)
        return None
    memory = estimate_memory(spec, schedule, dtype_bytes=dtype_bytes, generated_tokens=decode_tokens)
    return memory.total_bytes, memory.peak_phase


def memory_fit(spec: ModelSpec, limit_bytes: int, *, method: str, budget: float, dtype_bytes: int,
               params: Mapping[str, Any] | None = None, decode_tokens: int = 0) -> MemoryFit:
    """The largest frame count (method at `budget`, and unpruned) and, at `spec.frames`, the largest budget
    that fit in `limit_bytes`.

    Peak memory grows with the frames and with the budget, so both are bisections.

    Raises:
        ConfigError: the configuration asked about cannot be planned (its own error).
    """
    asked = peak_bytes(spec, method, budget, params, dtype_bytes, decode_tokens)
    if asked is None:
        plan_schedule(spec, method, budget, params)  # raises the plan's own error
    peak, phase = asked

    def peak_at(frames: int, name: str, at: float) -> int | None:
        found = peak_bytes(spec.with_overrides(frames=frames), name, at, params if name == method else None,
                           dtype_bytes, decode_tokens)
        return None if found is None else found[0]

    max_frames, capped = _largest_frames(lambda f: peak_at(f, method, budget), limit_bytes)
    vanilla_max, _ = _largest_frames(lambda f: peak_at(f, "vanilla", 1.0), limit_bytes)
    max_budget = _largest_budget(spec, method, params, dtype_bytes, decode_tokens, limit_bytes)
    return MemoryFit(limit_bytes=limit_bytes, method=method, budget=budget, frames=spec.frames, peak_bytes=peak,
                     phase=phase, max_frames=max_frames, vanilla_max_frames=vanilla_max, max_budget=max_budget,
                     capped=capped)


def _largest_frames(peak: Any, limit_bytes: int) -> tuple[int | None, bool]:
    """The largest f in [1, MAX_FRAMES] whose peak(f) fits, and whether that is the ceiling.

    A method plans a budget from some frame count on (DyCoke at 0.5 needs 3 frames: one anchor whole and
    two frames to halve), and its peak then grows with the frames: the first frame count it plans (among
    the first `FIRST_FRAMES`), then bisection."""
    def fits(frames: int) -> bool:
        found = peak(frames)
        return found is not None and found <= limit_bytes

    first = next((f for f in range(1, FIRST_FRAMES + 1) if peak(f) is not None), None)
    if first is None or not fits(first):
        return None, False
    if fits(MAX_FRAMES):
        return MAX_FRAMES, True
    low, high = first, MAX_FRAMES  # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low, False


def _largest_budget(spec: ModelSpec, method: str, params: Mapping[str, Any] | None, dtype_bytes: int,
                    decode_tokens: int, limit_bytes: int) -> float | None:
    """The largest budget in [MIN_BUDGET, 1] that fits, None when none that the method can plan does.

    A method plans budgets from a floor of its own up (PyramidDrop's first stage, DyCoke's whole anchor
    frames), and its peak grows with the budget: the floor by bisection on whether it plans, then the
    largest fitting budget above it by bisection on the peak."""
    def peak(at: float) -> int | None:
        found = peak_bytes(spec, method, at, params, dtype_bytes, decode_tokens)
        return None if found is None else found[0]

    def bisect(low: float, high: float, holds: Any) -> float:
        """The last value of [low, high] where `holds` (True at low, False at high) still holds."""
        for _ in range(_BISECTION_STEPS):
            middle = (low + high) / 2
            low, high = (middle, high) if holds(middle) else (low, middle)
        return low

    top = peak(1.0)
    if top is not None and top <= limit_bytes:
        return 1.0
    floor = MIN_BUDGET
    if peak(floor) is None:  # the smallest budget it plans: the first that plans above the last that does not
        floor = bisect(MIN_BUDGET, 1.0, lambda at: peak(at) is None)
        floor = min(1.0, floor + 2.0 ** -_BISECTION_STEPS)
        if peak(floor) is None:
            return None
    found = peak(floor)
    if found is None or found > limit_bytes:
        return None
    return bisect(floor, 1.0, lambda at: (peak(at) or limit_bytes + 1) <= limit_bytes)
