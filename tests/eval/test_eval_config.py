"""The `vidcost` backend's configuration, request records and grid: pure checks, no lmms-eval needed."""

from __future__ import annotations

import argparse

import pytest

from vidcost.errors import ConfigError, VidcostError
from vidcost.eval.config import EvalConfig, check_config, parse_model_args, unsupported_request
from vidcost.eval.record import RequestRecord, request_key, summarise_requests
from vidcost.eval.runner import EvalGrid, run_folder, summary_rows, task_scores


def test_model_args_parse_with_method_parameters():
    config = parse_model_args({"model": "tiny", "method": "fastv", "budget": 0.25, "frames": 8,
                               "param.layer": 1, "store": "s.jsonl", "batch_size": 1})
    assert (config.model, config.method, config.budget, config.frames) == ("tiny", "fastv", 0.25, 8)
    assert config.params == {"layer": 1}


def test_model_path_names_the_model_when_model_is_absent():
    assert parse_model_args({"model_path": "/x/llava"}).model == "/x/llava"
    assert parse_model_args({}).model == "tiny"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"modle": "tiny"}, "unknown vidcost model_args ['modle']"),
    ({"batch_size": 4}, "batch_size 4"),
    ({"frames": 0}, "frames=0 must be ≥ 1"),
    ({"frames": "eight"}, "frames='eight' is not a whole number"),
    ({"budget": "a lot"}, "budget='a lot' is not a number"),
])
def test_bad_model_args_are_one_line_errors(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        parse_model_args(kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_model_args_string_round_trips_and_leaves_batch_size_to_lmms_eval():
    config = EvalConfig(method="fastv", budget=0.25, frames=8, params={"layer": 1}, store="s.jsonl")
    text = config.model_args()
    assert "batch_size" not in text  # lmms-eval passes its own --batch_size beside model_args
    pairs = dict(part.split("=", 1) for part in text.split(","))
    again = parse_model_args({k: (int(v) if v.isdigit() else v) for k, v in pairs.items()})
    assert (again.method, float(again.budget), again.frames, again.params) == ("fastv", 0.25, 8, {"layer": 1})


def test_a_path_with_a_comma_cannot_travel_in_model_args():
    with pytest.raises(ConfigError, match="holds ',' or '='"):
        EvalConfig(store="a,b.jsonl").model_args()


def test_configuration_hash_ignores_where_records_go_but_not_what_decides_them():
    base = EvalConfig(method="fastv", budget=0.25)
    assert base.configuration_hash() == EvalConfig(method="fastv", budget=0.25, store="x").configuration_hash()
    assert base.configuration_hash() != EvalConfig(method="fastv", budget=0.5).configuration_hash()
    assert base.configuration_hash(["a"]) != base.configuration_hash(["a"], limit=2)


@pytest.mark.parametrize("config, fragment", [
    (EvalConfig(method="nope"), "nope"),
    (EvalConfig(method="fastv", budget=1.5), "1.5"),
    (EvalConfig(model_path="/no/such/dir"), "is not a model directory"),
    (EvalConfig(model="no-such-preset"), "no-such-preset"),
])
def test_check_config_refuses_before_any_model(config, fragment):
    with pytest.raises(ConfigError) as info:
        check_config(config)
    assert fragment in str(info.value)


def test_an_unwritable_store_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(VidcostError, match="cannot append to store"):
        check_config(EvalConfig(store=str(blocker / "eval.jsonl")))


def test_unsupported_requests_are_named():
    assert "loglikelihood requests" in unsupported_request("loglikelihood")


def _request(method, budget, doc, ttft, prefill=None, status="ok", **extra):
    return RequestRecord(task="t", doc_id=doc, split="test", model="tiny", frames=8, method=method, budget=budget,
                         status=status, ttft_ms=ttft if status == "ok" else None,
                         llm_prefill_ms=prefill if prefill is not None else ttft / 2, **extra).to_dict()


def test_summaries_pair_the_same_requests_and_speak_the_profile_vocabulary():
    records = [_request("vanilla", 1.0, 0, 100.0), _request("vanilla", 1.0, 1, 300.0),
               _request("vanilla", 1.0, 2, 50.0),  # no fastv partner: left out of fastv's medians
               _request("fastv", 0.25, 0, 50.0), _request("fastv", 0.25, 1, 100.0),
               _request("fastv", 0.25, 2, 0.0, status="failed", error="cannot decode")]
    rows = {row["method"]: row for row in summarise_requests(records)}
    fastv = rows["fastv"]
    assert (fastv["requests"], fastv["paired_requests"], fastv["failed_requests"]) == (2, 2, 1)
    assert fastv["ttft_ms"] == 75.0 and fastv["vanilla_ttft_ms"] == 200.0
    assert fastv["speedup"] == pytest.approx(200.0 / 75.0)  # the quotient of the two numbers beside it
    assert fastv["median_request_speedup"] == pytest.approx((2.0 + 3.0) / 2)
    assert rows["vanilla"]["speedup"] == 1.0 and rows["vanilla"]["requests"] == 3


def test_summaries_without_vanilla_have_no_speedup():
    (row,) = summarise_requests([_request("fastv", 0.25, 0, 50.0)])
    assert row["speedup"] is None and row["ttft_ms"] == 50.0 and row["paired_requests"] == 0


def test_request_key_does_not_depend_on_the_method():
    assert request_key(_request("vanilla", 1.0, 3, 1.0)) == request_key(_request("fastv", 0.1, 3, 1.0))


def test_the_grid_runs_vanilla_once_first_and_names_its_folders():
    grid = EvalGrid(tasks=("t",), methods=("fastv", "vanilla", "my_norm.py:NormPrune"), budgets=(0.1, 0.25),
                    output_path="out", method_params={"fastv": {"layer": 1}})
    configs = grid.configs()
    assert [(c.method, c.budget) for c in configs] == [("vanilla", 1.0), ("fastv", 0.1), ("fastv", 0.25),
                                                       ("my_norm.py:NormPrune", 0.1), ("my_norm.py:NormPrune", 0.25)]
    assert configs[1].params == {"layer": 1} and configs[0].params == {}
    assert [run_folder(grid, c).name for c in configs[:2]] == ["vanilla", "fastv_0.1"]
    assert run_folder(grid, configs[3]).name == "my_norm.py_NormPrune_0.1"


def test_task_scores_take_the_first_metric_not_its_stderr():
    results = {"results": {"t": {"alias": "t", "accuracy_stderr,none": 0.1, "accuracy,none": 0.5}}}
    assert task_scores(results) == {"t": 0.5}


def test_summary_rows_join_scores_and_request_costs(tmp_path):
    from vidcost.eval.runner import EvalRun
    from vidcost.store import append_record

    store = tmp_path / "eval.jsonl"
    grid = EvalGrid(tasks=("t",), methods=("fastv",), budgets=(0.25,))
    runs = []
    for config, score, ttfts in zip(grid.configs(), (0.6, 0.5), ((100.0, 300.0), (50.0, 100.0))):
        config_hash = config.configuration_hash(grid.tasks)
        for doc, ttft in enumerate(ttfts):
            record = _request(config.method, config.budget, doc, ttft, config_hash=config_hash)
            append_record(store, record)
        runs.append(EvalRun(config, config_hash, tmp_path, {"t": score}))
    rows = {row["method"]: row for row in summary_rows(runs, str(store))}
    assert rows["fastv"]["delta_vs_vanilla"] == pytest.approx(-0.1)
    assert rows["fastv"]["speedup"] == pytest.approx(200.0 / 75.0)
    assert rows["fastv"]["on_front"] and rows["vanilla"]["on_front"]  # faster but worse: both non-dominated


def _eval_args(**values):
    defaults = dict(grid=None, tasks="t", methods=None, budgets=None, param=[], include_path=None, model=None,
                    model_path=None, frames=None, limit=None, device=None, dtype=None, seed=None, output_path=None,
                    store=None, batch_size=None, json=False)
    return argparse.Namespace(**{**defaults, **values})


def test_the_command_line_grid_reads_toml_and_options(tmp_path):
    from vidcost.cli.eval import grid_from_args

    toml = tmp_path / "grid.toml"
    toml.write_text('tasks = ["videomme"]\nmethods = ["fastv"]\nbudgets = [0.1, 0.5]\nlimit = 3\n'
                    '[params.fastv]\nlayer = 1\n')
    grid = grid_from_args(_eval_args(grid=str(toml), tasks=None, budgets="0.25", param=["fastv.ratio=0.5"]))
    assert grid.tasks == ("videomme",) and grid.budgets == (0.25,) and grid.limit == 3
    assert grid.method_params == {"fastv": {"layer": 1, "ratio": 0.5}}
    assert grid.base.frames is not None  # resolved from the model, so lmms-eval's results name it


@pytest.mark.parametrize("values, fragment", [
    (dict(param=["fastv-layer=1"]), "malformed --param"),
    (dict(limit=0), "--limit must be a whole number ≥ 1"),
    (dict(batch_size=2), "batch_size 2"),
    (dict(budgets="0.1,x"), "--budgets takes comma-separated numbers"),
])
def test_bad_grids_are_refused(values, fragment):
    from vidcost.cli.eval import grid_from_args

    with pytest.raises(ConfigError) as info:
        grid_from_args(_eval_args(**values))
    assert fragment in str(info.value)


def test_a_grid_file_with_an_unknown_key_is_refused(tmp_path):
    from vidcost.cli.eval import grid_from_args

    toml = tmp_path / "grid.toml"
    toml.write_text('tasks = ["t"]\nbudget = [0.1]\n')
    with pytest.raises(ConfigError, match=r"unknown grid keys \['budget'\]"):
        grid_from_args(_eval_args(grid=str(toml), tasks=None))


def test_the_report_joins_evaluated_accuracy_to_the_cost_of_the_same_requests(tmp_path):
    from vidcost.accuracy import AccuracyResult, EvaluatedRun
    from vidcost.report import build_report, store_rows
    from vidcost.store import append_record

    store = tmp_path / "eval.jsonl"
    for method, budget, ttfts, score in (("vanilla", 1.0, (100.0, 300.0), 60.0), ("fastv", 0.25, (50.0, 100.0), 55.0)):
        for doc, ttft in enumerate(ttfts):
            append_record(store, _request(method, budget, doc, ttft))
        scores = (AccuracyResult("mvbench", "accuracy", "none", score, None),)
        run = EvaluatedRun("results.json", "tiny", method, budget, 8, {}, scores)
        for record in run.to_records():
            append_record(store, record)
    joined = {row["method"]: row for row in store_rows(store, benchmark="mvbench").rows}
    assert joined["fastv"]["provenance"] == "evaluated accuracy, measured cost"
    assert joined["fastv"]["score"] == 55.0 and joined["fastv"]["speedup"] == pytest.approx(200.0 / 75.0)
    assert not store_rows(store, benchmark="mvbench").unjoined
    report = build_report(tmp_path / "report", store=store, benchmark="mvbench")
    assert "accuracy_with_cost.csv" in report.tables
