"""`vidcost sweep` as a user runs it: killed with SIGKILL mid-way and rerun, the store holds exactly the cells
of an uninterrupted run; Ctrl-C stops it with whole cells only; --dry-run builds nothing; bad input is one
line, exit code 2, and nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from vidcost.sweep import grid_from_mapping, plan_sweep, run_sweep

pytestmark = pytest.mark.filterwarnings("ignore::vidcost.profiling.stats.NoisyMeasurementWarning")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the shared 2-core machine: one thread is faster
# 6 cells of the tiny model, about half a second each after a build of several seconds.
GRID = ["--methods", "uniform,fastv", "--budgets", "0.2,0.4,0.6", "--frames", "1", "--repeats", "2",
        "--warmup", "0", "--threads", "1"]
SAME_GRID = {"methods": ["uniform", "fastv"], "budgets": [0.2, 0.4, 0.6], "frames": [1], "repeats": 2,
             "warmup": 0, "threads": 1}


def vidcost(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", "sweep", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


def start(store) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidcost", "sweep", *GRID, "--store", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def wait_for_first_cell(store, process: subprocess.Popen, timeout_s: float = 240) -> None:
    """Poll the store until the sweep has appended its first whole cell (two lines)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if store.read_bytes().count(b"\n") >= 2:
                return
        except FileNotFoundError:  # not yet, or the sweep's writability probe just removed the file it made
            pass
        if process.poll() is not None:
            pytest.fail(f"the sweep ended before its first cell: {process.communicate()}")
        time.sleep(0.005)
    process.kill()
    pytest.fail("no cell was stored in time")


def cells_in(store) -> list[tuple[str, str, str, str]]:
    """(config_hash, run_id, method, status) of every line; fails on a line that is not JSON."""
    records = [json.loads(line) for line in store.read_text().splitlines()]
    return [(r["config_hash"], r["run_id"], r["method"], r["status"]) for r in records]


def check_whole(cells) -> None:
    """Every run id holds one method record and its vanilla one, both ok."""
    by_run = Counter(run_id for _, run_id, _, _ in cells)
    assert set(by_run.values()) == {2}
    assert all(status == "ok" for *_, status in cells)


def test_killed_mid_way_and_rerun_the_store_holds_exactly_the_cells_of_an_uninterrupted_run(tmp_path):
    store = tmp_path / "killed.jsonl"
    process = start(store)
    wait_for_first_cell(store, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    stored_before = store.read_bytes().count(b"\n") // 2
    assert 1 <= stored_before < 6  # killed mid-way
    resumed = vidcost(*GRID, "--store", str(store))
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipped   {stored_before:>8}" in resumed.stdout and f"done      {6 - stored_before:>8}" in resumed.stdout

    reference = tmp_path / "uninterrupted.jsonl"
    run_sweep(grid_from_mapping(SAME_GRID), store=reference)
    killed, uninterrupted = cells_in(store), cells_in(reference)  # every line valid JSON, or this fails
    check_whole(killed)
    check_whole(uninterrupted)
    assert len(killed) == len(uninterrupted) == 12  # no duplicates, nothing lost
    assert Counter((h, m) for h, _, m, _ in killed) == Counter((h, m) for h, _, m, _ in uninterrupted)
    plan = plan_sweep(grid_from_mapping(SAME_GRID), store)
    assert not plan.pending and {h for h, *_ in killed} == {c.config_hash for c in plan.cells}


# A plug-in whose selection waits (up to two minutes) for a file that never comes: the sweep is still in
# flight when the signal arrives, however fast this machine runs the cells before it.
WAITING_METHOD = """\
import time
from pathlib import Path

from vidcost.methods.baselines import Uniform


class Waiting(Uniform):
    name = "waiting"

    def select_visual(self, *args, **kwargs):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not Path(__file__).with_name("release").exists():
            time.sleep(0.01)
        return super().select_visual(*args, **kwargs)
"""


def test_ctrl_c_stops_with_whole_cells_and_says_how_to_resume(tmp_path):
    plugin = tmp_path / "waiting.py"
    plugin.write_text(WAITING_METHOD)
    grid = ["--methods", f"uniform,{plugin}:Waiting", *GRID[2:]]
    store = tmp_path / "runs.jsonl"
    # A suite started as a background job (`cmd &` in a script) runs with SIGINT ignored, and a child inherits
    # that: Python then installs no KeyboardInterrupt handler. The sweep gets Ctrl-C as a terminal gives it.
    process = subprocess.Popen([sys.executable, "-m", "vidcost", "sweep", *grid, "--store", str(store)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_first_cell(store, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted; every stored cell is whole — rerun the same command to resume" in err
    stored = cells_in(store)
    check_whole(stored)
    assert {method for _, _, method, _ in stored} <= {"uniform", "vanilla"}  # the waiting cell never finished
    assert "not run" in out and "wall time" in out
    dry = vidcost(*grid, "--store", str(store), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["done"] == len(stored) // 2 and plan["to_run"] == 6 - len(stored) // 2


def test_dry_run_lists_the_cells_and_builds_nothing(tmp_path):
    code = ("import sys; from vidcost.cli import main; code = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'the dry run imported torch'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "sweep", *GRID, "--store", str(tmp_path / "runs.jsonl"),
                           "--dry-run"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "to run" in lines[1] and lines[1].endswith("uniform @ 0.2, 1 frames, tiny")
    assert lines[-1] == f"6 cells: 0 already in {tmp_path / 'runs.jsonl'}, 6 to run"
    assert not (tmp_path / "runs.jsonl").exists()


GRID_FILE = """\
budgets = [0.2]
frames = [1]
[[methods]]
name = "fastv"
layer = 3
[[methods]]
name = "uniform"
treshold = 0.5
"""


@pytest.mark.parametrize("args,message", [
    (["--budgets", "0.1"], "empty grid: no methods; pass --methods a,b"),
    (["--methods", "uniform", "--budgets", ""], "empty grid: no budgets"),
    (["--methods", "uniform,mmg", "--budgets", "0.1"], "Unknown pruning method 'mmg'; choose one of ["),
    (["--methods", "uniform,fastv", "--budgets", "0.1", "--param", "fastv.layr=3"],
     "Unknown parameter(s) ['layr'] for method 'fastv'"),
    (["grid.toml"], "cell uniform(treshold=0.5) @ 0.2, 1 frames, tiny: Unknown parameter(s) ['treshold']"),
    (["bad.toml"], "grid file 'bad.toml' is not valid TOML: "),
    (["--methods", "uniform", "--budgets", "0.1", "--executor", "ray", "--ray-address", "127.0.0.1:1"],
     "cannot reach the Ray cluster at --ray-address '127.0.0.1:1'"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    (tmp_path / "grid.toml").write_text(GRID_FILE)
    (tmp_path / "bad.toml").write_text('budgets = [0.1]\nmethods = "fastv\nrepeats = 1\n')
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kind": "accuracy"}\n')
    done = vidcost(*args, "--store", str(store), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("vidcost sweep: error: ")
    assert message in done.stderr
    if args == ["bad.toml"]:
        assert "line 2" in done.stderr
    assert store.read_text() == '{"kind": "accuracy"}\n' and done.stdout == ""


def test_ray_without_the_extra_is_one_line_naming_the_install(tmp_path):
    code = "import sys; sys.modules['ray'] = None; from vidcost.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "sweep", "--methods", "uniform", "--budgets", "0.1",
                           "--executor", "ray", "--store", str(tmp_path / "runs.jsonl")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert 'needs Ray, which is not installed; run pip install -e ".[ray]"' in done.stderr
    assert not (tmp_path / "runs.jsonl").exists()
