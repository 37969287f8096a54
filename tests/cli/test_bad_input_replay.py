"""Every command of the README's table replayed with bad input, in a fresh folder (issue #20).

Each case runs in a folder holding only a copy of a committed store, a binary file and a good lmms-eval
results file. A bad value, a file that is not text or an output that cannot be written: exit 2, one line on
stderr, no traceback, nothing created, the store unchanged (by hash). A store with records of the right
shape and fields of the wrong type: every reader warns once per bad line, naming the file, line and field,
goes on without them, and leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from vidcost.cli import main

ROOT = Path(__file__).resolve().parents[2]
BINARY = bytes(range(256)) * 4
WRONG_TYPES = [{"kind": "profile", "model": {"name": "tiny"}, "method": 3, "budget": 0.25, "status": "ok"},
               {"kind": "profile", "model": "tiny", "method": "fastv", "budget": [0.25], "status": "ok"},
               {"kind": "accuracy", "model": "tiny", "method": "fastv", "budget": 0.25, "benchmark": 7,
                "score": 0.5}]

# (kind, command); {store} the store copy, {bin} the binary file, {results} a good results file, {tmp} the folder
REFUSED = [
    ("value", ["profile", "--method", "fastv", "--budget", "1.5", "--store", "{store}"]),
    ("value", ["profile", "--method", "nosuch", "--store", "{store}"]),
    ("value", ["profile", "--model", "{tmp}/missing.json", "--store", "{store}"]),
    ("value", ["sweep", "--methods", "fastv", "--budgets", "0", "--store", "{store}"]),
    ("value", ["sweep", "--methods", "fastv,nosuch", "--budgets", "0.5", "--store", "{store}"]),
    ("value", ["fit", "--store", "{tmp}/missing.jsonl", "--out", "{tmp}/c.json"]),
    ("value", ["predict", "--method", "fastv", "--budget", "2", "--device-spec", "h100"]),
    ("value", ["predict", "--method", "fastv", "--budget", "0.25", "--device-spec", "nosuch-gpu"]),
    ("value", ["flops", "--method", "fastv", "--budget", "-1"]),
    ("value", ["predict", "--method", "fastv", "--memory-limit", "24XB"]),
    ("value", ["pareto", "{tmp}/missing.csv", "--x", "a", "--y", "b"]),
    ("value", ["ingest", "lmms-eval", "{tmp}/missing", "--store", "{store}"]),
    ("value", ["report", "--store", "{tmp}/missing.jsonl", "--out", "{tmp}/report"]),
    ("value", ["eval", "--tasks", "nosuch_task", "--methods", "vanilla", "--output-path", "{tmp}/out",
               "--store", "{store}"]),
    ("value", ["eval", "--tasks", "videomme", "--methods", "fastv", "--budgets", "1.5", "--output-path",
               "{tmp}/out", "--store", "{store}"]),
    ("value", ["save-model", "--model", "nosuch", "--out", "{tmp}/model"]),
    ("value", ["save-model", "--model", "tiny", "--out", "{tmp}/model", "--init-std", "-1"]),
    ("value", ["export", "--store", "{store}", "--out", "{tmp}/runs.xlsx"]),
    ("not text", ["ingest", "lmms-eval", "{bin}", "--store", "{store}"]),
    ("not text", ["ingest", "lmms-eval", "{results}", "--samples", "{bin}", "--store", "{store}"]),
    ("not text", ["pareto", "{bin}", "--x", "a", "--y", "b"]),
    ("not text", ["sweep", "{bin}", "--store", "{store}"]),
    ("not text", ["predict", "--method", "fastv", "--budget", "0.25", "--calibration", "{bin}"]),
    ("not text", ["predict", "--method", "fastv", "--budget", "0.25", "--device-spec", "{bin}"]),
    ("not text", ["profile", "--model", "{bin}", "--method", "fastv", "--store", "{store}"]),
    ("not text", ["flops", "--model", "{bin}", "--method", "fastv"]),
    ("not text", ["report", "--published", "{bin}", "--out", "{tmp}/report"]),
    ("not text", ["eval", "--grid", "{bin}", "--output-path", "{tmp}/out", "--store", "{store}"]),
    ("not text", ["fit", "--store", "{bin}", "--out", "{tmp}/c.json"]),
    ("unwritable", ["profile", "--method", "fastv", "--store", "/proc/nope/runs.jsonl"]),
    ("unwritable", ["sweep", "--methods", "fastv", "--budgets", "0.5", "--store", "/proc/nope/runs.jsonl"]),
    ("unwritable", ["fit", "--store", "{store}", "--out", "/proc/nope/c.json"]),
    ("unwritable", ["predict", "--method", "fastv", "--budgets", "0.1,0.5", "--device-spec", "h100",
                    "--plot", "/proc/nope/c.png"]),
    ("unwritable", ["predict", "--method", "fastv", "--budgets", "0.1,0.5", "--device-spec", "h100",
                    "--plot", "{tmp}/c.xyz"]),
    ("unwritable", ["ingest", "lmms-eval", "{results}", "--store", "/proc/nope/s.jsonl"]),
    ("unwritable", ["report", "--store", "{store}", "--out", "/proc/nope/report"]),
    ("unwritable", ["export", "--store", "{store}", "--out", "/proc/nope/runs.csv"]),
    ("unwritable", ["eval", "--tasks", "videomme", "--methods", "vanilla", "--output-path", "/proc/nope/out",
                    "--store", "{store}"]),
    ("unwritable", ["save-model", "--model", "tiny", "--out", "/proc/nope/model"]),
]

# Readers of a store whose records have fields of the wrong type.
READERS = [
    ["report", "--store", "{store}", "--out", "{tmp}/report"],
    ["export", "--store", "{store}", "--out", "{tmp}/runs.csv"],
    ["fit", "--store", "{store}", "--out", "{tmp}/c.json"],
    ["pareto", "--store", "{store}"],
]


def run(args: list[str]) -> int:
    """`vidcost ARGS` in this process: its exit status (argparse's usage errors exit through SystemExit)."""
    try:
        return main(args)
    except SystemExit as done:
        return done.code


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def folder(tmp_path):
    shutil.copy(ROOT / "profiles" / "latency_cpu_tiny.jsonl", tmp_path / "runs.jsonl")
    (tmp_path / "data.bin").write_bytes(BINARY)
    (tmp_path / "results.json").write_text('{"results": {"videomme": {"acc,none": 0.5}}, '
                                           '"config": {"model_args": ""}}')
    return tmp_path


def arguments(command: list[str], folder: Path) -> list[str]:
    return [part.format(store=folder / "runs.jsonl", bin=folder / "data.bin", results=folder / "results.json",
                        tmp=folder) for part in command]


@pytest.mark.parametrize("kind, command", REFUSED, ids=[f"{kind}:{' '.join(c[:2])}" for kind, c in REFUSED])
def test_bad_input_is_one_line_and_changes_nothing(folder, capsys, kind, command):
    before = sorted(p.name for p in folder.iterdir()), digest(folder / "runs.jsonl")
    code = run(arguments(command, folder))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (kind, err)
    assert len(err) == 1 and "Traceback" not in err[0] and err[0].startswith("vidcost"), (kind, err)
    assert (sorted(p.name for p in folder.iterdir()), digest(folder / "runs.jsonl")) == before


@pytest.mark.parametrize("command", READERS, ids=[c[0] for c in READERS])
def test_wrong_types_are_named_and_skipped_by_every_reader(folder, capsys, command):
    store = folder / "runs.jsonl"
    good = sum(1 for _ in store.open())
    with store.open("a") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in WRONG_TYPES)
    before = digest(store)
    run(arguments(command, folder))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    named = [line for line in err.splitlines() if "skipped corrupt line" in line]
    lines = {int(line.split(f"{store.name}:")[1].split(":")[0]) for line in named}
    # the profile records always; the accuracy record where the reader reads accuracy
    assert {good + 1, good + 2} <= lines <= {good + 1, good + 2, good + 3}, err
    assert all("field '" in line for line in named), named
    assert digest(store) == before
