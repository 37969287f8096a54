"""StageTimer bookkeeping through both real backend classes (fake clock / fake CUDA events on CPU)."""

from __future__ import annotations

import pytest

from vidcost.errors import ProfilingError
from vidcost.profiling.timer import CudaEventBackend, PerfCounterBackend, StageTimer, make_timer


def test_perf_counter_windows_nest_repeat_and_convert_ns_to_ms(step_clock):
    clock = step_clock(1_000_000)  # 1 ms per read
    timer = StageTimer(PerfCounterBackend(clock=clock))
    with timer.window("total"):            # reads 1 … 8
        with timer.window("selection"):    # 2, 3 → 1 ms
            pass
        with timer.window("llm_prefill"):  # 4, 5 → 1 ms
            pass
        with timer.window("selection"):    # 6, 7 → 1 ms (same stage again: summed)
            pass
    run = timer.finish_run()
    assert run == {"selection": 2.0, "llm_prefill": 1.0, "total": 7.0}
    assert timer.samples_ms == {"selection": [2.0], "llm_prefill": [1.0], "total": [7.0]}


def test_runs_accumulate_samples_and_warmups_are_discarded(step_clock):
    timer = StageTimer(PerfCounterBackend(clock=step_clock(500_000)))
    for _ in range(3):
        with timer.window("vision"):
            pass
        timer.finish_run()
    with timer.window("vision"):
        pass
    timer.discard_run()
    assert timer.samples_ms["vision"] == [0.5, 0.5, 0.5]
    timer.reset()
    assert timer.samples_ms == {}


def test_finishing_inside_an_open_window_is_an_error(step_clock):
    timer = StageTimer(PerfCounterBackend(clock=step_clock(1)))
    with pytest.raises(ProfilingError, match="still open"):
        with timer.window("total"):
            timer.finish_run()


def test_host_clock_synchronises_at_every_mark(step_clock):
    syncs = []
    backend = PerfCounterBackend(clock=step_clock(1), synchronize=lambda: syncs.append(1))
    timer = StageTimer(backend)
    with timer.window("vision"):
        pass
    assert len(syncs) == 2


class FakeEvent:
    """Stands in for torch.cuda.Event: a timestamp taken from a shared fake GPU clock at record()."""

    gpu_ms = 0.0

    def __init__(self) -> None:
        self.recorded_at: float | None = None

    def record(self, stream=None) -> None:
        FakeEvent.gpu_ms += 2.5
        self.recorded_at = FakeEvent.gpu_ms

    def elapsed_time(self, end: "FakeEvent") -> float:
        assert self.recorded_at is not None and end.recorded_at is not None
        return end.recorded_at - self.recorded_at


def test_cuda_event_backend_bookkeeping_with_fake_events():
    FakeEvent.gpu_ms = 0.0
    syncs = []
    timer = StageTimer(CudaEventBackend(event_factory=FakeEvent, synchronize=lambda: syncs.append(1)))
    with timer.window("ttft"):            # event at 2.5 … 10.0
        with timer.window("vision"):      # 5.0 → 7.5
            pass
    assert syncs == []                    # no synchronise at a window edge
    run = timer.finish_run()
    assert run == {"vision": 2.5, "ttft": 7.5}  # milliseconds straight from elapsed_time
    assert len(syncs) == 1                # one, before reading the events


def test_make_timer_picks_the_backend():
    assert isinstance(make_timer("cpu").backend, PerfCounterBackend)


def test_cuda_timer_syncs_and_records_on_the_profiled_device(monkeypatch):
    """make_timer("cuda:1") through the real torch.cuda defaults, torch.cuda's functions faked: the
    synchronise and the event's stream must be cuda:1's, not the current device's (cuda:0)."""
    import torch

    calls = []

    class Event(FakeEvent):
        def __init__(self, enable_timing=False):
            assert enable_timing  # elapsed_time needs timing events
            super().__init__()

        def record(self, stream=None):
            calls.append(("record", stream))
            super().record()

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(("sync", device)))
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    timer = make_timer("cuda:1")
    assert isinstance(timer.backend, CudaEventBackend)
    with timer.window("vision"):
        pass
    assert timer.finish_run()["vision"] == pytest.approx(2.5)
    assert calls == [("record", "stream of cuda:1")] * 2 + [("sync", "cuda:1")]


@pytest.mark.gpu
def test_cuda_event_window_agrees_with_a_synchronised_wall_clock():
    """Over the same >= 50 ms of GPU work, the event window and a host clock around a synchronise agree (10 %)."""
    import time

    import torch

    timer = make_timer("cuda:0")
    assert isinstance(timer.backend, CudaEventBackend)
    x = torch.randn(4096, 4096, device="cuda")
    steps = 1
    while True:  # grow the work until the wall clock sees at least 50 ms
        torch.cuda.synchronize()
        start = time.perf_counter()
        with timer.window("matmul"):
            for _ in range(steps):
                y = x @ x
        torch.cuda.synchronize()
        wall_ms = (time.perf_counter() - start) * 1e3
        event_ms = timer.finish_run()["matmul"]
        if wall_ms >= 50:
            break
        steps *= 2
    del y
    assert event_ms == pytest.approx(wall_ms, rel=0.10)
