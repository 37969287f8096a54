"""VIDCOST_REQUIRE_GPU=1 turns the `gpu` tests' skip into a failure that names the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GPU_TEST = "tests/profiling/test_timer.py::test_cuda_event_window_agrees_with_a_synchronised_wall_clock"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the behaviour without CUDA")
@pytest.mark.parametrize("required, fails", [("1", True), ("", False)])
def test_gpu_tests_fail_without_cuda_only_when_required(required, fails):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "VIDCOST_REQUIRE_GPU": required}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", GPU_TEST], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    assert (done.returncode != 0) == fails, done.stdout[-2000:]
    if fails:
        assert "VIDCOST_REQUIRE_GPU=1 but CUDA is not available" in done.stdout
    else:
        assert "1 skipped" in done.stdout
