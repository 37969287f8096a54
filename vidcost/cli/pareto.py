"""`vidcost pareto FILE.csv|--store … --x COL --y COL`: non-dominated rows and a budget recommendation.

No torch: the table comes from a CSV (pandas) or the store (JSON lines).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from vidcost.cli.args import nonnegative_float, positive_float
from vidcost.cli.common import add_device_arguments, device_latency_from_args, print_json
from vidcost.errors import ConfigError, DataFormatError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pareto", help="accuracy-vs-cost Pareto front (lower x, higher y) and a budget recommendation",
        description="Non-dominated rows of a table: lower cost (--x) and higher accuracy (--y). The table is a "
                    "CSV (a published CSV is validated and gets relative scores) or the store (evaluated "
                    "accuracy joined with measured profiles of the same model, frames, method and budget; "
                    "what could not be joined is listed). Cost columns: flops_ratio, flops_t, ttft_ms, "
                    "llm_prefill_ms, peak_memory_bytes; accuracy: score, relative_pct. With --calibration or "
                    "--device-spec every row is also priced on that device (predicted_ttft_ms, predicted_speedup, "
                    "predicted_llm_prefill_ms, predicted_peak_memory_bytes), the front is drawn against the "
                    "predicted TTFT and the recommendation uses the predicted speedup where none was measured.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", metavar="FILE.csv", help="a table (e.g. profiles/published/*.csv)")
    source.add_argument("--store", help="a profile store (JSON lines), e.g. profiles/runs.jsonl")
    source.add_argument("--published", action="store_true", help="every CSV under profiles/published/")
    parser.add_argument("--x", help="cost column, lower is better (default flops_ratio; predicted_ttft_ms with "
                                    "--calibration or --device-spec)")
    parser.add_argument("--y", default="relative_pct",
                        help="accuracy column, higher is better (default relative_pct: %% of vanilla)")
    parser.add_argument("--group", help="one front per value of this column (e.g. model)")
    parser.add_argument("--benchmark", default="avg", help="benchmark rows to use (default avg)")
    parser.add_argument("--variants", action="store_true",
                        help="keep the ablation tables of published data (variants, and default rows averaged "
                             "over fewer benchmarks)")
    parser.add_argument("--max-drop", type=nonnegative_float, metavar="PCT",
                        help="recommend: largest accuracy drop, in points of %% of vanilla (e.g. 1)")
    parser.add_argument("--min-speedup", type=positive_float, default=1.0, metavar="X",
                        help="recommend: smallest speedup (measured TTFT where profiled, else predicted with "
                             "--calibration / --device-spec, else FLOPs-ideal; default 1)")
    add_device_arguments(parser, "on the user's hardware (one of): rows priced on that device")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.pareto import compute_fronts, recommend

    rows, source, unjoined = load_rows(args)
    latency, unpriced = device_latency_from_args(args), 0
    if latency is not None:
        from vidcost.predict import attach_predicted

        rows, unpriced = attach_predicted(rows, latency)
    args.x = args.x or ("predicted_ttft_ms" if latency else "flops_ratio")
    fronts = compute_fronts(rows, x=args.x, y=args.y, group=args.group)
    recommendations = []
    if args.max_drop is not None:
        recommendations = recommend(rows, max_drop_pct=args.max_drop, min_speedup=args.min_speedup,
                                    predicted=latency)
    if args.json:
        print_json({"source": source, "benchmark": args.benchmark, "fronts": [f.to_dict() for f in fronts],
                    "recommendations": [r.to_dict() for r in recommendations],
                    "unjoined": [u.to_dict() for u in unjoined],
                    "latency_source": latency.label if latency else None, "unpriced_rows": unpriced})
        return 0
    print(f"{source}, benchmark {args.benchmark}")
    if latency:
        print(f"latency {latency.label}; measured ttft_ms beside where the row was profiled"
              + (f"; {unpriced} row(s) could not be priced (not a preset, or a budget the method cannot plan)"
                 if unpriced else ""))
    for column in ("model", "device"):
        values = {str(r.get(column)) for r in rows if r.get(column) is not None}
        if args.group != column and len(values) > 1:
            print(f"note: the rows span {len(values)} {column}s in one front; pass --group {column} for one "
                  "front each")
    for front in fronts:
        _print_front(front, args, rows)
    for u in unjoined:
        print(f"not joined: {u}")
    if args.max_drop is not None:
        print(f"recommendation (accuracy drop ≤ {args.max_drop:g} pt, speedup ≥ {args.min_speedup:g}×):")
        for rec in recommendations:
            print(f"  {rec}")
        if not recommendations:
            print("  no method meets both targets")
    return 0


def _print_front(front: Any, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(front)
    width = max(len(p.label) for p in front.points)
    # A predicted cost is shown beside the measured one where the row was profiled.
    beside = args.x.removeprefix("predicted_") if args.x.startswith("predicted_") else None
    extra = f"  {'measured ' + beside:>20}" if beside else ""
    print(f"  {'row':<{width}}  {args.x:>14}  {args.y:>12}{extra}")
    for point in front.points:
        measured = rows[point.row].get(beside) if beside else None
        cell = (f"  {measured:>20.4g}" if isinstance(measured, (int, float)) else f"  {'—':>20}") if beside else ""
        print(f"  {point.label:<{width}}  {point.x:>14.4g}  {point.y:>12.4g}{cell}")
    if front.skipped:
        print(f"  ({front.skipped} row(s) without {args.x} or {args.y} left out)")


def load_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str, list[Any]]:
    """The table the command works on, a phrase naming its source, and the store rows that found no partner."""
    from vidcost.published import REQUIRED_COLUMNS, published_rows, read_published
    from vidcost.report import store_rows

    if args.store:
        join = store_rows(args.store, benchmark=args.benchmark)
        return list(join.rows), f"store {args.store}", list(join.unjoined)
    if args.published:
        return (published_rows(read_published(), benchmark=args.benchmark, include_variants=args.variants),
                "published results (profiles/published/)", [])
    path = Path(args.file)
    rows = read_csv_rows(path)
    if rows and all(c in rows[0] for c in REQUIRED_COLUMNS):
        return (published_rows(read_published([path]), benchmark=args.benchmark,
                               include_variants=args.variants), f"published {path}", [])
    return filter_benchmark(rows, args.benchmark, path), str(path), []


def read_csv_rows(path: Path) -> list[dict[str, Any]]:
    """A CSV as dicts (empty cells → None).

    Raises:
        DataFormatError: a missing, empty or unparsable file, or duplicate rows.
    """
    import pandas as pd

    from vidcost.report import check_no_duplicates

    if not path.is_file():
        raise DataFormatError(f"table '{path}' does not exist; check the path")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataFormatError(f"cannot read '{path}' as CSV: {str(err).splitlines()[0]}") from err
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]
    if not rows:
        raise DataFormatError(f"table '{path}' has no rows")
    check_no_duplicates(rows, source=str(path))
    return rows


def filter_benchmark(rows: list[dict[str, Any]], benchmark: str, path: Path) -> list[dict[str, Any]]:
    """Rows of one benchmark when the table has a `benchmark` column.

    Raises:
        ConfigError: the benchmark does not occur (the ones that do are listed).
    """
    if "benchmark" not in rows[0]:
        return rows
    chosen = [r for r in rows if str(r.get("benchmark")) == benchmark]
    if not chosen:
        names = sorted({str(r.get("benchmark")) for r in rows})
        raise ConfigError(f"benchmark '{benchmark}' is not in '{path}'; choose one of {names} with --benchmark")
    return chosen
