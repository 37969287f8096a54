"""`vidcost flops`: price a method's plan (or a schedule) with the analytic cost model.

Prints a table of layers grouped where the token count is constant, the totals and the ratio to
vanilla, the memory of the prefill, and with `--count` the FLOPs of the real transformers model counted
by FlopCounterMode and fvcore. No torch is imported unless `--count` is given.
"""

from __future__ import annotations

import argparse
from typing import Any

from vidcost.cli.args import budget as budget_type
from vidcost.cli.args import method_name
from vidcost.cli.common import add_model_arguments, methods_help, parse_params, print_json, spec_from_args
from vidcost.cost import (CONVENTIONS, DTYPE_BYTES, CostEstimate, MemoryEstimate, decode_flops,
                          decode_kv_lengths, estimate_cost, estimate_memory, format_bytes, format_flops)
from vidcost.errors import ConfigError
from vidcost.schedule import Schedule, parse_schedule
from vidcost.spec import ModelSpec

_CONVENTION_NOTES = {
    "paper": "HieraVid Eq. 12: Σ 4nd² + 2n²d + 2ndm, n = visual tokens{text}",
    "exact": "dense-kernel matmuls at 2 FLOPs/MAC: GQA, {mlp}-matrix MLP, text tokens, {attention} attention, "
             "LM head on the last position{vision}; elementwise reported separately",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "flops", help="analytic prefill FLOPs and memory of a pruning plan",
        description="Price a method's plan or a schedule: per-layer FLOPs, ratio to vanilla, memory.")
    add_model_arguments(parser)
    plan = parser.add_argument_group("plan (one of --method or --schedule)")
    choice = plan.add_mutually_exclusive_group()
    choice.add_argument("--method", type=method_name, help=methods_help("vanilla"))
    choice.add_argument("--schedule", help='piecewise kept visual fractions, e.g. "0:1.0,2:0.3"')
    plan.add_argument("--budget", type=budget_type, help="kept fraction of visual tokens, in (0, 1] (vanilla: 1)")
    plan.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="a method parameter; repeat for several")
    plan.add_argument("--layer", type=int, help="shorthand for --param layer=K (FastV's K)")
    plan.add_argument("--keep", type=budget_type, help="FastV's R: kept fraction after layer K (the budget)")
    cost = parser.add_argument_group("cost")
    cost.add_argument("--convention", choices=CONVENTIONS, default="paper",
                      help="paper (HieraVid Eq. 12, visual tokens) or exact (2 FLOPs/MAC matmuls)")
    cost.add_argument("--causal", action="store_true", help="exact: halve attention as causal flash kernels do")
    cost.add_argument("--include-vision", action="store_true", help="exact: add vision tower + projector")
    cost.add_argument("--dtype", choices=sorted(DTYPE_BYTES), default="bfloat16", help="for memory (bytes)")
    cost.add_argument("--count", action="store_true",
                      help="also count the real transformers model on the meta device (FlopCounterMode, fvcore)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    schedule, plan_info = plan_from_args(args, spec)
    include_text = args.text_tokens is not None if args.convention == "paper" else True
    options = dict(convention=args.convention, causal=args.causal, include_vision=args.include_vision,
                   include_text=include_text)
    estimate = estimate_cost(spec, schedule, **options)
    vanilla = Schedule.constant(spec.num_layers, schedule.initial_visual_tokens, schedule.text_tokens)
    vanilla_estimate = estimate_cost(spec, vanilla, **options)
    memory = estimate_memory(spec, schedule, dtype_bytes=DTYPE_BYTES[args.dtype])
    decode = decode_flops(spec, decode_kv_lengths(schedule), convention=args.convention)
    count = None
    if args.count:
        from vidcost.counting import count_flops  # imports torch

        count = count_flops(spec, schedule, include_vision=args.include_vision)
    if args.json:
        print_json(_payload(spec, schedule, plan_info, estimate, vanilla_estimate, memory, decode, count, args))
    else:
        print(_render(spec, schedule, plan_info, estimate, vanilla_estimate, memory, decode, count, args))
    return 0


def plan_from_args(args: argparse.Namespace, spec: ModelSpec) -> tuple[Schedule, dict[str, Any]]:
    """The schedule to price: `--schedule`, or `get_method(name, **params).plan(spec.method_view(), budget)`."""
    if args.schedule is not None:
        if args.budget is not None or args.param or args.layer is not None or args.keep is not None:
            raise ConfigError("--schedule gives the token counts itself; drop --budget/--param/--layer/--keep")
        schedule = parse_schedule(args.schedule, num_layers=spec.num_layers,
                                  initial_visual_tokens=spec.num_visual_tokens, text_tokens=spec.text_tokens)
        return schedule, {"method": None, "schedule": args.schedule, "budget": None, "params": {}}
    from vidcost.methods import budget_for, get_method

    params = parse_params(args.param)
    if args.layer is not None:
        params["layer"] = args.layer
    method = get_method(args.method or "vanilla", **params)  # an unknown method or parameter first
    budget = args.budget
    if args.keep is not None:
        if budget is not None and budget != args.keep:
            raise ConfigError(f"--keep {args.keep} and --budget {budget} disagree; give one of them")
        budget = args.keep
    budget = budget_for(method.name, budget)
    name = method.name
    schedule = method.plan(spec.method_view(), budget)  # Qwen-VL: the method plans on temporal patches
    return schedule, {"method": name, "schedule": None, "budget": budget, "params": method.resolved_params()}


def _payload(spec: ModelSpec, schedule: Schedule, plan_info: dict[str, Any], estimate: CostEstimate,
             vanilla: CostEstimate, memory: MemoryEstimate, decode: int, count: Any,
             args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {
        **estimate.to_dict(), **memory.to_dict(), **plan_info,
        "model": spec.to_dict(),
        "vanilla_prefill_flops": vanilla.prefill_flops,
        "flops_ratio": estimate.prefill_flops / vanilla.prefill_flops if vanilla.prefill_flops else 1.0,
        "mean_visual_fraction": schedule.mean_visual_fraction,
        "include_vision": args.include_vision,
        "dtype": args.dtype,
        "decode_flops_per_token": decode,
        "token_schedule": schedule.to_dict(),
    }
    if count is not None:
        payload["count"] = {**count.to_dict(), "fvcore_table": count.fvcore_table}
    return payload


def _render(spec: ModelSpec, schedule: Schedule, plan_info: dict[str, Any], estimate: CostEstimate,
            vanilla: CostEstimate, memory: MemoryEstimate, decode: int, count: Any,
            args: argparse.Namespace) -> str:
    if plan_info["method"]:
        params = ", ".join(f"{k}={v}" for k, v in sorted(plan_info["params"].items()))
        plan = f"method {plan_info['method']} at budget {plan_info['budget']:g}" + (f" ({params})" if params else "")
    else:
        plan = f"schedule \"{plan_info['schedule']}\""
    lines = [f"vidcost flops — {spec}", f"plan: {plan}",
             f"convention: {args.convention} — {_note(spec, args, estimate)}",
             "", f"{'layers':>8} {'visual':>8} {'text':>6} {'FLOPs/layer':>16} {'FLOPs':>16} {'share':>7}"]
    total = estimate.prefill_flops or 1
    for first, last, visual in schedule.segments():
        entry = estimate.layers[first]
        run_flops = entry.flops * (last - first + 1)
        span = f"{first}-{last}" if last != first else f"{first}"
        lines.append(f"{span:>8} {visual:>8} {entry.text_tokens:>6} {format_flops(entry.flops):>16} "
                     f"{format_flops(run_flops):>16} {run_flops / total:>7.1%}")
    if estimate.lm_head_flops:
        lines.append(f"{'LM head':>8} {'':>8} {'':>6} {'':>16} {format_flops(estimate.lm_head_flops):>16} "
                     f"{estimate.lm_head_flops / total:>7.1%}")
    if estimate.vision_flops:
        lines.append(f"{'vision':>8} {'':>8} {'':>6} {'':>16} {format_flops(estimate.vision_flops):>16} "
                     f"{estimate.vision_flops / total:>7.1%}")
    ratio = estimate.prefill_flops / vanilla.prefill_flops if vanilla.prefill_flops else 1.0
    lines += ["", f"prefill: {format_flops(estimate.prefill_flops)}   vanilla: {format_flops(vanilla.prefill_flops)}"
                  f"   ratio: {ratio:.1%}   mean visual fraction: {schedule.mean_visual_fraction:.1%}"]
    if args.convention == "exact":
        lines.append(f"elementwise (estimate, not in the total): {format_flops(estimate.elementwise_flops)}")
    lines += [f"memory ({args.dtype}): weights {format_bytes(memory.weights_bytes)}, KV cache "
              f"{format_bytes(memory.kv_cache_bytes)}, activation peak {format_bytes(memory.activation_peak_bytes)}, "
              f"vision tower transient {format_bytes(memory.vision_peak_bytes)}, peak {format_bytes(memory.total_bytes)}"
              f" (set by {memory.peak_phase})",
              f"decode: {format_flops(decode)} per generated token at the prefill's KV length"]
    if count is not None:
        lines += ["", *_render_count(count)]
    return "\n".join(lines)


def _note(spec: ModelSpec, args: argparse.Namespace, estimate: CostEstimate) -> str:
    if args.convention == "paper":
        return _CONVENTION_NOTES["paper"].format(
            text=" + text tokens" if estimate.include_text else " only (--text-tokens N adds text)")
    return _CONVENTION_NOTES["exact"].format(
        mlp=spec.mlp_matrices, attention="causal-halved" if args.causal else "full n×n",
        vision=", vision tower + projector" if args.include_vision else "")


def _render_count(count: Any) -> list[str]:
    lines = [f"counted on the {count.device} device in {count.count_seconds:.2f} s, fvcore "
             f"{count.fvcore_seconds:.2f} s (real transformers model, eager attention, no mask):",
             f"  FlopCounterMode  {format_flops(count.flop_counter_flops):>16}   ({count.conventions['flop_counter']})",
             f"  analytic exact   {format_flops(count.analytic_flops):>16}   (vidcost.cost, non-causal; "
             f"{count.relative_difference:+.3%} vs counted)"]
    if count.vision_flops:
        lines.append(f"    of which vision tower + projector {format_flops(count.vision_flops)}")
    operators = ", ".join(f"{name} {format_flops(value)}" for name, value in sorted(count.by_operator.items()))
    lines.append(f"  by operator: {operators}")
    if count.fvcore_flops is not None:
        lines += [f"  fvcore           {format_flops(count.fvcore_flops):>16}   ({count.conventions['fvcore']}; "
                  f"{count.fvcore_note})", count.fvcore_table]
    else:
        lines.append(f"  fvcore: {count.fvcore_note}")
    return lines
