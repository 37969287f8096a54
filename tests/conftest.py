"""Shared test set-up: `gpu` tests skip without CUDA — or fail, with VIDCOST_REQUIRE_GPU=1."""

from __future__ import annotations

import os

import pytest

REQUIRE_GPU = "VIDCOST_REQUIRE_GPU"

# Selection traces (vidcost.selection_trace) go to a folder of this run, not the user's cache; the CLI tests'
# subprocesses inherit it.
if "VIDCOST_CACHE" not in os.environ:
    import tempfile

    os.environ["VIDCOST_CACHE"] = tempfile.mkdtemp(prefix="vidcost-test-cache-")


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _gpu_required() -> bool:
    return os.environ.get(REQUIRE_GPU, "") not in ("", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _gpu_required() or not any("gpu" in item.keywords for item in items) or _has_cuda():
        return
    skip = pytest.mark.skip(reason=f"needs a CUDA device (set {REQUIRE_GPU}=1 to fail instead)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """With VIDCOST_REQUIRE_GPU=1 a `gpu` test without CUDA fails: a GPU check that skips proves nothing."""
    if "gpu" in item.keywords and _gpu_required() and not _has_cuda():
        pytest.fail(f"{REQUIRE_GPU}=1 but CUDA is not available: this `gpu` test cannot run here; run it on a "
                    "machine with a CUDA device, or unset the variable to skip it", pytrace=False)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the whole suite: nothing here is timed, and on a shared 2-core machine
    spinning OpenMP threads make the model tests several times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
