"""`vidcost report --out reports/NAME/`: an HTML + Markdown report from the store and the published data.

No torch: figures are matplotlib (Agg), predictions come from the analytic cost model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidcost.cli.args import nonnegative_float, positive_float
from vidcost.cli.common import add_device_arguments, check_output_file, device_latency_from_args, print_json
from vidcost.errors import ConfigError, DataFormatError
from vidcost.store import DEFAULT_STORE, iter_records


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write an HTML/Markdown report (figures, CSV tables) from the store and published data",
        description="Write index.html, report.md, figures (PNG, SVG), CSV tables, config.json and "
                    "environment.json into --out. Each figure says whether it is measured, predicted or "
                    "published; a missing store means no measurements, and the report says so.")
    parser.add_argument("--out", required=True, help="output directory, e.g. reports/example/")
    parser.add_argument("--store",
                        help=f"profile/accuracy store (default {DEFAULT_STORE} when it exists; without one the "
                             "report shows published data and predictions only)")
    parser.add_argument("--published", nargs="+", metavar="CSV",
                        help="published CSV files (default: profiles/published/*.csv)")
    parser.add_argument("--benchmark", default="avg", help="benchmark for fronts and figures (default avg)")
    parser.add_argument("--max-drop", type=nonnegative_float, default=1.0, metavar="PCT",
                        help="recommendation: largest accuracy drop, points of %% of vanilla (default 1)")
    parser.add_argument("--min-speedup", type=positive_float, default=2.0, metavar="X",
                        help="recommendation: smallest prefill speedup (default 2)")
    parser.add_argument("--title", default="vidcost report", help="report title")
    add_device_arguments(parser, "on the user's hardware (one of): accuracy against predicted latency")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.report import build_report

    if args.store is None:
        store = DEFAULT_STORE if DEFAULT_STORE.is_file() else None
    elif not Path(args.store).is_file():
        # A store named on the command line must exist: a typo should not silently drop every measurement.
        raise DataFormatError(f"store '{args.store}' does not exist; check the path or leave out --store")
    elif next(iter_records(args.store), None) is None:
        raise DataFormatError(f"store '{args.store}' holds no records; run `vidcost profile` or `vidcost ingest "
                              "lmms-eval` first, or leave out --store")
    else:
        store = args.store
    latency = device_latency_from_args(args)  # a bad device or calibration fails before --out is created
    if args.published:  # so does a bad published table (read again, cheaply, by build_report)
        from vidcost.published import read_published

        read_published(args.published)
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create the output directory --out '{args.out}': {err.strerror}; "
                          "choose a writable directory") from err
    check_output_file(str(Path(args.out) / ".vidcost-write-check"), "--out")  # an existing read-only folder
    report = build_report(args.out, store=store, published_paths=args.published, benchmark=args.benchmark,
                          max_drop_pct=args.max_drop, min_speedup=args.min_speedup, title=args.title,
                          latency=latency)
    if args.json:
        print_json({"out": report.out_dir, "figures": [f.files for f in report.figures],
                    "provenance": {f.name: f.provenance for f in report.figures},
                    "tables": list(report.tables), "notes": list(report.notes)})
        return 0
    print(report)
    for figure in report.figures:
        print(f"  {figure}")
    for note in report.notes:
        print(f"  note: {note}")
    print(f"open {report.out_dir.rstrip('/')}/index.html")
    return 0
