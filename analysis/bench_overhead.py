"""Does measuring cost anything it should not? The staged vanilla prefill, windows and all, vs the stock forward.

Shape-only LLaVA-OneVision-0.5B (seeded random weights), 8 synthetic frames, on this machine's CPU (or
--device cuda). Two things run alternately (A B A B …, so load from other processes hits both alike):

* staged — `StagedRuntime.prefill` with vanilla, inside a `StageTimer` (every stage window, the KV
  cache filled), as `vidcost profile` runs it;
* stock — transformers' own `model(input_ids, pixel_values_videos, use_cache=True, logits_to_keep=1)`,
  timed around the call (the same work: vision tower, projector, decoder layers filling a cache, the LM
  head on the last position).

Each is timed by the host clock around the whole call (with a device synchronise on a GPU), so the
timer's own windows are inside what is measured. Goal: staged median within 3 % of stock median.
Prints both medians, their ratio and the raw samples; exits 1 when the goal is missed.

    python analysis/bench_overhead.py [--model llava-onevision-0.5b] [--frames 8] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any, Callable

GOAL = 0.03


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llava-onevision-0.5b")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from vidcost.methods import get_method
    from vidcost.profiling import ProfileSession
    from vidcost.profiling.timer import make_timer
    from vidcost.spec import load_spec

    session = ProfileSession(load_spec(args.model, frames=args.frames), device=args.device,
                             progress=lambda m: print(m, file=sys.stderr))
    inputs, model, vanilla = session.inputs(), session.loaded.model, get_method("vanilla")
    timer = make_timer(session.device)
    sync = (lambda: torch.cuda.synchronize(session.device)) if session.device.startswith("cuda") else (lambda: None)

    def staged() -> None:
        session.runtime.prefill(inputs, vanilla, 1.0, timer=timer)
        timer.finish_run()  # reads the windows: part of what profiling costs

    def stock() -> None:
        with torch.inference_mode():
            model(input_ids=inputs.input_ids(), pixel_values_videos=inputs.pixel_values[None], use_cache=True,
                  logits_to_keep=1)

    samples = _alternate({"staged": staged, "stock": stock}, args.repeats, args.warmup, sync)
    return _report(args, session, samples)


def _alternate(runs: dict[str, Callable[[], None]], repeats: int, warmup: int,
               sync: Callable[[], None]) -> dict[str, list[float]]:
    """Host-clock milliseconds of each run, alternating, after `warmup` untimed rounds."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup + repeats):
        for name, run in runs.items():
            sync()
            start = time.perf_counter()
            run()
            sync()
            if i >= warmup:
                samples[name].append((time.perf_counter() - start) * 1e3)
        print(f"round {i + 1}/{warmup + repeats}", file=sys.stderr)
    return samples


def _report(args: argparse.Namespace, session: Any, samples: dict[str, list[float]]) -> int:
    median = {name: statistics.median(values) for name, values in samples.items()}
    ratio = median["staged"] / median["stock"]
    print(f"{args.model}, {args.frames} frames, {session.device} ({session.dtype}), {args.repeats} repeats")
    for name, values in samples.items():
        print(f"  {name:<7} median {median[name]:10.1f} ms  [{', '.join(f'{v:.0f}' for v in values)}]")
    print(f"staged / stock = {ratio:.3f} (goal within {GOAL:.0%}: {'met' if abs(ratio - 1) <= GOAL else 'MISSED'})")
    return 0 if abs(ratio - 1) <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
