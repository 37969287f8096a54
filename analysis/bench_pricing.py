"""Benchmark: how fast the analytic cost model prices schedules, and how fast `vidcost flops` starts.

Goal (issue #2): pricing 10,000 schedules takes under 1 s, and `vidcost flops` never imports torch.
Not a test: it prints the measured times and their ratio to the goal. Re-run on a quiet machine with

    python analysis/bench_pricing.py [--schedules 10000] [--repeats 5] [--model llava-onevision-7b]
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from typing import Callable

from vidcost.cli.args import ArgumentParser, run_script, whole_number
from vidcost.cost import estimate_cost, estimate_memory, flops_ratio, prefill_flops
from vidcost.schedule import Schedule
from vidcost.spec import load_spec

GOAL_S = 1.0


def random_schedules(count: int, num_layers: int, initial: int, text: int, seed: int = 0) -> list[Schedule]:
    """Piecewise schedules with 1-4 pruning stages at random layers and fractions, as methods produce."""
    rng = random.Random(seed)
    schedules = []
    for _ in range(count):
        stages = sorted(rng.sample(range(num_layers), rng.randint(1, 4)))
        fractions = sorted((rng.random() for _ in stages), reverse=True)
        schedules.append(Schedule.from_fractions(list(zip(stages, fractions)), num_layers=num_layers,
                                                 initial_visual_tokens=initial, text_tokens=text))
    return schedules


def time_it(work: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=whole_number(1), default=10_000)
    parser.add_argument("--repeats", type=whole_number(1), default=5)
    parser.add_argument("--model", default="llava-onevision-7b")
    args = parser.parse_args()
    spec = load_spec(args.model)
    schedules = random_schedules(args.schedules, spec.num_layers, spec.num_visual_tokens, spec.text_tokens)
    cases = {
        "estimate_cost paper (totals)": lambda: [estimate_cost(spec, s) for s in schedules],
        "estimate_cost exact (totals)": lambda: [estimate_cost(spec, s, convention="exact") for s in schedules],
        "(extra) + .layers, 28 entries each": lambda: [estimate_cost(spec, s, convention="exact").layers
                                                                    for s in schedules],
        "prefill_flops paper": lambda: [prefill_flops(spec, s) for s in schedules],
        "flops_ratio paper": lambda: [flops_ratio(spec, s) for s in schedules],
        "estimate_memory": lambda: [estimate_memory(spec, s) for s in schedules],
    }
    print(f"pricing {args.schedules} random schedules of {spec.name} ({spec.num_layers} layers), "
          f"median of {args.repeats} repeats; goal < {GOAL_S:.1f} s")
    print("  the goal applies to pricing (totals); materialising every per-layer entry is shown for scale")
    for label, work in cases.items():
        samples = time_it(work, args.repeats)
        median = statistics.median(samples)
        print(f"  {label:<48} {median * 1e3:8.1f} ms  (min {min(samples) * 1e3:.1f}, max "
              f"{max(samples) * 1e3:.1f})  {median / GOAL_S:6.1%} of goal  {'OK' if median < GOAL_S else 'SLOW'}")
    startup(args.repeats)


def startup(repeats: int) -> None:
    """Wall time of `vidcost flops --json` in a fresh interpreter vs a bare interpreter; torch imported?"""
    code = ("import sys; from vidcost.cli import main; main(['flops', '--model', 'llava-onevision-7b', "
            "'--method', 'fastv', '--budget', '0.3', '--json']); "
            "print('torch' in sys.modules, file=sys.stderr)")
    flops_s = time_it(lambda: subprocess.run([sys.executable, "-c", code], capture_output=True, check=True),
                      repeats)
    bare_s = time_it(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeats)
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"`vidcost flops` in a fresh interpreter: {statistics.median(flops_s) * 1e3:.0f} ms "
          f"(bare python {statistics.median(bare_s) * 1e3:.0f} ms, ratio "
          f"{statistics.median(flops_s) / statistics.median(bare_s):.1f}×); torch imported: "
          f"{probe.stderr.strip()}")


if __name__ == "__main__":
    run_script(main)
