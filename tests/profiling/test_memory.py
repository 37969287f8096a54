"""Memory probes: a run's own peak allocation above its start, overall and per stage, on CPU and GPU.

The CPU probe is the real thing (torch.profiler's allocator events). The CUDA probe's bookkeeping is
driven with a fake `torch.cuda` module: it stands in for the caching allocator's counters; that a real
allocation moves them is the `gpu` test's part.
"""

from __future__ import annotations

import pytest
import torch

from vidcost.profiling.memory import CpuAllocatorEvents, CudaAllocatorMemory, allocation_peaks, make_memory_probe

MIB = 2**20


def test_allocation_peaks_overall_and_per_stage():
    events = [(1, 100), (2, 50), (3, -100), (5, 30), (6, 200), (7, -230), (9, 10)]
    peak, stages = allocation_peaks(events, [("vision", 0, 3), ("llm_prefill", 4, 7), ("llm_prefill", 8, 10)])
    assert peak == 280                      # 50 left, + 30, + 200
    assert stages == {"vision": 150, "llm_prefill": 230}  # above the 50 allocated when it began


def test_cpu_probe_sees_a_run_allocate_and_stages_apart():
    probe = CpuAllocatorEvents(resident_bytes=1000)
    with probe.run():
        with probe.window("vision"):
            a = torch.empty(8 * MIB, dtype=torch.uint8)
            a.fill_(1)
        with probe.window("llm_prefill"):
            b = torch.empty(2 * MIB, dtype=torch.uint8)
            del b
        with probe.window("layer_00"):  # nested windows are not measured apart
            pass
    result = probe.result
    assert result.source == "cpu_allocator_events"
    assert result.stage_peak_increase_bytes == {"vision": 8 * MIB, "llm_prefill": 2 * MIB}
    assert result.peak_increase_bytes == 10 * MIB and result.peak_memory_bytes == 1000 + 10 * MIB
    del a


def test_cuda_probe_bookkeeping_with_a_fake_allocator():
    class FakeCuda:
        """allocated / peak counters of a caching allocator, moved by the test."""

        def __init__(self):
            self.allocated, self.peak, self.resets = 1000, 1000, []

        def reset_peak_memory_stats(self, device):
            self.resets.append(device)
            self.peak = self.allocated

        def memory_allocated(self, device):
            return self.allocated

        def max_memory_allocated(self, device):
            return self.peak

        def allocate(self, n):
            self.allocated += n
            self.peak = max(self.peak, self.allocated)

    cuda = FakeCuda()
    probe = CudaAllocatorMemory("cuda:1", cuda=cuda)
    with probe.run():
        with probe.window("vision"):
            cuda.allocate(500)
            cuda.allocate(-500)
        with probe.window("llm_prefill"):
            cuda.allocate(300)
    result = probe.result
    assert result.stage_peak_increase_bytes == {"vision": 500, "llm_prefill": 300}
    assert result.peak_increase_bytes == 500 and result.peak_memory_bytes == 1500  # the run's peak survives resets
    assert set(cuda.resets) == {"cuda:1"} and result.source == "cuda_allocator"


def test_probe_for_a_device():
    assert isinstance(make_memory_probe("cpu"), CpuAllocatorEvents)


@pytest.mark.gpu
def test_real_cuda_probe_sees_an_allocation():
    probe = make_memory_probe("cuda:0")
    with probe.run():
        with probe.window("llm_prefill"):
            x = torch.empty(256 * MIB, dtype=torch.uint8, device="cuda")
            del x
    assert probe.result.stage_peak_increase_bytes["llm_prefill"] >= 256 * MIB
    assert probe.result.peak_increase_bytes >= 256 * MIB


def test_the_cpu_probe_leaves_no_profiler_results_for_the_collector():
    """torch.profiler's profile object sits in a reference cycle; the probe cuts it from its results (an event
    per allocation, native memory), so a long sweep does not keep every cell's until the collector runs."""
    import gc

    import torch

    from vidcost.profiling.memory import CpuAllocatorEvents

    probe = CpuAllocatorEvents(resident_bytes=0)
    gc.collect()
    with probe.run():
        with probe.window("llm_prefill"):
            torch.ones(1 << 16).sum()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert probe.result.peak_increase_bytes >= 4 << 16
    assert "_ProfilerStats" not in left, left  # the results: freed with the link to them, not by the collector
