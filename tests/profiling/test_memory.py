"""Peak memory probes: RSS high-water mark (resettable on Linux) and the CUDA allocator peak."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vidcost.profiling.memory import CudaPeakMemory, RssPeakMemory, make_peak_memory


def test_rss_from_a_fake_proc_directory(tmp_path):
    (tmp_path / "status").write_text("Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  100000 kB\n")
    (tmp_path / "clear_refs").write_text("")
    probe = RssPeakMemory(proc=tmp_path)
    assert probe.source == "rss"
    assert probe.peak_bytes() == 204800 * 1024
    probe.reset()
    assert (tmp_path / "clear_refs").read_text() == "5"
    assert probe.increase_bytes() is None  # RSS cannot tell what the run itself added


def test_rss_falls_back_to_the_lifetime_peak(tmp_path):
    probe = RssPeakMemory(proc=tmp_path / "missing")
    assert probe.source == "rss_lifetime" and probe.peak_bytes() > 10 * 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux-only")
def test_real_rss_peak_sees_an_allocation_and_resets():
    probe = make_peak_memory("cpu")
    probe.reset()
    before = probe.peak_bytes()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    during = probe.peak_bytes()
    del block
    assert during - before > 48 * 2**20
    if probe.source == "rss":
        probe.reset()
        assert probe.peak_bytes() < during - 32 * 2**20


def test_cuda_peak_through_a_fake_cuda_module():
    calls = []

    class FakeCuda:
        def reset_peak_memory_stats(self, device):
            calls.append(("reset", device))

        def memory_allocated(self, device):
            calls.append(("now", device))
            return 100000000

        def max_memory_allocated(self, device):
            calls.append(("peak", device))
            return 123456789

    probe = CudaPeakMemory("cuda:1", cuda=FakeCuda())
    probe.reset()
    assert probe.peak_bytes() == 123456789 and probe.source == "cuda_max_allocated"
    assert probe.increase_bytes() == 23456789
    assert calls[:3] == [("reset", "cuda:1"), ("now", "cuda:1"), ("peak", "cuda:1")]


@pytest.mark.gpu
def test_real_cuda_peak():
    import torch

    probe = make_peak_memory("cuda:0")
    probe.reset()
    x = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    assert probe.peak_bytes() >= 256 * 2**20
    del x
