"""vidcost's staged runtime against the official code, stage by stage, inside real decoder layers (issue #18).

The function rows of `compare_official.py` hand both sides the same tensors with stand-ins for attention.
These rows test what the runtime runs. A LLaVA-OneVision-shaped model of Qwen2-7B's depth — 28 real
transformers Qwen2 decoder layers, GQA, real rotary positions, random weights drawn N(0, σ²) so that
attention is as peaked as a trained model's rather than uniform — prefills a seeded video (its features
handed to the runtime in place of the vision tower's) with each method at each budget, and every stage
the runtime runs is recorded with what it handed the method: the pre-LLM selection's features; an in-LLM
stage's whole sequence (hidden states, position ids) and the layer whose attention ranks, with that
layer's input; each decode step's token state and the cached keys of the layer it ranks with. The
official code then runs that stage on the same states, computing its attention its own way and on the
positions its own code gives the sequence:

    FastV        the layer's own eager attention (`layer_outputs[1]` of layer K−1, transformers' eager path)
                 on the original positions, then its `idx == AGG_LAYER` lines;
    PyramidDrop  `pdrop_rank_drop` at each of the three stages — its own q/k, `rotary_emb`,
                 `apply_rotary_pos_emb` on its renumbered positions 0…n−1, its causal mask;
    FrameFusion  the `FrameFusion` module at every call (layer 0 before attention, then after each layer's
                 attention), with the attention of its `utils.scaled_dot_product_attention`;
    PruneVid     `attn_weights_wo_pos` (q·kᵀ before RoPE, unmasked) and `VTPWindowCache.process_attention`;
    DyCoke       `dycole_ttm` before the LLM, and `PrunableDynamicCache.dycoke_pruning` / `update_cache`
                 over the decode steps on `calculate_attention_weights` of layer `dycoke_l` − 1;
    DivPrune     `DivPrune` on the features the runtime selected from.

The attention the official code computes is compared with what the runtime handed the method only
through the kept tokens: each row's agreement is the share of kept positions (merged tokens) in common.
Where the official code cannot be driven to a budget, its row runs at the official default instead.
The official code is unchanged except for two shims its models did not need: Qwen2's grouped KV heads are
repeated to the query heads where the official code (written for LLaVA-1.5's MHA) multiplies q by k, and
a group-wise α where PruneVid's `process_attention` is driven to vidcost's planned per-group counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from official_code import (DYCOKE_DECODER, FRAMEFUSION_UTILS, PRUNEVID_CACHE, SOURCES, causal_mask_4d,
                           dycoke_frame_counts, load_module, official_block, official_functions, overlap, rows_of,
                           synthetic_video, timed, within_ulp)

from vidcost.errors import ConfigError
from vidcost.methods import get_method

# 28 layers as Qwen2-7B (LLaVA-OV-7B), GQA 8:2, narrow enough for a CPU; 14×14 tokens per frame as LLaVA-OV.
MODEL = dict(hidden_size=512, intermediate_size=1024, num_layers=28, num_heads=8, num_kv_heads=2, vocab_size=4096)
BUDGETS = (0.1, 0.25, 0.5)
DECODE_STEPS = 6


@dataclass
class Bench:
    """One model, its inputs and the video features every method's prefill starts from."""

    runtime: Any
    inputs: Any
    encoded: tuple[torch.Tensor, torch.Tensor]
    dtype: str

    @property
    def lm(self) -> Any:
        return self.runtime.lm

    def rope(self, hidden: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's own rotary embedding of 1-D `positions` [n] for states [1, n, D]."""
        return self.lm.rotary_emb(hidden, positions.view(1, -1))


def build_bench(dtype: str, frames: int, per_frame: int, init_std: float, seed: int) -> Bench:
    """The comparison model (tiny's vision tower, `MODEL`'s LLM) and a seeded synthetic video's features."""
    from vidcost.runtime import StagedRuntime, build_inputs, build_model
    from vidcost.spec import load_spec

    side = math.isqrt(per_frame)
    if side * side != per_frame:
        raise ConfigError(f"--tokens-per-frame {per_frame} must be a square (PruneVid and LLaVA-OV lay frames out "
                          "as side × side)")
    spec = load_spec("tiny").with_overrides(**MODEL, frames=frames, tokens_per_frame=per_frame,
                                            image_size=side * 2 * 14)  # patch 14, 2×2 pooling
    loaded = build_model(spec, dtype=dtype, seed=seed)
    runtime = StagedRuntime(loaded)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in runtime.lm.layers.parameters():
            if parameter.dim() >= 2:
                parameter.copy_((torch.randn(parameter.shape, generator=generator) * init_std).to(parameter.dtype))
    inputs = build_inputs(loaded, seed=seed)
    with torch.inference_mode():
        _, separator = runtime.encode_video(inputs.pixel_values, inputs=inputs)
    video = synthetic_video(frames, per_frame, MODEL["hidden_size"], seed).to(getattr(torch, dtype))
    return Bench(runtime=runtime, inputs=inputs, encoded=(video, separator), dtype=dtype)


@dataclass
class Stage:
    """One stage the runtime ran: "select" (before the LLM), "layer" (before decoder layer `index`) or
    "decode" (decode step `index`), with what the runtime handed the method and what it got back."""

    kind: str
    index: int
    data: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def recorded(bench: Bench, method: Any) -> Iterator[list[Stage]]:
    """Record every stage of `method` while the runtime runs it (the runtime's own code, wrapped)."""
    from vidcost.runtime import prefill as prefill_module

    runtime, stages, calls = bench.runtime, [], []
    contexts: list[dict[str, Any]] = []  # what each in-LLM call was handed, until its _reduce record takes it
    originals = prefill_module.query_attention, prefill_module.decode_attention
    select, reduce = runtime._select, runtime._reduce
    in_llm, in_decode = method.reduce_in_llm, method.reduce_in_decode

    def attention_recorder(function: Callable) -> Callable:
        def record(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            calls.append((function, args, kwargs))
            return result
        return record

    def record_select(*args: Any) -> Any:
        out = select(*args)
        stages.append(Stage("select", 0, dict(features=args[1], positions=out[1], tokens=out[0], result=out[2])))
        return out

    def record_reduce(seq: Any, *args: Any) -> Any:
        before, made = dataclasses.replace(seq), len(calls)
        new = reduce(seq, *args)
        stages.append(Stage("layer", args[1], dict(seq=before, new=dataclasses.replace(new), target=args[2],
                                                   source=args[3], call=calls[made] if len(calls) > made else None,
                                                   **contexts.pop())))
        return new

    def record_in_llm(context: Any, keep: int) -> Any:
        reduction = in_llm(context, keep)
        contexts.append(dict(context=context, keep=keep, reduction=reduction))
        return reduction

    def record_in_decode(context: Any) -> Any:
        reduction = in_decode(context)
        stages.append(Stage("decode", context.step, dict(context=context, reduction=reduction, call=calls[-1])))
        return reduction

    prefill_module.query_attention, prefill_module.decode_attention = map(attention_recorder, originals)
    runtime._select, runtime._reduce = record_select, record_reduce
    method.reduce_in_llm, method.reduce_in_decode = record_in_llm, record_in_decode
    try:
        yield stages
    finally:
        prefill_module.query_attention, prefill_module.decode_attention = originals
        del runtime._select, runtime._reduce, method.reduce_in_llm, method.reduce_in_decode


def run_method(bench: Bench, name: str, budget: float, decode_steps: int = 0) -> tuple[Any, list[Stage]]:
    """The runtime's prefill (and decode steps) with `name` at `budget`; the method and its stages."""
    method = get_method(name)
    with recorded(bench, method) as stages, torch.inference_mode():
        bench.runtime.prefill(bench.inputs, method, budget, encoded=bench.encoded, decode_tokens=decode_steps)
    return method, stages


def vidcost_stage_ms(stage: Stage, method: Any, repeats: int) -> float:
    """The runtime's work for one in-LLM or decode stage, timed again on its recorded inputs: its attention
    rows and the method's call."""
    function, args, kwargs = stage.data["call"] if stage.data.get("call") else (None, (), {})

    def again() -> Any:
        if function is not None:
            function(*args, **kwargs)
        if stage.kind == "decode":
            return type(method).reduce_in_decode(method, stage.data["context"])
        return type(method).reduce_in_llm(method, stage.data["context"], stage.data["keep"])

    with torch.inference_mode():
        return timed(again, repeats)[1]


def row(method: str, stage: str, budget: float, share: float, detail: str, official_ms: float, vidcost_ms: float,
        notes: list[str] | None = None) -> dict[str, Any]:
    return {"method": method, "stage": stage, "budget": budget, "share": share,
            "agreement": f"{share:.2%} {detail}", "official_ms": official_ms, "vidcost_ms": vidcost_ms,
            "notes": notes or []}


def repeat_heads(states: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, KV, S, hd] → [B, KV·groups, S, hd], head h reading KV head h // groups (transformers' `repeat_kv`)."""
    return states.repeat_interleave(groups, dim=1)


def projected(layer: Any, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """q [1, H, S, hd] and k [1, H, S, hd] (KV heads repeated) of a layer's attention on its input, with RoPE
    applied when `rope` is given — as the official attention forwards compute them."""
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    attn = layer.self_attn
    x = layer.input_layernorm(hidden)
    shape = (*x.shape[:-1], -1, attn.head_dim)
    q = attn.q_proj(x).view(shape).transpose(1, 2)
    k = attn.k_proj(x).view(shape).transpose(1, 2)
    if rope is not None:
        q, k = apply_rotary_pos_emb(q, k, *rope)
    return q, repeat_heads(k, attn.num_key_value_groups)


def eager_attention(layer: Any, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """[1, H, S, S] attention probabilities of a decoder layer's own eager path (causal), in its dtype."""
    attn, n = layer.self_attn, hidden.shape[1]
    mask = torch.full((n, n), torch.finfo(hidden.dtype).min, dtype=hidden.dtype).triu(1)[None, None]
    previous = attn.config._attn_implementation
    attn.config._attn_implementation = "eager"
    try:
        return attn(hidden_states=layer.input_layernorm(hidden), position_embeddings=rope, attention_mask=mask)[1]
    finally:
        attn.config._attn_implementation = previous


# ---- one replay per method: the official code on the stage the runtime ran --------------------------------


def compare_fastv(root: Path, bench: Bench, budget: float, repeats: int) -> list[dict[str, Any]]:
    """FastV (K = 2) at R = round(budget·N): the official ranking on layer K−1's own eager attention."""
    code = official_block(root / SOURCES["fastv"], "forward", "idx == AGG_LAYER",
                          {"last_layer_attention", "last_layer_attention_avg", "last_layer_attention_avg_last_tok",
                           "last_layer_attention_avg_last_tok_image", "top_attention_rank_index", "keep_indexs"})
    method, stages = run_method(bench, "fastv", budget)
    (stage,) = [s for s in stages if s.kind == "layer"]
    seq, (layer, layer_input) = stage.data["seq"], stage.data["source"]
    n, start, visual = layer_input.shape[1], seq.prefix_len, seq.num_visual
    scope = {"torch": torch, "SYS_LENGTH": start, "IMAGE_TOKEN_LENGTH": visual, "ATTENTION_RANK": stage.data["target"],
             "device": layer_input.device, "seq_length_with_past": n}
    rope = bench.rope(layer_input, torch.arange(n))

    def official() -> torch.Tensor:
        # FastV's inplace mode runs layers 0…K−1 on the original positions 0…N−1 and keeps them after.
        scope["layer_outputs"] = (None, eager_attention(layer, layer_input, rope))
        exec(code, scope)  # noqa: S102 - their lines, in a namespace of their own
        kept = scope["keep_indexs"]
        return kept[(kept >= start) & (kept < start + visual)] - start

    with torch.inference_mode():
        theirs, official_ms = timed(official, repeats)
    ours = stage.data["new"].visual_positions
    share = overlap(seq.visual_positions[theirs], ours)
    return [row("fastv", f"in-LLM before layer {stage.index}", budget, share, "of kept positions", official_ms,
                vidcost_stage_ms(stage, method, repeats))]


def compare_pdrop(root: Path, bench: Bench, budget: float, repeats: int) -> list[dict[str, Any]]:
    """PyramidDrop's three stages: `pdrop_rank_drop` on the states entering each stage's layer."""
    path = root / SOURCES["pdrop"]
    helpers = official_functions(path, ["rotate_half", "apply_rotary_pos_emb"])
    rank_drop = official_functions(path, ["pdrop_rank_drop"], owner="LlamaModel", IGNORE_INDEX=-100,
                                   _prepare_4d_causal_attention_mask=causal_mask_4d, **helpers)["pdrop_rank_drop"]
    method = get_method("pdrop")
    notes = []
    try:
        method.plan(bench.inputs.spec.method_view(), budget)
    except ConfigError as err:  # below what its stages reach: the official configuration instead
        notes.append(f"budget {budget} unreachable ({str(err).split(':')[0]}): the official λ = 0.5 instead")
        budget = 0.469
    method, stages = run_method(bench, "pdrop", budget)
    layers = [s for s in stages if s.kind == "layer"]
    total = bench.inputs.spec.num_visual_tokens
    counts = [total] + [s.data["target"] for s in layers]
    # int(N·ratio) is the official count: ratio (c + ½)/N gives exactly vidcost's c (λ^s, floored as theirs)
    ratios = [1.0] + [(c + 0.5) / total for c in counts[1:]]
    rows = []
    for number, stage in enumerate(layers):
        seq, (layer, layer_input) = stage.data["seq"], stage.data["source"]
        model = _pdrop_model(bench, layer, stage.index, ratios, total, seq)
        with torch.inference_mode():
            (_, _, embeds, _), official_ms = timed(
                lambda: rank_drop(model, number, stage.index, layer_input, None, None, None), repeats)
        visual = layer_input[0, seq.visual_slice]
        theirs = seq.visual_positions[rows_of(embeds[0, seq.prefix_len:seq.prefix_len + counts[number + 1]], visual)]
        share = overlap(theirs, stage.data["new"].visual_positions)
        renumbered = torch.equal(seq.position_ids[0], torch.arange(seq.hidden.shape[1]))
        position_note = "positions 0…n−1 on both sides" if renumbered else "vidcost's positions are not 0…n−1"
        rows.append(row("pdrop", f"stage {number + 2} (layer {stage.index})", budget, share,
                        f"of kept positions; {position_note}", official_ms, vidcost_stage_ms(stage, method, repeats),
                        notes if number == 0 else []))
    return rows


def _pdrop_model(bench: Bench, layer: Any, index: int, ratios: list[float], total: int, seq: Any) -> Any:
    """The attributes `pdrop_rank_drop` reads of its LlamaModel, over one real Qwen2 layer.

    Its `rotary_emb(v, seq_len)` is the old transformers signature (a cos/sin table indexed by position_ids);
    its q·k is MHA, so k_proj returns Qwen2's KV heads repeated to the query heads (`repeat_kv`).
    """
    attn = layer.self_attn
    heads = attn.config.num_attention_heads

    def repeated(projection: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        def project(x: torch.Tensor) -> torch.Tensor:
            out = projection(x)
            per_head = out.view(*out.shape[:-1], -1, attn.head_dim)
            return per_head.repeat_interleave(attn.num_key_value_groups, dim=-2).flatten(-2)
        return project

    def rotary_emb(value: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = bench.lm.rotary_emb(value, torch.arange(seq_len)[None])
        return cos[0], sin[0]

    self_attn = types.SimpleNamespace(num_heads=heads, num_key_value_heads=heads, head_dim=attn.head_dim,
                                      q_proj=attn.q_proj, k_proj=repeated(attn.k_proj), v_proj=repeated(attn.v_proj),
                                      rotary_emb=rotary_emb)
    text = seq.hidden.shape[1] - seq.num_visual
    return types.SimpleNamespace(
        layers={index: types.SimpleNamespace(self_attn=self_attn, input_layernorm=layer.input_layernorm)},
        config=types.SimpleNamespace(tokenizer_padding_side="right", tokenizer_model_max_length=1_000_000),
        image_token_ratio_list=ratios, image_tokens=[total], image_token_posi=[seq.prefix_len], prompt_len=[text],
        training=False)


def compare_framefusion(root: Path, bench: Bench, budget: float, repeats: int) -> list[dict[str, Any]]:
    """FrameFusion (S_th 0.6, ratio bound 0.1, cost = budget): the official module at every call."""
    module = load_module(root / SOURCES["framefusion"], "official_framefusion_main")
    attention = official_functions(root / FRAMEFUSION_UTILS, ["scaled_dot_product_attention"])[
        "scaled_dot_product_attention"]
    method, stages = run_method(bench, "framefusion", budget)
    video = bench.encoded[0]
    frames, per_frame, dim = video.shape
    total = frames * per_frame
    select, layers = stages[0], [s for s in stages if s.kind == "layer"]
    first = layers[0].data["seq"] if layers else None
    start = first.prefix_len if first is not None else bench.inputs.prefix_ids.numel()
    sequence = bench.inputs.spec.text_tokens + total
    patch_type = torch.cat([torch.full((start,), -1), torch.arange(per_frame).repeat(frames),
                            torch.full((sequence - start - total,), -1)])[None]
    # layer 0 before attention: the merge sees only the visual rows (text rows are never compared)
    hidden0 = torch.cat([torch.zeros(start, dim, dtype=video.dtype), video.reshape(total, dim),
                         torch.zeros(sequence - start - total, dim, dtype=video.dtype)])[None]

    def fresh() -> Any:
        fusion = module.FrameFusion(budget, 0.6, 0.1)
        fusion.prepare(patch_type.clone(), per_frame, torch.tensor(start), torch.tensor(start + total - 1),
                       torch.tensor(total), sequence)
        return fusion

    def visual_of(position: torch.Tensor) -> torch.Tensor:
        return position[(position >= start) & (position < start + total)] - start

    with torch.inference_mode():
        (fusion, (hidden, position)), official_ms = timed(
            lambda: (lambda f: (f, f(hidden0.clone(), torch.arange(sequence)[None], None)[:2]))(fresh()), repeats)
        _, vidcost_ms = timed(lambda: type(method).select_visual(method, video, budget), repeats)
    rows = [row("framefusion", "layer 0 merge (before the LLM)", budget,
                overlap(visual_of(position[0]), select.data["positions"]), "of kept positions", official_ms,
                vidcost_ms)]
    for stage in layers:
        if fusion.finish_pruning:
            break
        seq, new, (layer, layer_input) = stage.data["seq"], stage.data["new"], stage.data["source"]
        if not torch.equal(visual_of(position[0]), seq.visual_positions):
            rows[-1]["notes"].append("the official module's tokens differ from vidcost's before this call: "
                                     "the later calls are not compared")
            break
        state = (fusion.finish_merging, list(fusion.sparsity_list), fusion.patch_type.clone())

        def official() -> tuple[torch.Tensor, torch.Tensor]:
            fusion.finish_merging, fusion.finish_pruning = state[0], False
            fusion.sparsity_list, fusion.patch_type = list(state[1]), state[2].clone()
            rope = bench.rope(layer_input, position[0])  # the official's own: the kept tokens' original ids
            q, k = projected(layer, layer_input, rope)
            weights = attention(q, k, None, num=1, attn_mask=None, is_causal=True)
            return fusion(seq.hidden, position.clone(), None, weights)[:2]

        with torch.inference_mode():
            (hidden, position), official_ms = timed(official, repeats)
        what = "prune" if state[0] else "merge"
        theirs = visual_of(position[0])
        share = overlap(theirs, new.visual_positions)
        visual_rows = (position[0] >= start) & (position[0] < start + total)
        states = within_ulp(hidden[0, visual_rows], new.hidden[0, new.visual_slice]) if share == 1.0 else False
        rows.append(row("framefusion", f"{what} inside layer {stage.index - 1} (after attention)", budget, share,
                        f"of kept positions, merged states {'equal' if states else 'differ'}", official_ms,
                        vidcost_stage_ms(stage, method, repeats)))
    return rows


def compare_prunevid(root: Path, bench: Bench, budget: float, repeats: int) -> list[dict[str, Any]]:
    """PruneVid's in-LLM stage (after layer 10, α = 0.4) on vidcost's own groups and planned counts."""
    process = official_functions(root / PRUNEVID_CACHE, ["process_attention"], owner="VTPWindowCache")[
        "process_attention"]
    method, stages = run_method(bench, "prunevid", budget)
    (stage,) = [s for s in stages if s.kind == "layer"]
    seq, new, (layer, layer_input) = stage.data["seq"], stage.data["new"], stage.data["source"]
    groups = seq.groups
    if bool((groups[1:] < groups[:-1]).any()):
        raise ConfigError("prunevid's groups are not contiguous in the sequence; process_attention needs its layout")
    sizes = torch.bincount(groups).tolist()
    kept_per_group = torch.bincount(groups[torch.isin(seq.visual_positions, new.visual_positions)],
                                    minlength=len(sizes)).tolist()
    start, stop = seq.visual_slice.start, seq.visual_slice.stop
    bounds = [0] + torch.cumsum(torch.tensor(sizes), 0).tolist()

    def official() -> torch.Tensor:
        attn = layer.self_attn
        q, k = projected(layer, layer_input, None)  # `attn_weights_wo_pos`: before RoPE, no mask
        weights = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(attn.head_dim)
        weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        text_to_image = weights[:, :, stop:, start:stop]  # `obtain_language_attention`: rows after the video
        picks = []
        for group, (size, kept) in enumerate(zip(sizes, kept_per_group)):
            if kept == 0:
                continue
            # one group as a "window" of its own, with α giving exactly the planned count: int(size·α) = kept
            cache = types.SimpleNamespace(alpha=(kept + 0.5) / size)
            local = text_to_image[..., bounds[group]:bounds[group + 1]]
            picks.append(process(cache, local, [size], [0], [1]) + bounds[group])
        return torch.cat(picks)

    with torch.inference_mode():
        theirs, official_ms = timed(official, repeats)
    share = overlap(seq.visual_positions[theirs], new.visual_positions)
    floors = sum(int(size * 0.4) for size in sizes)
    notes = [] if stage.data["target"] != floors else ["the planned count is Σ int(size·0.4), the official α's"]
    return [row("prunevid", f"in-LLM before layer {stage.index}", budget, share,
                f"of kept tokens ({stage.data['target']} of {seq.num_visual}, per-group counts as planned)",
                official_ms, vidcost_stage_ms(stage, method, repeats), notes)]


def compare_dycoke(root: Path, bench: Bench, budget: float, repeats: int) -> list[dict[str, Any]]:
    """DyCoke: `dycole_ttm` driven to vidcost's per-frame count, then `dycoke_pruning` over decode steps."""
    merge = official_functions(root / SOURCES["dycoke"], ["dycole_ttm"])["dycole_ttm"]
    decoder = root / DYCOKE_DECODER
    weights_of = official_functions(decoder, ["calculate_attention_weights"])["calculate_attention_weights"]
    cache_methods = official_functions(decoder, ["dycoke_pruning", "update_cache"], owner="PrunableDynamicCache")
    notes = []
    video = bench.encoded[0]
    frames, per_frame, dim = video.shape
    try:
        get_method("dycoke").plan(bench.inputs.spec.method_view(), budget)
    except ConfigError:
        notes.append(f"budget {budget} is below what DyCoke reaches (whole anchor frames): dycoke_k = 0.7, the "
                     "official default, instead")
        anchors = math.ceil(frames / 4)
        budget = (anchors * per_frame + (frames - anchors) * int(0.3 * per_frame)) / (frames * per_frame)
    method, stages = run_method(bench, "dycoke", budget, decode_steps=DECODE_STEPS)
    select = stages[0]
    positions = select.data["positions"]
    count = int(torch.bincount(positions // per_frame, minlength=frames)[1])
    flat = video.reshape(-1, dim)
    with torch.inference_mode():
        merged, official_ms = timed(lambda: merge(flat, per_frame, 1.0 - (count + 0.5) / per_frame), repeats)
        _, vidcost_ms = timed(lambda: type(method).select_visual(method, video, budget), repeats)
    theirs = rows_of(merged, flat)
    agreeing, differ = dycoke_frame_counts(theirs, positions, frames, per_frame)
    notes += differ
    same = torch.tensor(agreeing)
    mine = positions[torch.isin(positions // per_frame, same)]
    theirs_same = theirs[torch.isin(theirs // per_frame, same)]
    order = "the same order" if torch.equal(mine, theirs_same) else "another order"
    rows = [row("dycoke", "merge (before the LLM)", budget, overlap(theirs_same, mine),
                f"of kept positions in the {len(same)}/{frames} frames whose counts agree, in {order}", official_ms,
                vidcost_ms, notes)]
    rows += _dycoke_decode(bench, method, stages, budget, weights_of, cache_methods, repeats)
    return rows


def _dycoke_decode(bench: Bench, method: Any, stages: list[Stage], budget: float, weights_of: Callable,
                   cache_methods: dict[str, Callable], repeats: int) -> list[dict[str, Any]]:
    """The decode steps: the official `dycoke_pruning` on the attention its decoder computes at layer l − 1."""
    decode = [s for s in stages if s.kind == "decode"]
    kept = stages[0].data["positions"].numel()
    prefill_length = bench.inputs.spec.text_tokens + kept  # the official decodes after the merged sequence
    start = bench.inputs.prefix_ids.numel()
    config = types.SimpleNamespace(image_token_start_index=start, image_token_length=kept, dycoke_radio=0.8,
                                   attention_score=None, similarity=None, seq_length_with_past=0)
    cache = types.SimpleNamespace(kv_cache=None)
    cache.update_cache = lambda attention, cfg: cache_methods["update_cache"](cache, attention, cfg)
    shares, official_times, vidcost_times, refreshed = [], [], [], 0
    for stage in decode:
        _, (layer, entering, _, keys), _ = stage.data["call"]
        position = torch.tensor([prefill_length + stage.index])
        previous_score = config.attention_score

        def official() -> list[int] | None:
            config.attention_score, cache.kv_cache = previous_score, None  # reset below dycoke_l every step
            q, _ = projected(layer, entering, bench.rope(entering, position))
            k = repeat_heads(keys, layer.self_attn.num_key_value_groups)
            config.seq_length_with_past = k.shape[2]
            cache_methods["dycoke_pruning"](cache, (None, weights_of(q, k)), 0, config)
            return cache.kv_cache

        with torch.inference_mode():
            rows_kept, official_ms = timed(official, repeats)
        ours = stage.data["reduction"].keep
        if rows_kept is None or ours is None:
            shares.append(1.0 if rows_kept is None and ours is None else 0.0)
        else:
            theirs = torch.tensor([r - start for r in rows_kept if start <= r < start + kept])
            shares.append(overlap(theirs, ours))
            refreshed += 1
        official_times.append(official_ms)
        vidcost_times.append(vidcost_stage_ms(stage, method, repeats))
    if not decode:
        return []
    share = sum(shares) / len(shares)
    return [row("dycoke", f"decode steps 1–{len(decode)} (layers {method.decode_layer(28)}+)", budget, share,
                f"of attended visual rows, mean over {len(decode)} steps ({refreshed} re-picked)",
                sum(official_times) / len(decode), sum(vidcost_times) / len(decode))]


def compare_divprune(root: Path, bench: Bench, budget: float, repeats: int) -> list[dict[str, Any]]:
    """DivPrune at threshold_ratio = budget on the features the runtime selected from."""
    fns = official_functions(root / SOURCES["divprune"], ["DivPrune", "pairwise_cosine_similarity"],
                             owner="LlavaMetaForCausalLM")
    owner = types.SimpleNamespace(pairwise_cosine_similarity=lambda m: fns["pairwise_cosine_similarity"](None, m))
    method, stages = run_method(bench, "divprune", budget)
    video = stages[0].data["features"]
    flat = video.reshape(-1, video.shape[-1])
    with torch.inference_mode():
        picks, official_ms = timed(lambda: fns["DivPrune"](owner, flat, flat.shape[0], None, threshold_ratio=budget)[0],
                                   repeats)
        _, vidcost_ms = timed(lambda: type(method).select_visual(method, video, budget), repeats)
    return [row("divprune", "selection (before the LLM)", budget, overlap(picks, stages[0].data["positions"]),
                "of kept positions", official_ms, vidcost_ms)]


COMPARISONS = {"divprune": compare_divprune, "dycoke": compare_dycoke, "fastv": compare_fastv,
               "pdrop": compare_pdrop, "framefusion": compare_framefusion, "prunevid": compare_prunevid}


def in_layer_rows(roots: dict[str, Path], dtype: str, budgets: tuple[float, ...], frames: int, per_frame: int,
                  init_std: float, seed: int, repeats: int) -> Iterator[dict[str, Any]]:
    """Every stage of every method in `roots`, at every budget, on one model in `dtype`."""
    bench = build_bench(dtype, frames, per_frame, init_std, seed)
    for name, root in roots.items():
        rows: dict[tuple[str, str, float], dict[str, Any]] = {}
        for budget in budgets:
            for result in COMPARISONS[name](root, bench, budget, repeats):
                key = (result["method"], result["stage"], result["budget"])
                if key in rows:  # the official default again, fallen back to from another budget: once
                    rows[key]["notes"] += [note for note in result["notes"] if note not in rows[key]["notes"]]
                else:
                    rows[key] = result
        yield from rows.values()
