"""Resume: which cells a store already holds, and how a sweep writes a cell so it lands whole or not at all.

A cell is written as ONE append (`vidcost.store.append_records`: one write, one fsync) of its records,
the method's first and its vanilla reference second, both carrying the cell's `config_hash` and one
`run_id`. Nothing is written while a cell is measured, so Ctrl-C or kill -9 loses at most the cell in
flight, except in one place: a kill *during* that write, which Linux can cut short between pages. It can
tear only the store's last write, so a sweep starting on a store (`CellWriter`) looks at its tail first:

- a last line without its newline is an unfinished write, not a record: it is cut off;
- a last line that is an `ok` sweep method record is the first half of a cell write whose vanilla
  record never landed (the sweep writes a method record only ever followed by its vanilla): cut off too.

And a cell counts as done only when its `ok` method record and an `ok` vanilla record of the same run
are both present (`stored_cells`), so even a store torn elsewhere never passes half a cell for a whole
one. A `failed` cell (one `failed` method record) is measured again on the next run.

While a sweep writes, it holds an exclusive lock on the store (flock; the kernel drops it when the
process dies, even by kill -9), so two sweeps never measure into one store at once.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from vidcost.errors import ConfigError, DataFormatError
from vidcost.store import append_records, iter_records
from vidcost.sweep.grid import VANILLA, Cell


@dataclass(frozen=True)
class StoredCell:
    """A cell the store holds complete: its `ok` method record and the vanilla record of the same run.

    For a vanilla cell both are the same record.
    """

    method: Mapping[str, Any]
    vanilla: Mapping[str, Any]


def stored_cells(store: str | os.PathLike[str], cells: Iterable[Cell]) -> dict[str, StoredCell]:
    """The cells of `cells` that `store` already holds complete and `ok`, by config hash.

    A store that does not exist holds none. Corrupt lines are warned about and skipped (`iter_records`).
    """
    wanted = {cell.config_hash: cell for cell in cells}
    if not Path(store).is_file():
        return {}
    runs: dict[tuple[str, Any], dict[str, Mapping[str, Any]]] = {}
    for record in iter_records(store, kind="profile"):
        digest = record.get("config_hash")
        if digest in wanted and record.get("status") == "ok":
            runs.setdefault((digest, record.get("run_id")), {})[record.get("method")] = record
    found: dict[str, StoredCell] = {}
    for (digest, _), by_method in runs.items():  # oldest first: the latest complete run of a cell wins
        method, vanilla = by_method.get(wanted[digest].method.name), by_method.get(VANILLA)
        if method is not None and vanilla is not None:
            found[digest] = StoredCell(method=method, vanilla=vanilla)
    return found


def cell_records(method: Mapping[str, Any], vanilla: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The records of one cell in the order they are written: the method's, then its vanilla reference's
    (none for a vanilla cell or a failed one)."""
    records = [dict(method)]
    if vanilla is not None and vanilla is not method and method.get("method") != VANILLA:
        records.append(dict(vanilla))
    return records


class CellWriter:
    """The one writer of a store during a sweep: locks it, cuts a torn cell write off its end, appends cells.

    Use as a context manager; `dropped_bytes` says how much a torn tail held (0 when clean).

    Raises:
        ConfigError: another sweep holds the store.
        DataFormatError: the store cannot be opened or written.
    """

    def __init__(self, store: str | os.PathLike[str]) -> None:
        self.path = Path(store)
        self.dropped_bytes = 0
        self._fd: int | None = None

    def __enter__(self) -> "CellWriter":
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DataFormatError(f"cannot append to store '{self.path}': {err.strerror or err}; "
                                  "pass a writable file to --store") from err
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            self.close()
            raise ConfigError(f"store '{self.path}' is being written by another sweep; wait for it to finish "
                              "or pass another --store") from err
        self.dropped_bytes = drop_torn_tail(self._fd)
        if self.dropped_bytes:
            warnings.warn(f"{self.path}: cut off {self.dropped_bytes} bytes of a cell write that a crash left "
                          "unfinished; that cell is measured again", stacklevel=2)
        return self

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append one cell's records in one write (see `vidcost.store.append_records`)."""
        append_records(self.path, records)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def drop_torn_tail(fd: int) -> int:
    """Cut an unfinished last write off a store open for writing; returns the bytes cut (see the module doc)."""
    size = os.fstat(fd).st_size
    start, tail = _tail(fd, size)
    end = tail.rfind(b"\n") + 1  # the end of the last complete line (0: none in the tail)
    if end == 0 and start > 0:
        raise DataFormatError(f"store's last line is over {len(tail)} bytes; not a vidcost store?")
    begin = tail.rfind(b"\n", 0, end - 1) + 1 if end else 0  # where that line starts
    if end and _is_half_a_cell(tail[begin:end]):
        end = begin
    if start + end < size:
        os.ftruncate(fd, start + end)
        os.fsync(fd)
    return size - (start + end)


def _tail(fd: int, size: int, chunk: int = 1 << 16, limit: int = 1 << 26) -> tuple[int, bytes]:
    """The end of the file from a position that holds two newlines before the end (or the start)."""
    start, tail = size, b""
    while start > 0 and tail.count(b"\n") < 2 and len(tail) < limit:
        step = min(chunk, start)
        start -= step
        tail = os.pread(fd, step, start) + tail
    return start, tail


def _is_half_a_cell(line: bytes) -> bool:
    """An `ok` sweep method record: its cell's vanilla record should have followed it in the same write."""
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return (isinstance(record, dict) and record.get("kind") == "profile" and record.get("status") == "ok"
            and record.get("config_hash") is not None and record.get("method") != VANILLA)
