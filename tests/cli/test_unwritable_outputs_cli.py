"""An output that cannot be written (or a figure format matplotlib does not know) is refused before any work:
one line, exit 2, nothing created (issue #20, kind 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcost.cli import main

STORE = str(Path(__file__).resolve().parents[2] / "profiles" / "latency_cpu_tiny.jsonl")


@pytest.mark.parametrize("command, fragment", [
    (["fit", "--store", STORE, "--out", "/proc/nope/calibration.json"], "cannot write --out"),
    (["predict", "--method", "fastv", "--budgets", "0.1,0.5", "--device-spec", "h100", "--plot", "{tmp}/curve.xyz"],
     "format 'xyz' is not one of"),
    (["predict", "--method", "fastv", "--budgets", "0.1,0.5", "--device-spec", "h100", "--plot", "/proc/nope/c.png"],
     "cannot write --plot"),
    (["report", "--store", STORE, "--out", "/proc/nope/report"], "--out"),
    (["export", "--store", STORE, "--out", "/proc/nope/runs.csv"], "--out"),
])
def test_an_unwritable_output_is_refused_before_the_work(tmp_path, capsys, command, fragment, monkeypatch):
    import vidcost.latency

    def no_fit(*args, **kwargs):
        raise AssertionError("the work ran before the output was checked")

    monkeypatch.setattr(vidcost.latency, "fit_latency", no_fit)
    code = main([part.format(tmp=tmp_path) for part in command])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert list(tmp_path.iterdir()) == []
