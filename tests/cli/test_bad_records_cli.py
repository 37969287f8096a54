"""Records of the right shape with fields of the wrong type (a budget that is a word, a model that is a list):
every command that reads the store names the file, line and field in one warning and goes on without them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BAD = [{"kind": "profile", "model": ["tiny"], "method": "fastv", "budget": 0.25, "status": "ok"},
       {"kind": "profile", "model": "tiny", "method": "fastv", "budget": "a lot", "status": "ok"},
       {"kind": "accuracy", "model": "tiny", "method": "fastv", "budget": 0.25, "benchmark": "videomme",
        "score": "high"}]


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "runs.jsonl"
    shutil.copy(ROOT / "profiles" / "latency_cpu_tiny.jsonl", path)
    with path.open("a") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in BAD)
    return path


@pytest.mark.parametrize("command, bad_lines", [
    (["report", "--out", "{tmp}/report"], 3),
    (["export", "--out", "{tmp}/runs.csv"], 3),
    (["fit", "--out", "{tmp}/calibration.json"], 2),  # fit reads profile records only
])
def test_bad_fields_are_named_and_skipped(store, tmp_path, command, bad_lines):
    args = [part.format(tmp=tmp_path) for part in command]
    done = subprocess.run([sys.executable, "-m", "vidcost", *args, "--store", str(store)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "skipped corrupt line" in line]
    good = sum(1 for _ in (ROOT / "profiles" / "latency_cpu_tiny.jsonl").open())
    assert [line.split(f"{store.name}:")[1].split(":")[0] for line in lines] == [str(good + i)
                                                                                 for i in range(1, bad_lines + 1)]
    assert "field 'model'" in lines[0] and "field 'budget' is 'a lot'" in lines[1]
    assert bad_lines == 2 or "field 'score' is 'high'" in lines[2]
