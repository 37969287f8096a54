"""MemoryProbe: a run's own peak allocation above what was allocated when it began, overall and per stage.

The weights and inputs are resident before a run starts; what tells a pruned run from a vanilla one is
what the run itself allocates on top (activations, the KV cache, the pruning step). Both probes measure
exactly that, from the allocator, on a run of their own (untimed: measuring memory must not slow the
timed runs), and report it per stage window (`vision`, `projector`, `selection`, `llm_prefill`,
`first_token`, `decode`), each above what was allocated when that stage began.

* GPU: the CUDA caching allocator's own counters — `memory_allocated` and `max_memory_allocated`, the
  peak reset (`reset_peak_memory_stats`) at every stage edge. They are host-side bookkeeping (an
  allocation happens when a kernel is launched), so reading them costs no synchronisation.
* CPU: the allocator events of `torch.profiler` with `profile_memory=True` — every allocation and free
  with its size and time — summed in time order; stage windows are `record_function` ranges. (The
  resident-set high-water mark cannot tell runs apart: freed pages stay resident in the allocator.)

The `torch.cuda` module is injectable (`cuda=`), so the GPU probe's bookkeeping is tested on a CPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

from vidcost.profiling.record import DECODE, STAGES

MEASURED_STAGES = (*STAGES, DECODE)  # nested windows (ttft, layer_NN) are not measured apart
_RANGE_PREFIX = "vidcost::"


@dataclass(frozen=True)
class MemoryMeasurement:
    """What one memory run allocated.

    Attributes:
        peak_increase_bytes: the run's peak allocation above what was allocated when it began.
        stage_peak_increase_bytes: per stage, the peak above what was allocated when the stage began.
        peak_memory_bytes: the allocator's peak including what was resident at the start (weights, inputs).
        source: "cuda_allocator" or "cpu_allocator_events".
    """

    peak_increase_bytes: int
    stage_peak_increase_bytes: dict[str, int]
    peak_memory_bytes: int
    source: str

    def __str__(self) -> str:
        return f"MemoryMeasurement(+{self.peak_increase_bytes / 2**20:.1f} MiB peak above {self.source} baseline)"


@dataclass
class CudaAllocatorMemory:
    """Allocator peaks of one CUDA device over a run and its stage windows."""

    device: str = "cuda:0"
    cuda: Any = None
    source: str = "cuda_allocator"
    result: MemoryMeasurement | None = None
    _run_peak: int = 0
    _stage_peaks: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cuda is None:
            import torch

            self.cuda = torch.cuda

    @contextlib.contextmanager
    def run(self) -> Iterator["CudaAllocatorMemory"]:
        """Measure the enclosed run; the result is in `.result` afterwards."""
        self._stage_peaks = {}
        baseline = self._allocated()
        self.cuda.reset_peak_memory_stats(self.device)
        self._run_peak = baseline
        yield self
        self._run_peak = max(self._run_peak, self._peak())
        self.result = MemoryMeasurement(self._run_peak - baseline, dict(self._stage_peaks), self._run_peak,
                                        self.source)

    @contextlib.contextmanager
    def window(self, stage: str) -> Iterator[None]:
        """A stage's peak above its start; other windows (ttft, layer_NN) pass through unmeasured."""
        if stage not in MEASURED_STAGES:
            yield
            return
        # Resetting the peak loses what came before: keep the run's peak so far first.
        self._run_peak = max(self._run_peak, self._peak())
        start = self._allocated()
        self.cuda.reset_peak_memory_stats(self.device)
        try:
            yield
        finally:
            peak = self._peak()
            self._run_peak = max(self._run_peak, peak)
            self._stage_peaks[stage] = max(self._stage_peaks.get(stage, 0), peak - start)

    def _allocated(self) -> int:
        return int(self.cuda.memory_allocated(self.device))

    def _peak(self) -> int:
        return int(self.cuda.max_memory_allocated(self.device))


@dataclass
class CpuAllocatorEvents:
    """Allocation peaks of a CPU run, from `torch.profiler`'s memory events.

    Args:
        resident_bytes: what was allocated before the run (weights, buffers, inputs), which the events
            do not see; `peak_memory_bytes` is it plus the run's peak increase.
    """

    resident_bytes: int = 0
    source: str = "cpu_allocator_events"
    result: MemoryMeasurement | None = None

    @contextlib.contextmanager
    def run(self) -> Iterator["CpuAllocatorEvents"]:
        """Measure the enclosed run; the result is in `.result` afterwards."""
        from torch.profiler import ProfilerActivity, profile

        prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        with _quiet_stderr():  # kineto prints a "profiler_start" line of its own
            prof.start()
        try:
            yield self
        finally:
            with _quiet_stderr():
                prof.stop()
        events = prof.profiler.kineto_results.events()
        allocations = [(e.start_ns(), int(e.nbytes())) for e in events if e.name() == "[memory]"]
        ranges = [(e.name().removeprefix(_RANGE_PREFIX), e.start_ns(), e.start_ns() + e.duration_ns())
                  for e in events if e.name().startswith(_RANGE_PREFIX)]
        peak, stages = allocation_peaks(allocations, ranges)
        self.result = MemoryMeasurement(peak, stages, self.resident_bytes + peak, self.source)
        # torch's profile object sits in a reference cycle that keeps its results (an event per allocation,
        # native memory) alive until the cyclic collector runs: a long sweep grew by them cell after cell.
        # Dropping the link to the results frees them now.
        del events
        prof.profiler = None

    def window(self, stage: str) -> contextlib.AbstractContextManager:
        """A `record_function` range named after the stage (other windows pass through)."""
        if stage not in MEASURED_STAGES:
            return contextlib.nullcontext()
        from torch.profiler import record_function

        return record_function(_RANGE_PREFIX + stage)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C++ logging bypasses sys.stderr) for the enclosed call."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (an embedded interpreter): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def allocation_peaks(allocations: list[tuple[int, int]], ranges: list[tuple[str, int, int]]
                     ) -> tuple[int, dict[str, int]]:
    """Peak of the running allocation sum, overall and within each named time range.

    Args:
        allocations: (time, bytes) of every allocation (+) and free (−).
        ranges: (stage, start, end) time ranges; a stage may have several.

    Returns:
        The overall peak above the start (≥ 0), and per stage the largest peak of its ranges above the
        running sum at that range's start.
    """
    import bisect
    import itertools

    allocations = sorted(allocations)
    times = [time for time, _ in allocations]
    running = list(itertools.accumulate(nbytes for _, nbytes in allocations))  # allocated above the start
    peak = max([0, *running])
    stages: dict[str, int] = {}
    for stage, start, end in ranges:
        first, last = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        level = running[first - 1] if first else 0  # allocated when the range began
        stages[stage] = max(stages.get(stage, 0), max([level, *running[first:last]]) - level)
    return peak, stages


def resident_bytes(model: Any, *tensors: Any) -> int:
    """Bytes of a model's parameters and buffers and of the given tensors: what a run starts with."""
    held = [*model.parameters(), *model.buffers(), *tensors]
    return sum(int(t.numel() * t.element_size()) for t in held)


def make_memory_probe(device: str, resident: int = 0) -> Any:
    """The memory probe of a device: the CUDA allocator on "cuda*", allocator events on the CPU."""
    return CudaAllocatorMemory(device) if device.startswith("cuda") else CpuAllocatorEvents(resident)
