"""Arguments shared by several subcommands, and the output helpers they use."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidcost.errors import ConfigError
from vidcost.spec import DEFAULT_PRESET, PRESETS, ModelSpec, load_spec


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --frames, --tokens-per-frame, --text-tokens."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_PRESET,
                       help=f"preset ({', '.join(sorted(PRESETS))}), a config.json, or a local model "
                            f"directory holding one (default: {DEFAULT_PRESET})")
    group.add_argument("--frames", type=int, help="frames per video (default: the model's)")
    group.add_argument("--tokens-per-frame", type=int, help="visual tokens per frame entering the LLM")
    group.add_argument("--text-tokens", type=int, help="text tokens (prompt + question)")


def spec_from_args(args: argparse.Namespace) -> ModelSpec:
    """The ModelSpec that --model and its overrides describe."""
    return load_spec(args.model, frames=args.frames, tokens_per_frame=args.tokens_per_frame,
                     text_tokens=args.text_tokens)


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
