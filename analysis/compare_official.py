"""Each pruning method side by side with its authors' code, on identical seeded tensors (issue #9).

For every method with official code, the official selection function is loaded at run time from a local
checkout whose path you pass (nothing of it is kept in vidcost): only the function's own source is
compiled, from its file, with the few names it uses (torch, F, math, …) as its globals, so the heavy
imports around it never run — the algorithm that runs is theirs. Both sides get the same tensors at the
budget the official defaults reach, and per method the table says how much they agree (the share of kept
positions in common; for merging methods the kept counts per frame / segment and the segment boundaries,
and the share of merged tokens both produce) and both times (median of --repeats). Every difference is
listed with its cause under the table.

Run (after fetching the repositories, e.g. `git --git-dir=X archive HEAD | tar -x -C /tmp/official/NAME`):
    python analysis/compare_official.py --official divprune=/tmp/official/divprune \\
        --official dycoke=/tmp/official/dycoke --official fastv=/tmp/official/fastv \\
        --official pdrop=/tmp/official/pdrop --official framefusion=/tmp/official/framefusion \\
        --official prunevid=/tmp/official/prunevid
    python analysis/compare_official.py --official divprune=/tmp/official/divprune --dim 896   # a quick look
A path that is not a checkout of that repository is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import statistics
import sys
import time
import types
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from vidcost.errors import ConfigError, VidcostError
from vidcost.methods import LayerContext, get_method

# The file of each official function, relative to the checkout.
SOURCES = {
    "divprune": "LLaVA/llava/model/llava_arch.py",
    "dycoke": "llava/model/llava_arch.py",
    "fastv": "src/transformers/src/transformers/models/llama/modeling_llama.py",
    "pdrop": "llava/model/modeling_llama_pdrop.py",
    "framefusion": "framefusion/main.py",
    "prunevid": "models/pllava/modeling_pllava.py",
}
SYS_TOKENS, TAIL_TOKENS, HEADS = 14, 20, 8  # text around the video, attention heads


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


def overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of kept positions in common: |A ∩ B| / max(|A|, |B|)."""
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / max(len(sa), len(sb), 1)


def row(method: str, budget: float, agreement: str, official_ms: float, vidcost_ms: float,
        notes: list[str]) -> dict[str, Any]:
    return {"method": method, "budget": round(budget, 4), "agreement": agreement, "official_ms": official_ms,
            "vidcost_ms": vidcost_ms, "notes": notes}


