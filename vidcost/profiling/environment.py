"""Environment capture: what a measurement ran on (device, driver, CUDA, library versions, threads, git)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any


def capture_environment(device: str, dtype: str, seed: int) -> dict[str, Any]:
    """The environment fields of a profile record (schema: device_name, driver, cuda, torch, ...)."""
    import torch
    import transformers

    on_gpu = device.startswith("cuda")
    return {
        "device_name": device_name(device),
        "driver": _nvidia_driver() if on_gpu else None,
        "cuda": torch.version.cuda if on_gpu else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "vidcost_git": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "seed": seed,
    }


def device_name(device: str) -> str:
    """The GPU's name ("NVIDIA H100 80GB HBM3") or the CPU model's ("AMD EPYC")."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(device)
    return _cpu_name()


def git_revision() -> str | None:
    """The vidcost checkout's commit (with "-dirty" when the tree has changes), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        driver = pynvml.nvmlSystemGetDriverVersion()
        return driver.decode() if isinstance(driver, bytes) else str(driver)
    except Exception:  # no NVML: the record says None  # noqa: BLE001
        return None
