"""lmms-eval files of every shape lmms-eval writes (tests/data/lmms_eval/output*, written as its evaluator and
evaluation tracker write them): output folders with several runs, groups with and without their own aggregate,
nested subtasks, alias entries, every stderr form, samples in JSONL and 0.2's JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vidcost.accuracy import accuracy_rows
from vidcost.errors import DataFormatError
from vidcost.lmms_eval import find_runs, read_lmms_eval, read_samples

DATA = Path(__file__).parent / "data" / "lmms_eval"
OUTPUT = DATA / "output"  # lmms-eval >= 0.2.4: <output_path>/<model>/<date>_results.json + samples
MODEL_DIR = OUTPUT / "lmms-lab__llava-onevision-qwen2-7b-ov"
LEGACY = DATA / "output_v0_2"  # lmms-eval 0.2.0-0.2.3: one folder per run, results.json + <task>.json


def _read(files, **kwargs):
    return read_lmms_eval(files.results, samples=files.samples, lenient_samples=True, resamples=300, **kwargs)


def _scores(run):
    return {r.benchmark: r for r in run.results}


def test_an_output_folder_holds_several_runs_each_with_its_own_samples():
    runs = find_runs(OUTPUT)
    assert [Path(r.results).name for r in runs] == ["20260301_101500_results.json", "20260302_093000_results.json",
                                                    "20260303_080000_results.json"]
    for run in runs:
        date = Path(run.results).name.removesuffix("_results.json")
        assert len(run.samples) == 3 and all(Path(s).name.startswith(f"{date}_samples_") for s in run.samples)
    assert find_runs(MODEL_DIR / "20260301_101500_results.json") == runs[:1]


def test_a_folder_without_results_and_a_missing_path_are_named(tmp_path):
    with pytest.raises(DataFormatError, match="no lmms-eval results under"):
        find_runs(tmp_path)
    with pytest.raises(DataFormatError, match="does not exist"):
        find_runs(tmp_path / "nowhere")


def test_groups_with_and_without_their_own_aggregate_and_nested_subtasks():
    run = _read(find_runs(OUTPUT)[1])  # mmgvid @ 0.25
    assert (run.model, run.method, run.budget, run.frames) == ("llava-onevision-qwen2-7b-ov", "mmgvid", 0.25, 32)
    assert run.evaluated_at == "2026-03-02T09:30:00"
    scores = _scores(run)
    # "mlvu" has aggregate_metric_list: its own score, reported; its subtasks are marked as such.
    assert (scores["mlvu"].score, scores["mlvu"].aggregation, scores["mlvu"].group) == (45.0, "reported", None)
    assert scores["mlvu_dev_count"].group == "mlvu"
    # "mvbench" (inside "suite") has none: an alias and " ": " " only, averaged from its subtasks by samples.
    mvbench = scores["mvbench"]
    assert mvbench.score == pytest.approx((5 * 60 + 4 * 75) / 9) and mvbench.group == "suite"
    assert mvbench.subtasks == ("mvbench_action_sequence", "mvbench_scene_transition")
    suite = scores["suite"]
    assert suite.group is None and suite.subtasks == ("mvbench", "videomme")
    assert suite.score == pytest.approx((9 * mvbench.score + 8 * 75.0) / 17)
    # stderr forms: a number, "N/A" (videomme), NaN in the clustered estimate (not an error).
    assert scores["videomme"].stderr is None and scores["mvbench_action_sequence"].stderr == 21.9089
    # samples: VideoMME's pred_answer/answer and MVBench's score, per run, give intervals.
    assert scores["videomme"].ci_low is not None and scores["mvbench_scene_transition"].ci_low is not None
    assert not run.notes


def test_lmms_eval_0_2_results_and_samples():
    (files,) = find_runs(LEGACY)
    assert Path(files.results).name == "results.json" and [Path(s).name for s in files.samples] == [
        "mvbench_action_sequence.json", "mvbench_scene_transition.json"]
    run = _read(files)
    assert (run.method, run.budget, run.frames) == ("fastv", 0.3, 32)  # from model_configs.model_args
    assert run.evaluated_at == "2024-06-15T14:25:30"  # from the run folder's name
    scores = _scores(run)
    # No group_subtasks before 0.2.4: the hierarchy comes from the indented aliases.
    assert scores["mvbench"].group is None and scores["mvbench"].aggregation == "reported"
    assert scores["mvbench_action_sequence"].group == "mvbench"
    assert scores["nextqa_mc_test"].score == pytest.approx(76.2) and scores["nextqa_mc_test"].rescaled
    assert scores["mvbench_action_sequence"].ci_low is not None  # from {"logs": [...]}
    assert read_samples(files.samples[0], "mvbench_accuracy") == [1.0, 1.0, 1.0, 0.0]


def test_the_latest_run_of_a_configuration_wins_whatever_the_ingest_order():
    records = [r for files in reversed(find_runs(OUTPUT)) for r in _read(files).to_records()]
    rows = {r["method"]: r for r in accuracy_rows(records, benchmark="suite")}
    rerun = _scores(_read(find_runs(OUTPUT)[2]))["suite"].score  # 20260303, after 20260302
    assert rows["mmgvid"]["score"] == pytest.approx(rerun) and rows["mmgvid"]["eval_frames"] == 32


def _file(tmp_path, results, **extra):
    path = tmp_path / "20260401_000000_results.json"
    path.write_text(json.dumps({"results": results, "config": {"model_args": "pretrained=a/m"}, **extra}))
    return path


def test_stability_metrics_and_nan_scores_are_not_scores(tmp_path):
    # With --repeats, lmms-eval writes <metric>_expected_accuracy etc. beside the metric; a NaN aggregate
    # (no answered sample) is unscored, not a malformed file.
    path = _file(tmp_path, {
        "videomme": {"alias": "videomme", "videomme_perception_score_expected_accuracy,none": 0.61,
                     "videomme_perception_score_consistency_rate,none": 0.9,
                     "videomme_perception_score,none": 58.0, "videomme_perception_score_stderr,none": math.nan},
        "mmmu_val": {"alias": "mmmu_val", "mmmu_acc,none": math.nan}})
    run = read_lmms_eval(path)
    videomme = _scores(run)["videomme"]
    assert (videomme.metric, videomme.score, videomme.stderr) == ("videomme_perception_score", 58.0, None)
    assert set(_scores(run)) == {"videomme"}
    assert any("['mmmu_val'] report no numeric score" in note for note in run.notes)


def test_a_metric_with_a_filter_and_model_args_as_an_object(tmp_path):
    path = _file(tmp_path, {"nextqa": {"exact_match,strict-match": 0.70, "exact_match,flexible-extract": 0.74}},
                 config={"model_args": {"pretrained": "lmms-lab/LLaVA-Video-7B-Qwen2", "method": "fastv",
                                        "budget": 0.3, "max_frames_num": 64}})
    run = read_lmms_eval(path, metric="exact_match,flexible-extract")
    nextqa = _scores(run)["nextqa"]
    assert (nextqa.filter, nextqa.score) == ("flexible-extract", pytest.approx(74.0))
    assert (run.model, run.method, run.budget, run.frames) == ("LLaVA-Video-7B-Qwen2", "fastv", 0.3, 64)
    assert _scores(read_lmms_eval(path))["nextqa"].filter == "strict-match"  # default: the first


def test_frames_can_be_given_when_model_args_do_not_say(tmp_path):
    path = _file(tmp_path, {"videomme": {"videomme_perception_score,none": 58.0}})
    assert read_lmms_eval(path).frames is None and read_lmms_eval(path, frames=16).frames == 16
    assert read_lmms_eval(path).model == "m"
