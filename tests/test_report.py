"""Reports: tables from the store, every file the HTML references exists, provenance is stated."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vidcost.lmms_eval import read_lmms_eval
from vidcost.errors import DataFormatError
from vidcost.report import (attach_measured, build_report, check_no_duplicates, join_rows, profile_rows,
                            store_rows)
from vidcost.store import append_record

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "lmms_eval"


def profile_record(run_id, method, budget, prefill_ms, *, frames=32, selection_ms=0.0, created="2026-01-01T00:00:00"):
    """A record in the agreed profile schema (values chosen for the test, not measured)."""
    vision = 0.3 * prefill_ms
    return {"kind": "profile", "schema_version": 1, "run_id": run_id, "created_at": created, "status": "ok",
            "error": None, "method": method, "params": {}, "budget": budget,
            "model": {"name": "tiny", "frames": frames}, "frames": frames, "device": "cpu", "dtype": "float32",
            "stages_ms": {"vision": vision, "projector": 1.0, "selection": selection_ms,
                          "llm_prefill": prefill_ms - vision - 1.0 - selection_ms - 2.0, "first_token": 2.0,
                          "total": prefill_ms},
            "prefill_ms": prefill_ms, "peak_memory_bytes": int(1e9 * budget) + 500_000_000,
            "memory_source": "rss", "energy_j": None, "avg_power_w": None,
            "flops": {"paper": 1e12 * budget, "exact": 2e12 * budget},
            "environment": {"device_name": "test-cpu", "torch": "x", "threads": 2}}


@pytest.fixture()
def store(tmp_path):
    path = tmp_path / "runs.jsonl"
    for record in (profile_record("r1", "vanilla", 1.0, 100.0),
                   profile_record("r1", "mmgvid", 0.25, 40.0, selection_ms=5),
                   profile_record("r2", "vanilla", 1.0, 110.0, created="2026-01-02"),
                   profile_record("r2", "mmgvid", 0.25, 44.0, selection_ms=5, created="2026-01-02"),
                   dict(profile_record("r3", "fastv", 0.3, 1.0), status="failed")):
        append_record(path, record)
    for results in ("20260110_101500_results.json", "vanilla_results.json"):
        for record in read_lmms_eval(DATA / results, model="tiny").to_records():
            append_record(path, record)
    return path


def test_profile_rows_speak_the_vocabulary_with_vanilla_beside_each_speedup(store):
    from vidcost.store import read_records

    rows = {r["method"]: r for r in profile_rows(read_records(store))}
    assert set(rows) == {"vanilla", "mmgvid"}  # the failed record is left out
    mmg = rows["mmgvid"]
    assert "prefill_ms" not in mmg and "speedup_measured" not in mmg  # schema-1 names are read, never written
    assert mmg["ttft_ms"] == 44.0 and mmg["vanilla_ttft_ms"] == 110.0 and mmg["repeats_in_store"] == 2
    assert mmg["speedup"] == pytest.approx(mmg["vanilla_ttft_ms"] / mmg["ttft_ms"])
    assert mmg["flops_ratio"] == pytest.approx(0.25)
    assert mmg["vision_ms"] == pytest.approx(0.3 * 44) and mmg["projector_ms"] == 1 and mmg["selection_ms"] == 5
    # The LLM stage alone: vanilla 110 − 33 − 1 − 0 − 2 = 74 ms, mmgvid 44 − 13.2 − 1 − 5 − 2 = 22.8 ms.
    assert (mmg["vanilla_llm_prefill_ms"], mmg["llm_prefill_ms"]) == pytest.approx((74, 22.8))
    assert mmg["llm_prefill_speedup"] == pytest.approx(mmg["vanilla_llm_prefill_ms"] / mmg["llm_prefill_ms"])
    assert rows["vanilla"]["speedup"] == 1.0


def test_store_rows_join_accuracy_and_profiles_of_one_configuration(store, tmp_path):
    join = store_rows(store)
    joined = {r["method"]: r for r in join.rows if r.get("provenance") == "evaluated accuracy, measured cost"}
    assert set(joined) == {"vanilla", "mmgvid"} and not join.unjoined
    assert joined["mmgvid"]["speedup"] == pytest.approx(2.5) and joined["mmgvid"]["profile_model"] == "tiny"
    # The same records at 8 frames: the accuracy (32 frames evaluated) no longer joins, and says why.
    other = tmp_path / "eight.jsonl"
    for line in store.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "profile":
            record = dict(record, frames=8, model={"name": "tiny", "frames": 8})
        append_record(other, record)
    join = store_rows(other)
    assert not [r for r in join.rows if r.get("provenance") == "evaluated accuracy, measured cost"]
    reason = next(u.reason for u in join.unjoined if u.side == "accuracy" and u.method == "mmgvid")
    assert reason == "profiled at [8] frames only; run `vidcost profile` with --frames 32"


def test_store_rows_join_a_checkpoint_with_a_profile_of_its_preset(tmp_path):
    path = tmp_path / "runs.jsonl"
    for record in (dict(profile_record("r1", "vanilla", 1.0, 100.0, frames=32), model={"name": "llava-onevision-7b"}),
                   dict(profile_record("r1", "mmgvid", 0.25, 40.0, frames=32), model={"name": "llava-onevision-7b"}),
                   dict(profile_record("r2", "mmgvid", 0.25, 30.0, frames=16), model={"name": "llava-onevision-7b"}),
                   profile_record("r3", "mmgvid", 0.25, 4.0, frames=32)):  # tiny: must never join
        append_record(path, record)
    for results in ("20260110_101500_results.json", "vanilla_results.json"):
        for record in read_lmms_eval(DATA / results).to_records():
            append_record(path, record)
    join = store_rows(path)
    mmg = [r for r in join.rows if r.get("method") == "mmgvid" and r.get("score") is not None]
    assert len(mmg) == 1 and mmg[0]["profile_model"] == "llava-onevision-7b" and mmg[0]["frames"] == 32
    assert mmg[0]["model"] == "llava-onevision-qwen2-7b-ov" and mmg[0]["speedup"] == pytest.approx(2.5)
    leftover = {(u.model, u.frames) for u in join.unjoined if u.side == "profile" and u.method == "mmgvid"}
    assert leftover == {("llava-onevision-7b", 16), ("tiny", 32)}
    tiny = next(u for u in join.unjoined if u.model == "tiny" and u.method == "mmgvid")
    assert "evaluated on ['llava-onevision-7b'] only" in tiny.reason


def test_measured_speedup_of_another_model_is_not_used_for_a_recommendation():
    from vidcost.pareto import recommend

    rows = [dict(model="big", method="m", budget=0.25, relative_pct=99.5, speedup=9.0, profile_model="tiny")]
    (rec,) = recommend(rows, max_drop_pct=1, min_speedup=1, ideal_speedup=lambda m, b: 2.0)
    assert rec.speedup_source == "flops-ideal" and rec.speedup == 2.0
    attached = attach_measured([dict(model="tiny", frames=8, method="m", budget=0.25)],
                               [dict(model="tiny", frames=8, method="m", budget=0.25, speedup=3.0),
                                dict(model="tiny", frames=16, method="m", budget=0.5, speedup=5.0)])
    assert attached[0]["speedup"] == 3.0
    other_frames = attach_measured([dict(model="tiny", frames=32, method="m", budget=0.25)],
                                   [dict(model="tiny", frames=8, method="m", budget=0.25, speedup=3.0)])
    assert "speedup" not in other_frames[0]


def test_join_keeps_rows_without_a_partner():
    join = join_rows([{"model": "t", "eval_frames": 8, "method": "a", "budget": 0.3, "score": 1}],
                     [{"method": "b", "budget": 0.3, "model": "t", "frames": 8}])
    assert sorted(r["method"] for r in join.rows) == ["a", "b"]
    assert [u.side for u in join.unjoined] == ["accuracy", "profile"]


def test_empty_store_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(DataFormatError, match="holds no profile or accuracy records"):
        store_rows(path)


def test_duplicate_rows_are_reported():
    with pytest.raises(DataFormatError, match="data rows 1 and 3 are identical"):
        check_no_duplicates([{"a": 1}, {"a": 2}, {"a": 1}], source="t.csv")


def _referenced(html: str) -> list[str]:
    return re.findall(r"(?:src|href)='([^']+)'", html)


def assert_self_contained(directory: Path) -> None:
    html = (directory / "index.html").read_text()
    refs = _referenced(html)
    assert any(r.endswith(".png") for r in refs)
    for ref in refs:
        assert "://" not in ref and not ref.startswith("/"), ref
        assert (directory / ref).is_file(), f"index.html references missing {ref}"
    for ref in re.findall(r"\]\(([^)]+)\)", (directory / "report.md").read_text()):
        assert (directory / ref).is_file(), f"report.md references missing {ref}"


def test_report_with_measurements(store, tmp_path):
    out = tmp_path / "rep"
    report = build_report(out, store=store, max_drop_pct=3.0, min_speedup=2.0)
    assert_self_contained(out)
    provenance = {f.name: f.provenance for f in report.figures}
    assert provenance == {"accuracy_vs_flops": "published", "speedup_vs_budget": "predicted + published + measured",
                          "latency_stages": "measured", "memory_vs_frames": "measured + predicted"}
    html = (out / "index.html").read_text()
    assert "Measured configurations in the store: 2" in html and "test-cpu" in html
    assert {"profiles.csv", "accuracy.csv", "published.csv", "pareto_fronts.csv"} <= set(report.tables)
    recommendations = (out / "recommendations.csv").read_text()
    assert "tiny,mmgvid,0.25" in recommendations and ",measured," in recommendations
    assert (out / "environment.json").is_file() and (out / "config.json").is_file()


def test_report_without_a_store_says_there_are_no_measurements(tmp_path):
    out = tmp_path / "rep"
    report = build_report(out, store=tmp_path / "missing.jsonl")
    assert_self_contained(out)
    text = (out / "report.md").read_text()
    assert "no measurements are in the store" in text and "does not exist" in text
    assert "latency_stages" not in {f.name for f in report.figures}
    assert all("measured" not in f.provenance for f in report.figures)


def test_committed_example_report_is_complete():
    directory = ROOT / "reports" / "example"
    assert (directory / "index.html").is_file(), "generate it: vidcost report --out reports/example/"
    assert_self_contained(directory)


def test_evaluated_accuracy_table_names_the_frames_evaluated(store, tmp_path):
    out = tmp_path / "rep"
    build_report(out, store=store)
    assert "| model | frames | method | budget | score | % of vanilla |" in (out / "report.md").read_text()
    assert "| tiny | 32 | mmgvid | 0.25 |" in (out / "report.md").read_text()
    assert "<td>tiny</td><td>32</td><td>mmgvid</td>" in (out / "index.html").read_text()


def test_the_report_says_what_could_not_be_joined(store, tmp_path):
    other = tmp_path / "eight.jsonl"
    for line in store.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "profile":
            record = dict(record, frames=8, model={"name": "tiny", "frames": 8})
        append_record(other, record)
    out = tmp_path / "rep"
    report = build_report(out, store=other)
    assert_self_contained(out)
    assert any(n.startswith("Not joined: accuracy tiny 32 frames mmgvid @ 0.25: profiled at [8] frames only")
               for n in report.notes)
    assert "unjoined.csv" in report.tables and "accuracy_with_cost.csv" in report.tables
    assert "profiled at [8] frames only" in (out / "report.md").read_text()
    import csv

    with (out / "recommendations.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["model"] == "tiny"]
    assert rows and all(r["speedup_source"] != "measured" for r in rows)  # no speedup borrowed across frames
