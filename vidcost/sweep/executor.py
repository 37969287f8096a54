"""Executors: where a sweep's cells run. `LocalExecutor` runs them in this process, one after another, on
one `SweepWorker`; `RayExecutor` (`vidcost.sweep.ray_executor`) spreads them over Ray actors.

Both stream `CellResult`s back as cells finish and never touch the store: the driver appends.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Protocol

from vidcost.errors import ConfigError
from vidcost.sweep.grid import Cell
from vidcost.sweep.worker import CellResult, Progress, SweepWorker

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs cells and yields their results as they finish (in any order)."""

    name: str

    def run(self, cells: Iterable[Cell]) -> Iterator[CellResult]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """One worker in this process: a model built once, the cells in grid order.

    Args:
        progress: one-line messages (model building).
    """

    name = "local"

    def __init__(self, *, progress: Progress | None = None) -> None:
        self.worker = SweepWorker(progress=progress)

    def run(self, cells: Iterable[Cell]) -> Iterator[CellResult]:
        for cell in cells:
            yield self.worker.run(cell)

    def close(self) -> None:
        self.worker = SweepWorker()  # lets the model go


def make_executor(name: str, *, device: str, ray_address: str | None = None, cpus_per_task: int | None = None,
                  progress: Progress | None = None) -> Executor:
    """The executor called `name`, ready to run (Ray connected): every error comes before any cell runs.

    Raises:
        ConfigError: an unknown executor, Ray options without Ray, `--executor ray` without Ray installed,
            an unreachable `--ray-address`, a cluster without the GPUs or CPUs a task asks for.
    """
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor '{name}'; choose one of {list(EXECUTORS)}")
    if cpus_per_task is not None and (isinstance(cpus_per_task, bool) or not isinstance(cpus_per_task, int)
                                      or cpus_per_task < 1):
        raise ConfigError(f"--cpus-per-task must be a whole number ≥ 1, got {cpus_per_task!r}")
    if name == "local":
        if ray_address is not None or cpus_per_task is not None:
            option = "--ray-address" if ray_address is not None else "--cpus-per-task"
            raise ConfigError(f"{option} needs --executor ray (the local executor takes --threads)")
        return LocalExecutor(progress=progress)
    from vidcost.sweep.ray_executor import RayExecutor

    return RayExecutor(address=ray_address, cpus_per_task=cpus_per_task or 1, device=device, progress=progress)
