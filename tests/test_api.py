"""The Python API for notebooks: importable from `vidcost`, torch imported only by what needs it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import vidcost

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("ModelSpec", "load_spec", "Schedule", "estimate_cost", "get_method", "profile_method", "load_frame",
         "pareto_front", "compute_fronts", "recommend")


def _fresh(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_the_api_names_leave_torch_out_until_used():
    code = ("import sys, vidcost; " + "; ".join(f"vidcost.{name}" for name in NAMES) + "; "
            "spec = vidcost.ModelSpec; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert 'transformers' not in sys.modules and 'pandas' not in sys.modules")
    done = _fresh(code)
    assert done.returncode == 0, done.stderr


def test_each_name_is_the_object_its_module_defines():
    from vidcost.pareto import pareto_front
    from vidcost.spec import ModelSpec

    assert vidcost.ModelSpec is ModelSpec and vidcost.pareto_front is pareto_front
    assert set(NAMES) <= set(vidcost.__all__) and set(NAMES) <= set(dir(vidcost))
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        vidcost.nonesuch  # noqa: B018


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_notebook_example_runs(tmp_path):
    done = _fresh(_readme_example(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "TFLOPs" in done.stdout and "speedup" in done.stdout
    assert (tmp_path / "profiles" / "runs.jsonl").is_file()
