"""A file that is not text, handed to any command that reads a user file: one line, exit 2, no traceback,
nothing written (issue #20, kind 2)."""

from __future__ import annotations

import pytest

from vidcost.cli import main

BINARY = bytes(range(256)) * 4  # not UTF-8 (0x80… alone), not JSON, not TOML, not CSV


@pytest.mark.parametrize("command", [
    ["ingest", "lmms-eval", "{file}", "--store", "{tmp}/s.jsonl"],
    ["ingest", "lmms-eval", "{json}", "--samples", "{file}", "--store", "{tmp}/s.jsonl"],
    ["pareto", "{file}", "--x", "a", "--y", "b"],
    ["sweep", "{file}", "--dry-run"],
    ["predict", "--method", "fastv", "--budget", "0.25", "--calibration", "{file}"],
    ["predict", "--method", "fastv", "--budget", "0.25", "--device-spec", "{file}"],
    ["profile", "--model", "{file}", "--method", "fastv"],
    ["report", "--published", "{file}", "--out", "{tmp}/report"],
])
def test_a_binary_file_is_a_one_line_error(tmp_path, capsys, command):
    binary = tmp_path / "data.bin"
    binary.write_bytes(BINARY)
    results = tmp_path / "results.json"
    results.write_text('{"results": {"videomme": {"acc,none": 0.5}}, "config": {"model_args": ""}}')
    args = [part.format(file=binary, json=results, tmp=tmp_path) for part in command]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
