"""Selection-speed benchmark: each method's own selection time vs the decoder layers it saves (issue #4).

Goal: at LLaVA-OV-7B size (32 frames × 196 tokens × 3584) each method's selection — its pre-LLM
`select_visual` plus every in-LLM `reduce_in_llm` its plan calls for — takes at most 3 % of the time of
the model's 28 decoder layers on the same tokens. One real Qwen2-7B-shaped decoder layer (random
weights, SDPA attention, causal) is timed on all T·P visual + text tokens and multiplied by the layer
count. The in-LLM stages get the attention row the runtime would pass (softmax over random logits); the
cost of computing that row belongs to the runtime and is not counted here.

Run (the lead re-runs on a quiet machine):
    python analysis/bench_selection.py --budget 0.1,0.25,0.5   # full size, all methods, ~5-10 min on 2 cores
    python analysis/bench_selection.py --frames 8 --methods divprune,dycoke   # a quick look
    python analysis/bench_selection.py --budget 0.1,0.25,0.5 --dtype bfloat16   # as a GPU runs it
Prints one row per method and budget (median of --repeats) and PASS/FAIL against --limit (3 %) of 28
times the fastest decoder-layer run; exits 1 if any method fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from vidcost.cli.args import (ArgumentParser, budget_list, method_list, positive_float, run_script,
                              whole_number)
from vidcost.errors import VidcostError
from vidcost.hfconfig import text_config
from vidcost.methods import LayerContext, Method, SelectionResult, get_method, method_names
from vidcost.spec import load_spec


def synthetic_video(frames: int, per_frame: int, dim: int, seed: int) -> torch.Tensor:
    """[T, P, D] features with temporal structure: 4 scenes, each frame its scene plus drift and noise."""
    generator = torch.Generator().manual_seed(seed)
    scenes = torch.randn(4, per_frame, dim, generator=generator)
    scene_of = torch.arange(frames) * 4 // frames
    drift = torch.randn(frames, 1, dim, generator=generator).cumsum(0) * 0.05
    return scenes[scene_of] + drift + 0.3 * torch.randn(frames, per_frame, dim, generator=generator)


def median_ms(samples_ns: list[int]) -> float:
    return statistics.median(samples_ns) / 1e6


def time_decoder_layer(spec: Any, num_tokens: int, repeats: int, seed: int,
                       dtype: torch.dtype = torch.float32) -> list[int]:
    """Wall times (ns) of one decoder layer's forward on [1, num_tokens, d] hidden states."""
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RotaryEmbedding

    torch.manual_seed(seed)
    config = text_config(spec)
    config._attn_implementation = "sdpa"
    layer = Qwen2DecoderLayer(config, layer_idx=0).eval().to(dtype)
    rotary = Qwen2RotaryEmbedding(config)
    samples = []
    for index in range(repeats + 1):  # the first run warms up kernels and the allocator
        tokens = num_tokens if index else min(num_tokens, 512)
        hidden = torch.randn(1, tokens, spec.hidden_size).to(dtype)
        position_ids = torch.arange(tokens)[None]
        with torch.inference_mode():
            rope = rotary(hidden, position_ids)
            start = time.perf_counter_ns()
            layer(hidden, attention_mask=None, position_ids=position_ids, position_embeddings=rope)
            elapsed = time.perf_counter_ns() - start
        if index:
            samples.append(elapsed)
    return samples


def time_method(method: Method, spec: Any, features: torch.Tensor, query: torch.Tensor, budget: float,
                repeats: int, seed: int) -> tuple[list[int], str]:
    """Wall times (ns) of the method's whole selection at this budget, and its plan as text."""
    schedule = method.plan(spec, budget)
    frames, per_frame, dim = features.shape
    generator = torch.Generator().manual_seed(seed)
    rows = {"last": 1, "question": query.shape[0], "after_video": query.shape[0] + 1}.get(method.attention_need, 0)
    samples = []
    for index in range(repeats + 1):
        total_ns = 0
        with torch.inference_mode():
            if method.selects_before_llm():
                start = time.perf_counter_ns()
                result = method.select_visual(features, budget, query=query, seed=seed)
                total_ns += time.perf_counter_ns() - start
            else:
                result = SelectionResult(features.reshape(-1, dim), torch.arange(frames * per_frame))
            total_ns += time_in_llm(method, schedule, result, frames, per_frame, rows, spec, generator, seed)
        if index:  # the first run is a warm-up
            samples.append(total_ns)
    return samples, str(schedule)


