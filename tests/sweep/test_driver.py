"""run_sweep on the real tiny model: whole cells in the store, a rerun that skips them and writes nothing,
failing cells recorded and the sweep going on, Ctrl-C leaving whole cells only, errors before any write.

The out-of-memory and Ctrl-C cases raise from a patched `StagedRuntime.prefill`: they stand in for a GPU
running out of memory mid-cell and for the user's Ctrl-C; the CLI test interrupts a real process.
"""

from __future__ import annotations

import os
import socket
from unittest import mock

import pytest
import torch

from vidcost.errors import ConfigError
from vidcost.profiling import ProfileRecord
from vidcost.report import profile_rows
from vidcost.runtime import StagedRuntime
from vidcost.store import read_records
from vidcost.sweep import grid_from_mapping, plan_sweep, run_sweep
from vidcost.sweep.resume import CellWriter

pytestmark = pytest.mark.filterwarnings("ignore::vidcost.profiling.stats.NoisyMeasurementWarning")
GRID = {"methods": ["uniform", "fastv"], "budgets": [0.25, 0.5], "frames": [1], "repeats": 1, "warmup": 0,
        "threads": 1}


def grid(**changes):
    return grid_from_mapping({**GRID, **changes})


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    import vidcost.runtime

    store = tmp_path_factory.mktemp("sweep") / "runs.jsonl"
    with mock.patch.object(vidcost.runtime, "build_model", wraps=vidcost.runtime.build_model) as build:
        result = run_sweep(grid(), store=store)
    return result, store, build.call_count


def test_every_cell_lands_whole(swept):
    result, store, builds = swept
    assert (result.done, result.skipped, result.failed, result.interrupted) == (4, 0, 0, False)
    assert builds == 1  # one model for the four cells
    assert {o.worker for o in result.outcomes} == {f"{socket.gethostname()}:{os.getpid()}"}  # in this process
    records = read_records(store)
    assert len(records) == 8
    for outcome, (method, vanilla) in zip(result.outcomes, zip(records[::2], records[1::2])):
        cell = outcome.cell
        assert (method["method"], method["budget"], vanilla["method"]) == (cell.method.name, cell.budget, "vanilla")
        assert method["config_hash"] == vanilla["config_hash"] == cell.config_hash
        assert method["run_id"] == vanilla["run_id"] and method["status"] == vanilla["status"] == "ok"
        assert method["frames"] == 1 and method["environment"]["threads"] == 1
        assert ProfileRecord.from_dict(method).to_dict() == method
        assert outcome.compared["speedup"] == pytest.approx(vanilla["ttft_ms"] / method["ttft_ms"])
        assert outcome.compared["flops_speedup"] > 1
    assert "4 cells: 4 done, 0 skipped, 0 failed in" in str(result)
    assert str(result.outcomes[0]).startswith("uniform @ 0.25, 1 frames, tiny: done, TTFT speedup ")


def test_a_rerun_skips_every_cell_and_writes_nothing(swept):
    first, store, _ = swept
    before = store.read_bytes()
    again = run_sweep(grid(), store=store)
    assert (again.done, again.skipped) == (0, 4) and store.read_bytes() == before
    assert [o.compared["speedup"] for o in again.outcomes] == [o.compared["speedup"] for o in first.outcomes]


def test_the_plan_says_what_is_left(swept):
    _, store, _ = swept
    plan = plan_sweep(grid(budgets=[0.25, 0.5, 0.75]), store)
    assert [(c.method.name, c.budget) for c in plan.pending] == [("uniform", 0.75), ("fastv", 0.75)]
    assert str(plan) == f"6 cells: 4 already in {store}, 2 to run"


def test_the_report_reads_a_sweep_store(swept):
    _, store, _ = swept
    rows = profile_rows(read_records(store))
    measured = {(r["method"], r["budget"]): r for r in rows if r["method"] != "vanilla"}
    assert set(measured) == {("uniform", 0.25), ("uniform", 0.5), ("fastv", 0.25), ("fastv", 0.5)}
    assert all(row["speedup"] == row["vanilla_ttft_ms"] / row["ttft_ms"] for row in measured.values())  # the vocabulary


def test_each_model_is_built_once_for_its_cells(tmp_path):
    import vidcost.runtime

    two_models = grid(models=["tiny", "tiny-qwen2.5-vl"], methods=["uniform"], budgets=[0.25, 0.5], frames=[2])
    with mock.patch.object(vidcost.runtime, "build_model", wraps=vidcost.runtime.build_model) as build:
        result = run_sweep(two_models, store=tmp_path / "runs.jsonl")
    assert result.done == 4 and [call.args[0].name for call in build.call_args_list] == ["tiny", "tiny-qwen2.5-vl"]
    assert [r["model"]["architecture"] for r in read_records(tmp_path / "runs.jsonl")[::2]] == [
        "llava_onevision", "llava_onevision", "qwen2_5_vl", "qwen2_5_vl"]


