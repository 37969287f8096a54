"""Arguments shared by several subcommands, and the output helpers they use."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidcost.cli.args import whole_number
from vidcost.errors import ConfigError
from vidcost.spec import DEFAULT_PRESET, PRESETS, ModelSpec, load_spec


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --frames, --tokens-per-frame, --text-tokens, --resolution."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_PRESET,
                       help=f"preset ({', '.join(sorted(PRESETS))}), a config.json, or a local model "
                            f"directory holding one (default: {DEFAULT_PRESET})")
    group.add_argument("--frames", type=whole_number(1), help="frames per video (default: the model's)")
    group.add_argument("--tokens-per-frame", type=whole_number(1),
                       help="visual tokens per frame (Qwen-VL: per 2-frame temporal patch) entering the LLM")
    group.add_argument("--text-tokens", type=whole_number(0), help="text tokens (prompt + question)")
    group.add_argument("--resolution", metavar="N|HxW",
                       help="frame size in pixels for Qwen-VL models (multiples of 28); sets the tokens per "
                            "frame (default: the model's, or the --video's own size)")


def add_device_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    """--calibration FILE | --device-spec NAME, and --dtype: price rows on the user's hardware (pareto, report)."""
    group = parser.add_argument_group(title)
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--calibration", metavar="FILE", help="a calibration from `vidcost fit`")
    choice.add_argument("--device-spec", metavar="NAME",
                        help="a device priced kernel by kernel from its numbers (names: vidcost predict --help)")
    add_device_model_arguments(group)


def add_device_model_arguments(group: Any) -> None:
    """--dtype, --roofline peak, --attention and --vision-attention: how a --device-spec prices (predict, pareto,
    report)."""
    from vidcost.operators import ATTENTION_IMPLEMENTATIONS

    group.add_argument("--dtype", choices=("bfloat16", "float16", "float32"),
                       help="the device model's dtype (default bfloat16; local: float32 on a CPU)")
    group.add_argument("--roofline", choices=("peak",),
                       help="price --device-spec at datasheet peak (the roofline: a lower bound on latency) instead "
                            "of kernel by kernel")
    group.add_argument("--attention", choices=ATTENTION_IMPLEMENTATIONS, default="sdpa",
                       help="the attention implementation the per-operator model prices in the LLM (default sdpa; "
                            "eager materialises the n² scores)")
    group.add_argument("--vision-attention", choices=ATTENTION_IMPLEMENTATIONS, default="sdpa",
                       help="the same in the vision tower (default sdpa, as vidcost's runtime runs transformers' "
                            "SigLIP; LLaVA-NeXT's own SigLIP code runs eager)")


def device_latency_from_args(args: argparse.Namespace) -> Any:
    """The `vidcost.predict.DeviceLatency` that `add_device_arguments` describe, or None when neither is given."""
    if not (args.calibration or args.device_spec):
        return None
    from vidcost.predict import DeviceLatency

    return DeviceLatency.from_options(args.calibration, args.device_spec, args.dtype, roofline=args.roofline,
                                      attention=args.attention, vision_attention=args.vision_attention)


def methods_help(default: str | None = None) -> str:
    """The --method help: every registered method, so `--help` answers "which methods are there?"."""
    from vidcost.methods import method_names

    tail = f" (default: {default})" if default else ""
    return f"pruning method, one of: {', '.join(method_names())}{tail}"


def spec_from_args(args: argparse.Namespace) -> ModelSpec:
    """The ModelSpec that --model and its overrides describe."""
    resolution = parse_resolution(args.resolution) if getattr(args, "resolution", None) else None
    return load_spec(args.model, frames=args.frames, tokens_per_frame=args.tokens_per_frame,
                     text_tokens=args.text_tokens, resolution=resolution)


def parse_resolution(text: str) -> tuple[int, int]:
    """`--resolution 448` or `--resolution 336x588` (height x width) → (height, width).

    Raises:
        ConfigError: anything but one or two positive whole numbers.
    """
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) in (1, 2) and all(part.strip().isdigit() and int(part) > 0 for part in parts):
        height, width = int(parts[0]), int(parts[-1])
        return height, width
    raise ConfigError(f"malformed --resolution '{text}'; write N or HxW in pixels, e.g. --resolution 448 or 336x588")


def print_json(payload: Any) -> None:
    """Machine-readable output on stdout."""
    json.dump(payload, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`--param NAME=VALUE` pairs → dict; values are JSON numbers / booleans when they parse, else strings.

    Raises:
        ConfigError: a pair without `=` or without a name.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"malformed --param '{pair}'; write NAME=VALUE, e.g. --param layer=2")
        try:
            value: Any = json.loads(text.strip())
        except ValueError:
            value = text.strip()
        params[name.strip()] = value
    return params


def check_output_file(path: str | None, option: str, formats: "tuple[str, ...] | None" = None) -> None:
    """Before any work: `path` has one of `formats` (suffixes without the dot, when given) and can be
    written — tried as the store's appends are (`vidcost.store.check_writable`: created with its folders,
    then removed again, so nothing is left behind).

    Raises:
        ConfigError: an unsupported format, naming the supported ones.
        DataFormatError: a place that refuses writes.
    """
    from pathlib import Path

    from vidcost.store import check_writable

    if path is None:
        return
    suffix = Path(path).suffix.lstrip(".").lower()
    if formats is not None and suffix not in formats:
        raise ConfigError(f"{option} '{path}': format '{suffix or '(none)'}' is not one of {sorted(formats)}; "
                          "change the file name's extension")
    check_writable(path, option=option)


def figure_formats() -> tuple[str, ...]:
    """The file formats matplotlib can save a figure in (its own list)."""
    from matplotlib.figure import Figure

    return tuple(Figure().canvas.get_supported_filetypes())
