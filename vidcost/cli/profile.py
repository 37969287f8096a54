"""`vidcost profile`: measure a pruning method against vanilla on a real model and store both records.

Prints vanilla vs method per stage (latency, speedup), peak memory, FLOPs ratio, achieved TFLOP/s and
measured vs FLOPs-predicted speedup; `--json` prints one object instead. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from vidcost.cli.args import budget as budget_type
from vidcost.cli.args import method_name, whole_number
from vidcost.cli.common import add_model_arguments, methods_help, parse_params, print_json, spec_from_args
from vidcost.spec import DEFAULT_PRESET
from vidcost.store import DEFAULT_STORE

DEFAULT_METHOD, DEFAULT_BUDGET = "mmgvid", 0.25

STAGE_ROWS = (("vision", "vision encoder"), ("projector", "projector + pooling"), ("selection", "pruning selection"),
              ("llm_prefill", "LLM prefill"), ("first_token", "LM head + first token"), ("ttft", "TTFT (total)"))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "profile", help="measure a pruning method vs vanilla on a real model",
        description="Run a real Video-LLM prefill (LLaVA-OneVision, Qwen2.5-VL or Qwen2-VL; shape-only weights "
                    "unless --model-path) with a pruning method and without, time every stage, and append both "
                    "records to the store.")
    add_model_arguments(parser)
    parser.add_argument("--model-path", help="local model directory with weights (local files only)")
    parser.add_argument("--method", type=method_name, default=DEFAULT_METHOD, help=methods_help(DEFAULT_METHOD))
    parser.add_argument("--budget", type=budget_type,
                        help=f"kept fraction of visual tokens, in (0, 1] (default {DEFAULT_BUDGET}; vanilla: 1)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="method parameter, repeatable (e.g. --param layer=3)")
    parser.add_argument("--repeats", type=whole_number(1), default=5,
                        help="measured runs per configuration (default 5)")
    parser.add_argument("--warmup", type=whole_number(0), default=1, help="warm-up runs per configuration (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, synthetic video and token ids")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"),
                        help="default bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--threads", type=whole_number(1),
                        help="torch CPU threads (default: torch's choice; 1 is faster on a busy machine)")
    parser.add_argument("--video", help="a video file (decoded with PyAV); default: a seeded synthetic clip")
    parser.add_argument("--question", help="question text (tokenised when the model directory has a tokenizer)")
    parser.add_argument("--per-layer", action="store_true", help="also time every decoder layer")
    parser.add_argument("--decode-tokens", type=whole_number(0), default=0, metavar="N",
                        help="greedy decode steps on the pruned KV cache after each prefill, timed per step "
                             "(default 0: prefill only)")
    parser.add_argument("--energy-blocks", type=whole_number(0), default=3, metavar="N",
                        help="GPU: blocks of >= 1 s of back-to-back runs per configuration for energy per prefill "
                             "(default 3; 0 skips energy)")
    parser.add_argument("--store", default=str(DEFAULT_STORE), help=f"records file (default {DEFAULT_STORE})")
    parser.add_argument("--no-store", action="store_true", help="do not append records")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.methods import budget_for, get_method
    from vidcost.profiling import profile_method
    from vidcost.runtime.families import get_family
    from vidcost.store import check_writable

    # Everything that can be checked without building a model is checked first.
    if args.model_path and args.model == DEFAULT_PRESET:
        args.model = args.model_path  # the spec of the weights being loaded, not the tiny preset
    spec = spec_from_args(args)
    family = get_family(spec.architecture)  # an unsupported family fails here, in one line
    if args.video and not args.resolution:
        spec = family.fit_to_video(spec, args.video)
    args.budget = budget_for(get_method(args.method).name, args.budget, default=DEFAULT_BUDGET)
    store = None if args.no_store else args.store
    if store is not None:
        check_writable(store)
    progress = (lambda message: print(f"vidcost profile: {message}", file=sys.stderr, flush=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comparison = profile_method(
            spec=spec, method=args.method, budget=args.budget, params=parse_params(args.param),
            repeats=args.repeats, warmup=args.warmup, seed=args.seed, device=args.device, dtype=args.dtype,
            model_path=args.model_path, video=args.video, question=args.question, per_layer=args.per_layer,
            decode_tokens=args.decode_tokens, energy_blocks=args.energy_blocks, store=store, threads=args.threads,
            progress=progress)
    for warning in caught:
        print(f"vidcost profile: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print_json(comparison.to_dict())
    else:
        print_table(comparison, store=store)
    return 0


def print_table(comparison: Any, store: str | None) -> None:
    """The human-readable comparison: every speedup beside the two values it divides."""
    from vidcost.schedule import Schedule

    met = comparison.method
    print(f"{met.method} @ budget {met.budget} on {met.model['name']} ({met.frames} frames, {met.device}, "
          f"{met.dtype}), {len(met.samples_ms.get('ttft', []))} repeats, median ms")
    print(f"input: {met.inputs.get('video', '?')}; {met.inputs.get('weights', '?')}; memory from "
          f"{met.memory_source}")
    print(f"  {'':<30}{'vanilla':>14}{met.method:>14}{'speedup':>9}")
    for label, a, b, fmt in _table_rows(comparison):
        if a is None and b is None:
            continue
        ratio = f"{a / b:.2f}×" if fmt == "ms" and a and b else ""
        print(f"  {label:<30}{_cell(a, fmt):>14}{_cell(b, fmt):>14}{ratio:>9}")
    compared = comparison.compared
    print(f"measured speedup {_times(compared['speedup'])} TTFT, {_times(compared['llm_prefill_speedup'])} LLM "
          f"prefill; FLOPs-predicted {_times(compared['flops_speedup'])} LLM prefill, "
          f"{_times(compared['ttft_flops_speedup'])} with the vision tower and LM head")
    print(f"planned  {Schedule.from_dict(met.planned_schedule)}")
    print(f"executed {Schedule.from_dict(met.executed_schedule)}")
    if store:
        print(f"stored in {store} (run_id {met.run_id})")


def _table_rows(comparison: Any) -> list[tuple[str, Any, Any, str]]:
    """(label, vanilla value, method value, format) of every row: stages, decode, memory, FLOPs, energy."""
    from vidcost.profiling import achieved_tflops

    van, met = comparison.vanilla, comparison.method
    rows = []
    for key, label in _stage_rows(van, met):
        a, b = (van.ttft_ms, met.ttft_ms) if key == "ttft" else (van.stages_ms.get(key), met.stages_ms.get(key))
        rows.append((label, a, b, "ms"))
    if met.decode_tokens:
        rows.append((f"decode / token ({met.decode_tokens} steps)", van.decode_ms_per_token,
                     met.decode_ms_per_token, "ms"))
    peaks = lambda r, stage: r.stage_peak_increase_bytes.get(stage)  # noqa: E731
    rows += [("KV cache", van.kv_cache_bytes, met.kv_cache_bytes, "bytes"),
             ("peak above weights: run", van.peak_increase_bytes, met.peak_increase_bytes, "bytes"),
             ("peak above weights: LLM", peaks(van, "llm_prefill"), peaks(met, "llm_prefill"), "bytes"),
             ("LLM FLOPs (exact)", van.flops.get("llm_prefill"), met.flops.get("llm_prefill"), "flops"),
             ("achieved TFLOP/s (LLM)", achieved_tflops(van.to_dict()), achieved_tflops(met.to_dict()), "number")]
    if met.energy_j is not None:
        rows.append(("energy / prefill (J)", van.energy_j, met.energy_j, "number"))
        rows.append((f"power (W, {met.power_source})", van.power_w, met.power_w, "number"))
    return rows


def _cell(value: Any, fmt: str) -> str:
    from vidcost.cost import format_bytes, format_flops

    if value is None:
        return "-" if fmt == "ms" else "n/a"
    return {"ms": f"{value:.2f}", "bytes": format_bytes(value), "flops": format_flops(value),
            "number": f"{value:.3f}"}[fmt]


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "n/a"


def _stage_rows(*records: Any) -> list[tuple[str, str]]:
    """STAGE_ROWS, with the decoder layers' own windows (--per-layer) after the LLM prefill row."""
    layers = sorted({key for record in records for key in record.stages_ms if key.startswith("layer_")})
    rows: list[tuple[str, str]] = []
    for key, label in STAGE_ROWS:
        rows.append((key, label))
        if key == "llm_prefill":
            rows += [(layer, f"  layer {layer.removeprefix('layer_')}") for layer in layers]
    return rows