def test_failing_cells_are_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real_prefill = StagedRuntime.prefill

    def failing(self, inputs, method, budget, **kwargs):
        if method.name == "uniform" and budget == 0.5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if method.name == "fastv" and budget == 0.25:
            raise RuntimeError("a kernel\nfailed")
        return real_prefill(self, inputs, method, budget, **kwargs)

    monkeypatch.setattr(StagedRuntime, "prefill", failing)
    store = tmp_path / "runs.jsonl"
    result = run_sweep(grid(), store=store)
    assert [o.status for o in result.outcomes] == ["done", "failed", "failed", "done"]
    assert result.outcomes[1].error.startswith("out of memory profiling uniform on tiny with 1 frames on cpu; lower")
    assert result.outcomes[2].error == "RuntimeError: a kernel failed"  # one line
    assert str(result.outcomes[2]) == "fastv @ 0.25, 1 frames, tiny: failed: RuntimeError: a kernel failed"
    failed = [r for r in read_records(store) if r["status"] == "failed"]
    assert [(r["method"], r["budget"], r["config_hash"]) for r in failed] == [
        ("uniform", 0.5, result.outcomes[1].cell.config_hash), ("fastv", 0.25, result.outcomes[2].cell.config_hash)]
    monkeypatch.setattr(StagedRuntime, "prefill", real_prefill)
    retried = run_sweep(grid(), store=store)  # failed cells are measured again, whole ones skipped
    assert [o.status for o in retried.outcomes] == ["skipped", "done", "done", "skipped"]


def test_a_model_that_cannot_be_built_fails_its_cells_once(tmp_path, monkeypatch):
    import vidcost.runtime

    calls = []

    def exhausted(*args, **kwargs):
        calls.append(1)
        raise MemoryError("cannot allocate 80 GiB")

    monkeypatch.setattr(vidcost.runtime, "build_model", exhausted)
    result = run_sweep(grid(), store=tmp_path / "runs.jsonl")
    assert result.failed == 4 and len(calls) == 1
    assert all(o.error == "MemoryError: cannot allocate 80 GiB" for o in result.outcomes)


def test_ctrl_c_leaves_whole_cells_and_releases_the_store(tmp_path, monkeypatch):
    real_prefill, seen = StagedRuntime.prefill, []

    def interrupted(self, inputs, method, budget, **kwargs):
        seen.append(method.name)
        if method.name == "fastv":
            raise KeyboardInterrupt
        return real_prefill(self, inputs, method, budget, **kwargs)

    monkeypatch.setattr(StagedRuntime, "prefill", interrupted)
    store = tmp_path / "runs.jsonl"
    result = run_sweep(grid(), store=store)
    assert result.interrupted and [o.status for o in result.outcomes] == ["done", "done", "not run", "not run"]
    assert [r["method"] for r in read_records(store)] == ["uniform", "vanilla"] * 2
    with CellWriter(store) as writer:  # the lock went with the sweep
        assert writer.dropped_bytes == 0


@pytest.mark.parametrize("options,message", [
    ({"executor": "ray", "ray_address": "127.0.0.1:1"}, "cannot reach the Ray cluster at --ray-address '127.0.0.1:1'"),
    ({"executor": "ray", "ray_address": "localhost"}, "is not HOST:PORT, ray://HOST:PORT or auto"),
    ({"executor": "local", "ray_address": "127.0.0.1:6379"}, "--ray-address needs --executor ray"),
    ({"executor": "local", "cpus_per_task": 2}, "--cpus-per-task needs --executor ray"),
    ({"executor": "dask"}, "unknown executor 'dask'; choose one of ['local', 'ray']"),
    ({"executor": "ray", "device": "cuda:1"}, "--device cuda:1 with --executor ray: pass --device cuda"),
])
def test_bad_executor_options_fail_before_anything_is_written(tmp_path, options, message):
    store = tmp_path / "runs.jsonl"
    device = options.pop("device", "cpu")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run_sweep(grid(device=device), store=store, **options)
    assert not store.exists()


def test_ray_without_the_extra_names_the_install_command(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, installed or not
    with pytest.raises(ConfigError, match=r'needs Ray, which is not installed; run pip install -e "\.\[ray\]"'):
        run_sweep(grid(), store=tmp_path / "runs.jsonl", executor="ray")
    assert not (tmp_path / "runs.jsonl").exists()
