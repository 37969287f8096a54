"""`vidcost sweep`: a grid of profile cells (methods × budgets × frames × models), resumable, local or on Ray.

The grid comes from the command line or a TOML file (the command line's options override the file's);
`--dry-run` lists the cells and which the store already holds, without building anything. A progress bar
with ETA goes to stderr; a table of the cells and the totals (done, skipped, failed, wall time) to stdout.
Exit code 0, 1 when a cell failed (it is stored as `failed`; a rerun tries it again), 2 for bad input,
130 after Ctrl-C (a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from vidcost.cli.common import parse_params, parse_resolution, print_json
from vidcost.errors import ConfigError
from vidcost.store import DEFAULT_STORE

# option → grid key, and how its text becomes the key's value
LIST_OPTIONS = {"methods": str, "budgets": float, "frames": int, "model": str}
SETTING_OPTIONS = ("repeats", "warmup", "decode_tokens", "energy_blocks", "device", "dtype", "seed", "threads",
                   "tokens_per_frame", "text_tokens", "resolution", "model_path", "video", "question")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep", help="profile a grid of methods × budgets × frames, resumable, locally or on Ray",
        description="Measure every cell of a grid (each a method at a budget beside vanilla, as `vidcost profile` "
                    "does), one model build per worker; cells already in the store are skipped, so a rerun "
                    "resumes. Exit code 1 when a cell failed, 2 for bad input, 130 after Ctrl-C.")
    parser.add_argument("grid", nargs="?", help="a TOML grid file (see the README); options below override it")
    grid = parser.add_argument_group("grid (comma-separated lists)")
    grid.add_argument("--methods", help="pruning methods, e.g. fastv,uniform,mmgvid")
    grid.add_argument("--budgets", help="kept fractions of visual tokens, e.g. 0.1,0.25,0.5")
    grid.add_argument("--frames", help="frame counts, e.g. 8,16 (default: the model's)")
    grid.add_argument("--model", help="presets, config.json files or model directories (default: tiny)")
    grid.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                      help="a method's parameter, repeatable (e.g. --param fastv.layer=3; NAME=VALUE with one method)")
    cell = parser.add_argument_group("every cell (as `vidcost profile`)")
    for option, kind, text in (("--repeats", int, "measured runs per configuration (default 5)"),
                               ("--warmup", int, "warm-up runs per configuration (default 1)"),
                               ("--decode-tokens", int, "greedy decode steps after each prefill (default 0)"),
                               ("--energy-blocks", int, "energy blocks per configuration on a GPU (default 3)"),
                               ("--device", str, "cpu, cuda or cuda:N (default cpu; with Ray: cpu or cuda)"),
                               ("--dtype", str, "float32, bfloat16 or float16 (default bfloat16 on GPU, else float32)"),
                               ("--seed", int, "seeds weights, synthetic video and token ids (default 0)"),
                               ("--threads", int, "torch CPU threads (default: torch's, or --cpus-per-task on Ray)"),
                               ("--tokens-per-frame", int, "visual tokens per frame entering the LLM"),
                               ("--text-tokens", int, "text tokens (prompt + question)"),
                               ("--resolution", str, "Qwen-VL frame size in pixels, N or HxW (multiples of 28; "
                                                     "default the model's or the --video's)"),
                               ("--model-path", str, "local weights of the (one) model; default shape-only"),
                               ("--video", str, "a video file; default a seeded synthetic clip"),
                               ("--question", str, "question text")):
        cell.add_argument(option, type=kind, help=text)
    run = parser.add_argument_group("running")
    run.add_argument("--store", default=str(DEFAULT_STORE),
                     help=f"records file to resume and append to (default {DEFAULT_STORE})")
    run.add_argument("--executor", default="local", choices=("local", "ray"), help="where cells run (default local)")
    run.add_argument("--ray-address", help="join a running Ray cluster (HOST:PORT, ray://HOST:PORT or auto); "
                                           "default: start a local Ray")
    run.add_argument("--cpus-per-task", type=int, help="CPUs per Ray worker on --device cpu (default 1)")
    run.add_argument("--dry-run", action="store_true", help="list the cells and which are done; run nothing")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from vidcost.sweep import plan_sweep, run_sweep

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning  # corrupt store lines, a torn tail cut off: as they happen
        grid = grid_from_args(args)
        if args.dry_run:
            plan = plan_sweep(grid, args.store)
            print_json(plan.to_dict()) if args.json else print_plan(plan)
            return 0
        result = run_sweep(grid, store=args.store, executor=args.executor, ray_address=args.ray_address,
                           cpus_per_task=args.cpus_per_task, progress=True)
    print_json(result.to_dict()) if args.json else print_summary(result)
    if result.interrupted:
        print("vidcost sweep: interrupted; every stored cell is whole — rerun the same command to resume",
              file=sys.stderr)
        return 130
    return 1 if result.failed else 0


def grid_from_args(args: argparse.Namespace) -> Any:
    """The grid of a grid file and/or the command line (whose options override the file's keys)."""
    from vidcost.sweep.grid import grid_from_mapping, read_grid_file

    data: dict[str, Any] = read_grid_file(args.grid) if args.grid else {}
    for option, kind in LIST_OPTIONS.items():
        text = getattr(args, option)
        if text is not None:
            data.pop("models" if option == "model" else option, None)
            data[option] = _split(text, f"--{option}", kind)
    data.update({name: getattr(args, name) for name in SETTING_OPTIONS if getattr(args, name) is not None})
    if args.resolution is not None:
        data["resolution"] = parse_resolution(args.resolution)
    if args.param:
        data["methods"] = _with_params(data.get("methods", []), args.param)
    source = f"grid file '{args.grid}'" if args.grid else "the command line"
    return grid_from_mapping(data, source=source)


def _split(text: str, option: str, kind: type) -> list[Any]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return [kind(item) for item in items]
    except ValueError as err:
        what = {float: "numbers", int: "whole numbers"}.get(kind, "names")
        raise ConfigError(f"{option} takes comma-separated {what}, got '{text}'") from err


def _with_params(methods: Any, pairs: list[str]) -> list[Any]:
    """The grid's method entries with `--param METHOD.NAME=VALUE` (or NAME=VALUE for a single method) set."""
    methods = methods if isinstance(methods, list) else [methods]
    entries = [dict(m) if isinstance(m, dict) else {"name": m} for m in methods]
    names = [entry.get("name") for entry in entries]
    for pair in pairs:
        target, dot, rest = pair.partition(".") if "." in pair.partition("=")[0] else ("", "", pair)
        if not dot and len(set(names)) != 1:
            raise ConfigError(f"--param {pair}: name its method, e.g. --param {names[0] if names else 'fastv'}.{pair}")
        target = target if dot else names[0]
        if target not in names:
            raise ConfigError(f"--param {pair}: '{target}' is not one of the grid's methods {names}")
        for entry in entries:
            if entry.get("name") == target:
                entry.update(parse_params([rest]))
    return entries


def print_plan(plan: Any) -> None:
    """The dry run: every cell, whether the store holds it, its hash."""
    print(f"  {'#':>3}  {'state':<8}{'config hash':<18}cell")
    for number, cell in enumerate(plan.cells, 1):
        print(f"  {number:>3}  {'done' if plan.is_done(cell) else 'to run':<8}{cell.config_hash:<18}{cell.label}")
    print(plan)


def print_summary(result: Any) -> None:
    """Every cell with its speedups beside the totals: done, skipped, failed, wall time."""
    width = max([len(o.cell.label) for o in result.outcomes] + [4])
    print(f"  {'cell':<{width}}  {'status':<8}{'TTFT':>8}{'LLM prefill':>13}{'FLOPs':>8}{'seconds':>9}")
    for outcome in result.outcomes:
        compared = outcome.compared or {}
        seconds = f"{outcome.seconds:.1f}" if outcome.seconds is not None else ""
        print(f"  {outcome.cell.label:<{width}}  {outcome.status:<8}{_times(compared.get('speedup')):>8}"
              f"{_times(compared.get('llm_prefill_speedup')):>13}{_times(compared.get('flops_speedup')):>8}"
              f"{seconds:>9}")
    for outcome in result.outcomes:
        if outcome.error:
            print(f"  failed: {outcome.cell.label}: {outcome.error[:200]}")
    print("speedups are vanilla over method, measured in the same run (TTFT, LLM prefill) and by exact FLOPs")
    print(f"  {'cells':<10}{len(result.outcomes):>8}")
    for name in ("done", "skipped", "failed"):
        print(f"  {name:<10}{getattr(result, name):>8}")
    if result.count("not run"):
        print(f"  {'not run':<10}{result.count('not run'):>8}")
    print(f"  {'wall time':<10}{result.wall_s:>8.1f} s ({result.executor} executor)")
    print(f"  {'store':<10}  {result.store}")


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "-"


def _show_warning(message: Any, *args: Any, **kwargs: Any) -> None:
    print(f"vidcost sweep: warning: {message}", file=sys.stderr)
