"""The `vidcost` command line: a thin layer over the Python API.

Each subcommand lives in its own module `vidcost.cli.<name>` with a `register(subparsers)` function
that adds its parser and sets `run=<function(args) -> int>`. Command modules import torch lazily, so
`vidcost flops`, `predict` and `report` start fast. A `VidcostError` becomes one line and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from vidcost import __version__
from vidcost.errors import VidcostError

COMMANDS = ("flops", "profile", "sweep", "methods", "pareto", "ingest", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidcost",
        description="What visual-token pruning really buys a Video LLM: measured prefill speedup, "
                    "memory and accuracy, and predictions before deploying a budget.")
    parser.add_argument("--version", action="version", version=f"vidcost {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vidcost.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"vidcost.cli.{name}":
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
        return 2
    try:
        return int(args.run(args) or 0)
    except VidcostError as err:
        print(f"vidcost {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `vidcost flops | head` closed our stdout: not an error of ours; silence the flush at exit too.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"vidcost {args.command}: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    """Console-script entry: `vidcost`."""
    sys.exit(main())
