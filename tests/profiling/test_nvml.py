"""NvmlSampler through a fake NVML module: unit conversions, peak memory, energy rules."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from vidcost.errors import ProfilingError
from vidcost.profiling.nvml import NvmlSampler


class FakeNvml:
    """Memory in bytes, power in mW, energy counter in mJ — as pynvml reports them."""

    def __init__(self, energy: bool = True) -> None:
        self.used = iter(range(1_000, 10_000_000, 1_000))
        self.energy_mj = 50_000.0
        self.has_energy = energy
        self.inits = 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=next(self.used), total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle):
        return 250_000  # 250 W in milliwatts

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.has_energy:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        self.energy_mj += 12_500.0  # +12.5 J per read
        return self.energy_mj


def test_converts_milliwatts_and_millijoules(step_clock):
    nvml = FakeNvml()
    sampler = NvmlSampler(nvml=nvml, interval_s=0.001, clock=step_clock(0.05))
    sampler.start()
    time.sleep(0.02)
    summary = sampler.stop()
    assert summary.avg_power_w == pytest.approx(250.0)          # 250 000 mW → 250 W
    assert summary.energy_j == pytest.approx(12.5)              # counter difference 12 500 mJ → 12.5 J
    assert summary.samples >= 2
    assert summary.peak_used_bytes == 1_000 * summary.samples   # the last, largest reading
    assert nvml.inits == 1


def test_short_windows_report_no_energy(step_clock):
    sampler = NvmlSampler(nvml=FakeNvml(), interval_s=0.001, clock=step_clock(0.001), min_energy_window_s=0.1)
    with sampler:
        pass
    assert sampler.summary.energy_j is None and sampler.summary.avg_power_w == pytest.approx(250.0)


def test_short_windows_pool_their_energy_over_repeats(step_clock):
    """A 30 ms prefill is too short for NVML's counter alone; four of them together are long enough."""
    from vidcost.profiling.nvml import pooled_energy_j

    sampler = NvmlSampler(nvml=FakeNvml(), interval_s=10.0, clock=step_clock(0.01), min_energy_window_s=0.1)
    windows = []
    for _ in range(4):
        with sampler:  # four clock reads: 0.03 s
            pass
        windows.append(sampler.summary)
    assert all(w.energy_j is None and w.window_energy_j == pytest.approx(12.5) for w in windows)
    assert all(w.duration_s == pytest.approx(0.03) for w in windows)
    assert pooled_energy_j(windows[:3]) is None        # 0.09 s in all: still too short
    assert pooled_energy_j(windows) == pytest.approx(12.5)  # 0.12 s: joules per window
    assert pooled_energy_j([]) is None


def test_energy_from_power_when_the_counter_is_missing(step_clock):
    clock = step_clock(0.1)  # every clock read advances 0.1 s
    sampler = NvmlSampler(nvml=FakeNvml(energy=False), interval_s=10.0, clock=clock)
    sampler.start()          # start time, first sample
    summary = sampler.stop()  # second sample, then the duration read
    # Two samples 0.1 s apart at 250 W: trapezoid 25 J.
    assert summary.energy_j == pytest.approx(25.0)


def test_unusable_nvml_is_a_profiling_error():
    class Broken(FakeNvml):
        def nvmlDeviceGetHandleByIndex(self, index):
            raise RuntimeError("NVML_ERROR_INVALID_ARGUMENT")

    with pytest.raises(ProfilingError, match="NVML is not usable on device 3"):
        NvmlSampler(device_index=3, nvml=Broken())


def test_device_found_by_uuid_not_by_index():
    """Under CUDA_VISIBLE_DEVICES=3, torch's cuda:0 is NVML's device 3: the UUID says which."""
    asked = []

    class ByUuid(FakeNvml):
        def nvmlDeviceGetHandleByIndex(self, index):
            raise AssertionError("torch's index is not NVML's")

        def nvmlDeviceGetHandleByUUID(self, uuid):
            asked.append(uuid)
            return ("gpu", uuid)

    sampler = NvmlSampler(device_uuid="58d0a8d6-0b2c-7d4e-1f2a-3b4c5d6e7f80", nvml=ByUuid())
    assert sampler._handle == ("gpu", "GPU-58d0a8d6-0b2c-7d4e-1f2a-3b4c5d6e7f80")
    NvmlSampler(device_uuid="GPU-58d0a8d6-0b2c-7d4e-1f2a-3b4c5d6e7f80", nvml=ByUuid())  # prefix not doubled
    assert asked == ["GPU-58d0a8d6-0b2c-7d4e-1f2a-3b4c5d6e7f80"] * 2


def test_context_manager_keeps_the_summary(step_clock):
    sampler = NvmlSampler(nvml=FakeNvml(), interval_s=0.001, clock=step_clock(0.05))
    assert sampler.summary is None
    with sampler:
        pass
    assert sampler.summary.avg_power_w == pytest.approx(250.0) and not sampler._thread.is_alive()


@pytest.mark.gpu
def test_real_nvml_samples_the_torch_device_by_uuid():
    import torch

    uuid = str(torch.cuda.get_device_properties(0).uuid)
    with NvmlSampler(device_uuid=uuid, interval_s=0.005) as sampler:
        time.sleep(0.05)
    assert sampler.summary.peak_used_bytes > 0


@pytest.mark.gpu
def test_real_nvml_samples_the_device():
    sampler = NvmlSampler(interval_s=0.005)
    sampler.start()
    time.sleep(0.2)
    summary = sampler.stop()
    assert summary.peak_used_bytes > 0 and summary.samples > 5
    assert summary.avg_power_w is None or summary.avg_power_w > 1
