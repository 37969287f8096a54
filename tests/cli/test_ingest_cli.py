"""`vidcost ingest lmms-eval` in a subprocess: records appended, rescales stated, bad files one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "lmms_eval"


def vidcost(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", *args], capture_output=True, text=True, timeout=120)


def test_ingest_appends_records_and_states_rescales(tmp_path):
    store = tmp_path / "runs.jsonl"
    result = vidcost("ingest", "lmms-eval", str(DATA / "20260110_101500_results.json"), str(DATA / "old_style_results.json"),
                     "--store", str(store), "--resamples", "500")
    assert result.returncode == 0, result.stderr
    assert "rescaled 0-1 → 0-100: nextqa_mc_test/exact_match" in result.stdout
    assert "sample-weighted mean of 3 subtasks" in result.stdout
    assert "appended 7 accuracy record(s)" in result.stdout
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 7 and all(r["kind"] == "accuracy" for r in records)
    videomme = next(r for r in records if r["benchmark"] == "videomme")
    assert videomme["ci_low"] is not None  # the sibling samples file was found


def test_dry_run_appends_nothing(tmp_path):
    store = tmp_path / "runs.jsonl"
    result = vidcost("ingest", "lmms-eval", str(DATA / "vanilla_results.json"), "--store", str(store), "--dry-run",
                     "--json")
    assert result.returncode == 0 and not store.exists()
    assert json.loads(result.stdout)[0]["method"] == "vanilla"


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_malformed_json_names_the_file_and_nothing_is_appended(tmp_path):
    store = tmp_path / "runs.jsonl"
    line = _error_line(vidcost("ingest", "lmms-eval", str(DATA / "vanilla_results.json"),
                               str(DATA / "malformed.json"), "--store", str(store)))
    assert "malformed.json' is not valid JSON (line 4, column 3" in line
    assert not store.exists()


def test_bad_value_names_the_key(tmp_path):
    line = _error_line(vidcost("ingest", "lmms-eval", str(DATA / "bad_value_results.json"),
                               "--store", str(tmp_path / "s.jsonl")))
    assert "'results.videomme.videomme_perception_score_stderr,none' is 'n/a?'" in line


def test_unknown_budget_key_is_named(tmp_path):
    line = _error_line(vidcost("ingest", "lmms-eval", str(DATA / "old_style_results.json"), "--budget-key", "ratio",
                               "--store", str(tmp_path / "s.jsonl")))
    assert "key 'ratio' (the budget key)" in line


def test_samples_beside_the_results_for_an_unscored_task_do_not_fail_the_ingest(tmp_path):
    # lmms-eval --log_samples writes a samples file per task, also for submission-only splits with no score.
    results = tmp_path / "20260301_120000_results.json"
    results.write_text(json.dumps({"results": {"videomme": {"videomme_perception_score,none": 62.5},
                                               "egoschema": {"alias": "egoschema", "submission,none": None}},
                                   "config": {"model_args": "pretrained=a/m,method=fastv,budget=0.3"}}))
    (tmp_path / "20260301_120000_samples_videomme.jsonl").write_text(
        (DATA / "20260110_101500_samples_videomme.jsonl").read_text())
    (tmp_path / "20260301_120000_samples_egoschema.jsonl").write_text('{"submission": {"answer": 2}}\n')
    result = vidcost("ingest", "lmms-eval", str(results), "--dry-run", "--resamples", "200")
    assert result.returncode == 0, result.stderr
    assert "videomme videomme_perception_score: 62.50 [" in result.stdout  # its interval is still there
    assert "note: samples file(s) ['20260301_120000_samples_egoschema.jsonl'] match no scored task" in result.stdout
    assert "note: task(s) ['egoschema'] report no numeric score: left out" in result.stdout


def test_an_output_folder_of_several_runs_and_a_0_2_folder(tmp_path):
    store = tmp_path / "runs.jsonl"
    result = vidcost("ingest", "lmms-eval", str(DATA / "output"), str(DATA / "output_v0_2"), "--store", str(store),
                     "--resamples", "200")
    assert result.returncode == 0, result.stderr
    assert "from 4 run(s)" in result.stdout and "sample-weighted mean of 2 subtasks" in result.stdout
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert {r["evaluated_at"] for r in records} == {"2026-03-01T10:15:00", "2026-03-02T09:30:00",
                                                    "2026-03-03T08:00:00", "2024-06-15T14:25:30"}
    assert all(r["frames"] == 32 for r in records)
    fastv = [r for r in records if r["method"] == "fastv"]
    assert {r["benchmark"] for r in fastv if r["group"] is None} == {"mvbench", "nextqa_mc_test"}


def test_samples_named_for_several_runs_and_an_unwritable_store_are_one_line_errors(tmp_path):
    line = _error_line(vidcost("ingest", "lmms-eval", str(DATA / "output"), "--samples",
                               str(DATA / "20260110_101500_samples_videomme.jsonl"), "--store", str(tmp_path / "s")))
    assert "--samples needs a single results file, got 3 runs" in line
    line = _error_line(vidcost("ingest", "lmms-eval", str(DATA / "vanilla_results.json"), "--store", "/proc/x.jsonl"))
    assert "cannot append to store '/proc/x.jsonl'" in line