def time_in_llm(method: Method, schedule: Any, result: SelectionResult, frames: int, per_frame: int, rows: int,
                spec: Any, generator: torch.Generator, seed: int) -> int:
    """Nanoseconds of the in-LLM stages, driven as the runtime drives them (segments, groups and state
    handed on; every layer after the first for a data-dependent method); attention is built untimed."""
    total_ns = 0
    hidden, positions, groups, state = result.tokens, result.positions, result.groups, result.state
    for layer in range(1, schedule.num_layers):
        keep = schedule.visual_tokens[layer]
        if keep >= hidden.shape[0] and not method.data_dependent_counts:
            continue
        attention = (torch.randn(rows, spec.num_heads, hidden.shape[0], generator=generator).softmax(-1)
                     if rows else None)  # [Q, H, N], built outside the timed window
        if attention is not None and (method.attention_precision == "model" or method.attention_form == "plain"):
            attention = attention.to(hidden.dtype)  # the runtime hands these methods the model's dtype
        context = LayerContext(layer=layer, hidden=hidden, positions=positions, attention=attention,
                               num_frames=frames, tokens_per_frame=per_frame, seed=seed, segments=result.segments,
                               groups=groups, state=state, num_layers=schedule.num_layers)
        start = time.perf_counter_ns()
        reduction = method.reduce_in_llm(context, min(keep, hidden.shape[0]))
        total_ns += time.perf_counter_ns() - start
        state = reduction.state
        hidden = reduction.hidden if reduction.hidden is not None else hidden[reduction.keep]
        positions = positions[reduction.keep]
        groups = None if groups is None else groups[reduction.keep]
    return total_ns


def bench_row(name: str, spec: Any, features: torch.Tensor, query: torch.Tensor, budget: float,
              layers_ms: float, args: argparse.Namespace) -> dict[str, Any]:
    """Time one method at one budget, print its table row, and return it."""
    try:
        samples, plan = time_method(get_method(name), spec, features, query, budget, args.repeats, args.seed)
    except VidcostError as err:  # a budget this method cannot reach (DyCoke's floor): a row, the others still run
        print(f"{name:<13} {budget:>6} {'-':>12} {'-':>16} {'-':>8}  n/a      {err}")
        return {"method": name, "budget": budget, "error": str(err)}
    ms = median_ms(samples)
    ratio = ms / layers_ms
    verdict = "PASS" if ratio <= args.limit else "FAIL"
    spread = f"{min(samples) / 1e6:.1f}..{max(samples) / 1e6:.1f}"
    print(f"{name:<13} {budget:>6} {ms:>12.1f} {spread:>16} {ratio:>8.3%}  {verdict:<7}  {plan}", flush=True)
    return {"method": name, "budget": budget, "selection_ms": ms, "samples_ns": samples, "ratio": ratio,
            "verdict": verdict, "plan": plan}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="llava-onevision-7b", help="preset whose LLM layer is timed")
    parser.add_argument("--frames", type=whole_number(1), default=None, help="frames (default: the preset's 32)")
    parser.add_argument("--tokens-per-frame", type=whole_number(1), default=None, help="default: the preset's 196")
    parser.add_argument("--budget", type=budget_list, default=[0.25],
                        help="budget(s), comma-separated, e.g. 0.1,0.25,0.5")
    parser.add_argument("--methods", type=method_list, default=method_names(),
                        help=f"comma-separated names (default: all of {','.join(method_names())})")
    parser.add_argument("--repeats", type=whole_number(1), default=3, help="timed runs per method (after one warm-up)")
    parser.add_argument("--layer-repeats", type=whole_number(1), default=2, help="timed runs of the decoder layer")
    parser.add_argument("--limit", type=positive_float, default=0.03, help="allowed selection / 28-layer time")
    parser.add_argument("--threads", type=whole_number(1), default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="dtype of the features, the attention and the decoder layer (default float32)")
    parser.add_argument("--json", default=None, help="also write the table as JSON to this path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = load_spec(args.model, frames=args.frames, tokens_per_frame=args.tokens_per_frame)
    dtype = getattr(torch, args.dtype)
    features = synthetic_video(spec.frames, spec.tokens_per_frame, spec.hidden_size, args.seed).to(dtype)
    query = torch.randn(spec.text_tokens, spec.hidden_size, generator=torch.Generator().manual_seed(args.seed + 1))
    query = query.to(dtype)
    num_tokens = spec.num_visual_tokens + spec.text_tokens
    budgets = args.budget
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads | {spec} | {args.dtype} | budgets {budgets}")
    layer_ns = time_decoder_layer(spec, num_tokens, args.layer_repeats, args.seed, dtype)
    # The fastest layer run is the denominator: noise only slows runs down, so the ratio is an upper bound.
    layers_ms = min(layer_ns) / 1e6 * spec.num_layers
    print(f"one decoder layer on {num_tokens} tokens: fastest {min(layer_ns) / 1e6:.0f} ms, median "
          f"{median_ms(layer_ns):.0f} ms (runs {[round(t / 1e6) for t in layer_ns]}) → {spec.num_layers} layers "
          f"{layers_ms:.0f} ms")
    rows, failed = [], False
    print(f"{'method':<13} {'budget':>6} {'selection_ms':>12} {'min..max_ms':>16} {'ratio':>8}  verdict  plan")
    for budget in budgets:
        for name in args.methods:
            row = bench_row(name, spec, features, query, budget, layers_ms, args)
            rows.append(row)
            failed |= row.get("verdict") == "FAIL"
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"layer_ns": layer_ns, "layers_ms": layers_ms, "budgets": budgets,
                       "threads": torch.get_num_threads(), "spec": spec.to_dict(), "rows": rows}, handle, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    run_script(main)
