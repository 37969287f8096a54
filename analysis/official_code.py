"""Loading the authors' code at run time, and the measures both comparison scripts share (issue #9, #18).

Only a function's own source is compiled, from its file, with the few names it uses (torch, F, math, …)
as its globals, so the heavy imports around it never run — the algorithm that runs is theirs. Nothing
of it is kept in vidcost: the path of a local checkout is passed on the command line.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import statistics
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from vidcost.errors import ConfigError

# The file of each official function, relative to the checkout.
SOURCES = {
    "divprune": "LLaVA/llava/model/llava_arch.py",
    "dycoke": "llava/model/llava_arch.py",
    "fastv": "src/transformers/src/transformers/models/llama/modeling_llama.py",
    "pdrop": "llava/model/modeling_llama_pdrop.py",
    "framefusion": "framefusion/main.py",
    "prunevid": "models/pllava/modeling_pllava.py",
}
# Files beside them that the in-layer comparison also reads (their attention at decode / for pruning).
DYCOKE_DECODER = "llava/model/language_model/modeling_qwen2.py"
FRAMEFUSION_UTILS = "framefusion/utils.py"
PRUNEVID_CACHE = "models/pllava/elastic_cache.py"
FILES = {name: [source] for name, source in SOURCES.items()}
FILES["dycoke"].append(DYCOKE_DECODER)
FILES["framefusion"].append(FRAMEFUSION_UTILS)
FILES["prunevid"].append(PRUNEVID_CACHE)


def official_functions(path: Path, names: list[str], owner: str | None = None, **names_used: Any) -> dict:
    """Compile the named functions of one official file (module-level, or methods of class `owner`).

    Only those definitions are compiled, with `names_used` (plus torch, F, math, np) as their globals, and
    the code object keeps the official file name, so a traceback points into their file.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    scope = tree.body
    if owner is not None:
        scope = next((node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == owner), [])
    found = [node for node in scope if isinstance(node, ast.FunctionDef) and node.name in names]
    missing = sorted(set(names) - {node.name for node in found})
    if missing:
        raise ConfigError(f"{path} defines no {missing}{' in class ' + owner if owner else ''}; is it the official "
                          "checkout?")
    namespace = {"torch": torch, "F": F, "nn": torch.nn, "math": math, "np": np, "einsum": torch.einsum,
                 **names_used}
    exec(compile(ast.Module(body=found, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return {name: namespace[name] for name in names}


def official_block(path: Path, function: str, anchor: str, targets: set[str]) -> types.CodeType:
    """The statements of `function` under the first `if` whose test reads `anchor`, that assign `targets`.

    FastV's selection is inline in `LlamaModel.forward`, not a function: this compiles just those lines.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
    branch = next((n for func in functions for n in ast.walk(func)
                   if isinstance(n, ast.If) and ast.unparse(n.test) == anchor), None)
    if branch is None:
        raise ConfigError(f"{path}: no '{function}' with a branch 'if {anchor}:'; is it the official checkout?")
    body = [s for s in branch.body if isinstance(s, ast.Assign) and {ast.unparse(t) for t in s.targets} <= targets]
    return compile(ast.Module(body=body, type_ignores=[]), str(path), "exec")


def load_module(path: Path, name: str) -> types.ModuleType:
    """Execute one official file that imports only torch (FrameFusion's main.py) as a module of its own."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_official(pairs: list[str]) -> dict[str, Path]:
    """`NAME=PATH` pairs (repeatable or comma-separated) → checked checkout roots."""
    roots: dict[str, Path] = {}
    for pair in ",".join(pairs).split(","):
        if not pair.strip():
            continue
        name, sep, path = pair.strip().partition("=")
        if not sep or name not in SOURCES:
            raise ConfigError(f"--official '{pair}' must be NAME=PATH with NAME one of {sorted(SOURCES)}")
        root = Path(path).expanduser()
        missing = [file for file in FILES[name] if not (root / file).is_file()]
        if missing:
            raise ConfigError(f"--official {name}={path}: not a checkout of the official {name} code (no "
                              f"{missing[0]} there)")
        roots[name] = root
    if not roots:
        raise ConfigError("pass at least one --official NAME=PATH")
    return roots


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """(result of the last call, median wall time in ms) after one warm-up call."""
    fn()
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return result, statistics.median(samples)


def synthetic_video(frames: int, per_frame: int, dim: int, seed: int) -> torch.Tensor:
    """[T, P, D]: 4 scenes, each frame its scene plus a slow drift and noise; a few positions move."""
    generator = torch.Generator().manual_seed(seed)
    scenes = torch.randn(4, per_frame, dim, generator=generator)
    scene_of = torch.arange(frames) * 4 // frames
    drift = torch.randn(frames, 1, dim, generator=generator).cumsum(0) * 0.05
    video = scenes[scene_of] + drift + 0.3 * torch.randn(frames, per_frame, dim, generator=generator)
    moving = torch.randperm(per_frame, generator=generator)[: per_frame // 8]
    video[:, moving] += 1.5 * torch.randn(frames, moving.numel(), dim, generator=generator)
    return video


def rows_of(output: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """The index in `flat` of every row of `output`, which must be an exact copy of one of its rows.

    Rows are matched on their bytes (official selections index the input, so copies are bit-exact).
    """
    as_bytes = lambda t: t.contiguous().view(torch.int16).numpy() if t.dtype == torch.bfloat16 else t.contiguous().numpy()  # noqa: E731
    index = {row.tobytes(): i for i, row in enumerate(as_bytes(flat))}
    found = [index.get(row.tobytes()) for row in as_bytes(output)]
    assert None not in found, "an official output row is not an input row"
    return torch.tensor(found, dtype=torch.long)


def within_ulp(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal to 1e-4 in float32; in bf16 / fp16 within one unit in the last place at the values' scale (the
    largest |value|): two sums of the same terms added in another order round apart by that much, however
    small the sum itself."""
    if a.shape != b.shape:
        return False
    if a.dtype == torch.float32:
        return torch.allclose(a, b, atol=1e-4)
    a32, b32 = a.float(), b.float()
    scale = float(torch.maximum(a32.abs().max(), b32.abs().max()).clamp_min(torch.finfo(a.dtype).tiny))
    ulp = 2.0 ** math.floor(math.log2(scale)) * torch.finfo(a.dtype).eps
    return float((a32 - b32).abs().max()) <= ulp


def causal_mask_4d(attention_mask: torch.Tensor, shape: tuple[int, int], embeds: torch.Tensor,
                   past_key_values_length: int = 0) -> torch.Tensor:
    """Stand-in for transformers' `_prepare_4d_causal_attention_mask` (gone from transformers 5), which
    `pdrop_rank_drop` calls: [B, 1, q, k] additive, 0 on and below the diagonal."""
    batch, length = shape
    mask = torch.full((length, length), torch.finfo(embeds.dtype).min, dtype=embeds.dtype).triu(1)
    return mask[None, None].expand(batch, 1, length, length)


def dycoke_frame_counts(official: torch.Tensor, ours: torch.Tensor, frames: int,
                        per_frame: int) -> tuple[list[int], list[str]]:
    """Kept tokens per frame of `dycole_ttm` and of vidcost (flat positions of each): the frames whose counts
    agree, and one note per frame that differs, naming the official loop bound behind it."""
    per_official = torch.bincount(official // per_frame, minlength=frames).tolist()
    per_ours = torch.bincount(ours // per_frame, minlength=frames).tolist()
    notes = []
    for frame, (a, b) in enumerate(zip(per_official, per_ours)):
        if a != b:
            cause = ("the official stride-4 loop stops at range(0, T - 4, 4): the last group's frame 2 is never "
                     "compared and stays whole" if frame == frames - 2 and a == per_frame else
                     "the official pair loop range(0, T - 1, 2) drops an odd last frame" if a == 0 else "?")
            notes.append(f"frame {frame}: official keeps {a}, vidcost {b} — {cause}")
    return [f for f in range(frames) if per_official[f] == per_ours[f]], notes


def overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of kept positions in common: |A ∩ B| / max(|A|, |B|)."""
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / max(len(sa), len(sb), 1)
