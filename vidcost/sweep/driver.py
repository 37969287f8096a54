"""The sweep driver: `plan_sweep` (a grid's cells, and which the store already holds) and `run_sweep`
(measure the rest on an executor, append each cell as it comes back, say how it went).

The driver is the only process that writes the store, one whole cell per append, holding the store's
lock (`vidcost.sweep.resume`). Everything that can be wrong with the input — the grid, the store, the
executor — fails before a cell runs and before a byte is written.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from vidcost.profiling.record import compare_records, upgrade_record
from vidcost.store import DEFAULT_STORE, check_writable
from vidcost.sweep.executor import Executor, make_executor
from vidcost.sweep.grid import Cell, Grid, expand_grid
from vidcost.sweep.resume import CellWriter, StoredCell, stored_cells
from vidcost.sweep.worker import OK, CellResult

DONE, SKIPPED, FAILED, NOT_RUN = "done", "skipped", "failed", "not run"


@dataclass(frozen=True)
class SweepPlan:
    """A grid's cells and the ones a store already holds complete.

    Attributes:
        cells: every cell, in run order.
        stored: the cells the store holds `ok` (method and vanilla records), by config hash.
        store: the store's path.
    """

    cells: tuple[Cell, ...]
    stored: Mapping[str, StoredCell]
    store: str

    def is_done(self, cell: Cell) -> bool:
        return cell.config_hash in self.stored

    @property
    def pending(self) -> tuple[Cell, ...]:
        """The cells still to measure."""
        return tuple(cell for cell in self.cells if not self.is_done(cell))

    def to_dict(self) -> dict[str, Any]:
        """The dry run's `--json`."""
        return {"store": self.store, "cells": [{**c.to_dict(), "done": self.is_done(c)} for c in self.cells],
                "total": len(self.cells), "done": len(self.cells) - len(self.pending), "to_run": len(self.pending)}

    def __str__(self) -> str:
        return (f"{len(self.cells)} cells: {len(self.cells) - len(self.pending)} already in {self.store}, "
                f"{len(self.pending)} to run")


@dataclass(frozen=True)
class CellOutcome:
    """What became of one cell in a sweep.

    Attributes:
        cell: the cell.
        status: "done" (measured now), "skipped" (already in the store), "failed" (recorded as failed),
            "not run" (the sweep was interrupted first).
        error: the failure's message.
        compared: `compare_records` of its vanilla and method records (done and skipped cells).
        seconds: the cell's wall time on its worker (done and failed cells).
        worker: host and process id of the worker that measured it (done and failed cells).
    """

    cell: Cell
    status: str
    error: str | None = None
    compared: Mapping[str, Any] | None = None
    seconds: float | None = None
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        ratios = {k: (self.compared or {}).get(k) for k in ("speedup", "llm_prefill_speedup", "flops_speedup")}
        return {**self.cell.to_dict(), "status": self.status, "error": self.error, "seconds": self.seconds,
                "worker": self.worker, **ratios}

    def __str__(self) -> str:
        speedup = (self.compared or {}).get("speedup")
        detail = f": {self.error}" if self.error else f", TTFT speedup {speedup:.2f}×" if speedup else ""
        return f"{self.cell.label}: {self.status}{detail}"


@dataclass(frozen=True)
class SweepResult:
    """A sweep's outcome: every cell's, the wall time, where it was stored.

    Attributes:
        outcomes: one per cell, in run order.
        wall_s: the sweep's wall time in seconds (checks, model building and measuring).
        store: the store's path.
        executor: "local" or "ray".
        interrupted: Ctrl-C stopped it; rerun the same sweep to resume.
    """

    outcomes: tuple[CellOutcome, ...]
    wall_s: float
    store: str
    executor: str
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def done(self) -> int:
        return self.count(DONE)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    def to_dict(self) -> dict[str, Any]:
        """The sweep's `--json`."""
        return {"store": self.store, "executor": self.executor, "wall_s": self.wall_s,
                "interrupted": self.interrupted, "total": len(self.outcomes), "done": self.done,
                "skipped": self.skipped, "failed": self.failed, "not_run": self.count(NOT_RUN),
                "cells": [outcome.to_dict() for outcome in self.outcomes]}

    def __str__(self) -> str:
        state = ", interrupted" if self.interrupted else ""
        return (f"{len(self.outcomes)} cells: {self.done} done, {self.skipped} skipped, {self.failed} failed in "
                f"{self.wall_s:.1f} s ({self.executor}{state})")


