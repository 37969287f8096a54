"""Does the memory a run measures match the cost model, and does pruning show in it?

Shape-only LLaVA-OneVision-0.5B (seeded random weights, float32 on the CPU), synthetic frames, vanilla and
`uniform` at 0.25. For each configuration one untimed run under the allocator probe
(`vidcost.profiling.memory`: torch.profiler allocator events on a CPU, the CUDA allocator on a GPU):

* the LLM prefill's own peak above what was allocated when it began (`stage_peak_increase_bytes`
  ["llm_prefill"]) beside the cost model's activation peak + KV cache for the executed schedule
  (`vidcost.cost.estimate_memory`) — goal: within 20 %;
* the run's whole peak above the weights and pixels (`peak_increase_bytes`), whatever stage sets it, beside
  the cost model's (`MemoryEstimate.total_bytes` above the weights: the larger of the vision tower's
  transient — at this size SigLIP's hidden states, kept for every layer, set it, which pruning cannot
  change — and the LLM's KV cache + activations) — goal: within 15 %, the phase named the same;
* the measured KV-cache bytes (the cache object after prefill) beside the cost model's — goal: equal.

Goal also: the pruned LLM peak clearly below vanilla's (≤ 0.8×). Prints a table; exits 1 when a goal is missed.

    python analysis/bench_memory.py [--model llava-onevision-0.5b] [--frames 8,16] [--budget 0.25] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

GOAL_RELATIVE = 0.20
GOAL_RUN_RELATIVE = 0.15
GOAL_PRUNED_BELOW = 0.8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llava-onevision-0.5b")
    parser.add_argument("--frames", default="8,16", help="comma-separated frame counts")
    parser.add_argument("--method", default="uniform")
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from vidcost.methods import get_method
    from vidcost.profiling import ProfileSession
    from vidcost.spec import load_spec

    frame_counts = [int(f) for f in args.frames.split(",")]
    spec = load_spec(args.model, frames=frame_counts[0])
    configs = [("vanilla", get_method("vanilla"), 1.0), (args.method, get_method(args.method), args.budget)]
    for _, method, budget in configs:
        method.plan(spec, budget)  # a bad method or budget fails before the model is built
    session = ProfileSession(spec, device=args.device, progress=lambda m: print(m, file=sys.stderr))
    rows = [_measure(session, name, method, budget, frames) for frames in frame_counts
            for name, method, budget in configs]
    return _report(args, rows)


def _measure(session: Any, name: str, method: Any, budget: float, frames: int) -> dict[str, Any]:
    """One memory run of a configuration and the cost model's figures for what it executed."""
    from vidcost.cost import estimate_memory
    from vidcost.profiling.memory import make_memory_probe, resident_bytes

    inputs = session.inputs(frames)
    probe = make_memory_probe(session.device, resident_bytes(session.loaded.model, inputs.pixel_values))
    print(f"memory run: {name} @ {budget}, {frames} frames", file=sys.stderr)
    with probe.run():
        result = session.runtime.prefill(inputs, method, budget, timer=probe)
    dtype_bytes = next(session.loaded.model.parameters()).element_size()
    predicted = estimate_memory(inputs.spec, result.executed, dtype_bytes=dtype_bytes)
    return {"name": name, "frames": frames, "visual": result.executed.visual_tokens[0],
            "llm_peak": probe.result.stage_peak_increase_bytes["llm_prefill"],
            "run_peak": probe.result.peak_increase_bytes,
            "peak_stage": max(probe.result.stage_peak_increase_bytes.items(), key=lambda kv: kv[1])[0],
            "predicted": predicted.kv_cache_bytes + predicted.activation_peak_bytes, "run_predicted": predicted.total_bytes - predicted.weights_bytes,
            "phase_predicted": predicted.peak_phase,
            "kv": result.kv_cache_bytes, "kv_predicted": predicted.kv_cache_bytes}


def _report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> int:
    mib = lambda n: f"{n / 2**20:9.1f}"  # noqa: E731
    print(f"{args.model}, {args.device}: LLM-prefill peak above its start vs cost model (activation + KV)")
    print(f"{'config':<10}{'frames':>7}{'visual':>8}{'LLM peak MiB':>14}{'model MiB':>11}{'error':>8}"
          f"{'run peak MiB':>14}{'model MiB':>11}{'error':>8}  {'set by':<12}{'model says':<12}{'KV MiB':>9}"
          f"{'model KV':>10}")
    ok = True
    for row in rows:
        error = row["llm_peak"] / row["predicted"] - 1
        run_error = row["run_peak"] / row["run_predicted"] - 1
        same_phase = (row["peak_stage"] == "vision") == (row["phase_predicted"] == "vision")
        ok &= abs(error) <= GOAL_RELATIVE and abs(run_error) <= GOAL_RUN_RELATIVE and same_phase
        ok &= row["kv"] == row["kv_predicted"]
        print(f"{row['name']:<10}{row['frames']:>7}{row['visual']:>8}{mib(row['llm_peak']):>14}"
              f"{mib(row['predicted']):>11}{error:>+8.1%}{mib(row['run_peak']):>14}{mib(row['run_predicted']):>11}"
              f"{run_error:>+8.1%}  {row['peak_stage']:<12}{row['phase_predicted']:<12}"
              f"{mib(row['kv']):>9}{mib(row['kv_predicted']):>10}")
    for frames in sorted({row["frames"] for row in rows}):
        vanilla, pruned = (next(r for r in rows if r["frames"] == frames and r["name"] == n)
                           for n in ("vanilla", args.method))
        ratio = pruned["llm_peak"] / vanilla["llm_peak"]
        ok &= ratio <= GOAL_PRUNED_BELOW
        print(f"{frames} frames: {args.method} LLM peak / vanilla = {ratio:.2f} (goal <= {GOAL_PRUNED_BELOW}); "
              f"KV measured == cost model: {pruned['kv'] == pruned['kv_predicted'] and vanilla['kv'] == vanilla['kv_predicted']}")
    print(f"goals (LLM peak within {GOAL_RELATIVE:.0%} of the model, run peak within {GOAL_RUN_RELATIVE:.0%} and set "
          f"by the phase it names, KV equal, pruned <= {GOAL_PRUNED_BELOW}x): "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