def compare_divprune(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """vbdi/divprune `DivPrune` at its default SUBSET_RATIO = 0.098 vs vidcost's greedy max–min."""
    fns = official_functions(root / SOURCES["divprune"], ["DivPrune", "pairwise_cosine_similarity"],
                             owner="LlavaMetaForCausalLM")
    owner = types.SimpleNamespace(pairwise_cosine_similarity=lambda m: fns["pairwise_cosine_similarity"](None, m))
    flat = video.reshape(-1, video.shape[-1])
    budget = 0.098
    picks, official_ms = timed(lambda: fns["DivPrune"](owner, flat, flat.shape[0], None, threshold_ratio=budget)[0],
                               repeats)
    ours, vidcost_ms = timed(lambda: get_method("divprune").select_visual(video, budget).positions, repeats)
    share = overlap(picks, ours)
    notes = [] if share == 1.0 else [f"{1 - share:.2%} of picks differ: near-equal max–min distances resolved "
                                     "differently by float rounding (official 1 − cos in the input dtype)"]
    return row("divprune", budget, f"{share:.2%} of kept positions", official_ms, vidcost_ms, notes)


def compare_dycoke(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """KD-TAO/DyCoke `dycole_ttm` with its default dycoke_k = 0.7 vs vidcost at the same per-frame count."""
    fn = official_functions(root / SOURCES["dycoke"], ["dycole_ttm"])["dycole_ttm"]
    frames, per_frame, dim = video.shape
    flat = video.reshape(-1, dim)
    count = int(0.3 * per_frame)  # int((1 − 0.7)·P) per non-anchor frame
    anchors = math.ceil(frames / 4)
    budget = (anchors * per_frame + (frames - anchors) * count) / (frames * per_frame)
    merged, official_ms = timed(lambda: fn(flat, per_frame, 0.7), repeats)
    official = torch.sort(rows_of(merged, flat)).values
    ours, vidcost_ms = timed(lambda: get_method("dycoke").select_visual(video, budget).positions, repeats)
    per_official = torch.bincount(official // per_frame, minlength=frames).tolist()
    per_ours = torch.bincount(ours // per_frame, minlength=frames).tolist()
    notes = []
    for frame, (a, b) in enumerate(zip(per_official, per_ours)):
        if a != b:
            cause = ("the official stride-4 loop stops at range(0, T - 4, 4): the last group's frame 2 is never "
                     "compared and stays whole" if frame == frames - 2 and a == per_frame else
                     "the official pair loop range(0, T - 1, 2) drops an odd last frame" if a == 0 else "?")
            notes.append(f"frame {frame}: official keeps {a}, vidcost {b} — {cause}")
    same = [f for f in range(frames) if per_official[f] == per_ours[f]]
    in_common = overlap(official[torch.isin(official // per_frame, torch.tensor(same))],
                        ours[torch.isin(ours // per_frame, torch.tensor(same))])
    agreement = (f"per-frame counts equal in {len(same)}/{frames} frames; {in_common:.2%} of kept positions in "
                 f"common there; kept {len(official)} vs {len(ours)}")
    return row("dycoke", budget, agreement, official_ms, vidcost_ms, notes)


def attention_row(total: int, seed: int, rows: int = 1) -> torch.Tensor:
    """[1, H, rows, S] softmax attention of `rows` query rows over a sequence of text, video, text."""
    generator = torch.Generator().manual_seed(seed)
    sequence = SYS_TOKENS + total + TAIL_TOKENS
    return torch.randn(1, HEADS, rows, sequence, generator=generator).mul(3.0).softmax(-1)


def compare_fastv(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """pkunlp-icler/FastV's in-place ranking at idx == AGG_LAYER (K = 2, R = 50 %) vs vidcost's FastV stage."""
    code = official_block(root / SOURCES["fastv"], "forward", "idx == AGG_LAYER",
                          {"last_layer_attention", "last_layer_attention_avg", "last_layer_attention_avg_last_tok",
                           "last_layer_attention_avg_last_tok_image", "top_attention_rank_index", "keep_indexs"})
    frames, per_frame, dim = video.shape
    total = frames * per_frame
    attention = attention_row(total, seed=3)
    keep = total // 2
    scope = {"torch": torch, "layer_outputs": (None, attention), "SYS_LENGTH": SYS_TOKENS,
             "IMAGE_TOKEN_LENGTH": total, "ATTENTION_RANK": keep, "device": attention.device,
             "seq_length_with_past": attention.shape[-1]}

    def official() -> torch.Tensor:
        exec(code, scope)  # noqa: S102 - their lines, in a namespace of their own
        kept = scope["keep_indexs"]
        return kept[(kept >= SYS_TOKENS) & (kept < SYS_TOKENS + total)] - SYS_TOKENS

    theirs, official_ms = timed(official, repeats)
    context = LayerContext(layer=2, hidden=video.reshape(total, dim), positions=torch.arange(total),
                           attention=attention[0, :, :, SYS_TOKENS:SYS_TOKENS + total].transpose(0, 1),
                           num_frames=frames, tokens_per_frame=per_frame)
    ours, vidcost_ms = timed(lambda: get_method("fastv").reduce_in_llm(context, keep).keep, repeats)
    return row("fastv", keep / total, f"{overlap(theirs, ours):.2%} of kept positions", official_ms, vidcost_ms, [])


def _causal_mask(attention_mask: torch.Tensor, shape: tuple[int, int], embeds: torch.Tensor,
                 past_key_values_length: int = 0) -> torch.Tensor:
    """Stand-in for transformers' `_prepare_4d_causal_attention_mask` (gone from transformers 5): [B, 1, q, k]."""
    batch, length = shape
    mask = torch.full((length, length), torch.finfo(embeds.dtype).min, dtype=embeds.dtype).triu(1)
    return mask[None, None].expand(batch, 1, length, length)


def compare_pdrop(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Cooperx521/PyramidDrop `pdrop_rank_drop` (first stage, λ = 0.5) vs vidcost, with the same q/k projections."""
    path = root / SOURCES["pdrop"]
    helpers = official_functions(path, ["rotate_half", "apply_rotary_pos_emb"])
    fn = official_functions(path, ["pdrop_rank_drop"], owner="LlamaModel", IGNORE_INDEX=-100,
                            _prepare_4d_causal_attention_mask=_causal_mask, **helpers)["pdrop_rank_drop"]
    frames, per_frame, dim = video.shape
    total = frames * per_frame
    generator = torch.Generator().manual_seed(4)
    text = torch.randn(SYS_TOKENS + TAIL_TOKENS, dim, generator=generator).to(video.dtype)  # one dtype on both sides
    features = torch.cat([text[:SYS_TOKENS], video.reshape(total, dim), text[SYS_TOKENS:]])[None]  # [1, S, D]
    head_dim = dim // HEADS
    torch.manual_seed(5)
    projection = lambda: torch.nn.Linear(dim, dim, bias=False).to(video.dtype)  # noqa: E731 - in the video's dtype
    attn = types.SimpleNamespace(num_heads=HEADS, num_key_value_heads=HEADS, head_dim=head_dim,
                                 q_proj=projection(), k_proj=projection(), v_proj=projection(),
                                 rotary_emb=lambda v, seq_len: (torch.ones(seq_len, head_dim, dtype=v.dtype),
                                                                torch.zeros(seq_len, head_dim, dtype=v.dtype)))
    layer = types.SimpleNamespace(self_attn=attn, input_layernorm=lambda h: h)  # identity norm, no rotation
    model = types.SimpleNamespace(layers={8: layer}, config=types.SimpleNamespace(tokenizer_padding_side="right",
                                  tokenizer_model_max_length=1_000_000), image_token_ratio_list=[1.0, 0.5, 0.25, 0.125],
                                  image_tokens=[total], image_token_posi=[SYS_TOKENS], prompt_len=[text.shape[0]],
                                  training=False)
    with torch.no_grad():
        def official() -> torch.Tensor:
            out = fn(model, 0, 8, features, None, None, None)[2][0]
            return rows_of(out[SYS_TOKENS:SYS_TOKENS + int(total * 0.5)], features[0, SYS_TOKENS:SYS_TOKENS + total])

        theirs, official_ms = timed(official, repeats)
        q = attn.q_proj(features[0, -1:]).view(1, HEADS, head_dim).transpose(0, 1)  # [H, 1, hd]
        k = attn.k_proj(features[0]).view(-1, HEADS, head_dim).transpose(0, 1)  # [H, S, hd]
        weights = (q @ k.transpose(1, 2) / math.sqrt(head_dim)).softmax(-1)  # [H, 1, S]: the last token sees all
        context = LayerContext(layer=8, hidden=video.reshape(total, dim), positions=torch.arange(total),
                               attention=weights[:, :, SYS_TOKENS:SYS_TOKENS + total].transpose(0, 1),
                               num_frames=frames, tokens_per_frame=per_frame)
        ours, vidcost_ms = timed(lambda: get_method("pdrop").reduce_in_llm(context, int(total * 0.5)).keep, repeats)
    return row("pdrop", 0.469, f"{overlap(theirs, ours):.2%} of kept positions (stage 1: int(0.5·N))",
               official_ms, vidcost_ms, [])


def load_module(path: Path, name: str) -> types.ModuleType:
    """Execute one official file that imports only torch (FrameFusion's main.py) as a module of its own."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare_framefusion(root: Path, video: torch.Tensor, repeats: int) -> list[dict[str, Any]]:
    """FrameFusion on the shared video (so redundant that the layer-0 merge alone meets the cost) and on a
    busier one (more noise: the merge stops early and the prune runs), each call by call."""
    noise = torch.randn(video.shape, generator=torch.Generator().manual_seed(8))
    rows = []
    for label, clip in (("redundant video", video), ("busy video", video + 0.8 * noise)):
        result = _compare_framefusion(root, clip, repeats)
        result["method"] = f"framefusion ({label})"
        rows.append(result)
    return rows


def _compare_framefusion(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """thu-nics/FrameFusion's `FrameFusion` module (cost 0.3, S_th 0.6, ratio bound 0.1) vs vidcost, call by call.

    Both sides see the same states at every call (the layers in between are the identity) and, at the
    prune, the same attention (one fixed logit per original token, softmax over the tokens still present).
    """
    module = load_module(root / SOURCES["framefusion"], "official_framefusion_main")
    frames, per_frame, dim = video.shape
    total, cost, layers = frames * per_frame, 0.3, 28
    sequence = SYS_TOKENS + total + TAIL_TOKENS
    generator = torch.Generator().manual_seed(6)
    text = torch.randn(SYS_TOKENS + TAIL_TOKENS, dim, generator=generator).to(video.dtype)  # one dtype on both sides
    hidden0 = torch.cat([text[:SYS_TOKENS], video.reshape(total, dim), text[SYS_TOKENS:]])[None]
    logits = 3.0 * torch.randn(HEADS, sequence, generator=generator)  # [H, S]: one logit per original token
    patch_type = torch.cat([torch.full((SYS_TOKENS,), -1), torch.arange(per_frame).repeat(frames),
                            torch.full((TAIL_TOKENS,), -1)])[None]

    def official() -> list[torch.Tensor]:
        fusion = module.FrameFusion(cost, 0.6, 0.1)
        fusion.prepare(patch_type.clone(), per_frame, torch.tensor(SYS_TOKENS), torch.tensor(SYS_TOKENS + total - 1),
                       torch.tensor(total), sequence)
        hidden, position = fusion(hidden0.clone(), torch.arange(sequence)[None], None)  [:2]
        kept = [position[0]]
        for _ in range(layers - 1):  # the call inside layer j − 1 ↔ vidcost's stage before layer j
            if fusion.finish_pruning:
                break
            weights = logits[:, position[0]].softmax(-1)[None, :, None]  # [1, H, 1, S_now]
            hidden, position = fusion(hidden, position, None, weights)[:2]
            kept.append(position[0])
        visual = (position[0] >= SYS_TOKENS) & (position[0] < SYS_TOKENS + total)
        return [k[(k >= SYS_TOKENS) & (k < SYS_TOKENS + total)] - SYS_TOKENS for k in kept] + [hidden[0, visual]]

    def ours() -> list[torch.Tensor]:
        method = get_method("framefusion")
        selection = method.select_visual(video, cost)
        hidden, positions, state, kept = selection.tokens, selection.positions, selection.state, [selection.positions]
        for layer in range(1, layers):
            if state.finish_pruning:
                break
            full = torch.cat([torch.arange(SYS_TOKENS), SYS_TOKENS + positions, SYS_TOKENS + total + torch.arange(TAIL_TOKENS)])
            weights = logits[:, full].softmax(-1)[:, SYS_TOKENS:SYS_TOKENS + positions.numel()][None]  # [1, H, N]
            context = LayerContext(layer=layer, hidden=hidden, positions=positions, attention=weights,
                                   num_frames=frames, tokens_per_frame=per_frame, state=state, num_layers=layers)
            reduction = method.reduce_in_llm(context, positions.numel())
            hidden = reduction.hidden if reduction.hidden is not None else hidden[reduction.keep]
            positions, state = positions[reduction.keep], reduction.state
            kept.append(positions)
        return kept + [hidden]

    (*theirs, their_states), official_ms = timed(official, repeats)
    (*mine, my_states), vidcost_ms = timed(ours, repeats)
    counts = [len(k) for k in theirs], [len(k) for k in mine]
    same = all(torch.equal(a, b) for a, b in zip(theirs, mine)) and counts[0] == counts[1]
    states = same and within_ulp(their_states, my_states)
    notes = [] if same else [f"visual tokens after each call: official {counts[0]}, vidcost {counts[1]}"]
    exactness = "" if their_states.dtype == torch.float32 else " (to one ulp at their scale: index_add_'s order)"
    agreement = (f"tokens after each call {counts[0]} both; kept positions identical at every call, merged states "
                 f"{'equal' + exactness if states else 'differ'}" if same else
                 f"{overlap(theirs[-1], mine[-1]):.2%} of the final kept positions in common")
    return row("framefusion", cost, agreement, official_ms, vidcost_ms, notes)


def _official_prunevid(root: Path, frames: int, per_frame: int) -> tuple[Callable, Callable]:
    """PruneVid's `merge_frames_dynamic` and `VTPWindowCache.process_attention`, with their defaults."""
    path = root / SOURCES["prunevid"]
    helpers = official_functions(path, ["cluster_dpc_knn", "index_points", "refine_clusters", "segment_lengths"])
    methods = official_functions(path, ["merge_frames_dynamic", "spatial_merge_tokens", "compute_cluster_vectors"],
                                 owner="PllavaForConditionalGeneration", **helpers)
    side = math.isqrt(per_frame)
    model = types.SimpleNamespace(config=types.SimpleNamespace(num_frames=frames, pooling_shape=(frames, side, side),
                                                               temporal_segment_ratio=0.25, cluster_ratio=0.5))
    model.compute_cluster_vectors = lambda *a, **k: methods["compute_cluster_vectors"](model, *a, **k)
    model.spatial_merge_tokens = lambda *a, **k: methods["spatial_merge_tokens"](model, *a, **k)
    cache_file = root / "models/pllava/elastic_cache.py"
    process = official_functions(cache_file, ["process_attention"], owner="VTPWindowCache")["process_attention"]
    cache = types.SimpleNamespace(alpha=0.4)
    return (lambda x: methods["merge_frames_dynamic"](model, x, threshold=0.8, k=7),
            lambda *a: process(cache, *a))


def compare_prunevid(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Visual-AI/PruneVid's pre-LLM merging (τ 0.8, 0.25, cluster 0.5) and in-LLM top-α (0.4) vs vidcost's."""
    frames, per_frame, dim = video.shape
    total = frames * per_frame
    if math.isqrt(per_frame) ** 2 != per_frame:
        raise ConfigError(f"PruneVid's code needs square frames; {per_frame} tokens per frame is not a square")
    merge, process = _official_prunevid(root, frames, per_frame)

    def official() -> Any:
        torch.manual_seed(0)  # cluster_dpc_knn adds torch.rand noise to the density
        return merge(video.reshape(1, total, dim))

    (merged, static_sizes, dynamic_sizes, window_sizes), official_ms = timed(official, repeats)
    kept = merged.shape[1]
    share = 11 / 28 + 0.4 * 17 / 28  # vidcost's K0 = budget·N / share: solve the budget giving the same K0
    budget = kept / total * share
    result, vidcost_ms = timed(lambda: get_method("prunevid").select_visual(video, budget), repeats)
    bounds = np.cumsum([0] + list(window_sizes)).tolist()
    official_segments = tuple((a, b - 1) for a, b in zip(bounds, bounds[1:]))
    per_group = _group_counts(result, per_frame)
    official_groups = [(s, d // w) for s, d, w in zip(static_sizes, dynamic_sizes, window_sizes)]
    exact = "donot_use_mm_for_euclid_dist"  # the matmul shortcut's rounding alone is ~1e-3 at these norms
    same_tokens = torch.cdist(merged[0].float(), result.tokens.float(), compute_mode=exact).min(dim=1).values
    same_tokens = same_tokens.lt(1e-4).float().mean()
    notes = []
    if official_segments != result.segments:
        notes.append(f"segments: official {official_segments}, vidcost {result.segments}")
    if per_group != official_groups:
        notes.append(f"(static, dynamic per frame) per segment: official {official_groups}, vidcost {per_group} — "
                     "the official int(size·0.5) per group vs vidcost's largest-remainder split of the same K0")
    if float(same_tokens) < 1:
        notes.append(f"{1 - float(same_tokens):.2%} of the merged tokens differ: cluster_dpc_knn adds torch.rand·1e-6 "
                     "to every density, which breaks near-ties its own way (vidcost: ties to the lower index); with "
                     "that noise set to zero both produce the same tokens")
    # In the LLM: both on the official tokens and layout, the same question attention.
    attention = torch.randn(1, HEADS, 6, kept, generator=torch.Generator().manual_seed(7)).mul(3).softmax(-1)
    chosen = torch.sort(process(attention, static_sizes, dynamic_sizes, window_sizes)).values
    groups = torch.cat([torch.full((n,), g) for g, n in enumerate(_layout(static_sizes, dynamic_sizes, window_sizes))])
    context = LayerContext(layer=11, hidden=merged[0], positions=torch.arange(kept), attention=attention[0].transpose(0, 1),
                           num_frames=frames, tokens_per_frame=per_frame, groups=groups)
    ours = get_method("prunevid").reduce_in_llm(context, chosen.numel()).keep
    in_llm = overlap(chosen, ours)
    if in_llm < 1:
        notes.append(f"in the LLM {1 - in_llm:.2%} differ: the official floors int(size·α) per group, vidcost splits "
                     "the same total by largest remainder")
    agreement = (f"segments {'equal' if official_segments == result.segments else 'differ'}, group counts "
                 f"{'equal' if per_group == official_groups else 'differ'}, {float(same_tokens):.2%} of merged tokens "
                 f"in common; in the LLM {in_llm:.2%} of kept tokens")
    return row("prunevid", budget, agreement, official_ms, vidcost_ms, notes)


def _layout(static_sizes: list[int], dynamic_sizes: list[int], window_sizes: list[int]) -> list[int]:
    """Group sizes in the official token order: per segment its static tokens, then each frame's dynamic ones."""
    sizes = []
    for static, dynamic, window in zip(static_sizes, dynamic_sizes, window_sizes):
        sizes += [static] + [dynamic // window] * window
    return sizes


def _group_counts(result: Any, per_frame: int) -> list[tuple[int, int]]:
    """(static tokens, dynamic tokens of its first frame) per vidcost segment, from SelectionResult.groups."""
    counts = []
    frames = result.positions // per_frame
    next_group = 0
    for first, last in result.segments:
        static = int((result.groups == next_group).sum())
        dynamic = int(((result.groups == next_group + 1) & (frames == first)).sum())
        counts.append((static, dynamic))
        next_group += 1 + last - first + 1
    return counts


COMPARISONS = {"divprune": compare_divprune, "dycoke": compare_dycoke, "fastv": compare_fastv,
               "pdrop": compare_pdrop, "framefusion": compare_framefusion, "prunevid": compare_prunevid}


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
        if not (root / SOURCES[name]).is_file():
            raise ConfigError(f"--official {name}={path}: not a checkout of the official {name} code (no "
                              f"{SOURCES[name]} there)")
        roots[name] = root
    if not roots:
        raise ConfigError("pass at least one --official NAME=PATH")
    return roots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", action="append", default=[], metavar="NAME=PATH",
                        help=f"a local checkout of the official code; NAME one of {sorted(SOURCES)}; repeatable")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--tokens-per-frame", type=int, default=196)
    parser.add_argument("--dim", type=int, default=3584, help="feature width (LLaVA-OV-7B's 3584 by default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side after one warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="dtype of the features both sides get (default float32)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per row (method, stage, dtype, budget, agreement, official_ms, "
                             "vidcost_ms, notes) instead of the table")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # the official code's own torch.tensor(tensor) warnings
    try:
        roots = parse_official(args.official)
        video = synthetic_video(args.frames, args.tokens_per_frame, args.dim, args.seed).to(getattr(torch, args.dtype))
        say = (lambda line: None) if args.json else print
        say(f"torch {torch.__version__}, {torch.get_num_threads()} threads | video {tuple(video.shape)} {args.dtype}, "
            f"seed {args.seed}")
        say(f"{'method':<12} {'budget':>7} {'official_ms':>12} {'vidcost_ms':>11}  agreement")
        rows = []
        for name, root in roots.items():
            results = COMPARISONS[name](root, video, args.repeats)
            for result in results if isinstance(results, list) else [results]:
                rows.append(result)
                if args.json:
                    print(json.dumps({"method": result["method"], "stage": result.get("stage", "selection"),
                                      "dtype": args.dtype, "budget": result["budget"],
                                      "agreement": result["agreement"], "official_ms": round(result["official_ms"], 3),
                                      "vidcost_ms": round(result["vidcost_ms"], 3), "notes": result["notes"]}),
                          flush=True)
                say(f"{result['method']:<12} {result['budget']:>7} {result['official_ms']:>12.1f} "
                    f"{result['vidcost_ms']:>11.1f}  {result['agreement']}")
    except VidcostError as err:
        print(f"compare_official: error: {err}", file=sys.stderr)
        return 2
    for result in rows:
        for note in result["notes"]:
            say(f"  {result['method']}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