def plan_sweep(grid: Grid, store: str | Path = DEFAULT_STORE) -> SweepPlan:
    """The grid's cells, every one checked, and which of them `store` already holds; runs nothing.

    Raises:
        ConfigError: see `expand_grid`.
    """
    cells = expand_grid(grid)
    return SweepPlan(cells=tuple(cells), stored=stored_cells(store, cells), store=str(store))


def run_sweep(grid: Grid, *, store: str | Path = DEFAULT_STORE, executor: str = "local",
              ray_address: str | None = None, cpus_per_task: int | None = None,
              progress: bool = False) -> SweepResult:
    """Measure every cell of `grid` that `store` does not hold yet, appending each cell as it finishes.

    Args:
        grid: the grid (`Grid`, `load_grid`, `grid_from_mapping`).
        store: the JSON-lines store to resume from and append to.
        executor: "local" (this process) or "ray" (one actor per GPU or CPU slot).
        ray_address: a running Ray cluster to join; None starts a local Ray.
        cpus_per_task: CPUs per Ray actor (default 1).
        progress: a progress bar with ETA, and model-building messages, on stderr.

    Returns:
        A `SweepResult`; Ctrl-C ends the sweep early with `interrupted` set (every cell stored so far is
        whole; rerun to resume).

    Raises:
        ConfigError: an empty or bad grid, bad executor options, Ray missing or unreachable, another
            sweep writing the store — all before any cell runs.
        DataFormatError: the store cannot be written.
    """
    started = time.monotonic()
    cells = expand_grid(grid)
    check_writable(store)
    say = _say if progress else None
    runner = make_executor(executor, device=grid.settings.device, ray_address=ray_address,
                           cpus_per_task=cpus_per_task, progress=say)
    outcomes: dict[str, CellOutcome] = {}
    try:
        with CellWriter(store) as writer:
            stored = stored_cells(store, cells)  # read under the lock: no other sweep adds to it now
            for cell in cells:
                if cell.config_hash in stored:
                    found = stored[cell.config_hash]
                    outcomes[cell.config_hash] = CellOutcome(cell, SKIPPED, compared=_compared(found.vanilla,
                                                                                                found.method))
            pending = [cell for cell in cells if cell.config_hash not in stored]
            interrupted = _run_cells(runner, pending, writer, outcomes, progress, say)
    finally:
        runner.close()
    return SweepResult(outcomes=tuple(outcomes.get(c.config_hash) or CellOutcome(c, NOT_RUN) for c in cells),
                       wall_s=time.monotonic() - started, store=str(store), executor=runner.name,
                       interrupted=interrupted)


def _run_cells(runner: Executor, pending: list[Cell], writer: CellWriter, outcomes: dict[str, CellOutcome],
               progress: bool, say: Callable[[str], None] | None) -> bool:
    """Run the pending cells, appending each as it comes back; True when Ctrl-C stopped them."""
    from tqdm import tqdm

    by_hash = {cell.config_hash: cell for cell in pending}
    bar = tqdm(total=len(pending), desc="vidcost sweep", unit="cell", file=sys.stderr,
               disable=not (progress and pending), dynamic_ncols=True)
    try:
        for result in runner.run(pending):
            cell = by_hash[result.config_hash]
            writer.append(list(result.records))  # the whole cell in one write, or (killed mid-write) none
            outcomes[cell.config_hash] = _outcome(cell, result)
            for message in result.warnings:
                (say or (lambda text: None))(f"warning: {cell.label}: {message}")
            bar.set_postfix_str(f"{cell.label}: {outcomes[cell.config_hash].status}", refresh=False)
            bar.update(1)
        return False
    except KeyboardInterrupt:
        return True
    finally:
        bar.close()


def _outcome(cell: Cell, result: CellResult) -> CellOutcome:
    if result.status != OK:
        return CellOutcome(cell, FAILED, error=result.error, seconds=result.seconds, worker=result.worker)
    method, vanilla = result.records[0], result.records[-1]
    return CellOutcome(cell, DONE, compared=_compared(vanilla, method), seconds=result.seconds,
                       worker=result.worker)


def _compared(vanilla: Mapping[str, Any], method: Mapping[str, Any]) -> dict[str, Any]:
    return compare_records(upgrade_record(vanilla), upgrade_record(method))


def _say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"vidcost sweep: {message}", file=sys.stderr)  # above the bar, not through it
