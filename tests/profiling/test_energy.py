"""Energy blocks: back-to-back runs of one configuration per block, blocks alternating, J per prefill.

A fake NVML module and a fake clock stand in for the GPU's energy counter and time: configuration "a"
draws 300 W for 0.125 s per run, "b" 300 W for 0.0625 s. What only a GPU can show — that its real counter
moves over a ≥ 1 s block — is the `gpu` test's part.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vidcost.profiling.energy import measure_energy_blocks
from vidcost.profiling.nvml import NvmlSampler


class _Clocked:
    """A fake clock and an energy counter integrating a fixed 300 W over it."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    # NVML module: the counter reads the integral of 300 W over the fake time, in mJ.
    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=2**30)

    def nvmlDeviceGetPowerUsage(self, handle):
        return 300_000

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return 300.0 * self.now * 1000.0


def test_joules_per_prefill_from_alternating_blocks():
    fake = _Clocked()
    sampler = NvmlSampler(nvml=fake, interval_s=60.0, clock=fake.clock)
    order = []
    run = lambda name, seconds: lambda: (order.append(name), fake.advance(seconds))  # noqa: E731
    summaries = measure_energy_blocks([("a", run("a", 0.125)), ("b", run("b", 0.0625))], sampler, blocks=2,
                                      min_block_s=1.0, idle_s=0.0, clock=fake.clock)
    assert order == (["a"] * 8 + ["b"] * 16) * 2  # each block ≥ 1 s of one configuration; blocks alternate
    a, b = summaries["a"], summaries["b"]
    assert a.energy_j == pytest.approx(37.5) and b.energy_j == pytest.approx(18.75)  # 300 W × run time
    assert [block.runs for block in a.blocks] == [8, 8] and all(bl.seconds >= 1.0 for bl in a.blocks)
    assert a.energy_j_iqr == pytest.approx(0.0) and a.power_w == pytest.approx(300.0)
    assert a.power_source == "energy/time"


def test_a_block_runs_at_least_once_and_until_its_minimum_length():
    fake = _Clocked()
    sampler = NvmlSampler(nvml=fake, interval_s=60.0, clock=fake.clock)
    slow = measure_energy_blocks([("slow", lambda: fake.advance(6.0))], sampler, blocks=1, idle_s=0.0,
                                 clock=fake.clock)
    assert slow["slow"].blocks[0].runs == 1 and slow["slow"].energy_j == pytest.approx(1800.0)
    short = measure_energy_blocks([("short", lambda: fake.advance(2.5))], sampler, blocks=1, idle_s=0.0,
                                  clock=fake.clock)
    assert short["short"].blocks[0].runs == 2  # the default block lasts ≥ 5 s: ≥ 50 steps of the counter


class _Busy(_Clocked):
    """The counter integrates 300 W while a prefill runs and 60 W while the GPU idles."""

    def __init__(self) -> None:
        super().__init__()
        self.millijoules = 0.0

    def spend(self, seconds: float, watts: float) -> None:
        self.now += seconds
        self.millijoules += watts * seconds * 1000.0

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        return self.millijoules

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return 1980 if clock == 1 else 2619

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000  # mW


def test_idle_power_is_measured_before_every_block_and_subtracted():
    fake = _Busy()
    sampler = NvmlSampler(nvml=fake, interval_s=60.0, clock=fake.clock)
    idles = []

    def sleep(seconds):
        idles.append(seconds)
        fake.spend(seconds, 60.0)

    summaries = measure_energy_blocks([("a", lambda: fake.spend(0.5, 300.0)), ("b", lambda: fake.spend(0.25, 300.0))],
                                      sampler, blocks=2, min_block_s=1.0, idle_s=1.0, clock=fake.clock, sleep=sleep)
    assert idles == [1.0] * 4  # a cooldown window before each of the four blocks
    a, b = summaries["a"], summaries["b"]
    assert all(block.idle_power_w == pytest.approx(60.0) for block in a.blocks + b.blocks)
    assert a.energy_j == pytest.approx((300 - 60) * 0.5) and b.energy_j == pytest.approx((300 - 60) * 0.25)
    state = a.blocks[0].to_dict()
    assert state["sm_clock_mhz"] == 1980 and state["memory_clock_mhz"] == 2619 and state["power_limit_w"] == 700.0
    assert state["joules"] == pytest.approx(300.0 * 1.0)  # the raw block energy is kept beside


@pytest.mark.gpu
def test_real_energy_over_a_one_second_block():
    import torch

    sampler = NvmlSampler(device_uuid=str(torch.cuda.get_device_properties(0).uuid))
    x = torch.randn(4096, 4096, device="cuda")

    def matmuls():
        for _ in range(20):
            x @ x

    summary = measure_energy_blocks([("gemm", matmuls)], sampler, blocks=1, min_block_s=1.0,
                                    synchronize=torch.cuda.synchronize)["gemm"]
    block = summary.blocks[0]
    assert block.seconds >= 1.0 and block.joules > 0 and summary.energy_j > 0
    assert summary.power_w is not None and 10 < summary.power_w < 2000
