"""`vidcost export` and `load_frame`: one flat table in the profile vocabulary, CSV or Parquet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidcost.export import records_table
from vidcost.export import load_frame
from vidcost.store import append_record

ROOT = Path(__file__).resolve().parents[1]


def _schema1(run_id, method, budget, prefill_ms, params=None):
    """A schema-1 profile record as an older store holds it (values chosen for the test, not measured)."""
    return {"kind": "profile", "schema_version": 1, "run_id": run_id, "created_at": "2026-01-01T00:00:00",
            "status": "ok", "method": method, "params": params or {}, "budget": budget,
            "model": {"name": "tiny", "frames": 4, "hidden_size": 8, "vocab_size": 10}, "frames": 4,
            "device": "cpu", "dtype": "float32", "prefill_ms": prefill_ms,
            "stages_ms": {"vision": 1.0, "llm_prefill": prefill_ms - 1.0, "total": prefill_ms},
            "samples_ms": {"total": [prefill_ms, prefill_ms + 1]}, "flops": {"paper": 10.0 * budget, "exact": 500.0}}


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "runs.jsonl"
    for record in (_schema1("r", "vanilla", 1.0, 100.0), _schema1("r", "fastv", 0.3, 40.0, {"layer": 2}),
                   _schema1("s", "vanilla", 1.0, 90.0), _schema1("s", "streamingllm", 0.3, 60.0, {"sink": "auto"}),
                   {"kind": "accuracy", "model": "m", "method": "fastv", "budget": 0.3, "benchmark": "videomme",
                    "score": 55.0, "subtasks": ["a", "b"]}):
        append_record(path, record)
    return path


def test_the_table_speaks_the_vocabulary_with_vanilla_beside_each_ratio(store):
    frame = load_frame(store)
    assert len(frame) == 5 and "prefill_ms" not in frame.columns and "stages_ms.total" not in frame.columns
    fastv = frame[frame["method"] == "fastv"].iloc[0]
    assert fastv["ttft_ms"] == 40.0 and fastv["vanilla_ttft_ms"] == 100.0
    assert fastv["speedup"] == pytest.approx(fastv["vanilla_ttft_ms"] / fastv["ttft_ms"])
    assert fastv["llm_prefill_speedup"] == pytest.approx(99.0 / 39.0)
    assert json.loads(fastv["samples_ms.ttft"]) == [40.0, 41.0]  # raw samples kept, as JSON text
    assert json.loads(frame[frame["kind"] == "accuracy"].iloc[0]["subtasks"]) == ["a", "b"]


def test_a_column_of_mixed_types_becomes_text(store):
    frame = records_table(json.loads(line) for line in store.read_text().splitlines())
    assert set(frame["params.layer"].dropna()) == {2.0}
    assert frame["params.sink"].dropna().tolist() == ["auto"]


def vidcost(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "vidcost", "export", *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_export_csv_as_a_user_runs_it(store, tmp_path):
    import pandas as pd

    out = tmp_path / "tables" / "runs.csv"
    done = vidcost("--store", str(store), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote 5 row(s) (1 accuracy, 4 profile), {len(pd.read_csv(out).columns)} columns, to {out}"
    table = pd.read_csv(out)
    assert list(table["method"]) == ["vanilla", "fastv", "vanilla", "streamingllm", "fastv"]
    assert table.loc[1, "speedup"] == pytest.approx(2.5)


def test_export_parquet_round_trips(store, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    out = tmp_path / "runs.parquet"
    assert vidcost("--store", str(store), "--out", str(out), "--kind", "profile").returncode == 0
    table = pd.read_parquet(out)
    assert len(table) == 4 and table.loc[1, "vanilla_ttft_ms"] == 100.0


def test_parquet_without_pyarrow_and_an_unknown_format_are_one_line_errors(store, tmp_path):
    code = ("import sys; sys.modules['pyarrow'] = None; from vidcost.cli import main; "
            f"sys.exit(main(['export', '--store', {str(store)!r}, '--out', {str(tmp_path / 'runs.parquet')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert 'pip install -e ".[parquet]"' in done.stderr and not (tmp_path / "runs.parquet").exists()
    done = vidcost("--store", str(store), "--out", str(tmp_path / "runs.xlsx"))
    assert done.returncode == 2 and "end it in .csv or .parquet" in done.stderr
    done = vidcost("--store", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 2 and "does not exist" in done.stderr and not (tmp_path / "r.csv").exists()
