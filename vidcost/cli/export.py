"""`vidcost export --store S --out runs.parquet|runs.csv`: the store flattened into one table (pandas)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vidcost.cli.common import print_json
from vidcost.store import DEFAULT_STORE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="flatten the store into one table (CSV, or Parquet with the parquet extra)",
        description="Write every record of the store as one row of a table: profile records in the vocabulary "
                    "of `vidcost profile --json` (ttft_ms, vanilla_ttft_ms, speedup, llm_prefill_ms, …; older "
                    "stores' prefill_ms read as ttft_ms), nested values as dotted columns (stages_ms.vision), "
                    "lists as JSON text. The format comes from --out's extension: .csv, or .parquet "
                    "(needs pyarrow: pip install -e \".[parquet]\").")
    parser.add_argument("--store", default=str(DEFAULT_STORE), help=f"the store (default {DEFAULT_STORE})")
    parser.add_argument("--out", required=True, help="output table: runs.csv or runs.parquet")
    parser.add_argument("--kind", choices=("profile", "accuracy"), help="only records of this kind")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.export import check_format, export_store

    check_format(Path(args.out))  # a missing pyarrow or a bad extension before the store is read
    written = export_store(args.store, args.out, kind=args.kind)
    if args.json:
        print_json({"out": written.path, "rows": written.rows, "kinds": written.kinds, "columns": written.columns})
    else:
        print(written)
    return 0
