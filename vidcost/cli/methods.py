"""`vidcost methods`: every pruning method — where it works, its parameters with defaults and ranges, its paper.

Built-in and installed (entry-point) methods are always listed; `--method module:Class` or
`--method path/to/file.py:Class` adds a plug-in (and checks that it loads). No torch is imported.
"""

from __future__ import annotations

import argparse

from vidcost.cli.common import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "methods", help="list the pruning methods, their parameters and papers",
        description="List every pruning method: its stage (before / inside the LLM), its parameters with "
                    "defaults and valid ranges, how its plan meets the budget, and the paper it follows.")
    parser.add_argument("--method", action="append", default=[], metavar="SPEC",
                        help="also list a plug-in given as module:Class or path/to/file.py:Class; repeatable")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.methods.catalog import list_methods

    infos = list_methods(extra=args.method)
    if args.json:
        print_json([info.to_dict() for info in infos])
        return 0
    for info in infos:
        extra = ", counts follow the data" if info.data_dependent_counts else ""
        order = "" if info.sequence_order == "position" else ", in the method's own order"
        print(f"{info.name}  [{info.stage}; budget: {info.budget_rule}{extra}; positions: {info.position_rule}"
              f"{order}; {info.source}]")
        print(f"    {info.paper}")
        if info.official:
            print(f"    official configuration: {info.official}")
        if not info.parameters:
            print("    no parameters")
        for param in info.parameters:
            default = "auto" if param["default"] is None else param["default"]
            print(f"    --param {param['name']}={default}  {param['range']}  {param['doc']}".rstrip())
    return 0
