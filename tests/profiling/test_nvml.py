"""NvmlSampler through a fake NVML module: units, instantaneous power, MIG and GPU UUIDs, the 50 Hz cap.

The fake stands in for pynvml's functions and units (bytes, milliwatts, millijoules) on a CPU; what only
a GPU can show — that the real device is the torch device and that its counter moves — the `gpu` tests
below check on a real device.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from vidcost.errors import ProfilingError
from vidcost.profiling.nvml import MAX_SAMPLE_HZ, NVML_FI_DEV_POWER_INSTANT, NvmlSampler


class FakeNvml:
    """Memory in bytes, power in mW, energy counter in mJ — as pynvml reports them."""

    def __init__(self, energy: bool = True, instant: bool = False) -> None:
        self.used = iter(range(1_000, 10_000_000, 1_000))
        self.energy_mj = 50_000.0
        self.has_energy, self.has_instant = energy, instant
        self.inits = 0

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=next(self.used), total=80 * 2**30)

    def nvmlDeviceGetPowerUsage(self, handle):
        return 250_000  # 250 W in milliwatts (NVML's one-second average on recent GPUs)

    def nvmlDeviceGetFieldValues(self, handle, fields):
        assert fields == [NVML_FI_DEV_POWER_INSTANT]
        if not self.has_instant:
            return [SimpleNamespace(nvmlReturn=3, value=SimpleNamespace(uiVal=0))]  # NVML_ERROR_NOT_SUPPORTED
        return [SimpleNamespace(nvmlReturn=0, value=SimpleNamespace(uiVal=400_000))]  # 400 W

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.has_energy:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        self.energy_mj += 12_500.0  # +12.5 J per read
        return self.energy_mj


def test_power_from_energy_over_time_without_the_instant_field(step_clock):
    nvml = FakeNvml()
    sampler = NvmlSampler(nvml=nvml, clock=step_clock(0.05))
    assert sampler.power_source == "energy/time"
    sampler.start()
    summary = sampler.stop()
    assert summary.energy_j == pytest.approx(12.5)              # counter difference 12 500 mJ → 12.5 J
    assert summary.power_w == pytest.approx(summary.energy_j / summary.duration_s)
    assert summary.power_source == "energy/time"
    assert summary.peak_used_bytes == 1_000 * summary.samples and nvml.inits == 1


def test_instantaneous_power_where_the_driver_has_the_field(step_clock):
    sampler = NvmlSampler(nvml=FakeNvml(instant=True), clock=step_clock(0.05))
    with sampler:
        pass
    assert sampler.summary.power_source == "instant" and sampler.summary.power_w == pytest.approx(400.0)


def test_averaged_readings_without_counter_or_field(step_clock):
    sampler = NvmlSampler(nvml=FakeNvml(energy=False), interval_s=10.0, clock=step_clock(0.1))
    sampler.start()           # start time, first sample
    summary = sampler.stop()  # second sample, then the duration read
    assert summary.power_source == "average" and summary.power_w == pytest.approx(250.0)
    assert summary.energy_j == pytest.approx(25.0)  # two samples 0.1 s apart at 250 W: trapezoid 25 J


def test_sampling_never_exceeds_50_hz():
    sampler = NvmlSampler(nvml=FakeNvml(), interval_s=0.001)
    assert sampler.interval_s == pytest.approx(1 / MAX_SAMPLE_HZ)
    sampler.start()
    time.sleep(0.25)
    summary = sampler.stop()
    assert summary.samples <= 0.25 * MAX_SAMPLE_HZ + 3  # + the start and stop samples, scheduling slack


def test_unusable_nvml_is_a_profiling_error():
    class Broken(FakeNvml):
        def nvmlDeviceGetHandleByIndex(self, index):
            raise RuntimeError("NVML_ERROR_INVALID_ARGUMENT")

    with pytest.raises(ProfilingError, match="NVML is not usable on device 3"):
        NvmlSampler(device_index=3, nvml=Broken())


class _ByUuid(FakeNvml):
    def __init__(self, known: set[str]) -> None:
        super().__init__()
        self.known, self.asked = known, []

    def nvmlDeviceGetHandleByIndex(self, index):
        raise AssertionError("torch's index is not NVML's")

    def nvmlDeviceGetHandleByUUID(self, uuid):
        self.asked.append(uuid)
        if uuid not in self.known:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return ("gpu", uuid)


def test_device_found_by_uuid_not_by_index():
    """Under CUDA_VISIBLE_DEVICES=3, torch's cuda:0 is NVML's device 3: the UUID says which."""
    uuid = "58d0a8d6-0b2c-7d4e-1f2a-3b4c5d6e7f80"
    nvml = _ByUuid({f"GPU-{uuid}"})
    assert NvmlSampler(device_uuid=uuid, nvml=nvml)._handle == ("gpu", f"GPU-{uuid}")
    NvmlSampler(device_uuid=f"GPU-{uuid}", nvml=nvml)  # prefix not doubled
    assert nvml.asked == [f"GPU-{uuid}"] * 2


def test_mig_instances_are_found_by_their_mig_uuid():
    uuid = "0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6"
    nvml = _ByUuid({f"MIG-{uuid}"})
    assert NvmlSampler(device_uuid=uuid, nvml=nvml)._handle == ("gpu", f"MIG-{uuid}")  # tried GPU- first
    assert NvmlSampler(device_uuid=f"MIG-{uuid}", nvml=nvml)._handle == ("gpu", f"MIG-{uuid}")
    with pytest.raises(ProfilingError, match="no device with UUID"):
        NvmlSampler(device_uuid="ffffffff-0000", nvml=nvml)


@pytest.mark.gpu
def test_real_nvml_device_is_the_torch_device():
    """NVML, asked by torch's UUID, names the same GPU torch does."""
    import pynvml
    import torch

    uuid = str(torch.cuda.get_device_properties(0).uuid)
    sampler = NvmlSampler(device_uuid=uuid)
    name = pynvml.nvmlDeviceGetName(sampler._handle)
    name = name.decode() if isinstance(name, bytes) else name
    assert name.replace("NVIDIA ", "") in torch.cuda.get_device_name(0) or torch.cuda.get_device_name(0) in name
    found = pynvml.nvmlDeviceGetUUID(sampler._handle)
    found = found.decode() if isinstance(found, bytes) else found
    assert found.removeprefix("GPU-").removeprefix("MIG-") == uuid.removeprefix("GPU-").removeprefix("MIG-")
    with sampler:
        time.sleep(0.2)
    assert sampler.summary.peak_used_bytes > 0 and sampler.summary.samples >= 3


class _NoMemory(FakeNvml):
    def nvmlDeviceGetMemoryInfo(self, handle):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")  # what a MIG instance may answer


class _NoPower(FakeNvml):
    def nvmlDeviceGetPowerUsage(self, handle):
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")


def test_a_refused_memory_read_leaves_the_peak_unknown_not_zero(step_clock):
    sampler = NvmlSampler(nvml=_NoMemory(energy=False), clock=step_clock(0.05))
    sampler.start()
    summary = sampler.stop()
    assert summary.peak_used_bytes is None and summary.power_w == pytest.approx(250.0)


def test_a_refused_power_read_keeps_the_memory_peak(step_clock):
    sampler = NvmlSampler(nvml=_NoPower(energy=False), clock=step_clock(0.05))
    sampler.start()
    summary = sampler.stop()
    assert summary.peak_used_bytes is not None and summary.peak_used_bytes > 0 and summary.power_w is None
