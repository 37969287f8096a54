"""analysis/compare_official.py as a user runs it: a path that is not the official checkout is one line, exit 2.

The comparison itself needs the authors' repositories, which the test suite does not download; what it
found is in the script's docstring run and the issue #9 report. Here: the argument checks, and the loader
that compiles one function of a file without running the file's imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "analysis" / "compare_official.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_a_path_without_the_official_file_is_one_line(tmp_path):
    done = run("--official", f"prunevid={tmp_path}")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "not a checkout of the official prunevid code (no models/pllava/modeling_pllava.py there)" in done.stderr


def test_an_unknown_method_or_no_official_path_is_one_line():
    for args in (["--official", "hieravid=/tmp"], []):
        done = run(*args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "compare_official: error:" in done.stderr


def test_the_loader_compiles_only_the_named_function(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import compare_official
    finally:
        sys.path.pop(0)
    source = tmp_path / "official.py"
    source.write_text("import does_not_exist\n\ndef twice(x):\n    return 2 * x\n\nclass Model:\n"
                      "    def half(self, x):\n        return x / 2\n")
    assert compare_official.official_functions(source, ["twice"])["twice"](3) == 6
    assert compare_official.official_functions(source, ["half"], owner="Model")["half"](None, 3) == 1.5
