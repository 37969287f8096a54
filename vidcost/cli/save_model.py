"""`vidcost save-model --model tiny --out DIR`: a model as a Hugging Face directory (random weights)."""

from __future__ import annotations

import argparse
from typing import Any

from vidcost.cli.common import check_output_file, print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "save-model", help="write a preset or config as a Hugging Face model directory (random weights)",
        description="Write the model (seeded random weights), a byte-level tokenizer built offline, the image and "
                    "video processors and the chat template as a Hugging Face directory that transformers and "
                    "lmms-eval's own backends load like a downloaded checkpoint. Processors need torchvision "
                    "(the eval extra); --no-processor writes the model and tokenizer only.")
    parser.add_argument("--model", default="tiny", help="preset or config.json (default tiny)")
    parser.add_argument("--out", required=True, help="the directory to write (must not hold a model)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random weights (default 0)")
    parser.add_argument("--dtype", default="float32", help="weights' dtype (default float32)")
    parser.add_argument("--init-std", type=float, help="redraw weight matrices from N(0, STD²) so that answers "
                                                       "depend on the input (e.g. 0.2, for comparing backends)")
    parser.add_argument("--no-processor", action="store_true", help="skip the image / video processors")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vidcost.checkpoint import save_model
    from vidcost.spec import load_spec

    spec = load_spec(args.model)
    check_output_file(str(Path(args.out) / "config.json"), "--out")  # before the model is built
    out = save_model(spec, args.out, seed=args.seed, dtype=args.dtype, processor=not args.no_processor,
                     init_std=args.init_std)
    files = sorted(p.name for p in out.iterdir())
    if args.json:
        print_json({"out": str(out), "model": spec.name, "files": files})
    else:
        print(f"wrote {spec.name} (random weights, seed {args.seed}) to {out}: {', '.join(files)}")
    return 0
