"""`vidcost predict`: what a budget buys before it is deployed — stage latencies, speedups, decode time
and memory, from a calibration (`vidcost fit`) or a device's roofline (`--device-spec`). No torch
(except `--device-spec local`, which times this machine).
"""

from __future__ import annotations

import argparse
from typing import Any

from vidcost.cli.args import budget as budget_type
from vidcost.cli.args import budget_list, method_name, positive_float, whole_number
from vidcost.cli.common import (add_device_model_arguments, add_model_arguments, check_output_file, figure_formats,
                                methods_help, parse_params, print_json, spec_from_args)
from vidcost.cost import format_bytes
from vidcost.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    from vidcost.devices import device_names

    parser = subparsers.add_parser(
        "predict", help="predict a budget's latency, speedup and memory before deploying it",
        description="Predict stage latencies, TTFT and LLM-prefill speedup, decode time per token, KV cache and "
                    "peak memory of a pruning budget, with the held-out error band of a calibration (vidcost "
                    "fit) — or, for a device with no profiles, kernel by kernel from its numbers (--device-spec; "
                    "--roofline peak for the datasheet roofline, a lower bound).")
    add_model_arguments(parser)
    plan = parser.add_argument_group("plan")
    plan.add_argument("--method", type=method_name, help=methods_help("mmgvid"))
    plan.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a method parameter")
    what = plan.add_mutually_exclusive_group()
    what.add_argument("--budget", type=budget_type, help="kept fraction of visual tokens, in (0, 1] (default 0.25)")
    what.add_argument("--budgets", type=budget_list, help="several budgets: a speedup-vs-budget curve, e.g. 0.1,0.2,0.5")
    what.add_argument("--target-speedup", type=positive_float, metavar="S",
                      help="the largest budget whose predicted TTFT speedup is at least S")
    what.add_argument("--schedule", help='piecewise kept visual fractions instead of a method, e.g. "0:1.0,2:0.3"')
    source = parser.add_argument_group("latency source")
    source.add_argument("--calibration", metavar="FILE", help="a calibration JSON written by `vidcost fit`")
    source.add_argument("--device-spec", metavar="NAME",
                        help=f"a device priced kernel by kernel from its numbers: {', '.join(device_names())}, or a "
                             "device JSON file; with "
                             "--calibration, the device you predict for (a warning when the calibration was "
                             "fitted on another)")
    add_device_model_arguments(source)
    parser.add_argument("--decode-tokens", type=whole_number(0), default=0, metavar="N",
                        help="decode steps after the prefill (the KV cache read grows; default 0)")
    parser.add_argument("--memory-limit", metavar="SIZE",
                        help="does it fit: the most frames (method and unpruned) and, at --frames, the largest "
                             "budget whose predicted peak memory (weights + the larger of the vision tower's "
                             "transient and the LLM's KV cache + activations) stays under SIZE, e.g. 24GiB or "
                             "80GB; needs no latency source")
    parser.add_argument("--plot", metavar="FILE.png", help="with --budgets: plot the predicted speedup curve")
    parser.add_argument("--json", action="store_true", help="print JSON in the vocabulary of `vidcost profile --json`")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.predict import (budget_for_speedup, coverage_warning, fitted_source, latency_source, predict,
                                 predict_curve)

    limit = None
    if args.memory_limit is not None:
        from vidcost.memory_plan import parse_bytes

        limit = parse_bytes(args.memory_limit)
        if args.budgets or args.target_speedup is not None or args.schedule:
            raise ConfigError("--memory-limit answers for one method and --budget; drop --budgets, --target-speedup "
                              "and --schedule")
    if args.calibration is None and args.device_spec is None:
        if limit is not None:
            return _emit_memory_fit(args, limit, None)
        raise ConfigError("give --calibration FILE (written by `vidcost fit`) or --device-spec NAME (priced from the "
                          "device's numbers)")
    if args.plot and not args.budgets:
        raise ConfigError("--plot draws a speedup-vs-budget curve: give --budgets too, e.g. --budgets 0.1,0.25,0.5")
    if args.plot:
        check_output_file(args.plot, "--plot", figure_formats())  # before the prediction, not after it
    if args.schedule and (args.method or args.param):
        raise ConfigError("--schedule gives the token counts itself; drop --method/--param")
    if args.calibration and args.dtype:
        raise ConfigError("a calibration has the dtype it was fitted in; drop --dtype (it sets a device model's)")
    spec = spec_from_args(args)
    dtype = args.dtype or ("float32" if (args.device_spec or "").lower() == "local" else None)
    source = latency_source(args.calibration, args.device_spec, dtype=dtype, roofline=args.roofline,
                            attention=args.attention, vision_attention=args.vision_attention)
    coverage_warning(fitted_source(*source), spec, None if args.schedule else (args.method or "mmgvid"))
    common: dict[str, Any] = dict(source=source, decode_tokens=args.decode_tokens)
    if args.schedule:
        from vidcost.schedule import parse_schedule

        schedule = parse_schedule(args.schedule, num_layers=spec.num_layers,
                                  initial_visual_tokens=spec.num_visual_tokens, text_tokens=spec.text_tokens)
        prediction = predict(spec, schedule=schedule, **common)
        return _emit([prediction], args)
    plan = dict(method=args.method or "mmgvid", params=parse_params(args.param))
    if args.budgets:
        predictions = predict_curve(spec, args.budgets, **plan, **common)
        if args.plot:
            from vidcost.plots import plot_predicted_speedup

            plot_predicted_speedup(predictions, args.plot)
        return _emit(predictions, args, curve=True)
    if args.target_speedup is not None:
        prediction = budget_for_speedup(spec, args.target_speedup, **plan, **common)
        return _emit([prediction], args, target=args.target_speedup)
    budget = args.budget if args.budget is not None else (None if plan["method"] == "vanilla" else 0.25)
    prediction = predict(spec, budget=budget, **plan, **common)
    if limit is not None:
        return _emit_memory_fit(args, limit, prediction)
    return _emit([prediction], args)


