"""NvmlSampler: device memory, power and energy from NVML (nvidia-ml-py), sampled on a background thread.

NVML reports memory in bytes, power in milliwatts and the total-energy counter in millijoules; the
sampler converts to bytes, watts and joules. Energy comes from the counter difference over the window
when the device has one (Volta and newer), else from integrating the power samples. NVML's counter
updates about every 10 ms and power is sampled only part of the time (DESIGN §6), so a window's
`energy_j` is only reported when it lasts at least `min_energy_window_s`; shorter windows (a fast
prefill) keep their reading in `window_energy_j`, and `pooled_energy_j` averages those over repeats
once the repeats together are long enough.

NVML numbers every GPU of the machine by PCI bus; torch numbers only the GPUs it can see
(CUDA_VISIBLE_DEVICES, CUDA's fastest-first order). So a torch device is found in NVML by its UUID
(`device_uuid`), not by its index: `cuda:0` of a job pinned to GPU 3 is NVML device 3.

The NVML module is injectable (`nvml=`): tests drive the same class with a fake module on a CPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from vidcost.errors import ProfilingError

MIN_ENERGY_WINDOW_S = 0.1


@dataclass(frozen=True)
class NvmlSummary:
    """What NVML saw over one sampling window.

    Attributes:
        peak_used_bytes: highest device memory in use (all processes).
        avg_power_w: mean of the power samples, watts.
        energy_j: joules over the window, or None when the window is too short to trust.
        duration_s: window length.
        samples: number of samples taken.
        window_energy_j: joules over the window whatever its length (None without counter or samples);
            trust it only pooled over repeats (`pooled_energy_j`).
        min_window_s: the shortest window whose energy is trusted.
    """

    peak_used_bytes: int
    avg_power_w: float | None
    energy_j: float | None
    duration_s: float
    samples: int
    window_energy_j: float | None = None
    min_window_s: float = MIN_ENERGY_WINDOW_S

    def __str__(self) -> str:
        energy = f"{self.energy_j:.2f} J" if self.energy_j is not None else "n/a"
        power = f"{self.avg_power_w:.1f} W" if self.avg_power_w is not None else "n/a"
        return f"NVML: peak {self.peak_used_bytes / 2**20:.0f} MiB, {power}, {energy} over {self.duration_s:.2f} s"


def pooled_energy_j(summaries: list[NvmlSummary]) -> float | None:
    """Joules per window, averaged over repeated windows that together last long enough (DESIGN §6).

    None when there are no windows, any lacks a reading, or together they are shorter than the
    longest `min_window_s` among them.
    """
    if not summaries or any(s.window_energy_j is None for s in summaries):
        return None
    if sum(s.duration_s for s in summaries) < max(s.min_window_s for s in summaries):
        return None
    return sum(s.window_energy_j for s in summaries) / len(summaries)  # type: ignore[misc]


@dataclass
class NvmlSampler:
    """Samples one device's used memory and power every `interval_s` on a daemon thread.

    Use as a context manager (the summary is then in `.summary`) or call `start()` / `stop()`; `stop()`
    returns an `NvmlSummary`. `device_uuid` (torch's `get_device_properties(i).uuid`, with or without
    the "GPU-" prefix) picks the device when given; `device_index` is NVML's own index otherwise.
    """

    device_index: int = 0
    device_uuid: str | None = None
    interval_s: float = 0.005
    nvml: Any = None
    clock: Callable[[], float] = time.monotonic
    min_energy_window_s: float = MIN_ENERGY_WINDOW_S
    _handle: Any = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _power_mw: list[float] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)
    _peak_used: int = 0
    _energy_start_mj: float | None = None
    _start_time: float = 0.0
    summary: NvmlSummary | None = None

    def __post_init__(self) -> None:
        if self.nvml is None:
            try:
                import pynvml
            except ImportError as err:
                raise ProfilingError("NVML sampling needs nvidia-ml-py; pip install nvidia-ml-py") from err
            self.nvml = pynvml
        which = f"GPU-{self.device_uuid.removeprefix('GPU-')}" if self.device_uuid else self.device_index
        try:
            self.nvml.nvmlInit()
            if self.device_uuid:
                self._handle = self.nvml.nvmlDeviceGetHandleByUUID(which)
            else:
                self._handle = self.nvml.nvmlDeviceGetHandleByIndex(self.device_index)
        except Exception as err:  # pynvml raises NVMLError subclasses; a fake may raise anything
            raise ProfilingError(f"NVML is not usable on device {which}: {err}") from err

    def start(self) -> "NvmlSampler":
        self._stop.clear()
        self._power_mw.clear()
        self._times.clear()
        self._peak_used = 0
        self._energy_start_mj = self._read_energy_mj()
        self._start_time = self.clock()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="vidcost-nvml", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> NvmlSummary:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        duration = self.clock() - self._start_time
        energy_end = self._read_energy_mj()
        if self._energy_start_mj is not None and energy_end is not None:
            window_j = (energy_end - self._energy_start_mj) / 1000.0  # mJ → J
        else:
            window_j = self._integrate_power_j()
        avg_power = sum(self._power_mw) / len(self._power_mw) / 1000.0 if self._power_mw else None  # mW → W
        return NvmlSummary(peak_used_bytes=self._peak_used, avg_power_w=avg_power,
                           energy_j=window_j if duration >= self.min_energy_window_s else None,
                           duration_s=duration, samples=len(self._power_mw), window_energy_j=window_j,
                           min_window_s=self.min_energy_window_s)

    def __enter__(self) -> "NvmlSampler":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.summary = self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        try:
            used = int(self.nvml.nvmlDeviceGetMemoryInfo(self._handle).used)  # bytes
            power = float(self.nvml.nvmlDeviceGetPowerUsage(self._handle))  # milliwatts
        except Exception:  # a failed sample is skipped, the window goes on  # noqa: BLE001
            return
        self._peak_used = max(self._peak_used, used)
        self._power_mw.append(power)
        self._times.append(self.clock())

    def _read_energy_mj(self) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))  # millijoules
        except Exception:  # not supported before Volta  # noqa: BLE001
            return None

    def _integrate_power_j(self) -> float | None:
        """Trapezoidal ∫ P dt over the samples (W·s = J)."""
        if len(self._times) < 2:
            return None
        joules = 0.0
        for i in range(1, len(self._times)):
            dt = self._times[i] - self._times[i - 1]
            joules += dt * (self._power_mw[i] + self._power_mw[i - 1]) / 2 / 1000.0
        return joules
