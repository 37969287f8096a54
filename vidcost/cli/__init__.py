"""The `vidcost` command line: a thin layer over the Python API.

Each subcommand lives in its own module `vidcost.cli.<name>` with a `register(subparsers)` function
that adds its parser and sets `run=<function(args) -> int>`. Command modules import torch lazily, so
`vidcost flops`, `predict` and `report` start fast. Every argument error and every `VidcostError` is one
line and exit code 2 (`vidcost.cli.args`).
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from vidcost import __version__
from vidcost.cli.args import USAGE_ERROR, ArgumentParser, run_command

COMMANDS = ("flops", "profile", "sweep", "fit", "predict", "methods", "pareto", "ingest", "report", "export",
            "eval", "save-model")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="vidcost",
        description="What visual-token pruning really buys a Video LLM: measured prefill speedup, "
                    "memory and accuracy, and predictions before deploying a budget.")
    parser.add_argument("--version", action="version", version=f"vidcost {__version__}")
    # Subcommand parsers are of the parser's own class: one-line errors everywhere.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vidcost.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as err:
            if err.name != f"vidcost.cli.{name.replace('-', '_')}":
                raise
            continue  # a command whose module is not part of this build
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return USAGE_ERROR
    return run_command(f"vidcost {args.command}", lambda: args.run(args))


def entry_point() -> None:
    """Console-script entry: `vidcost`."""
    sys.exit(main())
