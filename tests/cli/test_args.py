"""The argument checks every command and analysis script shares (`vidcost.cli.args`)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from vidcost.cli import args as cli_args
from vidcost.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("converter, text, fragment", [
    (cli_args.finite_float, "nan", "not a finite number"),
    (cli_args.finite_float, "-inf", "not a finite number"),
    (cli_args.finite_float, "1e", "not a number"),
    (cli_args.positive_float, "0", "must be above 0"),
    (cli_args.nonnegative_float, "-0.5", "must be 0 or more"),
    (cli_args.whole_number(1), "1.5", "not a whole number"),
    (cli_args.whole_number(1), "0", "0 is below 1"),
    (cli_args.budget, "1.01", "outside (0, 1]"),
    (cli_args.budget, "nan", "not a finite number"),
    (cli_args.budget_list, "0.1,,0.2", "empty entry"),
    (cli_args.budget_list, "0.1,2", "budget 2.0 is outside (0, 1]"),
    (cli_args.method_name, "mmg", "Unknown pruning method 'mmg'"),
    (cli_args.method_list, "fastv,nope", "'nope'"),
])
def test_converters_refuse_with_a_reason(converter, text, fragment):
    with pytest.raises(argparse.ArgumentTypeError, match=None) as info:
        converter(text)
    assert fragment in str(info.value)


def test_converters_pass_good_values():
    assert cli_args.finite_float("2.5") == 2.5 and cli_args.whole_number(0)("0") == 0
    assert cli_args.budget_list("0.1, 0.25") == [0.1, 0.25]
    assert cli_args.method_list("fastv,mmgvid") == ["fastv", "mmgvid"]


def test_parser_error_is_one_line_with_a_pointer_to_help(capsys):
    parser = cli_args.ArgumentParser(prog="demo")
    parser.add_argument("--frames", type=cli_args.whole_number(1))
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--frames", "x"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "demo: error: argument --frames: 'x' is not a whole number; see demo --help\n"


def test_run_command_turns_errors_and_warnings_into_lines(capsys):
    import vidcost.methods

    def work():
        # As if raised inside vidcost (said as a line), and by a library (left to Python's own filters).
        warnings.warn_explicit("suspect\nbut usable", UserWarning, vidcost.methods.__file__, 1)
        warnings.warn_explicit("a library's deprecation", DeprecationWarning, "/elsewhere/lib.py", 1)
        raise ConfigError("bad value 'x'\nfix it")

    with pytest.warns(DeprecationWarning, match="a library's deprecation"):  # re-issued, not printed as ours
        assert cli_args.run_command("demo", work) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["demo: error: bad value 'x' fix it", "demo: warning: suspect but usable"]


@pytest.mark.parametrize("script, argv, fragment", [
    ("bench_selection.py", ["--methods", "fastv,nope"], "argument --methods: Unknown pruning method 'nope'"),
    ("bench_selection.py", ["--budget", "0.1,1.5"], "argument --budget: budget 1.5 is outside (0, 1]"),
    ("bench_uniform_speedup.py", ["--budget", "nan"], "argument --budget: 'nan' is not a finite number"),
    ("cost_conventions.py", ["--text-tokens", "-1"], "argument --text-tokens: -1 is below 0"),
    ("bench_pricing.py", ["--model", "nope"], "Unknown model 'nope'"),
])
def test_analysis_scripts_share_the_cli_error_handling(script, argv, fragment):
    done = subprocess.run([sys.executable, str(ROOT / "analysis" / script), *argv], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: ") and fragment in lines[0], lines
    assert "n/a" not in done.stdout  # no table of failed rows: nothing was run
