"""Energy per prefill: blocks of back-to-back runs of one configuration, blocks of configurations alternating.

NVML's energy counter steps every 10–100 ms and recent GPUs average power over about a second
(DESIGN §6), so the energy of one fast prefill cannot be read from a window around it, and a window
around runs that alternate configurations mixes their energy. Instead each configuration runs
back-to-back for at least `min_block_s` (5 s: ≥ 50 counter updates at its slowest) per block, one NVML
window per block; blocks of the configurations alternate (A-block, B-block, A-block, …) so a drift of the
GPU's temperature or clock hits both alike. Before every block the GPU idles for `idle_s` (1 s): a
cooldown between configurations, and a window whose power is the idle power subtracted from the block —
joules per prefill = (block energy − idle power × block time) / runs, the energy the prefills added. The
runs are prefills only (vision to first token; the session runs them without decode steps). The median
and IQR over blocks are reported with each block's raw figures, its idle power, and the SM / memory
clocks and power limit NVML reported at its start.

The sampler, the clock and the synchronise function are injectable: the block logic is tested on a
CPU with a fake NVML module.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

MIN_BLOCK_S = 5.0  # NVML's energy counter steps every 10–100 ms: ≥ 50 steps per block
IDLE_S = 1.0  # the idle window before each block: cooldown and idle power


@dataclass(frozen=True)
class EnergyBlock:
    """One block of back-to-back runs of a configuration.

    Attributes:
        runs: prefills in the block.
        seconds: wall time of the block (from before its first run to after its last one finished).
        joules: energy over the block (idle included).
        power_w: board power over the block (see `EnergySummary.power_source`), or None.
        idle_power_w: board power of the idle window before it, or None (no idle window, no reading).
        device_state: SM / memory clocks and power limit at the block's start (`NvmlSampler.device_state`).
    """

    runs: int
    seconds: float
    joules: float
    power_w: float | None = None
    idle_power_w: float | None = None
    device_state: dict[str, float | None] | None = None

    @property
    def joules_per_run(self) -> float:
        """Joules each prefill added above idle (the block's whole energy per run without an idle reading)."""
        idle = (self.idle_power_w or 0.0) * self.seconds
        return (self.joules - idle) / self.runs

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "seconds": self.seconds, "joules": self.joules, "power_w": self.power_w,
                "idle_power_w": self.idle_power_w, "joules_per_run_above_idle": self.joules_per_run,
                **(self.device_state or {})}


@dataclass(frozen=True)
class EnergySummary:
    """Energy per prefill of one configuration, over its blocks.

    Attributes:
        energy_j: median joules per prefill above idle over the blocks.
        energy_j_iqr: interquartile range of joules per prefill over the blocks (0 for one block).
        power_w: mean board power over the blocks.
        power_source: "instant", "energy/time" or "average" (see `vidcost.profiling.nvml`).
        blocks: the raw blocks.
    """

    energy_j: float
    energy_j_iqr: float
    power_w: float | None
    power_source: str | None
    blocks: tuple[EnergyBlock, ...]

    def __str__(self) -> str:
        return (f"EnergySummary({self.energy_j:.3f} J/prefill, IQR {self.energy_j_iqr:.3f}, over "
                f"{len(self.blocks)} blocks)")


def measure_energy_blocks(configs: Sequence[tuple[str, Callable[[], Any]]], sampler: Any, *, blocks: int = 3,
                          min_block_s: float = MIN_BLOCK_S, idle_s: float = IDLE_S,
                          synchronize: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.monotonic,
                          sleep: Callable[[float], None] = time.sleep,
                          progress: Callable[[str], None] = lambda message: None) -> dict[str, EnergySummary]:
    """Run `blocks` rounds of one block per configuration; returns each configuration's summary.

    Args:
        configs: (name, run one prefill) in the order the blocks alternate.
        sampler: an `NvmlSampler` (its `start()` / `stop()` bound each block).
        blocks: blocks per configuration.
        min_block_s: a block runs until at least this long (and at least one run).
        idle_s: the idle window before each block (0: none, nothing subtracted).
        synchronize: waits for the device; called after every run, so the block's wall time covers
            finished work.
        clock: seconds; sleep: waits, for the idle windows (both injectable for tests).
        progress: called with a short message per round.
    """
    measured: dict[str, list[EnergyBlock]] = {name: [] for name, _ in configs}
    for round_index in range(blocks):
        progress(f"energy block {round_index + 1}/{blocks}")
        for name, run_once in configs:
            idle = _idle_power(sampler, idle_s, synchronize, sleep)
            measured[name].append(_block(run_once, sampler, min_block_s, synchronize, clock, idle))
    return {name: _summarize(found, sampler.power_source) for name, found in measured.items()
            if found and all(b.joules is not None for b in found)}


def _idle_power(sampler: Any, idle_s: float, synchronize: Callable[[], None],
                sleep: Callable[[float], None]) -> float | None:
    """Board power over an idle window of `idle_s` (the energy counter over the window's time), or None."""
    if idle_s <= 0:
        return None
    synchronize()  # nothing of the previous block may still run
    sampler.start()
    sleep(idle_s)
    summary = sampler.stop()
    if summary.energy_j is not None and summary.duration_s > 0:
        return summary.energy_j / summary.duration_s
    return summary.power_w


def _block(run_once: Callable[[], Any], sampler: Any, min_block_s: float, synchronize: Callable[[], None],
           clock: Callable[[], float], idle_power_w: float | None = None) -> EnergyBlock:
    synchronize()  # the previous block's work must not count in this one
    state = sampler.device_state() if hasattr(sampler, "device_state") else None
    sampler.start()
    start, runs = clock(), 0
    while True:
        run_once()
        synchronize()
        runs += 1
        if clock() - start >= min_block_s:
            break
    summary = sampler.stop()
    return EnergyBlock(runs=runs, seconds=summary.duration_s, joules=summary.energy_j, power_w=summary.power_w,
                       idle_power_w=idle_power_w, device_state=state)


def _summarize(blocks: list[EnergyBlock], power_source: str | None) -> EnergySummary:
    per_run = sorted(b.joules_per_run for b in blocks)
    iqr = 0.0
    if len(per_run) >= 2:
        q1, _, q3 = statistics.quantiles(per_run, n=4, method="inclusive")
        iqr = q3 - q1
    powers = [b.power_w for b in blocks if b.power_w is not None]
    return EnergySummary(energy_j=statistics.median(per_run), energy_j_iqr=iqr,
                         power_w=sum(powers) / len(powers) if powers else None,
                         power_source=power_source if powers else None, blocks=tuple(blocks))
