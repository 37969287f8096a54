"""StageTimer: named timing windows per run, with a CUDA-events backend (GPU) and a perf_counter_ns one (CPU).

One interface, two backends. A backend makes *marks* and measures the milliseconds between two marks;
the timer does the bookkeeping: windows may nest (`ttft` around everything, `layer_03` inside
`llm_prefill`) and may repeat within a run (`selection` before the LLM and again inside it); a stage's
sample for a run is the sum of its windows, except for per-step stages (`decode`), where every window
is a sample of its own.

On GPU, CUDA events are recorded on the stream and the host never waits at a window edge: a
synchronise inside a prefill would drain the GPU while the host launches the next kernels, letting
launch latency into the result (worst for short, pruned runs). The device is synchronised once per
run, when the windows are read (`finish_run`), so the number of synchronisations does not grow with
the number of windows or layers (DESIGN §6).

The clock, the event class and the synchronise function are injectable, so the bookkeeping and unit
handling of the GPU path are tested on a CPU through the very same classes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from vidcost.errors import ProfilingError


class PerfCounterBackend:
    """Host wall clock: `time.perf_counter_ns` (or an injected nanosecond clock)."""

    name = "perf_counter_ns"

    def __init__(self, clock: Callable[[], int] = time.perf_counter_ns,
                 synchronize: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self._synchronize = synchronize

    def mark(self) -> int:
        if self._synchronize is not None:  # timing a GPU with the host clock needs a sync first
            self._synchronize()
        return self.clock()

    def elapsed_ms(self, start: int, end: int) -> float:
        return (end - start) / 1e6  # ns → ms

    def flush(self) -> None:
        """Nothing pending: host marks are final."""


class CudaEventBackend:
    """CUDA events recorded on the timed device's current stream; `elapsed_time` is read after one synchronise.

    Args:
        event_factory: builds an event with `record(stream)` and `elapsed_time(other) -> ms`
            (default `torch.cuda.Event(enable_timing=True)`).
        synchronize: waits for the device (default `torch.cuda.synchronize(device)`); called once per run,
            in `flush`, never at a window edge.
        device: the device being timed ("cuda:1"); events go on its current stream. None: the current
            device, which is only right for "cuda:1" after `torch.cuda.set_device`.
    """

    name = "cuda_events"

    def __init__(self, event_factory: Callable[[], Any] | None = None,
                 synchronize: Callable[[], None] | None = None, device: str | None = None) -> None:
        self.stream: Callable[[], Any] = lambda: None  # None: Event.record's default, the current stream
        if event_factory is None or synchronize is None:
            import torch

            if not torch.cuda.is_available():
                raise ProfilingError("CUDA events need a CUDA device; profile with --device cpu instead")
            event_factory = event_factory or (lambda: torch.cuda.Event(enable_timing=True))
            synchronize = synchronize or (lambda: torch.cuda.synchronize(device))
            if device is not None:
                self.stream = lambda: torch.cuda.current_stream(device)
        self.event_factory = event_factory
        self.synchronize = synchronize

    def mark(self) -> Any:
        # No synchronise: the event is ordered on the stream after the work launched before it, so
        # earlier work cannot leak into the window, and the host runs ahead as it does in deployment.
        event = self.event_factory()
        event.record(self.stream())
        return event

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end))  # CUDA events report milliseconds

    def flush(self) -> None:
        self.synchronize()


@dataclass
class StageTimer:
    """Times named windows; `finish_run()` returns each stage's total milliseconds for the run.

    Attributes:
        backend: a `PerfCounterBackend` or `CudaEventBackend`.
        per_step: stages whose every window is one sample (a decode step), not summed per run.
        samples_ms: every finished run's per-stage milliseconds, stage → list (raw samples kept).
    """

    backend: Any
    per_step: tuple[str, ...] = ("decode",)
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    _windows: list[tuple[str, Any, Any]] = field(default_factory=list)
    _open: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def window(self, stage: str) -> Iterator[None]:
        """Time the enclosed block as (part of) `stage`."""
        start = self.backend.mark()
        self._open.append(stage)
        try:
            yield
        finally:
            self._open.pop()
            self._windows.append((stage, start, self.backend.mark()))

    def finish_run(self) -> dict[str, float]:
        """Close the current run: sum each stage's windows, store them as one sample per stage.

        Raises:
            ProfilingError: a window is still open (a run cannot finish inside a window).
        """
        if self._open:
            raise ProfilingError(f"timing windows {self._open} are still open at the end of a run")
        self.backend.flush()
        run: dict[str, float] = {}
        for stage, start, end in self._windows:
            elapsed = self.backend.elapsed_ms(start, end)
            if stage in self.per_step:
                self.samples_ms.setdefault(stage, []).append(elapsed)
            run[stage] = run.get(stage, 0.0) + elapsed
        self._windows.clear()
        for stage, value in run.items():
            if stage not in self.per_step:
                self.samples_ms.setdefault(stage, []).append(value)
        return run

    def discard_run(self) -> None:
        """Drop the windows of the current run (a warm-up run)."""
        self.backend.flush()
        self._windows.clear()

    def reset(self) -> None:
        """Forget all samples."""
        self.samples_ms.clear()
        self._windows.clear()


def make_timer(device: str) -> StageTimer:
    """The timer for a device: CUDA events on "cuda*", perf_counter_ns on the CPU."""
    return StageTimer(CudaEventBackend(device=device) if device.startswith("cuda") else PerfCounterBackend())
