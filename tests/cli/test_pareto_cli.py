"""`vidcost pareto` as a user runs it: fronts, recommendation, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parents[2] / "profiles" / "published" / "hieravid_2026.csv"


def vidcost(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", *args], capture_output=True, text=True, timeout=120)


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_front_of_a_published_table_as_json():
    result = vidcost("pareto", str(PUBLISHED), "--x", "flops_t", "--y", "score", "--group", "model", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    fronts = {f["group"]: f for f in payload["fronts"]}
    assert [p["label"] for p in fronts["llava-onevision-7b"]["points"]] == [
        f"llava-onevision-7b {m} {b}" for m, b in (("framefusion", "10%"), ("hieravid", "10%"), ("framefusion", "20%"),
                                                  ("hieravid", "20%"), ("framefusion", "30%"), ("hieravid", "30%"),
                                                  ("vanilla", "100%"))]


def test_recommendation_is_printed_with_its_speedup_source():
    result = vidcost("pareto", "--published", "--max-drop", "1", "--min-speedup", "2")
    assert result.returncode == 0, result.stderr
    assert "recommendation" in result.stdout and "flops-ideal" in result.stdout
    assert "llava-onevision-7b hieravid: budget 28%" in result.stdout


def test_generic_csv_and_store(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("method,latency_ms,acc\na,10,50\nb,12,49\nc,20,60\n")
    result = vidcost("pareto", str(table), "--x", "latency_ms", "--y", "acc", "--json")
    assert [p["row"] for p in json.loads(result.stdout)["fronts"][0]["points"]] == [0, 2]


def test_missing_column_is_named(tmp_path):
    line = _error_line(vidcost("pareto", str(PUBLISHED), "--x", "latency_ms", "--y", "score"))
    assert "column 'latency_ms' (from --x)" in line


def test_missing_benchmark_is_named():
    line = _error_line(vidcost("pareto", str(PUBLISHED), "--benchmark", "msvd"))
    assert "benchmark 'msvd'" in line and "videomme_w_sub" in line


def test_duplicate_rows_are_reported(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("method,x,y\na,1,2\nb,2,3\na,1,2\n")
    line = _error_line(vidcost("pareto", str(table), "--x", "x", "--y", "y"))
    assert "1 duplicate row(s)" in line and "data rows 1 and 3" in line


def test_empty_and_missing_store(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "holds no profile or accuracy records" in _error_line(vidcost("pareto", "--store", str(empty)))
    assert "does not exist" in _error_line(vidcost("pareto", "--store", str(tmp_path / "none.jsonl")))


def test_pareto_does_not_import_torch():
    code = ("import sys; from vidcost.cli import main; main(['pareto', '--published']); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
