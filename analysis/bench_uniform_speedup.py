"""Does pruning buy real compute? Measured LLM-prefill speedup of `uniform` vs its exact-FLOPs speedup.

A shape-only model (seeded random weights; default LLaVA-OneVision-0.5B, any preset or config.json with
--model, e.g. qwen2.5-vl-3b), 8 synthetic frames (LLaVA-OV-0.5B: 8 × 196 visual tokens; Qwen2.5-VL-3B at
448 px: 4 temporal patches × 256), + 32 text, `uniform` at budget 0.25 against vanilla, on this machine's
CPU (or --device cuda).

Stage compared: `llm_prefill` — the decoder layers (plus the text embedding lookup and sequence
assembly), which is what the cost model's decoder FLOPs price. The vision tower and projector are
identical for both runs, so the video is encoded once and reused (`StagedRuntime.prefill(encoded=...)`);
the pruning selection and the LM head are timed as their own stages and reported beside.
Vanilla and uniform runs alternate (A B A B …) so load from other processes hits both alike.

Goal: measured speedup ≥ 0.8 × exact-FLOPs speedup. Prints the ratio; exits 1 when below the goal.

    python analysis/bench_uniform_speedup.py [--model llava-onevision-0.5b] [--repeats 5] [--frames 8]
        [--budget 0.25] [--device cpu] [--dtype float32|bfloat16] [--resolution N|HxW] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    from vidcost.cli.args import ArgumentParser, method_name, positive_float, whole_number
    from vidcost.cli.args import budget as budget_type

    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llava-onevision-0.5b")
    parser.add_argument("--frames", type=whole_number(1), default=8)
    parser.add_argument("--budget", type=budget_type, default=0.25)
    parser.add_argument("--method", type=method_name, default="uniform")
    parser.add_argument("--repeats", type=whole_number(1), default=5)
    parser.add_argument("--warmup", type=whole_number(0), default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", help="default: bfloat16 on GPU, float32 on CPU (bfloat16 halves a 3B model's memory)")
    parser.add_argument("--resolution", help="Qwen-VL frame size, N or HxW (default: the model's)")
    parser.add_argument("--goal", type=positive_float, default=0.8)
    parser.add_argument("--threads", type=whole_number(1), help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from vidcost.cli.common import parse_resolution
    from vidcost.methods import get_method
    from vidcost.profiling.timer import make_timer
    from vidcost.runtime import StagedRuntime, build_inputs, build_model
    from vidcost.spec import load_spec

    resolution = parse_resolution(args.resolution) if args.resolution else None
    spec = load_spec(args.model, frames=args.frames, resolution=resolution)
    start = time.perf_counter()
    loaded = build_model(spec, device=args.device, dtype=args.dtype)
    inputs = build_inputs(loaded)
    runtime = StagedRuntime(loaded)
    print(f"built {spec} in {time.perf_counter() - start:.1f} s; torch threads {torch.get_num_threads()}",
          file=sys.stderr)
    start = time.perf_counter()
    encoded = runtime.encode_video(inputs.pixel_values, inputs=inputs)
    print(f"vision tower + projector once: {time.perf_counter() - start:.1f} s", file=sys.stderr)

    configs = [("vanilla", get_method("vanilla"), 1.0), (args.method, get_method(args.method), args.budget)]
    timers = {name: make_timer(loaded.device) for name, _, _ in configs}
    results = {}
    for i in range(args.warmup + args.repeats):
        for name, method, budget in configs:
            results[name] = runtime.prefill(inputs, method, budget, timer=timers[name], encoded=encoded)
            if i < args.warmup:
                timers[name].discard_run()
            else:
                timers[name].finish_run()
        print(f"run {i + 1}/{args.warmup + args.repeats}", file=sys.stderr)

    ratio = _report(args, spec, loaded.device, inputs, timers, results)
    return 0 if ratio >= args.goal else 1


def _report(args: argparse.Namespace, spec: Any, device: str, inputs: Any, timers: dict[str, Any],
            results: dict[str, Any]) -> float:
    """Print per-configuration medians and FLOPs, and the measured / predicted speedup; return their ratio."""
    from vidcost.cost import estimate_cost
    from vidcost.profiling.stats import summarize

    median = {name: {stage: summarize(v, stage=stage, warn=False).median
                     for stage, v in timers[name].samples_ms.items()} for name in timers}
    flops = {name: estimate_cost(inputs.spec, results[name].executed, convention="exact").layer_flops
             for name in timers}
    method = args.method
    measured = median["vanilla"]["llm_prefill"] / median[method]["llm_prefill"]
    predicted = flops["vanilla"] / flops[method]
    print(f"{spec}, {method} @ {args.budget}, {args.repeats} repeats, {device}, {args.dtype or 'default dtype'}")
    for name in timers:
        samples = ", ".join(f"{v:.0f}" for v in timers[name].samples_ms["llm_prefill"])
        tflops = flops[name] / (median[name]["llm_prefill"] * 1e-3) / 1e12
        print(f"  {name:<8} visual tokens {results[name].executed.visual_tokens[0]:>5}  llm_prefill median "
              f"{median[name]['llm_prefill']:9.1f} ms [{samples}]  selection {median[name].get('selection', 0):.1f} ms"
              f"  LM head {median[name]['first_token']:.1f} ms  decoder FLOPs {flops[name] / 1e12:.3f} T"
              f"  ({tflops:.3f} TFLOP/s)")
    ratio = measured / predicted
    spread = statistics.pstdev(timers[method].samples_ms["llm_prefill"]) / median[method]["llm_prefill"]
    print(f"measured LLM-prefill speedup {measured:.2f}x; exact-FLOPs speedup {predicted:.2f}x; "
          f"ratio {ratio:.2f} (goal >= {args.goal}); {method} spread {spread:.0%}")
    return ratio


if __name__ == "__main__":
    from vidcost.cli.args import run_script

    run_script(main)
