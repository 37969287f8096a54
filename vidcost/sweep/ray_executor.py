"""RayExecutor: a sweep's cells on a Ray cluster — one actor per GPU (`num_gpus=1`) or per CPU slot
(`--cpus-per-task`), each holding a `SweepWorker`, so each builds its model once and reuses it.

Results stream back to the driver as they finish (`ray.wait`), and the driver alone appends them to the
store: the workers never see it, so a store on the driver's disk serves a cluster of any size. A free
actor is handed a cell of the model it already holds before any other, so models are rebuilt as rarely
as the grid allows.

Ray is an optional extra (`pip install -e ".[ray]"`), imported here only, and only when `--executor ray`
asks for it. `--ray-address` joins a running cluster — checked first with a plain TCP connection,
because Ray itself retries an unreachable address for minutes; without it `ray.init()` starts a local one.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Iterable, Iterator

from vidcost.errors import ConfigError
from vidcost.sweep.grid import Cell, device_kind
from vidcost.sweep.worker import FAILED, CellResult, Progress, SweepWorker, failed_record

INSTALL = 'pip install -e ".[ray]" in a vidcost checkout, or pip install "vidcost[ray]"'
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> Any:
    """The `ray` module, or a ConfigError that names the install command."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError(f"--executor ray needs Ray, which is not installed; run {INSTALL}") from err
    return ray


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing listens at a `HOST:PORT` or `ray://HOST:PORT` address ("auto" is Ray's to find).

    Raises:
        ConfigError: a malformed address, or no connection within `timeout_s`.
    """
    if address == "auto":
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--ray-address '{address}' is not HOST:PORT, ray://HOST:PORT or auto; "
                          "e.g. --ray-address 10.0.0.1:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(f"cannot reach the Ray cluster at --ray-address '{address}' ({err.strerror or err}); "
                          "start it with `ray start --head` on that node, or check the address") from err


class RayExecutor:
    """Cells on Ray actors, one per GPU or CPU slot; connected (or started) when made.

    Args:
        address: a running cluster's address (`HOST:PORT`, `ray://HOST:PORT`, `auto`); None: a local Ray.
        cpus_per_task: CPUs each actor holds (and its torch threads when the grid sets none).
        device: the grid's device: "cpu" or "cuda" (Ray gives each actor its GPU).
        progress: one-line messages (how many workers).

    Raises:
        ConfigError: Ray not installed, an unreachable address, a `cuda:N` device, a cluster without the
            GPUs or CPUs one task needs.
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, cpus_per_task: int = 1, device: str = "cpu",
                 progress: Progress | None = None) -> None:
        self.kind = device_kind(device)
        if self.kind == "cuda" and device != "cuda":
            raise ConfigError(f"--device {device} with --executor ray: pass --device cuda; Ray gives each worker "
                              "its own GPU")
        if address is not None:
            check_reachable(address)
        self.ray = import_ray()
        self.say = progress or (lambda message: None)
        self.cpus_per_task = cpus_per_task
        self._actor_class: Any = None
        self._owns_ray = not self.ray.is_initialized()  # a notebook's own ray.init() is left running
        if self._owns_ray:
            self._connect(address)
        try:
            self.slots = self._slots()
        except ConfigError:
            self.close()
            raise

    def _connect(self, address: str | None) -> None:
        options: dict[str, Any] = {"logging_level": logging.WARNING}
        if address is None:
            options["include_dashboard"] = False  # a local sweep needs no web UI: seconds and memory saved
        try:
            self.ray.init(address=address, **options)
        except Exception as err:  # noqa: BLE001 — Ray raises ConnectionError, RuntimeError, ValueError ...
            where = f"the Ray cluster at --ray-address '{address}'" if address else "a local Ray"
            raise ConfigError(f"cannot start {where}: {' '.join(str(err).split())[:300]}; check the address "
                              "and that the cluster runs the same Ray version") from err

    def _slots(self) -> int:
        resources = self.ray.cluster_resources()
        if self.kind == "cuda":
            slots = int(resources.get("GPU", 0))
            if not slots:
                raise ConfigError("the Ray cluster has no GPU for --device cuda; join a cluster with GPUs or "
                                  "pass --device cpu")
        else:
            slots = int(resources.get("CPU", 0) // self.cpus_per_task)
            if not slots:
                raise ConfigError(f"the Ray cluster has {resources.get('CPU', 0):g} CPUs, fewer than "
                                  f"--cpus-per-task {self.cpus_per_task}; lower it")
        return slots

    def _new_actor(self) -> Any:
        resources: dict[str, Any] = {"num_cpus": self.cpus_per_task}
        if self.kind == "cuda":
            resources["num_gpus"] = 1
        if self._actor_class is None:
            self._actor_class = self.ray.remote(SweepWorker)
        return self._actor_class.options(**resources).remote(threads=self.cpus_per_task)

    def run(self, cells: Iterable[Cell]) -> Iterator[CellResult]:
        """Yield each cell's result as its actor finishes it; actors are killed when the stream ends."""
        queue = list(cells)
        if not queue:
            return
        workers = [[self._new_actor(), None] for _ in range(min(self.slots, len(queue)))]  # [actor, model]
        self.say(f"{len(workers)} Ray worker(s), one per {'GPU' if self.kind == 'cuda' else 'CPU slot'}")
        pending: dict[Any, tuple[int, Cell]] = {}
        try:
            for index in range(len(workers)):
                self._submit(index, workers, queue, pending)
            while pending:
                ready, _ = self.ray.wait(list(pending), num_returns=1)
                index, cell = pending.pop(ready[0])
                yield self._collect(ready[0], cell, index, workers)
                if queue:
                    self._submit(index, workers, queue, pending)
        finally:
            for actor, _ in workers:
                self.ray.kill(actor)

    def _submit(self, index: int, workers: list[list[Any]], queue: list[Cell], pending: dict[Any, Any]) -> None:
        """Hand worker `index` the next cell, one of the model it holds if any is left."""
        held = workers[index][1]
        position = next((i for i, cell in enumerate(queue) if cell.model == held), 0)
        cell = queue.pop(position)
        workers[index][1] = cell.model
        pending[workers[index][0].run.remote(cell)] = (index, cell)

    def _collect(self, ref: Any, cell: Cell, index: int, workers: list[list[Any]]) -> CellResult:
        """The cell's result; a worker that died is recorded as the cell's failure and replaced."""
        from ray.exceptions import RayActorError, RayError

        try:
            return self.ray.get(ref)
        except RayError as err:
            if isinstance(err, RayActorError):
                workers[index] = [self._new_actor(), None]
            message = f"Ray worker lost: {' '.join(str(err).split())[:300]}"
            return CellResult(config_hash=cell.config_hash, status=FAILED, error=message,
                              records=(failed_record(cell, message, cell.settings.device),))

    def close(self) -> None:
        """Disconnect from (or stop) the Ray this executor started."""
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
