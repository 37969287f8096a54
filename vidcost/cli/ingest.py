"""`vidcost ingest lmms-eval PATH…`: evaluation results into accuracy records in the store."""

from __future__ import annotations

import argparse
from typing import Any

from vidcost.cli.args import whole_number
from vidcost.cli.common import print_json
from vidcost.errors import ConfigError
from vidcost.store import DEFAULT_STORE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest", help="read evaluation results (lmms-eval) into accuracy records",
        description="Read evaluation results into accuracy records appended to the store.")
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    lmms = formats.add_parser(
        "lmms-eval", help="lmms-eval results JSON files",
        description="Read lmms-eval results as lmms-eval writes them (0.2 to current: 'metric,filter' and older "
                    "'metric' keys, groups with or without their own aggregate, nested subtasks). A PATH is a "
                    "results file or an output folder: every run under it is read, each with its own samples "
                    "files (<date>_samples_<task>.jsonl beside <date>_results.json, or 0.2's <task>.json beside "
                    "results.json), which give bootstrap confidence intervals. The pruning method and budget "
                    "come from config.model_args; scores are normalised to 0-100 (rescaled metrics are "
                    "listed); groups without their own score are averaged from their subtasks.")
    lmms.add_argument("paths", nargs="+", metavar="PATH", help="results JSON files or lmms-eval output folders")
    lmms.add_argument("--samples", nargs="+", default=[], metavar="JSONL",
                      help="samples files for bootstrap CIs (only with a single results file)")
    lmms.add_argument("--method-key", help="model_args key holding the pruning method")
    lmms.add_argument("--budget-key", help="model_args key holding the budget (fraction or percent)")
    lmms.add_argument("--model", help="model name to record (default: model_args 'pretrained')")
    lmms.add_argument("--frames", type=whole_number(1),
                      help="frames per video evaluated, when model_args has no max_frames_num (joins need it)")
    lmms.add_argument("--metric", help="metric to keep per task, METRIC or METRIC,FILTER (default: each task's "
                                       "first)")
    lmms.add_argument("--percent-metric", action="append", default=[], metavar="METRIC",
                      help="a metric already on 0-100 even when its values are <= 1 (repeatable)")
    lmms.add_argument("--resamples", type=whole_number(100), default=2000,
                      help="bootstrap resamples, 100 or more (default 2000)")
    lmms.add_argument("--store", default=str(DEFAULT_STORE), help=f"store to append to (default {DEFAULT_STORE})")
    lmms.add_argument("--dry-run", action="store_true", help="read and report, append nothing")
    lmms.add_argument("--json", action="store_true", help="print the records as JSON")
    lmms.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.lmms_eval import find_runs, read_lmms_eval
    from vidcost.store import append_record, check_writable

    runs_files = [run for path in args.paths for run in find_runs(path)]
    if args.samples and len(runs_files) > 1:
        raise ConfigError(f"--samples needs a single results file, got {len(runs_files)} runs; samples beside "
                          "each results file are matched automatically")
    if not args.dry_run:
        check_writable(args.store)
    runs = []
    for files in runs_files:
        # Files found beside the results may belong to unscored tasks: those are noted, not fatal.
        runs.append(read_lmms_eval(files.results, method_key=args.method_key, budget_key=args.budget_key,
                                   model=args.model, metric=args.metric, samples=args.samples or files.samples,
                                   percent_metrics=args.percent_metric, resamples=args.resamples,
                                   lenient_samples=not args.samples, frames=args.frames))
    records = [record for run_ in runs for record in run_.to_records()]
    if not args.dry_run:
        for record in records:  # read everything first: a bad file appends nothing
            append_record(args.store, record)
    if args.json:
        print_json(records)
        return 0
    for run_ in runs:
        _print_run(run_)
    action = "would append" if args.dry_run else "appended"
    print(f"{action} {len(records)} accuracy record(s) from {len(runs)} run(s) to {args.store}")
    return 0


def _print_run(run: Any) -> None:
    print(run)
    for result in run.results:
        indent = "    - " if result.group else "  "
        print(f"{indent}{result}" + (f"  [{result.aggregation}]" if result.subtasks else ""))
    if run.rescaled:
        print(f"  rescaled 0-1 → 0-100: {', '.join(run.rescaled)}")
    for note in run.notes:
        print(f"  note: {note}")
