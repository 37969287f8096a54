"""`vidcost eval`: lmms-eval on vidcost's methods — accuracy and per-request cost from the same forward passes.

Needs the eval extra (`pip install -e ".[eval]"`, README). Options or a TOML grid file (the options override
its keys): tasks, methods, budgets, model, model_path, frames, limit, device, dtype, seed, include_path,
output_path, store, and `[params.METHOD]` tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vidcost.cli.common import parse_params, print_json
from vidcost.errors import ConfigError

DEFAULT_EVAL_STORE = "profiles/eval.jsonl"
# The grid's keys (a TOML file's, or the options of the same name): comma-separated lists, then single values.
LIST_KEYS = ("tasks", "methods", "budgets")
SCALAR_KEYS = ("include_path", "model", "model_path", "frames", "limit", "device", "dtype", "seed", "output_path",
               "store", "batch_size")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate methods × budgets with lmms-eval, each request's cost measured as it is answered",
        description="Run lmms-eval (its own evaluator, tasks and metrics) once for vanilla and once per method × "
                    "budget with the `vidcost` backend, leave lmms-eval's results and samples files in "
                    "OUTPUT/<method>_<budget>/, append each request's measured cost to the store, and print "
                    "score, Δ vs vanilla and the median TTFT speedup over the same requests. Complete runs are "
                    "skipped on a rerun; a killed run resumes from the requests in the store. Needs the eval "
                    "extra: pip install -e \".[eval]\".")
    parser.add_argument("grid", nargs="?", help="a TOML grid file; options below override its keys")
    parser.add_argument("--tasks", help="lmms-eval task names, comma-separated (e.g. videomme)")
    parser.add_argument("--include-path", help="a folder of local lmms-eval task YAML files")
    parser.add_argument("--methods", help="pruning methods, e.g. vanilla,fastv,mmgvid (vanilla always runs)")
    parser.add_argument("--budgets", help="kept fractions, e.g. 0.1,0.25,0.5 (default 0.25)")
    parser.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                        help="a method's parameter, repeatable (e.g. --param fastv.layer=3)")
    parser.add_argument("--model", help="preset, config.json or model directory (default: --model-path, else tiny)")
    parser.add_argument("--model-path", help="local model directory: weights, tokenizer, processor "
                                             "(default: the embedded model, random weights)")
    parser.add_argument("--frames", type=int, help="frames sampled uniformly per video (default: the model's)")
    parser.add_argument("--limit", type=int, help="only the first N documents of each task")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--dtype", help="float32, bfloat16 or float16 (default bfloat16 on GPU, else float32)")
    parser.add_argument("--seed", type=int, help="seeds the embedded model's weights and the methods (default 0)")
    parser.add_argument("--output-path", help="lmms-eval's output folder (default eval-output)")
    parser.add_argument("--store", help=f"records file for the per-request cost (default {DEFAULT_EVAL_STORE})")
    parser.add_argument("--batch-size", type=int, help="must be 1: each request's cost is that of its own "
                                                       "forward pass (accepted so that lmms-eval habits get a clear error)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.eval.runner import run_grid, summary_rows

    grid = grid_from_args(args)
    _quiet_lmms_eval()
    runs = run_grid(grid, progress=lambda line: print(f"vidcost eval: {line}", file=sys.stderr, flush=True))
    rows = summary_rows(runs, grid.base.store)
    if args.json:
        print_json({"runs": rows, "output_path": grid.output_path, "store": grid.base.store})
    else:
        print_table(rows)
    return 0


def _quiet_lmms_eval() -> None:
    """lmms-eval logs through loguru at DEBUG (a line per task YAML it cannot load); keep its warnings only,
    as its own command line does with `--verbosity WARNING`."""
    try:
        from loguru import logger
    except ImportError:  # no lmms-eval: check_tasks says so in one line
        return
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


def grid_from_args(args: argparse.Namespace) -> Any:
    """The grid of a TOML file and/or the command line."""
    from vidcost.eval.config import EvalConfig, check_batch_size
    from vidcost.eval.runner import EvalGrid

    data: dict[str, Any] = _read_grid(args.grid) if args.grid else {}
    for key in LIST_KEYS:
        text = getattr(args, key)
        if text is not None:
            data[key] = [item.strip() for item in text.split(",") if item.strip()]
    for key in SCALAR_KEYS:
        if getattr(args, key) is not None:
            data[key] = getattr(args, key)
    params: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (data.pop("params", {}) or {}).items()}
    for pair in args.param:
        method, dot, rest = pair.partition(".")
        if not dot or "=" not in rest:
            raise ConfigError(f"malformed --param '{pair}'; write METHOD.NAME=VALUE, e.g. --param fastv.layer=3")
        params.setdefault(method, {}).update(parse_params([rest]))
    unknown = sorted(set(data) - set(LIST_KEYS) - set(SCALAR_KEYS))
    if unknown:
        raise ConfigError(f"unknown grid keys {unknown} in '{args.grid}'; see vidcost eval --help")
    check_batch_size(data.get("batch_size", 1))
    budgets = _numbers(data.get("budgets", [0.25]), "--budgets", float)
    if "limit" in data and (not isinstance(data["limit"], int) or data["limit"] < 1):
        raise ConfigError(f"--limit must be a whole number ≥ 1, got {data['limit']!r}")
    model_path = data.get("model_path")
    model = data.get("model")  # none: the directory's, else tiny (EvalConfig)
    base = EvalConfig(model=None if model is None else str(model), model_path=model_path,
                      frames=data.get("frames"), device=str(data.get("device", "cpu")), dtype=data.get("dtype"),
                      seed=int(data.get("seed", 0)), store=str(data.get("store", DEFAULT_EVAL_STORE)))
    if base.frames is not None and (not isinstance(base.frames, int) or base.frames < 1):
        raise ConfigError(f"--frames must be a whole number ≥ 1, got {base.frames!r}")
    if base.frames is None and (model_path is None or (Path(model_path) / "config.json").is_file()):
        # lmms-eval's results then name the frames fed, as the request records do (a missing model
        # directory is left to check_config, whose message says what to pass)
        from dataclasses import replace

        from vidcost.spec import load_spec

        base = replace(base, frames=load_spec(base.model).frames)
    return EvalGrid(tasks=tuple(_names(data.get("tasks", []), "--tasks")),
                    methods=tuple(_names(data.get("methods", ["vanilla"]), "--methods")), budgets=tuple(budgets),
                    output_path=str(data.get("output_path", "eval-output")), include_path=data.get("include_path"),
                    limit=data.get("limit"), base=base, method_params=params)


def _read_grid(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"grid file '{path}' does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"grid file '{path}' is not readable TOML: {err}") from err


def _names(values: Any, option: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{option} takes names, got {values!r}")
    return values


def _numbers(values: Any, option: str, kind: type) -> list[Any]:
    if not isinstance(values, list):
        values = [values]
    try:
        return [kind(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"{option} takes comma-separated numbers, got {values!r}") from None


def print_table(rows: list[dict[str, Any]]) -> None:
    """method, budget, score, Δ vs vanilla, measured TTFT speedup (same requests), front membership."""
    fmt = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    print(f"{'task':<18} {'method':<12} {'budget':>6} {'score':>8} {'Δ vanilla':>10} {'TTFT ms':>9} "
          f"{'speedup':>8} {'requests':>8}  front")
    for row in rows:
        print(f"{row['task']:<18} {row['method']:<12} {row['budget']:>6g} {fmt(row['score'], '.4g'):>8} "
              f"{fmt(row['delta_vs_vanilla'], '+.4g'):>10} {fmt(row['ttft_ms'], '.1f'):>9} "
              f"{fmt(row['speedup'], '.2f'):>8} {row['requests']:>8}  {'*' if row['on_front'] else ''}")
