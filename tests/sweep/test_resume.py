"""Resume and atomic cells: a cell is done only with its ok method AND vanilla records; a cell is one write;
a torn last write (an unfinished line, or a method record whose vanilla never landed) is cut off; one
sweep writes a store at a time.

The torn stores here are written by hand, byte for byte as a kill during the cell's `write` leaves them
(Linux can stop a write to a regular file between pages on SIGKILL); the CLI test kills a real sweep.
"""

from __future__ import annotations

import json
import os

import pytest

from vidcost.errors import ConfigError
from vidcost.store import append_records, read_records
from vidcost.sweep import expand_grid, grid_from_mapping
from vidcost.sweep.resume import CellWriter, cell_records, stored_cells

CELLS = expand_grid(grid_from_mapping({"methods": ["fastv", "vanilla"], "budgets": [0.25, 0.5], "frames": [1],
                                       "repeats": 1, "warmup": 0}))
FASTV, FASTV_HALF, VANILLA_CELL = CELLS


def record(cell, method, run_id, status="ok", **extra):
    return {"kind": "profile", "schema_version": 2, "run_id": run_id, "method": method, "status": status,
            "config_hash": cell.config_hash, "budget": cell.budget, "padding": "x" * 5000, **extra}


def write_lines(path, *records, tail=b""):
    with open(path, "ab") as handle:
        for item in records:
            handle.write(json.dumps(item).encode() + b"\n")
        handle.write(tail)


def test_a_cell_is_done_only_with_both_records_of_one_run(tmp_path):
    store = tmp_path / "runs.jsonl"
    write_lines(store,
                record(FASTV, "fastv", "a"), record(FASTV, "vanilla", "a"),           # whole: done
                record(FASTV_HALF, "fastv", "b"), record(FASTV_HALF, "vanilla", "c"),  # two runs, half each
                record(VANILLA_CELL, "vanilla", "d"))                                 # a vanilla cell: one record
    found = stored_cells(store, CELLS)
    assert set(found) == {FASTV.config_hash, VANILLA_CELL.config_hash}
    assert found[FASTV.config_hash].method["run_id"] == found[FASTV.config_hash].vanilla["run_id"] == "a"


def test_failed_and_foreign_records_do_not_count(tmp_path):
    store = tmp_path / "runs.jsonl"
    write_lines(store, record(FASTV, "fastv", "a", status="failed"), record(FASTV, "vanilla", "a", status="failed"),
                {**record(FASTV, "fastv", "b"), "config_hash": None},
                {**record(FASTV, "vanilla", "b"), "config_hash": None},
                {"kind": "accuracy", "config_hash": FASTV.config_hash})
    assert stored_cells(store, CELLS) == {}
    assert stored_cells(tmp_path / "absent.jsonl", CELLS) == {}


def test_a_cell_is_one_write_method_first(tmp_path, monkeypatch):
    writes, syncs = [], []
    real_write, real_fsync = os.write, os.fsync
    monkeypatch.setattr(os, "write", lambda fd, data: (writes.append(bytes(data)), real_write(fd, data))[1])
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd))[1])
    store = tmp_path / "runs.jsonl"
    append_records(store, cell_records(record(FASTV, "fastv", "a"), record(FASTV, "vanilla", "a")))
    assert len(writes) == 1 and len(syncs) == 1 and writes[0].count(b"\n") == 2
    assert [r["method"] for r in read_records(store)] == ["fastv", "vanilla"]
    assert cell_records(record(VANILLA_CELL, "vanilla", "v"), record(VANILLA_CELL, "vanilla", "v")) == [
        record(VANILLA_CELL, "vanilla", "v")]


def whole_cell(cell=FASTV, run_id="a"):
    return [record(cell, cell.method.name, run_id), record(cell, "vanilla", run_id)]


@pytest.mark.filterwarnings("ignore::vidcost.store.CorruptLineWarning")  # the torn line, before the cut
@pytest.mark.parametrize("torn", ["mid-method-line", "after-method-line", "mid-vanilla-line"])
def test_a_torn_cell_write_is_cut_off_and_the_cell_runs_again(tmp_path, torn):
    store = tmp_path / "runs.jsonl"
    write_lines(store, *whole_cell())
    clean = store.read_bytes()
    cell = b"".join(json.dumps(r).encode() + b"\n" for r in whole_cell(FASTV_HALF, "b"))
    first_line_end = cell.index(b"\n") + 1
    cut = {"mid-method-line": 4096, "after-method-line": first_line_end, "mid-vanilla-line": first_line_end + 4096}
    with open(store, "ab") as handle:
        handle.write(cell[:cut[torn]])
    assert FASTV_HALF.config_hash not in stored_cells(store, CELLS)
    with pytest.warns(UserWarning, match="cut off"):
        with CellWriter(store) as writer:
            assert writer.dropped_bytes == cut[torn]
            assert store.read_bytes() == clean  # every line valid again, the whole cell before it kept
            writer.append(whole_cell(FASTV_HALF, "c"))
    lines = store.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line) for line in lines)
    assert set(stored_cells(store, CELLS)) == {FASTV.config_hash, FASTV_HALF.config_hash}


@pytest.mark.parametrize("last", ["whole cell", "vanilla cell", "failed cell", "profile record", "empty"])
def test_a_store_ending_in_a_whole_write_is_left_alone(tmp_path, last):
    store = tmp_path / "runs.jsonl"
    ends = {"whole cell": whole_cell(), "vanilla cell": [record(VANILLA_CELL, "vanilla", "v")],
            "failed cell": [record(FASTV, "fastv", "f", status="failed")],
            "profile record": [{**record(FASTV, "fastv", "p"), "config_hash": None}], "empty": []}
    write_lines(store, *whole_cell(FASTV_HALF, "b"), *ends[last])
    before = store.read_bytes()
    with CellWriter(store) as writer:
        assert writer.dropped_bytes == 0
    assert store.read_bytes() == before


def test_one_sweep_writes_a_store_at_a_time(tmp_path):
    store = tmp_path / "runs.jsonl"
    with CellWriter(store):
        with pytest.raises(ConfigError, match="is being written by another sweep; wait for it to finish"):
            with CellWriter(store):
                pass
    with CellWriter(store):  # released on exit
        pass
