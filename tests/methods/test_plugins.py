"""Your own pruning method: `file.py:Class`, `module:Class` and the `vidcost.methods` entry point, as a user plugs them in.

The method is the README's own example (its "Your own pruning method" code block), written to a file in a
temporary folder, so the README cannot drift from what works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vidcost.errors import ConfigError
from vidcost.methods import get_method, method_names
from vidcost.methods.catalog import list_methods
from vidcost.methods.testing import check_method

README = Path(__file__).resolve().parents[2] / "README.md"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def readme_method() -> str:
    """The Python block of the README's "Your own pruning method" section."""
    section = README.read_text().split("## Your own pruning method", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def plugin_file(tmp_path) -> Path:
    path = tmp_path / "my_norm.py"
    path.write_text(readme_method())
    return path


def vidcost(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", *args], capture_output=True, text=True, env=ENV,
                          cwd=cwd, timeout=300)


def test_the_readme_method_passes_every_check_from_a_file(plugin_file):
    method = get_method(f"{plugin_file}:NormPrune", power=3)
    assert method.name == "normprune" and method.checked_params()["power"] == 3
    check_method(f"{plugin_file}:NormPrune")


def test_a_module_in_a_package_plugs_in_by_its_import_path(tmp_path, monkeypatch):
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "norm.py").write_text(readme_method())
    monkeypatch.syspath_prepend(str(tmp_path))
    check_method("my_pkg.norm:NormPrune", kinds=("scenes",))


def test_only_the_named_file_runs(tmp_path):
    (tmp_path / "sibling.py").write_text("raise SystemExit('a sibling module ran')\n")
    (tmp_path / "counted.py").write_text(readme_method() + "\nimport builtins\n"
                                         "builtins.loads = getattr(builtins, 'loads', 0) + 1\n")
    import builtins

    get_method(f"{tmp_path / 'counted.py'}:NormPrune")
    get_method(f"{tmp_path / 'counted.py'}:NormPrune")
    assert builtins.loads == 1  # loaded once, and nothing else in its folder
    del builtins.loads


@pytest.mark.parametrize("spec, message", [
    ("{dir}/missing.py:NormPrune", r"no such file '.*missing.py'"),
    ("{file}:Absent", r"my_norm.py defines no 'Absent'"),
    ("{file}:Any", r"is typing.Any, not a subclass of vidcost.methods.Method"),
    ("no_such_pkg.mod:Cls", r"no module named 'no_such_pkg.mod'"),
    ("{file}:", r"must be module:Class or path/to/file.py:Class"),
])
def test_a_bad_plugin_is_a_one_line_config_error(plugin_file, spec, message):
    with pytest.raises(ConfigError, match=message) as caught:
        get_method(spec.format(dir=plugin_file.parent, file=plugin_file))
    assert "\n" not in str(caught.value)


def test_a_plugin_that_fails_to_import_is_named(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import numpy\nraise RuntimeError('half-written')\n")
    with pytest.raises(ConfigError, match=r"loading '.*broken.py' failed: RuntimeError: half-written"):
        get_method(f"{broken}:Anything")


def test_an_installed_package_registers_under_the_entry_point_group(tmp_path, monkeypatch):
    package = tmp_path / "normpkg"
    package.mkdir()
    (package / "__init__.py").write_text(readme_method())
    info = tmp_path / "normpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: normpkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vidcost.methods]\nnormprune = normpkg:NormPrune\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "normprune" in method_names()
    assert get_method("normprune").paper == "the vidcost README's example"
    listed = {info.name: info for info in list_methods()}
    assert listed["normprune"].source == "installed (entry point)"


def test_methods_lists_every_method_with_parameters_and_a_plugin(plugin_file):
    done = vidcost("methods", "--json", "--method", f"{plugin_file}:NormPrune")
    assert done.returncode == 0, done.stderr
    listed = {entry["name"]: entry for entry in json.loads(done.stdout)}
    assert set(method_names()) <= set(listed)
    plugin = listed[f"{plugin_file}:NormPrune"]
    assert plugin["stage"] == "before the LLM" and plugin["source"] == "plug-in"
    assert plugin["parameters"] == [{"name": "power", "default": 2.0, "kind": "float", "range": "[0.5, 8]",
                                     "doc": "p of the norm"}]
    assert listed["prunevid"]["stage"] == "before and inside the LLM"
    assert {p["name"] for p in listed["prunevid"]["parameters"]} >= {"tau", "alpha", "prune_layer"}
    assert listed["framefusion"]["data_dependent_counts"] is True
    table = vidcost("methods")
    assert table.returncode == 0 and "--param tau=0.8  [-1, 1]" in table.stdout


def test_a_plugin_from_a_temporary_folder_profiles_on_the_default_model(plugin_file, tmp_path):
    done = vidcost("profile", "--method", f"{plugin_file}:NormPrune", "--param", "power=3", "--frames", "2",
                   "--repeats", "1", "--warmup", "0", "--no-store", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["executed_schedule"]["visual_tokens"] == [32] * 6  # 25 % of 2 × 64 tokens


def test_a_bad_plugin_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    done = vidcost("flops", "--method", f"{tmp_path}/nowhere.py:X", "--budget", "0.25")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no such file" in done.stderr
