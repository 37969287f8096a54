"""`vidcost report` in a subprocess: a complete directory, no torch, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def vidcost(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", *args], capture_output=True, text=True, timeout=180,
                          cwd=cwd)


def test_report_without_measurements(tmp_path):
    out = tmp_path / "rep"
    # In an empty folder there is no default store (profiles/runs.jsonl): published data and predictions only.
    result = vidcost("report", "--out", str(out), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["provenance"]["accuracy_vs_flops"] == "published"
    assert any("No store given" in note for note in payload["notes"])
    html = (out / "index.html").read_text()
    for ref in re.findall(r"(?:src|href)='([^']+)'", html):
        assert (out / ref).is_file(), ref


def test_a_named_store_that_does_not_exist_is_an_error(tmp_path):
    result = vidcost("report", "--out", str(tmp_path / "r"), "--store", str(tmp_path / "typo.jsonl"))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "store" in result.stderr and "typo.jsonl" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_named_empty_store_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = vidcost("report", "--out", str(tmp_path / "r"), "--store", str(empty))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "empty.jsonl' holds no records" in result.stderr


def test_report_does_not_import_torch(tmp_path):
    code = ("import os, sys; from vidcost.cli import main; "
            f"os.chdir({str(tmp_path)!r}); main(['report', '--out', 'r']); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr


def test_bad_published_file_and_unknown_benchmark(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("source,model\nx,y\n")
    result = vidcost("report", "--out", str(tmp_path / "r"), "--published", str(bad))
    assert result.returncode == 2 and "lacks column(s)" in result.stderr and len(result.stderr.splitlines()) == 1
    result = vidcost("report", "--out", str(tmp_path / "r"), "--benchmark", "msvd", cwd=tmp_path)
    assert result.returncode == 2 and "benchmark 'msvd'" in result.stderr


def test_corrupt_store_line_is_skipped_not_fatal(tmp_path):
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kind": "accuracy", "model": "m", "method": "vanilla", "budget": 1.0, "benchmark": "b", '
                     '"score": 50.0}\n{not json\n')
    result = vidcost("report", "--out", str(tmp_path / "r"), "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "skipped corrupt line" in result.stderr


def test_unwritable_output_and_header_only_published_file_are_one_line_errors(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = vidcost("report", "--out", str(blocker / "rep"), cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "cannot create the output directory --out" in result.stderr and "rep" in result.stderr
    header = tmp_path / "header.csv"
    header.write_text((Path(__file__).resolve().parents[2] / "profiles" / "published" / "mmgvid_2025.csv")
                      .read_text().splitlines()[0] + "\n")
    result = vidcost("report", "--out", str(tmp_path / "r"), "--published", str(header))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "header.csv" in result.stderr and "no rows" in result.stderr
