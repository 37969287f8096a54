"""NvmlSampler: device memory, power and energy from NVML (nvidia-ml-py), sampled on a background thread.

NVML reports memory in bytes, power in milliwatts and the total-energy counter in millijoules; the
sampler converts to bytes, watts and joules. Sampling is capped at 50 Hz (`MAX_SAMPLE_HZ`): a faster
poller would compete with the host thread that launches the timed kernels.

Power: recent drivers expose the instantaneous board power as the field `NVML_FI_DEV_POWER_INSTANT`;
`nvmlDeviceGetPowerUsage` on recent GPUs is an average over about a second, too slow for a prefill
(DESIGN §6). The sampler uses the instantaneous field where the driver has it (`power_source`
"instant"), and otherwise reports power as energy over time from the counter ("energy/time"), or, on
GPUs without the counter (before Volta), the mean of the averaged readings ("average").

Energy: the counter steps every 10–100 ms, so one fast prefill's window says little; per-prefill
energy is measured over blocks of back-to-back runs (`vidcost.profiling.energy`), each block one
sampler window of a second or more.

NVML numbers every GPU of the machine by PCI bus; torch numbers only the GPUs it can see
(CUDA_VISIBLE_DEVICES, CUDA's fastest-first order). So a torch device is found in NVML by its UUID
(`device_uuid`), not by its index: `cuda:0` of a job pinned to GPU 3 is NVML device 3. A MIG instance
has a `MIG-` UUID (NVML has no energy counter for it: energy is then None).

The NVML module is injectable (`nvml=`): tests drive the same class with a fake module on a CPU.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from vidcost.errors import ProfilingError

MAX_SAMPLE_HZ = 50.0
NVML_FI_DEV_POWER_INSTANT = 186  # nvml.h: instantaneous power usage in mW (driver R535 and newer)


@dataclass(frozen=True)
class NvmlSummary:
    """What NVML saw over one sampling window.

    Attributes:
        peak_used_bytes: highest device memory in use (all processes), or None when no memory read
            succeeded (a MIG instance refusing the query): unknown, never 0.
        power_w: board power over the window, watts (see `power_source`), or None.
        power_source: "instant" (mean of instantaneous samples), "energy/time" (counter over the window)
            or "average" (mean of NVML's averaged readings); None without any.
        energy_j: joules over the window from the counter (trapezoidal ∫P dt without one), or None.
        duration_s: window length.
        samples: number of samples taken.
    """

    peak_used_bytes: int | None
    power_w: float | None
    power_source: str | None
    energy_j: float | None
    duration_s: float
    samples: int

    def __str__(self) -> str:
        energy = f"{self.energy_j:.2f} J" if self.energy_j is not None else "n/a"
        power = f"{self.power_w:.1f} W ({self.power_source})" if self.power_w is not None else "n/a"
        peak = "n/a" if self.peak_used_bytes is None else f"{self.peak_used_bytes / 2**20:.0f} MiB"
        return f"NVML: peak {peak}, {power}, {energy} over {self.duration_s:.2f} s"


@dataclass
class NvmlSampler:
    """Samples one device's used memory and power every `interval_s` (≥ 1/50 s) on a daemon thread.

    Use as a context manager (the summary is then in `.summary`) or call `start()` / `stop()`; `stop()`
    returns an `NvmlSummary`. `device_uuid` (torch's `get_device_properties(i).uuid`, with or without
    its "GPU-"/"MIG-" prefix) picks the device when given; `device_index` is NVML's own index otherwise.
    """

    device_index: int = 0
    device_uuid: str | None = None
    interval_s: float = 1.0 / MAX_SAMPLE_HZ
    nvml: Any = None
    clock: Callable[[], float] = time.monotonic
    _handle: Any = None
    _instant: bool = False
    _counter: bool = False
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _power_mw: list[float] = field(default_factory=list)
    _times: list[float] = field(default_factory=list)
    _peak_used: int | None = None
    _energy_start_mj: float | None = None
    _start_time: float = 0.0
    summary: NvmlSummary | None = None

    def __post_init__(self) -> None:
        self.interval_s = max(self.interval_s, 1.0 / MAX_SAMPLE_HZ)
        if self.nvml is None:
            try:
                import pynvml
            except ImportError as err:
                raise ProfilingError("NVML sampling needs nvidia-ml-py; pip install nvidia-ml-py") from err
            self.nvml = pynvml
        try:
            self.nvml.nvmlInit()
            self._handle = self._find_handle()
        except ProfilingError:
            raise
        except Exception as err:  # pynvml raises NVMLError subclasses; a fake may raise anything
            raise ProfilingError(f"NVML is not usable on device {self.device_uuid or self.device_index}: {err}") from err
        self._instant = self._read_instant_mw() is not None
        self._counter = self.read_energy_mj() is not None

    def _find_handle(self) -> Any:
        if not self.device_uuid:
            return self.nvml.nvmlDeviceGetHandleByIndex(self.device_index)
        bare = self.device_uuid.removeprefix("GPU-").removeprefix("MIG-")
        prefixes = ("MIG-",) if self.device_uuid.startswith("MIG-") else ("GPU-", "MIG-")
        errors = []
        for prefix in prefixes:  # torch's UUID has no prefix; a MIG instance's is "MIG-…"
            try:
                return self.nvml.nvmlDeviceGetHandleByUUID(prefix + bare)
            except Exception as err:  # noqa: BLE001 - try the next form
                errors.append(f"{prefix}{bare}: {err}")
        raise ProfilingError(f"NVML has no device with UUID {bare} ({'; '.join(errors)})")

    @property
    def power_source(self) -> str:
        """How this device's power is reported (see the module docstring)."""
        if self._instant:
            return "instant"
        return "energy/time" if self._counter else "average"

    def start(self) -> "NvmlSampler":
        self._stop.clear()
        self._power_mw.clear()
        self._times.clear()
        self._peak_used = None
        self._energy_start_mj = self.read_energy_mj()
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
        energy_end = self.read_energy_mj()
        if self._energy_start_mj is not None and energy_end is not None:
            energy = (energy_end - self._energy_start_mj) / 1000.0  # mJ → J
        else:
            energy = self._integrate_power_j()
        source = self.power_source
        mean_mw = sum(self._power_mw) / len(self._power_mw) if self._power_mw else None
        if source == "energy/time":
            power = energy / duration if energy is not None and duration > 0 else None
        else:
            power = mean_mw / 1000.0 if mean_mw is not None else None  # mW → W
        return NvmlSummary(peak_used_bytes=self._peak_used, power_w=power, power_source=source if power else None,
                           energy_j=energy, duration_s=duration, samples=len(self._power_mw))

    def __enter__(self) -> "NvmlSampler":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.summary = self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        # Memory and power are read apart: a device that refuses one (a MIG instance's power) keeps the other.
        try:
            used = int(self.nvml.nvmlDeviceGetMemoryInfo(self._handle).used)  # bytes
            self._peak_used = used if self._peak_used is None else max(self._peak_used, used)
        except Exception:  # a failed read is skipped, the window goes on  # noqa: BLE001
            pass
        try:
            power = self._read_instant_mw() if self._instant else float(self.nvml.nvmlDeviceGetPowerUsage(self._handle))
        except Exception:  # noqa: BLE001
            power = None
        if power is not None:
            self._power_mw.append(power)
            self._times.append(self.clock())

    def device_state(self) -> dict[str, float | None]:
        """The SM and memory clocks (MHz) and the enforced power limit (W) now, None where NVML says nothing:
        what an energy figure depends on besides the work."""
        def read(call: Callable[[], float], scale: float = 1.0) -> float | None:
            try:
                return float(call()) * scale
            except Exception:  # noqa: BLE001 - not supported on this device or binding
                return None

        sm, memory = getattr(self.nvml, "NVML_CLOCK_SM", 1), getattr(self.nvml, "NVML_CLOCK_MEM", 2)
        return {"sm_clock_mhz": read(lambda: self.nvml.nvmlDeviceGetClockInfo(self._handle, sm)),
                "memory_clock_mhz": read(lambda: self.nvml.nvmlDeviceGetClockInfo(self._handle, memory)),
                "power_limit_w": read(lambda: self.nvml.nvmlDeviceGetEnforcedPowerLimit(self._handle), 1e-3)}

    def _read_instant_mw(self) -> float | None:
        """NVML_FI_DEV_POWER_INSTANT in milliwatts, or None where the driver lacks the field."""
        try:
            (value,) = self.nvml.nvmlDeviceGetFieldValues(self._handle, [NVML_FI_DEV_POWER_INSTANT])
        except Exception:  # noqa: BLE001 - old driver or bindings: no such field
            return None
        if getattr(value, "nvmlReturn", 1) != 0:
            return None
        return float(value.value.uiVal)

    def read_energy_mj(self) -> float | None:
        """The device's total-energy counter in millijoules, or None (before Volta; MIG instances)."""
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # noqa: BLE001 - not supported
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
