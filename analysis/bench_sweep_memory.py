"""Resident memory of one sweep process over many cells (issue #20: a sweep must hold its memory flat).

Runs `--cells` sweep cells (methods × budgets of one model, cycled) on one `SweepWorker` — the local
executor's worker, one model built once and reused, as `vidcost sweep` runs them — and prints the
process's resident set size (VmRSS, Linux /proc) after every cell, then the ratio of RSS after the last
cell to RSS after the second (goal: within 10 %).

Run:
    OMP_NUM_THREADS=2 python analysis/bench_sweep_memory.py                      # tiny, 20 cells
    OMP_NUM_THREADS=2 python analysis/bench_sweep_memory.py --model llava-onevision-0.5b --frames 8
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from vidcost.errors import VidcostError
from vidcost.sweep import grid_from_mapping
from vidcost.sweep.grid import expand_grid
from vidcost.sweep.worker import SweepWorker

METHODS = ("fastv", "divprune", "dycoke", "prunevid", "framefusion", "pdrop", "hieravid", "mmgvid")


def resident_mib() -> float:
    """This process's resident set size in MiB (VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise VidcostError("no VmRSS in /proc/self/status: this benchmark needs Linux")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--decode-tokens", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        grid = grid_from_mapping({"models": [args.model], "frames": [args.frames], "methods": list(METHODS),
                                  "budgets": [0.4, 0.5, 0.75], "repeats": args.repeats, "warmup": 1,
                                  "decode_tokens": args.decode_tokens})
        cells = list(itertools.islice(itertools.cycle(expand_grid(grid)), args.cells))
        worker = SweepWorker()
        print(f"{args.model}, {args.frames} frames: RSS before {resident_mib():.0f} MiB")
        after = []
        for number, cell in enumerate(cells, 1):
            result = worker.run(cell)
            after.append(resident_mib())
            print(f"cell {number:>3} {cell.method.label:<12} budget {cell.budget:<5} {result.status:<6} "
                  f"{result.seconds:6.1f} s  RSS {after[-1]:8.0f} MiB", flush=True)
    except VidcostError as err:
        print(f"bench_sweep_memory: error: {err}", file=sys.stderr)
        return 2
    if len(after) >= 2:
        print(f"RSS after cell {len(after)} / after cell 2: {after[-1] / after[1]:.3f} "
              f"({after[-1] - after[1]:+.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
