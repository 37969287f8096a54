"""`vidcost eval`: lmms-eval run once per (method, budget) with the `vidcost` backend, and one table of the grid.

Each run goes through `lmms_eval.evaluator.simple_evaluate` and leaves lmms-eval's own output — a
`<date>_results.json` and `<date>_samples_<task>.jsonl` per task, written by lmms-eval's `EvaluationTracker`
as its command line writes them — in its own folder `OUTPUT/<method>_<budget>/` (`OUTPUT/vanilla/`), so
`vidcost ingest lmms-eval OUTPUT` and any lmms-eval tooling read them unchanged. A run is complete when its
folder holds `vidcost_run.json` with the run's configuration hash (written last, atomically): a rerun skips
complete runs and reruns the others, whose requests already in the store are not answered again (the
backend resumes from the store, `backend.stored_answers`).

Everything is checked before a model is built: the tasks exist and are `generate_until` tasks, every
(method, budget) is one the method accepts, the model directory, the output folder and the store.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from vidcost.errors import ConfigError, DataFormatError
from vidcost.eval.config import EvalConfig, check_config, unsupported_request

MARKER = "vidcost_run.json"
# The requests lmms-eval makes of a task's output_type (lmms_eval.api.task: multiple choice is scored by
# the log-likelihood of each option).
REQUEST_TYPES = {"multiple_choice": "loglikelihood", "loglikelihood_rolling": "loglikelihood"}


@dataclass(frozen=True)
class EvalGrid:
    """What `vidcost eval` runs: every method × budget (vanilla once) on the tasks."""

    tasks: tuple[str, ...]
    methods: tuple[str, ...] = ("vanilla",)
    budgets: tuple[float, ...] = (0.25,)
    output_path: str = "eval-output"
    include_path: str | None = None
    limit: int | None = None
    base: EvalConfig = field(default_factory=EvalConfig)
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def configs(self) -> list[EvalConfig]:
        """One backend configuration per run: vanilla first (once), then each method at each budget."""
        runs = [replace(self.base, method="vanilla", budget=1.0)]
        for method in self.methods:
            if method != "vanilla":
                params = self.method_params.get(method, {})
                runs.extend(replace(self.base, method=method, budget=b, params=params) for b in self.budgets)
        return runs


@dataclass(frozen=True)
class EvalRun:
    """One finished (or skipped) lmms-eval run of the grid."""

    config: EvalConfig
    config_hash: str
    folder: Path
    scores: dict[str, float]
    skipped: bool = False


def run_folder(grid: EvalGrid, config: EvalConfig) -> Path:
    name = "vanilla" if config.method == "vanilla" else f"{_safe(config.method)}_{config.budget:g}"
    return Path(grid.output_path) / name


def check_grid(grid: EvalGrid) -> Any:
    """Every check that needs no model; returns lmms-eval's TaskManager for the run.

    Raises:
        ConfigError: no lmms-eval, an unknown task, a task that is not generate_until, a bad method or
            budget, a missing model directory, an unwritable output folder or store.
    """
    from vidcost.store import check_writable

    if not grid.tasks:
        raise ConfigError("no task given; pass --tasks NAME[,NAME] (lmms-eval task names)")
    for config in grid.configs():
        check_config(config)
    try:
        check_writable(Path(grid.output_path) / ".vidcost-write-check")  # creates nothing it does not remove
    except DataFormatError as err:
        raise ConfigError(f"--output-path '{grid.output_path}' is not a writable folder ({err.__cause__ or err}); "
                          "pass a folder you can write to") from err
    if grid.base.store is not None:
        check_writable(grid.base.store)
    return check_tasks(list(grid.tasks), grid.include_path)


def check_tasks(tasks: list[str], include_path: str | None) -> Any:
    """lmms-eval's TaskManager, after checking every task exists and answers by generation."""
    try:
        from lmms_eval.tasks import TaskManager
    except ImportError as err:
        raise ConfigError(f"vidcost eval needs lmms-eval ({err}); install the eval extra: "
                          "pip install -e \".[eval]\" (see the README)") from err
    if include_path is not None and not Path(include_path).is_dir():
        raise ConfigError(f"--include-path '{include_path}' is not a folder of lmms-eval task YAML files")
    manager = TaskManager("WARNING", include_path=include_path)
    for task in tasks:
        if task not in manager.all_tasks:
            raise ConfigError(f"unknown lmms-eval task '{task}'; list them with `python -m lmms_eval --tasks list`"
                              " or pass --include-path DIR for a local task")
        for name, output_type in _output_types(manager, task):
            if output_type != "generate_until":
                request_type = REQUEST_TYPES.get(output_type, output_type)
                raise ConfigError(f"task '{name}' (output_type {output_type}) asks for {request_type} requests; "
                                  + unsupported_request(request_type))
    return manager


