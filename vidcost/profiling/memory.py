"""PeakMemory: the peak memory of a measured window — CUDA allocator peak on GPU, peak RSS on CPU.

GPU: `torch.cuda.reset_peak_memory_stats` at the window start, `max_memory_allocated` at its end.
CPU: Linux lets a process reset its resident-set high-water mark (writing 5 to /proc/self/clear_refs),
and reports it as VmHWM in /proc/self/status; where that is not possible the lifetime peak
(`getrusage` ru_maxrss) is reported instead, and `source` says "rss_lifetime". RSS includes the
weights and the Python process, so it is an upper bound of what the run itself needs. On GPU the probe
also reports `increase_bytes()`, the allocator peak above the allocation at `reset()` — what the run
itself added (activations, KV, the pruning step), where the saving of a pruned run shows. On CPU that is
not observable (the allocator keeps freed pages, so RSS after a warm-up already holds them): None.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any


class CudaPeakMemory:
    """Allocator peak of one CUDA device (the `torch.cuda` module is injectable for tests)."""

    source = "cuda_max_allocated"

    def __init__(self, device: str = "cuda:0", cuda: Any = None) -> None:
        if cuda is None:
            import torch

            cuda = torch.cuda
        self.cuda = cuda
        self.device = device
        self.baseline = 0

    def reset(self) -> None:
        self.cuda.reset_peak_memory_stats(self.device)
        self.baseline = int(self.cuda.memory_allocated(self.device))

    def peak_bytes(self) -> int:
        return int(self.cuda.max_memory_allocated(self.device))

    def increase_bytes(self) -> int:
        """Peak above the allocation at `reset()`."""
        return max(0, self.peak_bytes() - self.baseline)


class RssPeakMemory:
    """Peak resident set size of this process, resettable on Linux."""

    def __init__(self, proc: str | Path = "/proc/self") -> None:
        self.proc = Path(proc)
        self.resettable = self._try_reset()
        self.source = "rss" if self.resettable else "rss_lifetime"

    def _try_reset(self) -> bool:
        try:
            (self.proc / "clear_refs").write_text("5")  # resets VmHWM to the current RSS
            return self._read_hwm() is not None
        except OSError:
            return False

    def reset(self) -> None:
        if self.resettable:
            self._try_reset()

    def increase_bytes(self) -> None:
        """Not observable from RSS (freed pages stay resident in the allocator's cache)."""
        return None

    def peak_bytes(self) -> int:
        hwm = self._read_hwm() if self.resettable else None
        if hwm is not None:
            return hwm
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes, Linux: KiB

    def _read_hwm(self) -> int | None:
        try:
            for line in (self.proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # "VmHWM:  123456 kB"
        except (OSError, ValueError, IndexError):
            return None
        return None


def make_peak_memory(device: str) -> Any:
    """The peak-memory probe of a device."""
    return CudaPeakMemory(device) if device.startswith("cuda") else RssPeakMemory()
