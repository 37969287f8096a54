"""SweepWorker: runs sweep cells on one device, each model built once (one `ProfileSession`) and reused.

The same class runs in the driver's process (the local executor) and inside a Ray actor (one per GPU or
CPU slot). It never writes the store: it hands back each cell's records (`CellResult`), and the driver
alone appends them, so a store is only ever written from one process. A cell that fails — out of
memory, a `VidcostError`, any other error — comes back as one `failed` record with its message, and the
worker goes on with the next. After every cell the worker hands the memory the cell freed back to the
operating system (`return_freed_memory`), so a long sweep's resident memory stays flat.
"""

from __future__ import annotations

import functools
import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

from vidcost.errors import VidcostError
from vidcost.sweep.grid import Cell, SweepSettings
from vidcost.sweep.resume import cell_records

Progress = Callable[[str], None]
OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class CellResult:
    """What a worker hands back for one cell.

    Attributes:
        config_hash: the cell's hash.
        status: "ok" or "failed".
        records: the records to append, in order (method, then vanilla; one `failed` record on failure).
        error: the failure's message, or None.
        warnings: warnings raised while measuring (noisy timings, ...), one line each.
        seconds: wall time of the cell on the worker, model building included.
        worker: host and process id of the worker that measured it.
    """

    config_hash: str
    status: str
    records: tuple[dict[str, Any], ...]
    error: str | None = None
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    worker: str = ""

    def __str__(self) -> str:
        return f"CellResult({self.config_hash}: {self.status} in {self.seconds:.1f} s on {self.worker})"


class SweepWorker:
    """Measures cells one at a time, building a model once and reusing it for every cell that shares it.

    Args:
        threads: torch CPU threads when the sweep's settings leave them open (a Ray CPU slot's size).
        progress: called with one-line messages (model building; the bar reports cells).
    """

    def __init__(self, *, threads: int | None = None, progress: Progress | None = None) -> None:
        self.threads = threads
        self.say = progress or (lambda message: None)
        self._key: tuple[str, SweepSettings] | None = None
        self._session: Any = None
        self._build_error: Exception | None = None

    def run(self, cell: Cell) -> CellResult:
        """Measure one cell beside vanilla, in the same run; never raises for a failing cell."""
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                records = self._measure(cell)
                status, error = OK, None
            except Exception as err:  # noqa: BLE001 — a cell's failure is recorded; the sweep goes on
                error = failure_message(err)
                records = [failed_record(cell, error, getattr(self._session, "device", cell.settings.device))]
                status = FAILED
            finally:
                return_freed_memory()
        return CellResult(config_hash=cell.config_hash, status=status, records=tuple(records), error=error,
                          warnings=tuple(str(w.message) for w in caught), seconds=time.perf_counter() - started,
                          worker=f"{socket.gethostname()}:{os.getpid()}")

    def _measure(self, cell: Cell) -> list[dict[str, Any]]:
        settings = cell.settings
        comparison = self.session_for(cell).measure(
            cell.method.name, cell.budget, params=dict(cell.method.params), frames=cell.frames,
            repeats=settings.repeats, warmup=settings.warmup, decode_tokens=settings.decode_tokens,
            energy_blocks=settings.energy_blocks, config_hash=cell.config_hash)
        return cell_records(comparison.method.to_dict(), comparison.vanilla.to_dict())

    def session_for(self, cell: Cell) -> Any:
        """The `ProfileSession` of the cell's model, built on first use and kept until another model comes.

        A model that failed to build fails every cell of it with the same error, without building again.
        """
        from vidcost.profiling import ProfileSession

        key = (cell.model, cell.settings)
        if key == self._key:
            if self._build_error is not None:
                raise self._build_error
            return self._session
        self._release()
        self._key, settings = key, cell.settings
        try:
            self._session = ProfileSession(
                cell.spec, device=settings.device, dtype=settings.dtype, model_path=settings.model_path,
                video=settings.video, question=settings.question, seed=settings.seed,
                threads=settings.threads or self.threads, progress=self.say)
        except Exception as err:  # noqa: BLE001 — kept, so the model's other cells fail fast
            self._build_error = err
            raise
        # Per-repeat messages would scroll the progress bar away; from here on the bar reports cells.
        self._session.say = lambda message: None
        return self._session

    def _release(self) -> None:
        """Drop the previous model before building the next (a GPU holds one at a time)."""
        device = getattr(self._session, "device", "cpu")
        self._session, self._build_error = None, None
        if device.startswith("cuda"):
            import gc

            import torch

            gc.collect()
            torch.cuda.empty_cache()


def return_freed_memory() -> None:
    """Give the heap memory freed by the last cell back to the operating system (glibc's `malloc_trim`).

    A cell allocates and frees gigabytes of tensors of many sizes (the vision tower's transients above
    all). glibc keeps freed heap memory for reuse rather than returning it, and raises its mmap threshold
    after each large free, so ever more of those tensors land on a heap that fragments: the process's
    resident memory grew cell after cell although nothing was kept. `analysis/bench_sweep_memory.py`, 20
    tiny cells: RSS after 20 / after 2 was 1.58; 1.32 once the memory probe stopped keeping torch.profiler's
    results alive (`vidcost.profiling.memory`); 1.03 with this trim after every cell (17 GB over ten
    LLaVA-OV-0.5B cells at 16 frames was reported). Elsewhere than glibc (macOS, musl) this does nothing.

    No gc.collect() here: a Ctrl-C that lands while the collector runs a Python finalizer is swallowed there
    ("Exception ignored in …"), and the sweep would not stop.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, looked up once (`find_library` runs ldconfig on every call); None elsewhere."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def failure_message(err: BaseException) -> str:
    """A cell's failure in one line: a `VidcostError`'s own message, else the exception's type and text."""
    text = str(err) if isinstance(err, VidcostError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())


def failed_record(cell: Cell, message: str, device: str) -> dict[str, Any]:
    """The `failed` method record of a cell (the store keeps why; the next run measures it again)."""
    from vidcost.profiling.record import ProfileRecord, new_run_id

    record = ProfileRecord(run_id=new_run_id(), method=cell.method.name, params=dict(cell.params),
                           budget=cell.budget, model=cell.spec.to_dict(), device=device, dtype=cell.settings.dtype,
                           status=FAILED, error=message, decode_tokens=cell.settings.decode_tokens,
                           config_hash=cell.config_hash)
    return record.to_dict()
