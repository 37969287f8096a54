"""Each pruning method side by side with its authors' code, on identical tensors (issue #9, #18).

Two kinds of rows (`--rows`), each in float32 and bfloat16 (`--dtype`):

* function — the official selection function against vidcost's, on the same seeded tensors at LLaVA-OV-7B's
  width (32 × 196 × 3584), with stand-ins for attention (a random softmax, identity layers): both sides'
  times on the same output (`--frames`, `--tokens-per-frame`, `--dim`).
* layers — every stage as vidcost's runtime runs it, inside 28 real decoder layers with real rotary
  positions, at budgets 0.1, 0.25 and 0.5 (`--budgets`; a method that cannot be driven to one runs its
  official default instead, and says so): the official code reruns each stage on the states the runtime
  handed the method, with its own attention and its own positions (`analysis/in_layers.py`).

The official code is loaded at run time from local checkouts whose paths you pass (nothing of it is kept
in vidcost; `analysis/official_code.py`). Per row: the share of kept positions (merged tokens) both sides
have in common, and both times (median of --repeats); every difference is listed with its cause under
the table.

Run (after fetching the repositories, e.g. `git --git-dir=X archive HEAD | tar -x -C /tmp/official/NAME`):
    python analysis/compare_official.py --official divprune=/tmp/official/divprune \\
        --official dycoke=/tmp/official/dycoke --official fastv=/tmp/official/fastv \\
        --official pdrop=/tmp/official/pdrop --official framefusion=/tmp/official/framefusion \\
        --official prunevid=/tmp/official/prunevid [--json]
    python analysis/compare_official.py --official fastv=/tmp/official/fastv --rows layers --dtype bfloat16
A path that is not a checkout of that repository is a one-line error (exit 2).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import in_layers
from official_code import (SOURCES, causal_mask_4d, dycoke_frame_counts, load_module, official_block,
                           official_functions, overlap, parse_official, rows_of, synthetic_video, timed, within_ulp)

from vidcost.errors import ConfigError, VidcostError
from vidcost.methods import LayerContext, get_method

SYS_TOKENS, TAIL_TOKENS, HEADS = 14, 20, 8  # text around the video, attention heads
















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
    same, notes = dycoke_frame_counts(official, ours, frames, per_frame)
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


def compare_pdrop(root: Path, video: torch.Tensor, repeats: int) -> dict[str, Any]:
    """Cooperx521/PyramidDrop `pdrop_rank_drop` (first stage, λ = 0.5) vs vidcost, with the same q/k projections."""
    path = root / SOURCES["pdrop"]
    helpers = official_functions(path, ["rotate_half", "apply_rotary_pos_emb"])
    fn = official_functions(path, ["pdrop_rank_drop"], owner="LlamaModel", IGNORE_INDEX=-100,
                            _prepare_4d_causal_attention_mask=causal_mask_4d, **helpers)["pdrop_rank_drop"]
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




def parse_list(text: str, what: str, convert: Callable[[str], Any], allowed: tuple[Any, ...] | None = None) -> list:
    """A comma-separated option → its values, or a ConfigError naming the one that is wrong."""
    values = []
    for item in (part.strip() for part in text.split(",")):
        try:
            value = convert(item)
        except ValueError:
            value = None
        if value is None or (allowed is not None and value not in allowed):
            raise ConfigError(f"{what} '{item}' is not one of {list(allowed)}" if allowed else
                              f"{what} '{item}' is not a number")
        values.append(value)
    return values


def function_rows(roots: dict[str, Path], dtype: str, args: argparse.Namespace) -> Any:
    """The official functions against vidcost's on the same seeded tensors, stand-ins for attention."""
    video = synthetic_video(args.frames, args.tokens_per_frame, args.dim, args.seed).to(getattr(torch, dtype))
    for name, root in roots.items():
        results = COMPARISONS[name](root, video, args.repeats)
        for result in results if isinstance(results, list) else [results]:
            yield {**result, "stage": f"function, {args.frames}×{args.tokens_per_frame}×{args.dim}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", action="append", default=[], metavar="NAME=PATH",
                        help=f"a local checkout of the official code; NAME one of {sorted(SOURCES)}; repeatable")
    parser.add_argument("--rows", default="function,layers",
                        help="which comparisons: 'function' (the official function on the same tensors, at 7B "
                             "width), 'layers' (every stage as the runtime runs it, in real decoder layers); "
                             "default both")
    parser.add_argument("--dtype", default="float32,bfloat16",
                        help="comma-separated dtypes of the tensors / model (default float32,bfloat16)")
    parser.add_argument("--budgets", default=",".join(map(str, in_layers.BUDGETS)),
                        help="budgets of the in-layer rows (default 0.1,0.25,0.5; a method that cannot be driven "
                             "to one runs its official default instead)")
    parser.add_argument("--frames", type=int, default=32, help="frames of the function rows' video (default 32)")
    parser.add_argument("--tokens-per-frame", type=int, default=196)
    parser.add_argument("--dim", type=int, default=3584, help="feature width of the function rows (LLaVA-OV-7B's)")
    parser.add_argument("--layer-frames", type=int, default=8, help="frames of the in-layer rows' video (default 8)")
    parser.add_argument("--init-std", type=float, default=0.0625,
                        help="σ of the in-layer model's random weights (default 0.0625 ≈ √(2/512): attention "
                             "logits of spread ≈ 2, peaked as a trained model's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side after one warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per row (method, stage, dtype, budget, agreement, share, "
                             "official_ms, vidcost_ms, notes) instead of the table")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)  # the official code's own torch.tensor(tensor) warnings
    say = (lambda line: None) if args.json else print
    rows = []
    try:
        roots = parse_official(args.official)
        kinds = parse_list(args.rows, "--rows", str, ("function", "layers"))
        dtypes = parse_list(args.dtype, "--dtype", str, ("float32", "bfloat16"))
        budgets = tuple(parse_list(args.budgets, "--budgets", float))
        if not all(0 < b <= 1 for b in budgets):
            raise ConfigError(f"--budgets {args.budgets}: each budget must be in (0, 1]")
        say(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seed {args.seed}")
        say(f"{'method':<28} {'stage':<40} {'dtype':<9} {'budget':>6} {'official_ms':>11} {'vidcost_ms':>10}  "
            "agreement")
        for dtype in dtypes:
            sources = []
            if "function" in kinds:
                sources.append(function_rows(roots, dtype, args))
            if "layers" in kinds:
                sources.append(in_layers.in_layer_rows(roots, dtype, budgets, args.layer_frames, args.tokens_per_frame,
                                                       args.init_std, args.seed, args.repeats))
            for result in (result for source in sources for result in source):
                result = {**result, "dtype": dtype, "budget": round(result["budget"], 4)}
                rows.append(result)
                if args.json:
                    fields = {key: result.get(key) for key in ("method", "stage", "dtype", "budget", "agreement",
                                                                "share", "official_ms", "vidcost_ms", "notes")}
                    fields.update({key: round(fields[key], 4) for key in ("share", "official_ms", "vidcost_ms")
                                   if fields[key] is not None})
                    print(json.dumps(fields), flush=True)
                say(f"{result['method']:<28} {result['stage']:<40} {dtype:<9} {result['budget']:>6} "
                    f"{result['official_ms']:>11.1f} {result['vidcost_ms']:>10.1f}  {result['agreement']}")
    except VidcostError as err:
        print(f"compare_official: error: {err}", file=sys.stderr)
        return 2
    for result in rows:
        for note in result["notes"]:
            say(f"  {result['method']} ({result['stage']}, {result['dtype']}, {result['budget']}): {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
