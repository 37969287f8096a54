"""The Ray executor on a local Ray (CPU slots): the same grid yields the same cells as the local executor,
each cell whole, written by the driver alone; a store filled on Ray resumes locally.

Skipped without Ray (`pip install -e ".[ray]"`); CI installs the extra and sets VIDCOST_REQUIRE_RAY=1,
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import socket
from collections import Counter

import pytest

from vidcost.store import read_records
from vidcost.sweep import grid_from_mapping, plan_sweep, run_sweep

if os.environ.get("VIDCOST_REQUIRE_RAY", "") not in ("", "0"):
    import ray  # noqa: F401 — required: an ImportError here fails the run
else:
    ray = pytest.importorskip("ray", reason='needs Ray: pip install -e ".[ray]"')

pytestmark = pytest.mark.filterwarnings("ignore::vidcost.profiling.stats.NoisyMeasurementWarning")
GRID = {"methods": ["uniform", "fastv"], "budgets": [0.25], "frames": [1], "repeats": 1, "warmup": 0, "threads": 1}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ray")
    grid = grid_from_mapping(GRID)
    local = run_sweep(grid, store=folder / "local.jsonl")
    on_ray = run_sweep(grid, store=folder / "ray.jsonl", executor="ray")
    return local, on_ray, folder


def cells(store):
    return Counter((r["config_hash"], r["method"], r["status"]) for r in read_records(store))


def test_ray_yields_the_same_cells_as_local(swept):
    local, on_ray, folder = swept
    assert (on_ray.executor, on_ray.done, on_ray.failed) == ("ray", 2, 0)
    assert cells(folder / "ray.jsonl") == cells(folder / "local.jsonl")
    assert len(read_records(folder / "ray.jsonl")) == 4
    for method, vanilla in zip(*[iter(read_records(folder / "ray.jsonl"))] * 2):  # method, then its vanilla
        assert vanilla["method"] == "vanilla" and method["run_id"] == vanilla["run_id"]
    assert [o.cell.config_hash for o in on_ray.outcomes] == [o.cell.config_hash for o in local.outcomes]
    workers = {o.worker for o in on_ray.outcomes}  # measured in two actors (the 2 CPU slots), not the driver
    assert len(workers) == 2 and f"{socket.gethostname()}:{os.getpid()}" not in workers
    assert not ray.is_initialized()  # the Ray it started is shut down


def test_a_store_filled_on_ray_resumes_locally(swept):
    _, _, folder = swept
    assert not plan_sweep(grid_from_mapping(GRID), folder / "ray.jsonl").pending
    again = run_sweep(grid_from_mapping({**GRID, "budgets": [0.25, 0.5]}), store=folder / "ray.jsonl")
    assert [o.status for o in again.outcomes] == ["skipped", "done", "skipped", "done"]

