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


def _profile(run_id: str, model: str, frames: int, method: str, budget: float, ttft_ms: float) -> dict:
    """A stored profile record (schema 2; values chosen for the test, not measured)."""
    return {"kind": "profile", "schema_version": 2, "run_id": run_id, "created_at": "2026-01-01T00:00:00",
            "status": "ok", "method": method, "budget": budget, "model": {"name": model, "frames": frames},
            "frames": frames, "device": "cpu", "dtype": "float32", "ttft_ms": ttft_ms,
            "llm_prefill_ms": ttft_ms / 2, "stages_ms": {"vision": ttft_ms / 2, "llm_prefill": ttft_ms / 2},
            "flops": {"paper": 1e12 * budget, "llm_prefill": 2e12 * budget}}


def test_store_front_joins_only_the_same_model_and_frames(tmp_path):
    store = tmp_path / "runs.jsonl"
    lines = [_profile("a", "llava-onevision-7b", 32, "vanilla", 1.0, 1000.0),
             _profile("a", "llava-onevision-7b", 32, "mmgvid", 0.25, 400.0),
             _profile("b", "tiny", 32, "vanilla", 1.0, 10.0), _profile("b", "tiny", 32, "fastv", 0.3, 1.0)]
    store.write_text("".join(json.dumps(r) + "\n" for r in lines))
    data = Path(__file__).resolve().parents[1] / "data" / "lmms_eval"
    for results in ("20260110_101500_results.json", "vanilla_results.json"):  # llava-onevision-qwen2-7b-ov, 32 fr
        done = vidcost("ingest", "lmms-eval", str(data / results), "--store", str(store), "--resamples", "200")
        assert done.returncode == 0, done.stderr
    result = vidcost("pareto", "--store", str(store), "--x", "ttft_ms", "--y", "relative_pct", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    (front,) = payload["fronts"]
    points = {p["method"]: p for p in front["points"]}
    assert set(points) == {"vanilla", "mmgvid"}  # tiny's fastv has no accuracy; nothing pairs across models
    expected = {"model": "llava-onevision-qwen2-7b-ov", "frames": 32, "budget": 0.25, "x": 400.0}
    assert {k: points["mmgvid"][k] for k in expected} == expected
    unjoined = {(u["side"], u["model"], u["method"]) for u in payload["unjoined"]}
    assert unjoined == {("profile", "tiny", "vanilla"), ("profile", "tiny", "fastv")}
    assert any("evaluated on ['llava-onevision-7b'] only" in u["reason"] for u in payload["unjoined"])
    text = vidcost("pareto", "--store", str(store), "--x", "ttft_ms", "--y", "relative_pct").stdout
    assert "not joined: profile tiny 32 frames fastv @ 0.3: no evaluated accuracy" in text
