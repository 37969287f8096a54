"""A sweep worker hands freed heap memory back after each cell, so a long sweep's resident memory stays flat."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest
import torch

from vidcost.sweep.worker import return_freed_memory


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists() or ctypes.util.find_library("c") is None,
                    reason="needs Linux /proc and a C library")
def test_freed_tensors_leave_the_resident_set():
    # A freed 4 MiB block raises glibc's mmap threshold, so the next 4 MiB tensors land on the heap, where
    # freeing them alone does not shrink the process (one survivor at the top pins the heap).
    raise_threshold = torch.ones(1 << 20)
    del raise_threshold
    blocks = [torch.ones(1 << 20) for _ in range(100)]  # 100 × 4 MiB, touched
    survivor = blocks[-1]
    del blocks
    before = resident_mib()
    return_freed_memory()
    after = resident_mib()
    assert survivor.sum() == 1 << 20
    assert before - after > 200, f"RSS {before:.0f} → {after:.0f} MiB: the freed 400 MiB were not returned"