def _output_types(manager: Any, task: str) -> list[tuple[str, str]]:
    """(task, output_type) of a task, or of every task of a group or tag."""
    entry = manager.task_index[task]
    if entry["type"] == "task":
        return [(task, manager._get_config(task).get("output_type", "generate_until"))]
    names = entry.get("task") or manager._get_config(task).get("task") or []
    found = []
    for name in names if isinstance(names, list) else [names]:
        if isinstance(name, str) and name in manager.task_index:
            found.extend(_output_types(manager, name))
    return found


def run_grid(grid: EvalGrid, *, progress: Callable[[str], None] | None = None) -> list[EvalRun]:
    """Run (or skip, when complete) every configuration of the grid; returns one EvalRun each."""
    say = progress or (lambda message: None)
    manager = check_grid(grid)
    runs = []
    configs = grid.configs()
    for number, config in enumerate(configs, 1):
        config_hash = config.configuration_hash(grid.tasks, grid.limit)
        folder = run_folder(grid, config)
        label = f"[{number}/{len(configs)}] {config.method} @ {config.budget:g}"
        done = _complete(folder, config_hash)
        if done is not None:
            say(f"{label}: complete in {folder}, skipped")
            runs.append(EvalRun(config, config_hash, folder, done, skipped=True))
            continue
        say(f"{label}: evaluating {','.join(grid.tasks)}")
        scores = _evaluate(grid, config, config_hash, folder, manager)
        runs.append(EvalRun(config, config_hash, folder, scores))
    return runs


def _evaluate(grid: EvalGrid, config: EvalConfig, config_hash: str, folder: Path, manager: Any) -> dict[str, float]:
    from lmms_eval import evaluator
    from lmms_eval.loggers import EvaluationTracker
    from lmms_eval.utils import get_datetime_str

    from vidcost.eval import MODEL_ID

    tracker = EvaluationTracker(output_path=str(folder))
    when = get_datetime_str()
    results = evaluator.simple_evaluate(
        model=MODEL_ID, model_args=f"{config.model_args()},config_hash={config_hash}", tasks=list(grid.tasks),
        batch_size=1, limit=grid.limit, log_samples=True, evaluation_tracker=tracker, task_manager=manager,
        datetime_str=when, verbosity="WARNING")
    if results is None:  # a non-zero rank in a distributed run
        return {}
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples, datetime_str=when)
    for task in results["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    scores = task_scores(results)
    _write_marker(folder, {"config_hash": config_hash, "method": config.method, "budget": config.budget,
                           "model": config.model, "frames": config.frames, "tasks": list(grid.tasks),
                           "limit": grid.limit, "scores": scores})
    return scores


def task_scores(results: dict[str, Any]) -> dict[str, float]:
    """task → its first metric's value (`metric,filter` keys; stderr entries left out)."""
    scores = {}
    for task, values in results.get("results", {}).items():
        for key, value in values.items():
            if "," in key and "_stderr" not in key and isinstance(value, (int, float)) and not isinstance(value, bool):
                scores[task] = float(value)
                break
    return scores


def _complete(folder: Path, config_hash: str) -> dict[str, float] | None:
    marker = folder / MARKER
    if not marker.is_file():
        return None
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None  # a damaged marker: run again
    return data.get("scores", {}) if data.get("config_hash") == config_hash else None


def _write_marker(folder: Path, data: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".vidcost_run.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / MARKER)


def summary_rows(runs: list[EvalRun], store: str | None) -> list[dict[str, Any]]:
    """One row per (run, task): score, Δ vs vanilla, median TTFT speedup over the same requests, on the front."""
    from vidcost.eval.record import KIND, summarise_requests
    from vidcost.pareto import pareto_front
    from vidcost.store import read_records

    records = read_records(store, kind=KIND) if store is not None and Path(store).is_file() else []
    hashes = {run.config_hash for run in runs}
    cost = {(r["method"], r["budget"]): r for r in summarise_requests(x for x in records if x.get("config_hash") in hashes)}
    vanilla = next((run for run in runs if run.config.method == "vanilla"), None)
    rows = []
    for run in runs:
        measured = cost.get((run.config.method, run.config.budget), {})
        for task, score in run.scores.items():
            base = vanilla.scores.get(task) if vanilla else None
            rows.append({"task": task, "method": run.config.method, "budget": run.config.budget, "score": score,
                         "delta_vs_vanilla": None if base is None else score - base,
                         "ttft_ms": measured.get("ttft_ms"), "speedup": measured.get("speedup"),
                         "requests": measured.get("requests", 0), "skipped": run.skipped, "on_front": False,
                         "output": str(run.folder)})
    for task in {row["task"] for row in rows}:
        members = [row for row in rows if row["task"] == task and row["ttft_ms"] is not None]
        if members and not any(math.isnan(row["score"]) for row in members):
            for index in pareto_front([row["ttft_ms"] for row in members], [row["score"] for row in members]):
                members[index]["on_front"] = True
    return rows


def _safe(name: str) -> str:
    """A method name usable as a folder name (a plug-in's `file.py:Class`)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
