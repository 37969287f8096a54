"""Store: atomic fsync'd JSON-lines appends, corrupt lines reported and skipped, a pandas loader."""

from __future__ import annotations

import json
import os
import warnings

import pandas as pd
import pytest

from vidcost.errors import DataFormatError
from vidcost.export import load_frame
from vidcost.store import CorruptLine, CorruptLineWarning, append_record, iter_records, read_records


def test_append_and_read_round_trip(tmp_path):
    store = tmp_path / "deep" / "runs.jsonl"  # parent directories are created
    append_record(store, {"kind": "profile", "method": "fastv", "stages_ms": {"total": 1.5}})
    append_record(store, {"kind": "accuracy", "score": 0.5})
    lines = store.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)
    assert [r["kind"] for r in read_records(store)] == ["profile", "accuracy"]
    assert read_records(store, kind="accuracy") == [{"kind": "accuracy", "score": 0.5}]


def test_appends_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    append_record(tmp_path / "runs.jsonl", {"kind": "profile"})
    assert len(synced) == 1


def test_corrupt_lines_are_reported_and_skipped(tmp_path):
    store = tmp_path / "runs.jsonl"
    append_record(store, {"kind": "profile", "n": 1})
    with store.open("a") as handle:
        handle.write('{"kind": "profile", "n": \n')  # torn JSON
        handle.write("[1, 2]\n")                      # JSON, but not an object
        handle.write("\n")                            # blank lines are not corrupt
    append_record(store, {"kind": "profile", "n": 2})
    corrupt: list[CorruptLine] = []
    with pytest.warns(CorruptLineWarning) as caught:
        records = list(iter_records(store, corrupt=corrupt))
    assert [str(w.message).split(": ")[0].rsplit(":", 1)[1] for w in caught] == ["2", "3"]
    assert [r["n"] for r in records] == [1, 2]
    assert [c.line_number for c in corrupt] == [2, 3]
    assert "not an object" in corrupt[1].reason and str(corrupt[0]).startswith(str(store))


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    store = tmp_path / "runs.jsonl"
    append_record(store, {"kind": "profile", "n": 1})
    with store.open("a") as handle:
        handle.write('{"kind": "profile", "n": 2')  # a crash mid-write: no newline
    append_record(store, {"kind": "profile", "n": 3})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_records(store)
    assert [r["n"] for r in records] == [1, 3]
    assert len(caught) == 1 and issubclass(caught[0].category, CorruptLineWarning)


def test_unserialisable_record_writes_nothing(tmp_path):
    store = tmp_path / "runs.jsonl"
    append_record(store, {"kind": "profile"})
    before = store.read_bytes()
    with pytest.raises(DataFormatError, match="cannot be stored as JSON"):
        append_record(store, {"kind": "profile", "bad": object()})
    assert store.read_bytes() == before


def test_special_values_are_converted(tmp_path):
    import numpy as np

    store = tmp_path / "runs.jsonl"
    append_record(store, {"value": np.float64(1.5), "pair": (1, 2), "path": tmp_path, "nan": float("nan")})
    (record,) = read_records(store)
    assert record["value"] == 1.5 and record["pair"] == [1, 2] and record["path"] == str(tmp_path)


def test_missing_store_is_a_data_format_error(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        read_records(tmp_path / "nope.jsonl")


def test_load_frame_flattens_nested_fields(tmp_path):
    store = tmp_path / "runs.jsonl"
    append_record(store, {"kind": "profile", "method": "uniform", "stages_ms": {"total": 2.0}})
    append_record(store, {"kind": "accuracy", "score": 0.9})
    frame = load_frame(store, kind="profile")
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
    # A schema-1 record is read in the current vocabulary: its "total" stage is the TTFT.
    assert frame.loc[0, "ttft_ms"] == 2.0 and frame.loc[0, "method"] == "uniform"
    assert "stages_ms.total" not in frame.columns


def test_unwritable_store_is_a_data_format_error_not_an_os_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataFormatError, match="cannot append to store .*pass a writable file"):
        append_record(tmp_path / "file" / "runs.jsonl", {"kind": "profile"})  # a parent that is a file
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(DataFormatError, match="cannot append to store"):
        append_record(tmp_path / "dir.jsonl", {"kind": "profile"})


def test_check_writable_tries_and_leaves_nothing_behind(tmp_path):
    from vidcost.store import check_writable

    check_writable(tmp_path / "new" / "deeper" / "runs.jsonl")  # will be created: fine
    assert not (tmp_path / "new").exists()  # the try removed what it made, directories too
    (tmp_path / "runs.jsonl").write_text("kept\n")
    check_writable(tmp_path / "runs.jsonl")
    assert (tmp_path / "runs.jsonl").read_text() == "kept\n"
    (tmp_path / "file").write_text("")
    with pytest.raises(DataFormatError, match="'.*file/runs.jsonl': Not a directory"):
        check_writable(tmp_path / "file" / "runs.jsonl")
    with pytest.raises(DataFormatError, match="Is a directory"):
        check_writable(tmp_path)


def test_check_writable_refuses_what_permission_bits_allow():
    """Root may 'write' to /proc by its mode bits; creating a file there fails, and so must the check."""
    from vidcost.store import check_writable

    with pytest.raises(DataFormatError, match="cannot append to store '/proc/x.jsonl'"):
        check_writable("/proc/x.jsonl")


@pytest.mark.parametrize("record, field", [
    ({"kind": "profile", "model": ["tiny"], "method": "fastv", "budget": 0.25}, "model"),
    ({"kind": "profile", "model": "tiny", "method": "fastv", "budget": "a lot"}, "budget"),
    ({"kind": "accuracy", "model": "tiny", "method": 3, "budget": 0.25, "benchmark": "videomme", "score": 50.0},
     "method"),
    ({"kind": "accuracy", "model": "tiny", "method": "fastv", "budget": 0.25, "benchmark": "v", "score": "high"},
     "score"),
    ({"kind": "request", "task": "t", "doc_id": -1, "model": "tiny", "frames": 8, "method": "fastv",
      "budget": 0.25, "status": "ok"}, "doc_id"),
    ({"kind": "request", "task": "t", "doc_id": 0, "model": "tiny", "frames": 8, "method": "fastv",
      "budget": 0.25, "status": "ok", "stages_ms": {"vision": "slow"}}, "stages_ms"),
])
def test_a_record_with_a_field_of_the_wrong_type_is_reported_and_skipped(tmp_path, record, field):
    store = tmp_path / "runs.jsonl"
    good = {"kind": record["kind"], **{k: v for k, v in record.items() if k != field}}
    append_record(store, good)
    append_record(store, record)
    corrupt: list[CorruptLine] = []
    with pytest.warns(CorruptLineWarning, match=rf"runs.jsonl:2: .*field '{field}'"):
        records = list(iter_records(store, corrupt=corrupt))
    assert records == [good] and corrupt[0].line_number == 2


def test_records_of_other_kinds_and_unknown_fields_pass_unchecked(tmp_path):
    store = tmp_path / "runs.jsonl"
    records = [{"kind": "someone-elses", "budget": "a lot"}, {"kind": "profile", "budget": 1.0, "extra": [1]}]
    for record in records:
        append_record(store, record)
    assert read_records(store) == records
