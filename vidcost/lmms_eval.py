"""lmms-eval's formats, in one place: where its files lie, and what its results and samples files say.

Where (`find_runs`): lmms-eval ≥ 0.2.4 (`loggers/evaluation_tracker.py`) writes each run into
`<output_path>/<model>/` as `<date>_results.json` beside `<date>_samples_<task>.jsonl` (date
`YYYYMMDD_HHMMSS`), so one folder holds several runs, told apart by their date prefix; lmms-eval 0.2.0–0.2.3
wrote one folder per run, `<date>_<suffix>_<model>_model_args_<hash>/`, holding `results.json` and one
`<task>.json` of samples per task. `find_runs` accepts a results file or any folder above them and pairs each
results file with its own run's samples only.

What (`read_lmms_eval`, `read_samples`): a results JSON (DESIGN §7) holds `results[task]["<metric>,<filter>"]`
(newer) or `results[task]["<metric>"]` (older) scores with `…_stderr…` errors (a number, "N/A", or NaN), the
run's `config.model_args` (`model_configs` before lmms-eval 0.2.4; where a pruning method and budget are
usually passed), `n-samples`, `higher_is_better` and `group_subtasks`. The shapes lmms-eval writes, from its
`evaluator.py` / `evaluator_utils.py`: a group without its own aggregate is an entry holding only its alias
and a `" ": " "` placeholder, and is averaged here from its subtasks (weighted by sample count when every
subtask has one); a group with an aggregate carries its score (also under `groups`); subtasks' aliases are
indented (" - task"), which is how a file without `group_subtasks` (lmms-eval < 0.2.4) tells its hierarchy;
beside each metric stand `_stderr`, `_stderr_clt`, `_stderr_clustered` and, with repeats, stability
metrics (`_expected_accuracy` …), none of them a score. Scores are normalised to 0–100 (a metric whose
every value in a file is within [0, 1] is taken as a fraction and rescaled; each rescale is reported).
A samples file (JSONL, or lmms-eval 0.2's JSON with its `logs`), when given, yields a bootstrap confidence
interval (`vidcost.accuracy.bootstrap_interval`). A run of vidcost's own backend (`--model vidcost`,
`vidcost.eval`) is named by the spec its `model_args` give, as its request records are.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vidcost.accuracy import AccuracyResult, EvaluatedRun, bootstrap_interval
from vidcost.errors import DataFormatError

RESULTS_SUFFIX = "_results.json"  # lmms-eval >= 0.2.4
LEGACY_RESULTS = "results.json"  # lmms-eval 0.2.0-0.2.3
METHOD_KEYS = ("pruning_method", "prune_method", "method", "token_pruning", "pruning")
BUDGET_KEYS = ("budget", "keep_ratio", "retention_ratio", "retain_ratio", "token_budget")
FRAMES_KEYS = ("max_frames_num", "num_frames", "frames", "nframes")
VIDCOST_BACKEND = "vidcost"  # lmms-eval's `--model` of vidcost's own backend (vidcost.eval)
_NOT_METRICS = ("alias", "samples", "name", "sample_len", "sample_count", "original", "effective")
# Error estimates beside a metric; lmms-eval >= 0.6 adds CLT and clustered ones (a number or "N/A").
_STDERR_SUFFIXES = ("_stderr", "_stderr_clt", "_stderr_clustered")
# With --repeats > 1, lmms-eval adds stability statistics of each metric: about the metric, not scores.
_STABILITY_SUFFIXES = ("_expected_accuracy", "_consensus_accuracy", "_internal_variance", "_consistency_rate")


@dataclass(frozen=True)
class RunFiles:
    """One lmms-eval run: its results file and the samples files written with it."""

    results: str
    samples: tuple[str, ...]


def find_runs(path: str | os.PathLike[str]) -> list[RunFiles]:
    """The runs at `path`: one results file, or every results file under a folder (oldest name first).

    Raises:
        DataFormatError: the path does not exist, or a folder holds no lmms-eval results file.
    """
    target = Path(path)
    if target.is_file():
        return [RunFiles(str(target), tuple(samples_beside(target)))]
    if not target.is_dir():
        raise DataFormatError(f"'{target}' does not exist; pass an lmms-eval results file or its output folder")
    found = sorted({*target.rglob(f"*{RESULTS_SUFFIX}"), *target.rglob(LEGACY_RESULTS)})
    if not found:
        raise DataFormatError(f"no lmms-eval results under '{target}' (looked for *{RESULTS_SUFFIX} and "
                              f"{LEGACY_RESULTS}); pass the --output_path lmms-eval wrote to")
    return [RunFiles(str(p), tuple(samples_beside(p))) for p in found]


def samples_beside(results: Path) -> list[str]:
    """The samples files of the run whose results file is `results` (never another run's)."""
    if results.name == LEGACY_RESULTS:  # one folder per run: every other JSON in it is a task's samples
        return sorted(str(p) for p in results.parent.glob("*.json") if p.name != LEGACY_RESULTS)
    if not results.name.endswith(RESULTS_SUFFIX):
        return []
    prefix = results.name.removesuffix(RESULTS_SUFFIX)
    return sorted(str(p) for p in results.parent.glob(f"{prefix}_samples_*.jsonl"))


def parse_model_args(value: Any, *, source: str = "") -> dict[str, str]:
    """`config.model_args`: a "k=v,k=v" string (lmms-eval CLI form) or a JSON object."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise DataFormatError(f"{source}: key 'config.model_args' is a {type(value).__name__}; expected a "
                              "'k=v,k=v' string or an object")
    args: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        key, sep, val = part.partition("=")
        if not sep:
            raise DataFormatError(f"{source}: key 'config.model_args' part '{part}' is not KEY=VALUE")
        args[key.strip()] = val.strip().strip('"').strip("'")
    return args


def read_lmms_eval(path: str | os.PathLike[str], *, method_key: str | None = None,
                   budget_key: str | None = None, model: str | None = None, metric: str | None = None,
                   samples: Sequence[str | os.PathLike[str]] = (),
                   percent_metrics: Sequence[str] = (), ci_level: float = 0.95, resamples: int = 2000,
                   seed: int = 0, lenient_samples: bool = False, frames: int | None = None) -> EvaluatedRun:
    """Read one lmms-eval results JSON.

    Args:
        path: the results file.
        method_key / budget_key: the `model_args` keys holding the method and budget (default: the first
            of METHOD_KEYS / BUDGET_KEYS present; neither present means vanilla at budget 1.0).
        model: model name to record (default: `pretrained` from model_args, else the file's `model_name`,
            else `config.model`).
        metric: metric to keep per task, `metric` or `metric,filter` (default: the first each task reports).
        samples: samples files (`<anything>_<task>.jsonl`, or lmms-eval 0.2's `<task>.json`) for bootstrap
            confidence intervals.
        percent_metrics: metrics already on 0–100 even when every value is ≤ 1 (never rescaled).
        ci_level / resamples / seed: bootstrap settings.
        lenient_samples: samples files found automatically: one that matches no scored task or cannot give
            an interval is left out with a note instead of failing the whole file.
        frames: frames per video evaluated, when model_args does not say (`max_frames_num` …).

    Raises:
        DataFormatError: unreadable JSON, or a missing or malformed key (file and key named).
    """
    source = str(path)
    data = _load_json(Path(path))
    results = data.get("results")
    if not isinstance(results, Mapping):
        raise DataFormatError(f"'{source}': key 'results' is missing or not an object; is this an lmms-eval "
                              "results file (not a samples file)?")
    if isinstance(data.get("groups"), Mapping):  # lm-eval 0.4-style files keep group aggregates apart
        results = {**results, **data["groups"]}
    key = "config" if "config" in data else "model_configs"  # lmms-eval < 0.2.4 wrote model_configs
    config = data.get(key) or {}
    if not isinstance(config, Mapping):
        raise DataFormatError(f"'{source}': key '{key}' is not an object")
    args = parse_model_args(config.get("model_args"), source=source)
    method, budget, notes = _configuration(args, method_key, budget_key, source)
    name = (model or Path(args.get("pretrained", "")).name or str(data.get("model_name") or "")
            or str(config.get("model") or "unknown"))
    frames = frames or next((int(float(args[k])) for k in FRAMES_KEYS if _is_number(args.get(k))), None)
    if config.get("model") == VIDCOST_BACKEND:
        name, frames = _vidcost_model(args, model or name, frames)
    scores = _task_scores(results, data, metric, source)
    scores = _normalise_scales(scores, percent_metrics)
    if samples:
        scores = _with_intervals(scores, samples, notes, lenient=lenient_samples, level=ci_level,
                                 resamples=resamples, seed=seed)
    groups = _group_members(data, source) if "group_subtasks" in data else _groups_from_aliases(results)
    final = _aggregate_groups(scores, groups, source)
    unscored = sorted(t for t in results if t not in scores and t not in groups)
    if unscored:  # e.g. a submission-only split (EgoSchema test) reports no number
        notes.append(f"task(s) {unscored} report no numeric "
                     f"{'metric ' + repr(metric) if metric else 'score'}: left out")
    lower = sorted({f"{r.benchmark}/{r.metric}" for r in final if r.higher_is_better is False})
    if lower:
        notes.append(f"lower-is-better metric(s) {lower}: Pareto fronts and relative scores take every score "
                     "as higher-is-better")
    return EvaluatedRun(source, name, method, budget, frames, args, tuple(final), tuple(notes),
                        evaluated_at=_evaluated_at(data, Path(path)))


def _vidcost_model(args: Mapping[str, str], name: str, frames: int | None) -> tuple[str, int | None]:
    """The spec name and frames vidcost's own backend ran, as its request records name them.

    The backend's `model` is a preset or a model directory, and a run without `frames` fed the spec's
    default: resolving both through `load_spec` is what makes its accuracy join its per-request cost.
    A model that no longer loads here (a directory since moved) keeps the names the file gives.
    """
    from vidcost.errors import ConfigError
    from vidcost.spec import load_spec

    try:
        spec = load_spec(args.get("model") or args.get("model_path") or name, frames=frames)
    except ConfigError:
        return name, frames
    return spec.name, spec.frames


def _read_text(path: Path, what: str, expected: str) -> str:
    """A file lmms-eval wrote, as text; an unreadable or non-UTF-8 one is a one-line DataFormatError
    (`what` prefixes the path in it, `expected` says what to pass instead)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise DataFormatError(f"cannot read {what}'{path}': {err.strerror}; check the path") from err
    except UnicodeDecodeError:
        raise DataFormatError(f"{what}'{path}' is not text (not UTF-8); pass {expected}") from None


def _load_json(path: Path) -> dict[str, Any]:
    text = _read_text(path, "", "an lmms-eval results JSON")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"'{path}' is not valid JSON (line {err.lineno}, column {err.colno}: "
                              f"{err.msg})") from err
    if not isinstance(data, dict):
        raise DataFormatError(f"'{path}' holds a JSON {type(data).__name__}, not an lmms-eval results object")
    return data


def _is_number(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _configuration(args: Mapping[str, str], method_key: str | None, budget_key: str | None,
                   source: str) -> tuple[str, float, list[str]]:
    notes: list[str] = []
    for given, role in ((method_key, "method"), (budget_key, "budget")):
        if given is not None and given not in args:
            raise DataFormatError(f"{source}: key '{given}' (the {role} key) is not in config.model_args "
                                  f"{sorted(args)}; pass the right --{role}-key")
    mkey = method_key or next((k for k in METHOD_KEYS if k in args), None)
    bkey = budget_key or next((k for k in BUDGET_KEYS if k in args), None)
    if mkey is None and bkey is None:
        return "vanilla", 1.0, ["no method or budget in model_args: recorded as vanilla at budget 1.0"]
    if mkey is None:
        raise DataFormatError(f"{source}: config.model_args has budget key '{bkey}' but no method key (tried "
                              f"{list(METHOD_KEYS)}); pass --method-key")
    method = args[mkey].lower()
    if bkey is None:
        if method in ("vanilla", "none", ""):
            return "vanilla", 1.0, notes
        raise DataFormatError(f"{source}: config.model_args names method '{method}' but no budget (tried "
                              f"{list(BUDGET_KEYS)}); pass --budget-key")
    text = args[bkey]
    if not _is_number(text) or float(text) <= 0:
        raise DataFormatError(f"{source}: key 'config.model_args.{bkey}' is '{text}', not a positive number")
    budget = float(text)
    if 1.0 < budget <= 100.0:  # "budget=25" means 25 %
        notes.append(f"budget {text} read as a percentage ({budget / 100:g})")
        budget /= 100.0
    elif budget > 100.0:
        raise DataFormatError(f"{source}: budget '{text}' is neither a fraction nor a percentage")
    return ("vanilla" if method in ("none", "") else method), budget, notes


def _task_scores(results: Mapping[str, Any], data: Mapping[str, Any], metric: str | None,
                 source: str) -> dict[str, AccuracyResult]:
    n_samples = data.get("n-samples") or {}
    higher = data.get("higher_is_better") or {}
    scores: dict[str, AccuracyResult] = {}
    for task, entry in results.items():
        if not isinstance(entry, Mapping):
            raise DataFormatError(f"{source}: key 'results.{task}' is not an object")
        picked = _pick_metric(entry, metric, task, source)
        if picked is None:
            continue  # a group without its own aggregate: averaged later
        key, name, filt = picked
        stderr_key = f"{name}_stderr,{filt}" if filt is not None else f"{name}_stderr"
        count = (n_samples.get(task) or {}) if isinstance(n_samples, Mapping) else {}
        count_value = count.get("effective", count.get("original")) if isinstance(count, Mapping) else None
        hib = higher.get(task, {}).get(name) if isinstance(higher.get(task), Mapping) else None
        scores[task] = AccuracyResult(task, name, filt, float(entry[key]),
                                      _stderr(entry.get(stderr_key), task, stderr_key, source),
                                      n_samples=int(count_value) if _is_number(count_value) else None,
                                      higher_is_better=hib)
    if not scores:
        wanted = f"metric '{metric}'" if metric else "a numeric metric"
        raise DataFormatError(f"{source}: no task in 'results' has {wanted}; tasks are {sorted(results)}")
    return scores


def _pick_metric(entry: Mapping[str, Any], metric: str | None, task: str,
                 source: str) -> tuple[str, str, str | None] | None:
    """(key, metric, filter) of the task's score: the first metric (or `metric`, "name" or "name,filter")
    with a number; None for a group without its own aggregate (its entry holds an alias and " ": " ")."""
    for key, value in entry.items():
        name, _, filt = key.partition(",")
        if (not name.strip() or name in _NOT_METRICS or name.endswith(_STDERR_SUFFIXES + _STABILITY_SUFFIXES)
                or (metric is not None and metric not in (name, key))):
            continue
        if isinstance(value, float) and math.isnan(value):
            continue  # an aggregate over no answered sample: unscored, and said so
        if not _is_number(value):
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                raise DataFormatError(f"{source}: key 'results.{task}.{key}' is '{value}', not a number")
            continue  # nested objects some tasks log beside their scores
        return key, name, (filt or None) if "," in key else None
    return None


def _stderr(value: Any, task: str, key: str, source: str) -> float | None:
    if value is None or value == "N/A" or (isinstance(value, float) and math.isnan(value)):
        return None  # lmms-eval writes "N/A" for one sample, NaN where a clustered estimate is undefined
    if not _is_number(value):
        raise DataFormatError(f"{source}: key 'results.{task}.{key}' is '{value}'; expected a number or \"N/A\"")
    return float(value)


def _normalise_scales(scores: dict[str, AccuracyResult],
                      percent_metrics: Sequence[str]) -> dict[str, AccuracyResult]:
    """Rescale to 0–100 every metric whose values in this file all lie in [0, 1]."""
    by_metric: dict[str, list[float]] = {}
    for result in scores.values():
        by_metric.setdefault(result.metric, []).append(result.score)
    fractions = {m for m, values in by_metric.items()
                 if m not in percent_metrics and all(0.0 <= v <= 1.0 for v in values)}
    return {task: (replace(r, score=100.0 * r.score, rescaled=True,
                           stderr=None if r.stderr is None else 100.0 * r.stderr)
                   if r.metric in fractions else r) for task, r in scores.items()}


def _group_members(data: Mapping[str, Any], source: str) -> dict[str, list[str]]:
    groups = data.get("group_subtasks") or {}
    if not isinstance(groups, Mapping):
        raise DataFormatError(f"{source}: key 'group_subtasks' is not an object")
    members = {}
    for group, tasks in groups.items():
        if not isinstance(tasks, list):
            raise DataFormatError(f"{source}: key 'group_subtasks.{group}' is not a list")
        if tasks:
            members[group] = [str(t) for t in tasks]
    return members


def _groups_from_aliases(results: Mapping[str, Any]) -> dict[str, list[str]]:
    """The hierarchy of a file without `group_subtasks` (lmms-eval < 0.2.4), from its printed table:
    entries come parent first, and a subtask's alias is indented one step deeper (" - task", "  - task")."""
    members: dict[str, list[str]] = {}
    parents: list[tuple[int, str]] = []  # (depth, name) of the enclosing entries
    for task, entry in results.items():
        alias = str(entry.get("alias", task)) if isinstance(entry, Mapping) else str(task)
        depth = len(alias) - len(alias.lstrip(" ")) if alias.lstrip(" ").startswith("- ") else 0
        while parents and parents[-1][0] >= depth:
            parents.pop()
        if parents:
            members.setdefault(parents[-1][1], []).append(task)
        parents.append((depth, task))
    return members


def _evaluated_at(data: Mapping[str, Any], path: Path) -> str | None:
    """When lmms-eval ran: its `date` (YYYYMMDD_HHMMSS), else the date its file or folder name starts with."""
    import re

    for text in (str(data.get("date") or ""), path.name, path.parent.name):
        found = re.match(r"(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})", text)
        if found:
            y, mo, d, h, mi, sec = found.groups()
            return f"{y}-{mo}-{d}T{h}:{mi}:{sec}"
    return None


def _aggregate_groups(scores: dict[str, AccuracyResult], groups: Mapping[str, list[str]],
                      source: str) -> list[AccuracyResult]:
    parent = {task: group for group, tasks in groups.items() for task in tasks}
    done: dict[str, AccuracyResult] = dict(scores)

    def resolve(group: str, trail: tuple[str, ...] = ()) -> AccuracyResult:
        if group in done:
            return done[group]
        if group in trail:
            raise DataFormatError(f"{source}: key 'group_subtasks' nests group '{group}' inside itself")
        missing = [t for t in groups.get(group, []) if t not in done and t not in groups]
        if missing or group not in groups:
            raise DataFormatError(f"{source}: group '{group}' has no score and its subtask(s) {missing} are "
                                  "not in 'results'")
        parts = [resolve(t, trail + (group,)) for t in groups[group]]
        done[group] = _mean_of(group, parts)
        return done[group]

    for group in groups:
        resolve(group)
    return [replace(r, group=parent.get(name)) for name, r in done.items()]


def _mean_of(group: str, parts: Sequence[AccuracyResult]) -> AccuracyResult:
    """A group's score from its subtasks; the stderr assumes independent subtasks."""
    counts = [p.n_samples for p in parts]
    weighted = all(c for c in counts)
    weights = [float(c) if weighted else 1.0 for c in counts]
    total = sum(weights)
    score = sum(w * p.score for w, p in zip(weights, parts)) / total
    stderr = None
    if all(p.stderr is not None for p in parts):
        stderr = math.sqrt(sum((w * p.stderr) ** 2 for w, p in zip(weights, parts))) / total
    how = "sample-weighted" if weighted else "unweighted"
    metrics = sorted({p.metric for p in parts})
    return AccuracyResult(group, "/".join(metrics), parts[0].filter, score, stderr,
                          rescaled=any(p.rescaled for p in parts),
                          n_samples=int(total) if weighted else None, subtasks=tuple(p.benchmark for p in parts),
                          aggregation=f"{how} mean of {len(parts)} subtasks")


def read_samples(path: str | os.PathLike[str], metric: str) -> list[float]:
    """Per-sample values of `metric` from an lmms-eval samples file: a JSONL (lmms-eval ≥ 0.2.4, one sample a
    line) or a JSON object whose `logs` list holds the samples (lmms-eval 0.2.0–0.2.3). A value is a number,
    a bool, or an object holding a numeric "score" or a prediction ("pred_answer", "parsed_pred", "pred")
    and its truth ("answer", "gt_answer", "ground_truth") compared for equality.

    Raises:
        DataFormatError: unreadable file, a malformed line, or a sample without the metric (named).
    """
    values = []
    for where, sample in _samples_of(Path(path)):
        value = sample.get(metric) if isinstance(sample, dict) else None
        if isinstance(value, Mapping):
            value = _sample_value(value)
        if isinstance(value, bool) or _is_number(value):
            values.append(float(value))
        else:
            raise DataFormatError(f"{where}: key '{metric}' is missing or not a number")
    if not values:
        raise DataFormatError(f"samples file '{path}' has no samples")
    return values


_PREDICTION_KEYS = ("pred_answer", "parsed_pred", "pred")  # VideoMME/MLVU/MVBench, LongVideoBench, EgoSchema
_TRUTH_KEYS = ("answer", "gt_answer", "ground_truth")


def _sample_value(value: Mapping[str, Any]) -> Any:
    if _is_number(value.get("score")):
        return value["score"]
    pred = next((k for k in _PREDICTION_KEYS if k in value), None)
    truth = next((k for k in _TRUTH_KEYS if k in value), None)
    return float(value[pred] == value[truth]) if pred and truth else None


def _samples_of(path: Path) -> Iterable[tuple[str, Any]]:
    """(where, sample) of each sample in a samples file, where = "file:line" or "file: logs[i]"."""
    text = _read_text(path, "samples ", "an lmms-eval samples file")
    if path.suffix == ".json":  # lmms-eval 0.2.0-0.2.3: {"args", "model_configs", "logs": [...], "time"}
        try:
            logs = json.loads(text).get("logs")
        except (json.JSONDecodeError, AttributeError) as err:
            raise DataFormatError(f"samples '{path}' is not an lmms-eval samples JSON with 'logs'") from err
        if not isinstance(logs, list):
            raise DataFormatError(f"samples '{path}': key 'logs' is missing or not a list")
        return [(f"{path}: logs[{i}]", sample) for i, sample in enumerate(logs)]
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                samples.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}:{number}: not valid JSON ({err.msg})") from err
    return samples


def _with_intervals(scores: dict[str, AccuracyResult], samples: Sequence[str | os.PathLike[str]],
                    notes: list[str], *, lenient: bool, level: float, resamples: int,
                    seed: int) -> dict[str, AccuracyResult]:
    """Scores with bootstrap intervals from their samples files; when lenient, unusable files become notes."""
    if lenient:
        usable = [p for p in samples if _task_of(p, scores) is not None]
        if len(usable) < len(samples):
            left = sorted(Path(p).name for p in samples if p not in usable)
            notes.append(f"samples file(s) {left} match no scored task: left out")
        samples = usable
    matched = samples_for(samples, scores)
    with_ci = {}
    for task, result in scores.items():
        try:
            with_ci[task] = _with_interval(result, matched.get(task), level, resamples, seed)
        except DataFormatError as err:
            if not lenient:
                raise
            notes.append(f"no confidence interval for {task}: {err}")
            with_ci[task] = result
    return with_ci


def _with_interval(result: AccuracyResult, samples_path: str | os.PathLike[str] | None, level: float,
                   resamples: int, seed: int) -> AccuracyResult:
    if samples_path is None:
        return result
    values = read_samples(samples_path, result.metric)
    # Per-sample values are 0/1 (or fractions) even where the task reports 0–100.
    scale = 100.0 if result.score > 1.0 and all(0.0 <= v <= 1.0 for v in values) else 1.0
    mean = scale * sum(values) / len(values)
    if abs(mean - result.score) > 0.5:
        raise DataFormatError(
            f"samples '{samples_path}' average {mean:.2f} but the results give {result.benchmark} "
            f"{result.score:.2f}; are they from the same run?")
    low, high = bootstrap_interval(values, level=level, resamples=resamples, seed=seed)
    return replace(result, ci_low=scale * low, ci_high=scale * high, ci_level=level)


def samples_for(paths: Iterable[str | os.PathLike[str]], tasks: Iterable[str]) -> dict[str, str]:
    """Match samples files to tasks by name: the longest task name the file's stem ends with
    (lmms-eval writes `<date>_samples_<task>.jsonl`, `<model>_<task>.jsonl` or, before 0.2.4, `<task>.json`).

    Raises:
        DataFormatError: a file that matches no task.
    """
    names = list(tasks)
    matched: dict[str, str] = {}
    for path in paths:
        task = _task_of(path, names)
        if task is None:
            raise DataFormatError(f"samples file '{path}' matches no task of the results ({sorted(names)}); "
                                  "name it <anything>_<task>.jsonl")
        matched[task] = str(path)
    return matched


def _task_of(path: str | os.PathLike[str], tasks: Iterable[str]) -> str | None:
    """The longest task name a samples file's stem ends with (after "_"), None when none."""
    stem = Path(path).name.removesuffix(".jsonl").removesuffix(".json")
    return next((t for t in sorted(tasks, key=len, reverse=True) if stem == t or stem.endswith("_" + t)), None)
