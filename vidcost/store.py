"""Store: append-only JSON-lines records on disk (profiles, accuracy, evaluated requests).

Each record is one JSON object on one line, written with a single `write` on a file opened for
appending and fsync'd, so a crash leaves at most one torn last line and never touches earlier ones.
A reader reports a corrupt line (file and line number) and skips it; it never fails the whole file.
The store as a pandas table is `vidcost.export` (`load_frame`), which sits above this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vidcost.errors import DataFormatError
from vidcost.schema import record_problem

DEFAULT_STORE = Path("profiles") / "runs.jsonl"


class CorruptLineWarning(UserWarning):
    """A stored line could not be parsed and was skipped."""


@dataclass(frozen=True)
class CorruptLine:
    """Where a skipped line was, and why."""

    path: str
    line_number: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line_number}: skipped corrupt line ({self.reason})"


def append_record(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record as one JSON line, atomically and durably.

    Raises:
        DataFormatError: the record is not JSON-serialisable (nothing is written), or the store cannot be
            written (a directory, a read-only place, a full disk).
    """
    append_records(path, [record])


def append_records(path: str | os.PathLike[str], records: list[dict[str, Any]]) -> None:
    """Append records as consecutive JSON lines with ONE write and one fsync.

    Records that belong together (a sweep cell's method and vanilla records) land together: a crash
    mid-write can leave only a prefix of them, ending in a torn line, on the store's last line.

    Raises:
        DataFormatError: a record is not JSON-serialisable (nothing is written), or the store cannot be
            written (a directory, a read-only place, a full disk).
    """
    try:
        lines = "".join(json.dumps(record, sort_keys=True, allow_nan=True, default=_json_default) + "\n"
                        for record in records)
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"record cannot be stored as JSON: {err}") from err
    target = Path(path)
    try:
        _append_line(target, lines.encode())
    except OSError as err:
        raise DataFormatError(f"cannot append to store '{target}': {err.strerror or err}; "
                              "pass a writable file to --store") from err


def check_writable(path: str | os.PathLike[str], option: str = "--store") -> None:
    """Fail fast (before minutes of measuring) when `path` cannot be appended to (or written: any output
    file; `option` names it in the error).

    It really tries, as `append_record` will: an existing store is opened for appending (nothing
    written); a new one is created, with any missing parent directories, and removed again with them.
    Permission bits alone would pass `/proc/x.jsonl` for root, and a read-only mount for anyone.

    Raises:
        DataFormatError: the store is a directory, sits under a file, or cannot be created or opened.
    """
    target = Path(path)
    created: list[Path] = []  # what the try made, removed again innermost first
    try:
        missing = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
        for directory in reversed(missing):
            directory.mkdir()
            created.append(directory)
        existed = target.exists()
        fd = os.open(target, os.O_RDWR | os.O_APPEND | (0 if existed else os.O_CREAT | os.O_EXCL), 0o644)
        os.close(fd)
        if not existed:
            created.append(target)
    except OSError as err:
        what = "append to store" if option == "--store" else f"write {option}"
        raise DataFormatError(f"cannot {what} '{target}': {err.strerror or err}; pass a writable file "
                              f"to {option}") from err
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                if made == target:
                    made.unlink()
                else:
                    made.rmdir()


def _append_line(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # read access: the torn-tail check preads
    try:
        _repair_torn_tail(fd)
        written = os.write(fd, data)
        if written != len(data):  # a short write on a full disk: report rather than leave half a line
            raise DataFormatError(f"short write to '{target}' ({written} of {len(data)} bytes); free disk space")
        os.fsync(fd)
    finally:
        os.close(fd)


def _repair_torn_tail(fd: int) -> None:
    """If a crash left a last line without its newline, end it so the next record starts clean."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def iter_records(path: str | os.PathLike[str], *, kind: str | None = None,
                 corrupt: list[CorruptLine] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the records of a store, oldest first, optionally only those whose `kind` matches.

    Corrupt lines — not JSON, or a record whose field has the wrong type for its kind (`vidcost.schema`) —
    are reported with a `CorruptLineWarning` naming the file, line and field (and appended to `corrupt` if
    given) and skipped: every reader gets records it can use, and none is dropped without a word.

    Raises:
        DataFormatError: the store does not exist, or is not a text file at all (a NUL byte in its first
            8 KiB: no JSON-lines file has one, so it is not a store with some corrupt lines but another file).
    """
    source = Path(path)
    if not source.is_file():
        raise DataFormatError(f"store '{source}' does not exist; run `vidcost profile` first or pass --store")
    with source.open("rb") as handle:
        if b"\0" in handle.read(8192):
            raise DataFormatError(f"store '{source}' is not a text file (a store holds one JSON record per line); "
                                  "pass a store vidcost wrote")
        handle.seek(0)
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError(f"a JSON {type(record).__name__}, not an object")
            except (ValueError, UnicodeDecodeError) as err:
                problem = CorruptLine(str(source), number, str(err).splitlines()[0][:120])
                warnings.warn(str(problem), CorruptLineWarning, stacklevel=2)
                if corrupt is not None:
                    corrupt.append(problem)
                continue
            if kind is not None and record.get("kind") != kind:
                continue
            reason = record_problem(record)  # a field of the wrong type: skipped here, not a crash in a reader
            if reason is not None:
                problem = CorruptLine(str(source), number, reason)
                warnings.warn(str(problem), CorruptLineWarning, stacklevel=2)
                if corrupt is not None:
                    corrupt.append(problem)
                continue
            yield record


def read_records(path: str | os.PathLike[str], *, kind: str | None = None) -> list[dict[str, Any]]:
    """All records of a store (see `iter_records`)."""
    return list(iter_records(path, kind=kind))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as indented JSON atomically (a temporary file beside the target, renamed over it): a crash
    leaves the old file or the new one, never half of one."""
    import tempfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(temporary, target)


def read_json_object(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """One JSON object from a file (a calibration, a device JSON), `what` naming it in the errors.

    Raises:
        DataFormatError: unreadable, not JSON, or not one object.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(f"{what} cannot be read: {err}") from err
    if not isinstance(data, dict):
        raise DataFormatError(f"{what} must hold one JSON object")
    return data
