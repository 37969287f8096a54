"""lmms-eval ingestion: both key styles, groups without an aggregate, score scales, "N/A", bootstrap CIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidcost.accuracy import accuracy_rows, bootstrap_interval
from vidcost.lmms_eval import parse_model_args, read_lmms_eval, read_samples, samples_for
from vidcost.errors import ConfigError, DataFormatError
from vidcost.store import append_record, read_records

DATA = Path(__file__).parent / "data" / "lmms_eval"
NEW = DATA / "20260110_101500_results.json"
SAMPLES = DATA / "20260110_101500_samples_videomme.jsonl"
OLD = DATA / "old_style_results.json"


def _by_name(run):
    return {r.benchmark: r for r in run.results}


def test_newer_key_style_with_method_budget_and_frames():
    run = read_lmms_eval(NEW)
    assert (run.model, run.method, run.budget, run.frames) == ("llava-onevision-qwen2-7b-ov", "mmgvid", 0.25, 32)
    videomme = _by_name(run)["videomme"]
    assert (videomme.metric, videomme.filter, videomme.score) == ("videomme_perception_score", "none", 62.5)
    assert videomme.stderr is None  # "N/A"
    assert not videomme.rescaled and videomme.n_samples == 8 and videomme.higher_is_better is True


def test_group_without_its_own_score_is_the_sample_weighted_mean_of_its_subtasks():
    scores = _by_name(read_lmms_eval(NEW))
    mvbench = scores["mvbench"]
    assert mvbench.score == pytest.approx((60 + 55 + 58) / 3)  # equal counts (200 each)
    assert mvbench.subtasks == ("mvbench_action_sequence", "mvbench_object_interaction", "mvbench_scene_transition")
    assert mvbench.stderr == pytest.approx((3.46 ** 2 + 3.52 ** 2 + 3.49 ** 2) ** 0.5 / 3)
    assert mvbench.n_samples == 600 and "sample-weighted" in mvbench.aggregation
    assert scores["mvbench_scene_transition"].group == "mvbench" and mvbench.group is None


def test_unweighted_mean_when_a_subtask_has_no_count(tmp_path):
    data = json.loads(NEW.read_text())
    data["n-samples"]["mvbench_action_sequence"] = {}
    data["results"]["mvbench_action_sequence"]["mvbench_accuracy,none"] = 0.30
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    mvbench = _by_name(read_lmms_eval(path))["mvbench"]
    assert mvbench.score == pytest.approx((30 + 55 + 58) / 3) and mvbench.aggregation.startswith("unweighted")


def test_older_key_style_and_mixed_scales():
    run = read_lmms_eval(OLD)
    scores = _by_name(run)
    nextqa, ego = scores["nextqa_mc_test"], scores["egoschema_subset"]
    assert (nextqa.metric, nextqa.filter, nextqa.score, nextqa.rescaled) == ("exact_match", None, 76.2, True)
    assert nextqa.stderr == pytest.approx(0.54)  # rescaled with its score
    assert (ego.score, ego.rescaled, ego.stderr) == (59.6, False, None)
    assert run.rescaled == ["nextqa_mc_test/exact_match"]
    assert (run.method, run.budget) == ("fastv", 0.3) and "percentage" in run.notes[0]


def test_percent_metrics_are_never_rescaled():
    scores = _by_name(read_lmms_eval(OLD, percent_metrics=["exact_match"]))
    assert scores["nextqa_mc_test"].score == 0.762


def test_configurable_keys_and_their_errors(tmp_path):
    data = json.loads(OLD.read_text())
    data["config"]["model_args"] = "pretrained=a/b,algo=divprune,r=0.15"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    run = read_lmms_eval(path, method_key="algo", budget_key="r")
    assert (run.method, run.budget) == ("divprune", 0.15)
    with pytest.raises(DataFormatError, match="key 'ratio' \\(the budget key\\)"):
        read_lmms_eval(path, method_key="algo", budget_key="ratio")
    data["config"]["model_args"] = "pretrained=a/b,method=fastv"
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match="method 'fastv' but no budget"):
        read_lmms_eval(path)


def test_no_method_means_vanilla():
    run = read_lmms_eval(DATA / "vanilla_results.json")
    assert (run.method, run.budget) == ("vanilla", 1.0)


def test_model_args_forms():
    assert parse_model_args("pretrained=a,conv_template=qwen,budget=0.3") == {
        "pretrained": "a", "conv_template": "qwen", "budget": "0.3"}
    assert parse_model_args({"budget": 0.3}) == {"budget": "0.3"}
    with pytest.raises(DataFormatError, match="'oops' is not KEY=VALUE"):
        parse_model_args("a=1,oops", source="f.json")


def test_malformed_json_names_file_and_position():
    with pytest.raises(DataFormatError, match=r"malformed.json' is not valid JSON \(line 4, column 3"):
        read_lmms_eval(DATA / "malformed.json")


def test_malformed_value_names_file_and_key():
    with pytest.raises(DataFormatError, match=r"bad_value_results.json: key "
                                              r"'results.videomme.videomme_perception_score_stderr,none' is 'n/a\?'"):
        read_lmms_eval(DATA / "bad_value_results.json")


def test_missing_results_key(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"config": {}}')
    with pytest.raises(DataFormatError, match="key 'results' is missing"):
        read_lmms_eval(path)


def test_bootstrap_interval_from_samples():
    run = read_lmms_eval(NEW, samples=[SAMPLES], resamples=1000)
    videomme = _by_name(run)["videomme"]
    assert read_samples(SAMPLES, "videomme_perception_score") == [1, 0, 1, 1, 0, 1, 1, 0]
    assert videomme.ci_level == 0.95
    assert 0 <= videomme.ci_low < 62.5 < videomme.ci_high <= 100  # 5 of 8 correct, on the 0–100 scale
    again = _by_name(read_lmms_eval(NEW, samples=[SAMPLES], resamples=1000))["videomme"]
    assert (again.ci_low, again.ci_high) == (videomme.ci_low, videomme.ci_high)  # seeded


def test_bootstrap_interval_narrows_with_more_samples():
    small = bootstrap_interval([0, 1] * 10)
    large = bootstrap_interval([0, 1] * 500)
    assert large[1] - large[0] < small[1] - small[0]
    assert bootstrap_interval([1, 1, 1]) == (1.0, 1.0)


def test_samples_that_disagree_with_the_results_are_rejected(tmp_path):
    path = tmp_path / "x_samples_videomme.jsonl"
    path.write_text('{"videomme_perception_score": {"pred_answer": "A", "answer": "B"}}\n' * 4)
    with pytest.raises(DataFormatError, match="average 0.00 but the results give videomme 62.50"):
        read_lmms_eval(NEW, samples=[path])


def test_samples_files_are_matched_to_tasks():
    assert samples_for([SAMPLES], ["videomme", "mvbench"]) == {"videomme": str(SAMPLES)}
    with pytest.raises(DataFormatError, match="matches no task"):
        samples_for(["x_samples_msvd.jsonl"], ["videomme"])


def test_records_round_trip_through_the_store(tmp_path):
    store = tmp_path / "runs.jsonl"
    for path in (NEW, DATA / "vanilla_results.json"):
        for record in read_lmms_eval(path).to_records():
            append_record(store, record)
    records = read_records(store, kind="accuracy")
    assert len(records) == 5 + 2
    assert {"kind", "schema_version", "score", "stderr", "benchmark", "method", "budget", "rescaled",
            "ci_low"} <= set(records[0])
    rows = {r["method"]: r for r in accuracy_rows(records)}
    # avg over the vanilla run's benchmarks (videomme, mvbench): subtasks are left out
    assert rows["mmgvid"]["score"] == pytest.approx((62.5 + 173 / 3) / 2)
    assert rows["mmgvid"]["relative_pct"] == pytest.approx(100 * (62.5 + 173 / 3) / (63.0 + 58.4))
    assert rows["vanilla"]["relative_pct"] == pytest.approx(100.0)
    one = {r["method"]: r for r in accuracy_rows(records, benchmark="videomme")}
    assert one["mmgvid"]["relative_pct"] == pytest.approx(100 * 62.5 / 63.0)
    with pytest.raises(ConfigError, match="benchmark 'msvd'.*videomme"):
        accuracy_rows(records, benchmark="msvd")


def _accuracy(model, frames, method, budget, benchmark, score, created):
    return {"kind": "accuracy", "model": model, "frames": frames, "method": method, "budget": budget,
            "benchmark": benchmark, "score": score, "created_at": created}


def test_accuracy_rows_keep_frame_counts_apart_and_compare_with_the_same_frames():
    records = [_accuracy("m", 32, "vanilla", 1.0, "videomme", 60.0, "2026-01-01"),
               _accuracy("m", 64, "vanilla", 1.0, "videomme", 64.0, "2026-01-02"),
               _accuracy("m", 32, "fastv", 0.3, "videomme", 57.0, "2026-01-03"),
               _accuracy("m", 64, "fastv", 0.3, "videomme", 62.0, "2026-01-04")]
    rows = {(r["method"], r["eval_frames"]): r for r in accuracy_rows(records, benchmark="videomme")}
    assert set(rows) == {("vanilla", 32), ("vanilla", 64), ("fastv", 32), ("fastv", 64)}  # none overwritten
    assert rows[("fastv", 32)]["relative_pct"] == pytest.approx(100 * 57 / 60)
    assert rows[("fastv", 64)]["relative_pct"] == pytest.approx(100 * 62 / 64)
    # A model's only vanilla run is the baseline whatever frames the pruned run used.
    (row,) = [r for r in accuracy_rows(records[:1] + records[3:]) if r["method"] == "fastv"]
    assert row["relative_pct"] == pytest.approx(100 * 62 / 60)


def _lmms_results(tmp_path, results, **extra):
    path = tmp_path / "20260301_120000_results.json"
    path.write_text(json.dumps({"results": results, "config": {"model_args": "pretrained=a/m"}, **extra}))
    return path


def test_unscored_tasks_and_lower_is_better_metrics_are_noted(tmp_path):
    path = _lmms_results(tmp_path, {"videomme": {"videomme_perception_score,none": 58.2},
                                    "egoschema": {"alias": "egoschema", "submission,none": None},
                                    "asr": {"wer,none": 12.5}},
                         higher_is_better={"asr": {"wer": False}})
    run = read_lmms_eval(path)
    assert set(_by_name(run)) == {"videomme", "asr"}
    assert any("['egoschema'] report no numeric score" in note for note in run.notes)
    assert any("lower-is-better metric(s) ['asr/wer']" in note for note in run.notes)


def test_longvideobench_samples_compare_parsed_pred_with_answer(tmp_path):
    path = tmp_path / "x_samples_longvideobench_val_v.jsonl"
    path.write_text("".join(json.dumps({"lvb_acc": {"id": str(i), "answer": "B", "parsed_pred": p}}) + "\n"
                            for i, p in enumerate("BBCB")))
    assert read_samples(path, "lvb_acc") == [1.0, 1.0, 0.0, 1.0]


def test_lenient_samples_leave_out_files_of_unscored_tasks_with_a_note(tmp_path):
    results = _lmms_results(tmp_path, {"videomme": {"videomme_perception_score,none": 62.5},
                                       "egoschema": {"submission,none": None}})
    ego = tmp_path / "20260301_120000_samples_egoschema.jsonl"
    ego.write_text('{"submission": {"video_idx": "1", "answer": 2}}\n')
    run = read_lmms_eval(results, samples=[SAMPLES, ego], lenient_samples=True, resamples=200)
    assert _by_name(run)["videomme"].ci_low is not None
    assert any("20260301_120000_samples_egoschema.jsonl" in note for note in run.notes)
    with pytest.raises(DataFormatError, match="matches no task"):
        read_lmms_eval(results, samples=[SAMPLES, ego])  # named explicitly: strict


def test_newer_clt_and_clustered_stderr_keys_are_not_scores(tmp_path):
    # lmms-eval >= 0.6 writes <metric>_stderr_clt and <metric>_stderr_clustered beside <metric>_stderr.
    aux = {"submission_stderr,none": "N/A", "submission_stderr_clt,none": "N/A",
           "submission_stderr_clustered,none": "N/A"}
    path = _lmms_results(tmp_path, {
        "videomme": {"alias": "videomme", "videomme_perception_score,none": 58.2,
                     "videomme_perception_score_stderr,none": 0.9, "videomme_perception_score_stderr_clt,none": 0.9,
                     "videomme_perception_score_stderr_clustered,none": "N/A"},
        "egoschema": {"alias": "egoschema", "submission,none": None, **aux},
        "mmmu_val": {"alias": "mmmu_val", "mmmu_acc,none": None, "mmmu_acc_stderr_clt,none": 0.02}})
    run = read_lmms_eval(path)
    assert set(_by_name(run)) == {"videomme"} and _by_name(run)["videomme"].stderr == 0.9
    assert any("['egoschema', 'mmmu_val'] report no numeric score" in note for note in run.notes)