def _emit_memory_fit(args: argparse.Namespace, limit: int, prediction: Any) -> int:
    """The memory answer (after the prediction, when a latency source gave one) in text or JSON."""
    from vidcost.cost import DTYPE_BYTES
    from vidcost.memory_plan import memory_fit

    spec = spec_from_args(args)
    method = args.method or "mmgvid"
    budget = 1.0 if method == "vanilla" else (args.budget if args.budget is not None else 0.25)
    dtype = prediction.dtype if prediction is not None else (args.dtype or "bfloat16")
    fit = memory_fit(spec, limit, method=method, budget=budget, dtype_bytes=DTYPE_BYTES[dtype],
                     params=parse_params(args.param), decode_tokens=args.decode_tokens)
    if args.json:
        payload = prediction.to_dict() if prediction is not None else {}
        print_json({**payload, "memory_fit": {**fit.to_dict(), "dtype": dtype}})
    else:
        if prediction is not None:
            print(_render(prediction, None))
            print()
        print(f"{fit} ({dtype})")
    return 0


def _emit(predictions: list[Any], args: argparse.Namespace, *, curve: bool = False, target: float | None = None) -> int:
    if args.json:
        payloads = [p.to_dict() for p in predictions]
        if curve:
            print_json({"predictions": payloads, "plot": args.plot})
        else:
            print_json({**payloads[0], **({"target_speedup": target} if target is not None else {})})
        return 0
    print(_render_curve(predictions, args.plot) if curve else _render(predictions[0], target))
    return 0


def _band(prediction: Any, key: str) -> str:
    low, high = prediction.band(key)
    if low is None:
        return ""
    return f" [{low:.2f}–{high:.2f}]" if high != float("inf") else f" [≥ {low:.2f}]"


def _ms(value: float | None) -> str:
    return f"{value:.2f} ms" if value is not None else "—"


def _render(p: Any, target: float | None) -> str:
    what = f"{p.method} @ budget {p.budget:g}" if p.method else "the schedule"
    kind = "calibrated (fitted on profiles of this device)" if p.calibrated else f"{p.kind} (not calibrated)"
    lines = [f"predicted: {what} on {p.model}, {p.frames} frames — {p.device}, {p.dtype}, {kind}"]
    if target is not None:
        lines.append(f"largest budget with a predicted TTFT speedup ≥ {target:g}×: {p.budget:g}")
    lines += ["", f"  {'stage':<14} {'method':>12} {'vanilla':>12}"]
    for stage, value in p.stages_ms.items():
        lines.append(f"  {stage:<14} {value:>9.2f} ms {p.vanilla_stages_ms.get(stage, 0.0):>9.2f} ms")
    lines.append(f"  {'TTFT':<14} {p.ttft_ms:>9.2f} ms {p.vanilla_ttft_ms:>9.2f} ms")
    lines += ["",
              f"  TTFT speedup          {p.speedup:.2f}×{_band(p, 'speedup')}",
              f"  LLM prefill speedup   {p.llm_prefill_speedup:.2f}×{_band(p, 'llm_prefill_speedup')}",
              f"  decode per token      {_ms(p.decode_ms_per_token)} (vanilla {_ms(p.vanilla_decode_ms_per_token)})",
              f"  KV cache              {format_bytes(p.kv_cache_bytes)} (vanilla {format_bytes(p.vanilla_kv_cache_bytes)})",
              f"  peak memory           {format_bytes(p.peak_memory_bytes)} (vanilla "
              f"{format_bytes(p.vanilla_peak_memory_bytes)})"]
    if p.errors:
        from vidcost.latency import REGIMES

        lines.append(f"  bands: the calibration's held-out max error for a prediction {REGIMES[p.regime]}")
    lines += [f"  note: {note}" for note in p.notes]
    return "\n".join(lines)


def _render_curve(predictions: list[Any], plot: str | None) -> str:
    first = predictions[0]
    kind = first.kind
    lines = [f"predicted: {first.method} on {first.model}, {first.frames} frames — {first.device}, {first.dtype}, "
             f"{kind}", "",
             f"  {'budget':>7} {'tokens':>7} {'TTFT':>11} {'speedup':>20} {'LLM prefill':>20} {'KV cache':>11}"]
    for p in predictions:
        lines.append(f"  {p.budget:>7g} {p.visual_tokens[-1]:>7} {p.ttft_ms:>8.2f} ms "
                     f"{p.speedup:>6.2f}×{_band(p, 'speedup'):<13} {p.llm_prefill_speedup:>6.2f}×"
                     f"{_band(p, 'llm_prefill_speedup'):<13} {format_bytes(p.kv_cache_bytes):>11}")
    lines += [f"  note: {note}" for note in first.notes]
    if plot:
        lines.append(f"wrote {plot}")
    return "\n".join(lines)
