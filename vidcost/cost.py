"""CostModel: analytic FLOPs and bytes of a Video LLM prefill under a token Schedule.

Two conventions (DESIGN §4):

* ``paper`` — HieraVid Eq. 12, also used by FastV, DivPrune and HoliTom:
  ``Σ_layers (4·n·d² + 2·n²·d + 2·n·d·m)`` with n the *visual* tokens entering the layer (text tokens
  only when asked for). It assumes multi-head attention and a two-matrix MLP, and ignores the LM head,
  the vision tower and the elementwise work. It reproduces the papers' vanilla numbers
  (LLaVA-OV-7B, 32 × 196 → 40.8 T; LLaVA-Video-7B, 64 × 169 → 80.2 T).
* ``exact`` — the matrix multiplies a dense kernel executes, at 2 FLOPs per multiply-add: GQA-sized K/V
  projections, all MLP matrices (three for SwiGLU), text tokens, full n×n attention (halved with
  ``causal=True``, as flash kernels skip the masked half), the LM head on the last position only and,
  optionally, the vision tower and projector. Elementwise work (norms, RoPE, softmax, activation,
  residuals) is estimated separately and never added to the matmul total. The independent reference
  is `torch.utils.flop_counter.FlopCounterMode` on the real transformers model (`vidcost.counting`).

Memory: weight bytes for a dtype, KV-cache bytes under the schedule (layers after a prune store fewer
keys and values), a prefill peak-activation estimate, and their total. Decode FLOPs per generated token.

Pure Python arithmetic, no torch: pricing 10,000 schedules takes well under a second
(`analysis/bench_pricing.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Sequence

from vidcost.errors import ConfigError
from vidcost.schedule import Schedule
from vidcost.spec import ModelSpec

CONVENTIONS: tuple[str, ...] = ("paper", "exact")
# Bytes per element of the dtypes vidcost prices and runs.
DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "int8": 1, "fp8": 1}

# Elementwise FLOPs per element (estimates; FlopCounterMode does not count these at all):
_NORM_FLOPS = 4       # RMSNorm: square, mean, rsqrt-scale, weight
_ROPE_FLOPS = 3       # q·cos + rotate_half(q)·sin
_SOFTMAX_FLOPS = 5    # scale, max-subtract, exp, sum, divide (per attention score)
_SWIGLU_FLOPS = 5     # SiLU (≈4) and the gate·up product
_GELU_FLOPS = 8       # tanh-approximate GELU


@dataclass(frozen=True)
class LayerCost:
    """Prefill FLOPs of one LLM decoder layer.

    Attributes:
        layer: decoder layer index.
        visual_tokens: visual tokens entering the layer.
        text_tokens: text tokens entering the layer.
        flops: matmul FLOPs of the layer (projection + attention + MLP).
        projection_flops: Q, K, V and output projections (paper: the 4·n·d² term).
        attention_flops: QKᵀ and attention·V (paper: the 2·n²·d term).
        mlp_flops: the MLP matrices (paper: the 2·n·d·m term).
        elementwise_flops: norms, RoPE, softmax, activation, residuals (exact only; 0 for paper).
    """

    layer: int
    visual_tokens: int
    text_tokens: int
    flops: int
    projection_flops: int
    attention_flops: int
    mlp_flops: int
    elementwise_flops: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"layer": self.layer, "visual_tokens": self.visual_tokens, "text_tokens": self.text_tokens,
                "flops": self.flops, "projection_flops": self.projection_flops,
                "attention_flops": self.attention_flops, "mlp_flops": self.mlp_flops,
                "elementwise_flops": self.elementwise_flops}

    def __str__(self) -> str:
        return (f"L{self.layer}: {self.visual_tokens} visual + {self.text_tokens} text → "
                f"{format_flops(self.flops)}")


@dataclass(frozen=True)
class CostEstimate:
    """Prefill FLOPs of a schedule under one convention.

    Attributes:
        prefill_flops: the total: decoder layers + LM head + vision tower (the last two are 0 in the
            paper convention, and vision is 0 unless `include_vision`). Elementwise work excluded.
        elementwise_flops: estimated elementwise FLOPs (norms, RoPE, softmax, activations), reported
            beside, never inside, `prefill_flops`.
        lm_head_flops: the LM head on the last position (exact only).
        vision_flops: vision tower + projector over all frames (exact with `include_vision` only).
        convention: "paper" or "exact".
        visual_tokens: visual tokens entering each layer (the schedule's).
        text_tokens: text tokens counted in each layer (0 when `include_text` is False).
        causal: attention FLOPs halved as a causal flash kernel executes them.
        include_text: text tokens counted in n.
        layers: one `LayerCost` per LLM layer (built on first access, so that pricing many schedules
            for their totals stays fast).
    """

    prefill_flops: int
    elementwise_flops: int
    lm_head_flops: int
    vision_flops: int
    convention: str
    visual_tokens: tuple[int, ...]
    text_tokens: int
    causal: bool = False
    include_text: bool = True
    dims: tuple[int, ...] = field(default=(), repr=False, compare=False)  # the spec's, for `layers`

    @cached_property
    def layers(self) -> tuple[LayerCost, ...]:
        """Per-layer FLOPs (the per-n terms come from the same cache that priced the total)."""
        entries = []
        text, previous, terms = self.text_tokens, -1, (0, 0, 0, 0)
        for layer, visual in enumerate(self.visual_tokens):
            if visual != previous:  # one lookup per run of equal counts
                terms, previous = _layer_terms(self.dims, self.convention, self.causal, visual + text), visual
            projection, attention, mlp, extra = terms
            entries.append(LayerCost(layer, visual, text, projection + attention + mlp, projection, attention,
                                     mlp, extra))
        return tuple(entries)

    @property
    def layer_flops(self) -> int:
        """Matmul FLOPs of the decoder layers alone."""
        return self.prefill_flops - self.lm_head_flops - self.vision_flops

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"convention": self.convention, "prefill_flops": self.prefill_flops,
                "layer_flops": self.layer_flops, "lm_head_flops": self.lm_head_flops,
                "vision_flops": self.vision_flops, "elementwise_flops": self.elementwise_flops,
                "causal": self.causal, "include_text": self.include_text,
                "layers": [entry.to_dict() for entry in self.layers]}

    def __str__(self) -> str:
        return (f"CostEstimate({self.convention}: {format_flops(self.prefill_flops)} prefill over "
                f"{len(self.visual_tokens)} layers, +{format_flops(self.elementwise_flops)} elementwise)")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a prefill needs on the device.

    Attributes:
        weights_bytes: all parameters (LLM, and vision tower + projector when the spec has one).
        kv_cache_bytes: keys and values of every layer under the schedule (+ generated tokens).
        activation_peak_bytes: the largest transient working set of one LLM layer during prefill (estimate).
        features_bytes: the projected visual features, alive through the prefill, and a pre-LLM selection's
            own copy of the tokens it keeps.
        vision_peak_bytes: the vision tower's and projector's largest working set, all frames in one batch
            as the runtime runs them (`vision_activation_peak_bytes`; 0 for a spec without a tower).
        dtype_bytes: bytes per element used for all of them.
    """

    weights_bytes: int
    kv_cache_bytes: int
    activation_peak_bytes: int
    dtype_bytes: int = 2
    vision_peak_bytes: int = 0
    features_bytes: int = 0

    @property
    def llm_bytes(self) -> int:
        """What the LLM prefill holds above the weights at its peak: KV cache, activation peak, features."""
        return self.kv_cache_bytes + self.activation_peak_bytes + self.features_bytes

    @property
    def total_bytes(self) -> int:
        """Weights + the larger of the two phases: the vision tower's transient (freed before the LLM runs)
        or the LLM prefill's (`llm_bytes`)."""
        return self.weights_bytes + max(self.vision_peak_bytes, self.llm_bytes)

    @property
    def peak_phase(self) -> str:
        """Which phase sets the peak: "vision" or "llm_prefill"."""
        return "vision" if self.vision_peak_bytes > self.llm_bytes else "llm_prefill"

    def to_dict(self) -> dict[str, int | str]:
        return {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_cache_bytes,
                "activation_peak_bytes": self.activation_peak_bytes, "vision_peak_bytes": self.vision_peak_bytes,
                "features_bytes": self.features_bytes,
                "total_bytes": self.total_bytes, "peak_phase": self.peak_phase, "dtype_bytes": self.dtype_bytes}

    def __str__(self) -> str:
        return (f"MemoryEstimate(weights {format_bytes(self.weights_bytes)}, KV "
                f"{format_bytes(self.kv_cache_bytes)}, activations {format_bytes(self.activation_peak_bytes)}, "
                f"vision {format_bytes(self.vision_peak_bytes)}, total {format_bytes(self.total_bytes)} "
                f"(set by {self.peak_phase}))")


def format_flops(flops: float) -> str:
    """Human FLOPs: 40.77 TFLOPs, 1.25 GFLOPs."""
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(flops) >= scale:
            return f"{flops / scale:.2f} {unit}FLOPs"
    return f"{flops:.0f} FLOPs"


def format_bytes(num_bytes: float) -> str:
    """Human bytes in binary units: 14.2 GiB."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(num_bytes) >= scale:
            return f"{num_bytes / scale:.2f} {unit}"
    return f"{num_bytes:.0f} B"


def check_convention(convention: str) -> str:
    """Validate a convention name."""
    if convention not in CONVENTIONS:
        raise ConfigError(f"Unknown cost convention '{convention}'; choose one of {list(CONVENTIONS)}")
    return convention


def _dims(spec: ModelSpec) -> tuple[int, ...]:
    # Hashable key of everything the per-layer cost depends on (for the lru_cache below).
    return (spec.hidden_size, spec.intermediate_size, spec.num_heads, spec.num_kv_heads, spec.head_dim,
            spec.mlp_matrices)


@lru_cache(maxsize=65536)
def _layer_terms(dims: tuple[int, ...], convention: str, causal: bool, n: int) -> tuple[int, int, int, int]:
    """(projection, attention, mlp, elementwise) FLOPs of one layer on n tokens."""
    d, m, heads, kv_heads, head_dim, mlp_matrices = dims
    if convention == "paper":
        # HieraVid Eq. 12: 4·n·d² + 2·n²·d + 2·n·d·m.
        return 4 * n * d * d, 2 * n * n * d, 2 * n * d * m, 0
    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    # 2 FLOPs per MAC: Q [n,d]×[d,h·hd], K and V [n,d]×[d,kv·hd] (GQA), O [n,h·hd]×[h·hd,d].
    projection = 2 * n * d * (2 * q_width + 2 * kv_width)
    # QKᵀ and P·V: 2 · (2·n²·hd) per head; a causal flash kernel skips the masked half.
    scores = n * n * heads
    attention = 4 * scores * head_dim
    if causal:
        attention //= 2
        scores //= 2
    mlp = 2 * n * d * m * mlp_matrices
    activation = _SWIGLU_FLOPS if mlp_matrices == 3 else _GELU_FLOPS
    elementwise = (2 * _NORM_FLOPS * n * d + 2 * n * d            # two RMSNorms, two residual adds
                   + _ROPE_FLOPS * n * (q_width + kv_width)         # RoPE on q and k
                   + n * (q_width + 2 * kv_width)                  # q/k/v biases
                   + _SOFTMAX_FLOPS * scores + activation * n * m)
    return projection, attention, mlp, elementwise


def estimate_cost(spec: ModelSpec, schedule: Schedule, *, convention: str = "paper", causal: bool = False,
                  include_vision: bool = False, include_text: bool | None = None) -> CostEstimate:
    """Prefill FLOPs of `schedule` on `spec`.

    Args:
        spec: the model.
        schedule: tokens entering each LLM layer; must have `spec.num_layers` layers.
        convention: "paper" (HieraVid Eq. 12) or "exact" (dense-kernel matmuls, 2 FLOPs per MAC).
        causal: exact only — halve attention as causal flash kernels do.
        include_vision: exact only — add the vision tower and projector over all frames.
        include_text: count text tokens in n; default False for "paper" (as the papers do), True for
            "exact".

    Raises:
        ConfigError: unknown convention, a schedule of the wrong length, or `causal` / `include_vision`
            with the paper convention (which defines neither).
    """
    check_options(spec, schedule, convention, causal=causal, include_vision=include_vision)
    paper = convention == "paper"
    if include_text is None:
        include_text = not paper
    text = schedule.text_tokens if include_text else 0
    dims = _dims(spec)
    layer_total = elementwise = 0
    for first, last, visual in schedule.segments():
        projection, attention, mlp, extra = _layer_terms(dims, convention, causal, visual + text)
        layer_total += (last - first + 1) * (projection + attention + mlp)
        elementwise += (last - first + 1) * extra
    lm_head = 0 if paper else 2 * spec.hidden_size * spec.vocab_size  # last position only
    vision = vision_flops(spec) if include_vision else 0
    if not paper:
        # The final RMSNorm runs over every position before the last one is taken.
        elementwise += _NORM_FLOPS * (schedule.visual_tokens[-1] + text) * spec.hidden_size
    return CostEstimate(layer_total + lm_head + vision, elementwise, lm_head, vision, convention,
                        schedule.visual_tokens, text, causal, include_text, dims)


def prefill_flops(spec: ModelSpec, schedule: Schedule, *, convention: str = "paper", causal: bool = False,
                  include_text: bool | None = None) -> int:
    """`estimate_cost(...).prefill_flops` without the vision tower: the one number sweeps need."""
    return estimate_cost(spec, schedule, convention=convention, causal=causal,
                         include_text=include_text).prefill_flops


def check_options(spec: ModelSpec, schedule: Schedule, convention: str, *, causal: bool = False,
                  include_vision: bool = False) -> None:
    """Validate a pricing request: convention name, schedule length, options the convention defines."""
    check_convention(convention)
    check_schedule(spec, schedule)
    if convention == "paper" and (causal or include_vision):
        raise ConfigError("the paper convention (HieraVid Eq. 12) has no causal halving and no vision "
                          "tower; use convention 'exact' (--convention exact) for causal / include_vision")


def check_schedule(spec: ModelSpec, schedule: Schedule) -> None:
    """A schedule must give one entry per LLM layer of the spec."""
    if schedule.num_layers != spec.num_layers:
        raise ConfigError(
            f"schedule has {schedule.num_layers} layers but model '{spec.name}' has {spec.num_layers}; "
            "build the schedule for this model")


def vanilla_schedule(spec: ModelSpec, text_tokens: int | None = None) -> Schedule:
    """Every visual token enters every layer."""
    text = spec.text_tokens if text_tokens is None else text_tokens
    return Schedule.constant(spec.num_layers, spec.num_visual_tokens, text)


def flops_ratio(spec: ModelSpec, schedule: Schedule, convention: str = "paper", *, causal: bool = False,
                include_text: bool | None = None) -> float:
    """Prefill FLOPs of `schedule` over those of the vanilla schedule (same initial and text tokens)."""
    vanilla = Schedule.constant(spec.num_layers, schedule.initial_visual_tokens, schedule.text_tokens)
    kwargs = dict(convention=convention, causal=causal, include_text=include_text)
    base = prefill_flops(spec, vanilla, **kwargs)
    return prefill_flops(spec, schedule, **kwargs) / base if base else 1.0


def vision_flops(spec: ModelSpec) -> int:
    """Matmul FLOPs (2 per MAC) of the vision tower and projector over all `spec.frames` frames.

    LLaVA family (SigLIP): per frame, a patch-embedding convolution, `vision_layers` encoder layers
    (four d_v×d_v projections, full attention over the patches, a two-matrix GELU MLP) and the
    two-layer projector (d_v→d→d) on every patch, before 2×2 pooling. Qwen-VL: per temporal patch (two
    frames), see `_qwen_vl_tower_flops`.
    """
    if not spec.vision_layers or not spec.patch_size:
        return 0
    if spec.architecture in QWEN_VL_FAMILIES:
        return spec.temporal_patches * _qwen_vl_tower_flops(spec)
    dv, mv = spec.vision_hidden_size, spec.vision_intermediate_size
    patches = spec.patches_per_frame
    embed = 2 * patches * 3 * spec.patch_size ** 2 * dv
    # Per encoder layer: Q, K, V, O (8·P·d_v²), QKᵀ + P·V (4·P²·d_v), MLP (4·P·d_v·m_v).
    encoder = spec.vision_layers * (8 * patches * dv * dv + 4 * patches * patches * dv + 4 * patches * dv * mv)
    return spec.frames * (embed + encoder) + projector_flops(spec)


QWEN_VL_FAMILIES = ("qwen2_5_vl", "qwen2_vl")


def _qwen_vl_tower_flops(spec: ModelSpec) -> int:
    """One temporal patch of a Qwen-VL tower: P = (H/14)·(W/14) patches of 2 frames each.

    Conv3d patch embedding (3·2·14² → d_v), then per layer: the fused QKV and the output projection
    (8·P·d_v²), QKᵀ + P·V over each attention sequence (4·Σ n²·d_v: n = P in a full-attention layer, a
    window's patches in a windowed one), the MLP (SwiGLU's three d_v×m_v matrices for Qwen2.5-VL, two for
    Qwen2-VL); then the patch merger on P/4 groups of 4: (4·d_v → 4·d_v → d).
    """
    dv, mv = spec.vision_hidden_size, spec.vision_intermediate_size
    patches = spec.patches_per_frame
    embed = 2 * patches * 3 * spec.temporal_patch_size * spec.patch_size ** 2 * dv
    mlp_matrices = 3 if spec.architecture == "qwen2_5_vl" else 2
    full_scores = patches * patches
    window_scores = _window_scores(spec) if spec.vision_window_size else full_scores
    encoder = 0
    for layer in range(spec.vision_layers):
        windowed = spec.vision_window_size and layer not in spec.vision_full_attention_layers
        scores = window_scores if windowed else full_scores
        encoder += 8 * patches * dv * dv + 4 * scores * dv + 2 * mlp_matrices * patches * dv * mv
    return embed + encoder + _qwen_vl_merger_flops(spec)


def projector_flops(spec: ModelSpec) -> int:
    """Matmul FLOPs of the projector alone over all frames (part of `vision_flops`): LLaVA-OV's two-layer
    MLP (d_v→d→d) on every patch before pooling; Qwen-VL's patch merger per temporal patch."""
    if not spec.vision_layers or not spec.patch_size:
        return 0
    if spec.architecture in QWEN_VL_FAMILIES:
        return spec.temporal_patches * _qwen_vl_merger_flops(spec)
    dv, d = spec.vision_hidden_size, spec.hidden_size
    return spec.frames * 2 * spec.patches_per_frame * (dv * d + d * d)


def _qwen_vl_merger_flops(spec: ModelSpec) -> int:
    # P/4 groups of 4 patches: (4·d_v → 4·d_v → d).
    group = spec.pool_stride * spec.pool_stride * spec.vision_hidden_size
    groups = spec.patches_per_frame // (spec.pool_stride * spec.pool_stride)
    return 2 * groups * (group * group + group * spec.hidden_size)


def _window_scores(spec: ModelSpec) -> int:
    """Σ n² over the attention windows of one temporal patch (transformers' `get_vision_window_index`).

    Windows tile the grid of merged tokens in squares of window_size / (merge · patch) per side (4 for
    112 px); the last row and column of windows are cut to what is left of the grid.
    """
    merge, patch = spec.pool_stride, spec.patch_size
    side = max(1, spec.vision_window_size // merge // patch)
    runs = lambda cells: [side] * (cells // side) + ([cells % side] if cells % side else [])  # noqa: E731
    height, width = (pixels // patch // merge for pixels in spec.frame_shape)
    # A window of a × b merged tokens holds (a·merge)·(b·merge) patches.
    return merge ** 4 * sum(a * a for a in runs(height)) * sum(b * b for b in runs(width))


def llm_parameters(spec: ModelSpec) -> int:
    """Parameters of the LLM: embeddings, decoder layers (q/k/v biases as in Qwen2), final norm, LM head."""
    d = spec.hidden_size
    embeddings = spec.vocab_size * d
    return embeddings + spec.num_layers * layer_parameters(spec) + d + (0 if spec.tie_word_embeddings else embeddings)


def layer_parameters(spec: ModelSpec) -> int:
    """Parameters of one decoder layer (what a prefill or decode step reads per layer)."""
    d, q_width, kv_width = spec.hidden_size, spec.num_heads * spec.head_dim, spec.kv_dim
    attention = d * q_width + q_width + 2 * (d * kv_width + kv_width) + q_width * d
    return attention + spec.mlp_matrices * d * spec.intermediate_size + 2 * d


def vision_parameters(spec: ModelSpec) -> int:
    """Parameters of the vision tower and projector (0 without one): SigLIP + LLaVA-OV projector, or a
    Qwen-VL tower and its patch merger."""
    if not spec.vision_layers or not spec.patch_size:
        return 0
    dv, mv, d = spec.vision_hidden_size, spec.vision_intermediate_size, spec.hidden_size
    attention = 4 * (dv * dv + dv)  # Q, K, V (Qwen-VL: one fused qkv) and the output projection, with biases
    if spec.architecture in QWEN_VL_FAMILIES:
        group = spec.pool_stride ** 2 * dv
        embed = 3 * spec.temporal_patch_size * spec.patch_size ** 2 * dv  # Conv3d, no bias
        if spec.architecture == "qwen2_5_vl":  # RMSNorms (weight only), SwiGLU MLP with biases
            norms, mlp, merger_norm = 2 * dv, 3 * dv * mv + 2 * mv + dv, dv
        else:  # LayerNorms, fc1 / fc2
            norms, mlp, merger_norm = 4 * dv, 2 * dv * mv + mv + dv, 2 * dv
        merger = merger_norm + group * group + group + group * d + d
        return embed + spec.vision_layers * (attention + norms + mlp) + merger
    embed = 3 * spec.patch_size ** 2 * dv + dv + spec.patches_per_frame * dv  # conv + position table
    # Projector Linear(d_v→d) + Linear(d→d), and the image-newline vector.
    projector = dv * d + d + d * d + d + d
    layer = attention + 2 * dv * mv + mv + dv + 4 * dv  # attention, MLP, two LayerNorms
    return embed + spec.vision_layers * layer + 2 * dv + projector  # + post LayerNorm


def kv_cache_bytes(spec: ModelSpec, schedule: Schedule, *, dtype_bytes: int = 2,
                   generated_tokens: int = 0) -> int:
    """Keys and values every layer keeps after the prefill: 2 · (cached visual_i + text + generated) · kv_dim · bytes.

    A layer caches the tokens that entered it, unless the schedule says its cache is trimmed later
    (`Schedule.kv_visual_tokens`).
    """
    check_schedule(spec, schedule)
    per_layer = schedule.text_tokens + generated_tokens
    tokens = sum(schedule.kv_visual_tokens) + per_layer * schedule.num_layers
    return 2 * tokens * spec.kv_dim * dtype_bytes


def activation_peak_bytes(spec: ModelSpec, schedule: Schedule, *, dtype_bytes: int = 2,
                          attention: str = "sdpa") -> int:
    """Estimated largest transient working set of one decoder layer during prefill.

    At the widest layer (n tokens): the residual stream and its normed copy (2·n·d) plus the larger
    of the MLP transients (gate, up, activated gate: 3·n·m) and the attention transients (q, k, v,
    output: n·(2·h·hd + 2·kv_dim), plus h·n² scores and probabilities with `attention="eager"`), and
    the last position's fp32 logits.
    """
    check_schedule(spec, schedule)
    if attention not in ("sdpa", "eager"):
        raise ConfigError(f"attention '{attention}' is not 'sdpa' or 'eager'")
    n = max(schedule.visual_tokens) + schedule.text_tokens
    q_width = spec.num_heads * spec.head_dim
    attention_elements = n * (2 * q_width + 2 * spec.kv_dim)
    if attention == "eager":
        attention_elements += 2 * spec.num_heads * n * n
    mlp_elements = 3 * n * spec.intermediate_size
    elements = 2 * n * spec.hidden_size + max(attention_elements, mlp_elements)
    return elements * dtype_bytes + 4 * spec.vocab_size


def vision_activation_peak_bytes(spec: ModelSpec, *, dtype_bytes: int = 2) -> int:
    """The vision tower's and projector's largest working set, every frame in one batch (as the runtime and
    the stock `get_video_features` run them), in bytes; 0 for a spec without a tower.

    LLaVA-OV (SigLIP, F frames × p patches): the tower runs with `output_hidden_states=True`, so every
    layer's output stays alive until it returns. The peak is at the last layer's MLP: the embeddings and
    the L − 1 earlier outputs, the post-attention residual and its normed copy, fc1's output and its GELU —
    F·p·((L + 2)·d_v + 2·m_v) elements (the attention half holds q, k, v and its output instead of the
    MLP's two m_v-wide tensors, less for SigLIP's m_v ≈ 3.7·d_v). The projector then maps the selected
    hidden states (one d_v-wide output kept) through Linear, GELU, Linear: F·p·(d_v + 3·d) at its peak.

    Qwen-VL (R patch rows over all temporal patches): no hidden states kept, and the rotary (cos, sin) of
    every patch (2·h_d wide, h_d = d_v / heads) alive through the tower. A block's attention half holds the
    residual, its normed copy, the fused qkv (3·d_v), the rotated q and k (2·d_v) and, while rotating, q·cos,
    the rotated half and its product with sin (3·d_v): 10·d_v. Its MLP half holds the residual, its normed
    copy and the MLP's transients — SwiGLU (Qwen2.5-VL) gate's activation, up and their product (3·m_v at
    once), Qwen2-VL's fc1 and GELU (2·m_v). The peak is the larger, R·(max(10·d_v, 2·d_v + k·m_v) + 2·h_d).
    The merger's input groups are 4·d_v wide on R/4 rows.
    """
    if not spec.vision_layers or not spec.patch_size:
        return 0
    dv, mv, d = spec.vision_hidden_size, spec.vision_intermediate_size, spec.hidden_size
    if spec.architecture in QWEN_VL_FAMILIES:
        rows = spec.temporal_patches * spec.patches_per_frame
        mlp = 3 if spec.architecture == "qwen2_5_vl" else 2
        rotary = 2 * dv // max(1, spec.vision_heads)
        tower = rows * (max(10 * dv, 2 * dv + mlp * mv) + rotary)
        merger = rows * dv + (rows // 4) * (2 * 4 * dv + d)  # its input, its MLP's hidden and GELU, output
        return max(tower, merger) * dtype_bytes
    rows = spec.frames * spec.patches_per_frame
    tower = rows * ((spec.vision_layers + 2) * dv + 2 * mv)
    projector = rows * (dv + 3 * d)
    return max(tower, projector) * dtype_bytes


def estimate_memory(spec: ModelSpec, schedule: Schedule, *, dtype_bytes: int = 2, generated_tokens: int = 0,
                    attention: str = "sdpa") -> MemoryEstimate:
    """Weights, KV cache and peak activations of a prefill (+ `generated_tokens` decode steps of KV), and
    the vision tower's transient before it.

    Raises:
        ConfigError: `dtype_bytes` not one of 1, 2, 4, 8, or a schedule of the wrong length.
    """
    if dtype_bytes not in (1, 2, 4, 8):
        raise ConfigError(f"dtype_bytes {dtype_bytes!r} is not 1, 2, 4 or 8 (e.g. 2 for bfloat16)")
    weights = (llm_parameters(spec) + vision_parameters(spec)) * dtype_bytes
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv_cache_bytes(spec, schedule, dtype_bytes=dtype_bytes, generated_tokens=generated_tokens),
        activation_peak_bytes=activation_peak_bytes(spec, schedule, dtype_bytes=dtype_bytes, attention=attention),
        dtype_bytes=dtype_bytes, vision_peak_bytes=vision_activation_peak_bytes(spec, dtype_bytes=dtype_bytes),
        features_bytes=features_bytes(spec, schedule, dtype_bytes=dtype_bytes))


def features_bytes(spec: ModelSpec, schedule: Schedule, *, dtype_bytes: int = 2) -> int:
    """The projected features [T', P, d] (the runtime keeps them through the prefill) and, when a pre-LLM
    selection keeps fewer, the new tensor of the tokens it keeps."""
    total = schedule.initial_visual_tokens
    selected = schedule.visual_tokens[0] if schedule.visual_tokens[0] < total else 0
    return (total + selected) * spec.hidden_size * dtype_bytes


def decode_kv_lengths(schedule: Schedule, generated_tokens: int = 0) -> tuple[int, ...]:
    """KV length each layer attends over when decoding after this prefill (+ tokens generated so far)."""
    return tuple(visual + schedule.text_tokens + generated_tokens for visual in schedule.kv_visual_tokens)


def decode_flops(spec: ModelSpec, kv_length: int | Sequence[int], *, convention: str = "exact") -> int:
    """FLOPs to generate one token attending over `kv_length` cached positions.

    Args:
        spec: the model.
        kv_length: cached keys per layer — one number for all layers, or one per layer (see
            `decode_kv_lengths`, which gives the shorter caches of layers after a prune).
        convention: "exact" (GQA, all MLP matrices, 2 FLOPs/MAC, LM head) or "paper" (Eq. 12 with one
            query row: 4·d² + 2·T·d + 2·d·m per layer).

    Raises:
        ConfigError: a negative length, or a per-layer list of the wrong length.
    """
    check_convention(convention)
    lengths = [kv_length] * spec.num_layers if isinstance(kv_length, int) else list(kv_length)
    if len(lengths) != spec.num_layers:
        raise ConfigError(f"kv_length has {len(lengths)} entries; model '{spec.name}' has {spec.num_layers} layers")
    if any(length < 0 for length in lengths):
        raise ConfigError(f"kv_length must be 0 or more, got {min(lengths)}")
    d, m = spec.hidden_size, spec.intermediate_size
    total_length = sum(lengths)
    if convention == "paper":
        return spec.num_layers * (4 * d * d + 2 * d * m) + 2 * d * total_length
    q_width = spec.num_heads * spec.head_dim
    per_layer = 2 * d * (2 * q_width + 2 * spec.kv_dim) + 2 * d * m * spec.mlp_matrices
    # One query row: QKᵀ and P·V over T keys, each 2·T·hd per head.
    attention = 4 * q_width * total_length
    return spec.num_layers * per_layer + attention + 2 * d * spec.vocab_size
