"""OperatorModel: a Video-LLM prefill and decode step priced kernel by kernel, for a GPU nobody has profiled
here (issue #19).

Each stage is the list of kernels transformers launches for it (`decoder_layer_kernels`,
`vision_layer_kernels`, …: the op sequence of `Qwen2DecoderLayer` / `LlamaDecoderLayer`,
`SiglipEncoderLayer`, the projector, the LM head, with each op's shape — tests/latency/test_operators.py
dispatches the installed transformers' real layers and checks the list, its GEMM shapes and its FLOPs).
Each kernel is priced on the device (`DeviceSpec`):

* a GEMM by its shape: the output is cut into tiles of `TILE` × `TILE` (a tile of 16 … 128 rows when the
  GEMM has fewer rows), the tiles run in waves over the SMs, and each wave costs a full wave's time — the
  tile and wave quantisation of NVIDIA's "Matrix Multiplication Background User's Guide" — at the fraction
  of peak cuBLAS reaches on large GEMMs (`DeviceSpec.gemm_efficiency`); against its bytes (both operands and
  the output) at the rate weights stream from memory (`DeviceSpec.weight_read_bandwidth`), whichever is
  longer. A GEMM of few rows is bound by its weight read: the Hockney n½ end falls out of that maximum;
* attention by implementation: `sdpa` / `flash_attention_2` as one fused kernel whose causal prefill computes
  half the n² scores, at the fraction of peak FlashAttention reaches at that sequence length
  (`DeviceSpec.flash_efficiency` with its `flash_half_tokens`); `eager` as what it runs — two
  batched GEMMs over every score, the scale, the mask and a float32 softmax over the n² scores at bandwidth;
* memory-bound ops (RMSNorm's five, rotary's five per tensor, SiLU, residual adds, the KV-cache
  concatenation of a decode step) at the fraction of the bandwidth such kernels sustain
  (`DeviceSpec.memory_efficiency`);
* every kernel at least the device's launch-to-completion floor (`DeviceSpec.launch_seconds`), and the layer
  no faster than the host can issue it: each dispatched op (kernels and the views around them) costs the host
  `DeviceSpec.host_op_seconds`, and on a GPU a layer takes the longer of its device time and its host time
  (the host runs ahead of the GPU only while the kernels are longer than the ops that launch them — a decode
  step of a small model is host-bound); on a CPU the two add.

A pre-LLM selection is the kernels its method's own `select_visual` dispatches at the configuration's token
counts (`vidcost.selection_trace`), split at the host synchronisations it makes. Not priced: an in-LLM
stage's selection (FastV's ranking, PyramidDrop's, FrameFusion's merges: "selection" holds none of it), the
embedding lookup and the text around the video before the LLM ("other").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable

from vidcost.cost import QWEN_VL_FAMILIES, decode_kv_lengths, _window_scores
from vidcost.devices import DeviceSpec
from vidcost.kernels import ATTENTION, GEMM, MEMORY, Kernel, OperatorList
from vidcost.latency import DECODE, Configuration
from vidcost.spec import ModelSpec

ATTENTION_IMPLEMENTATIONS = ("sdpa", "flash_attention_2", "eager")
TILE = 128  # output tile side of the large-GEMM kernels (CUTLASS / cuBLAS 128 × 128 and up)
MIN_TILE_ROWS = 16  # a tensor-core MMA has 16 rows: a GEMM of fewer rows pads to them
FLOAT32 = 4

# Host-only ops (views, transposes, reshapes: dispatched, no kernel) of one decoder layer, as the installed
# transformers dispatches them (tests/latency/test_operators.py counts them on the real layers).
DECODER_HOST_OPS = {"sdpa": 36, "flash_attention_2": 36, "eager": 46}
EAGER_GQA_HOST_OPS = 6  # repeat_kv's expand and reshape of keys and values
VISION_HOST_OPS = {"sdpa": 27, "flash_attention_2": 27, "eager": 37}


def gemm(name: str, m: int, n: int, k: int, size: int, *, batch: int = 1, weight: bool = True) -> Kernel:
    """[m, k] × [k, n] (a `Linear` when `weight`, its [k, n] read once; else `batch` independent matrices)."""
    moved = batch * (m * k + m * n) + (k * n if weight else batch * k * n)
    return Kernel(name, GEMM, 2.0 * batch * m * n * k, float(moved * size), (m, n, k), batch)


def elementwise(name: str, elements: float, read_bytes: float, write_bytes: float) -> Kernel:
    """A memory-bound kernel over `elements`, reading `read_bytes` and writing `write_bytes` per element."""
    return Kernel(name, MEMORY, 0.0, float(elements * (read_bytes + write_bytes)))


def rms_norm(name: str, rows: int, width: int, size: int) -> list[Kernel]:
    """transformers' `Qwen2RMSNorm` / `LlamaRMSNorm`: the states in float32, x · rsqrt(mean(x²) + ε), back to
    the dtype, times the weight — five kernels, two more (the casts) when the dtype is not float32."""
    n = rows * width
    kernels = []
    if size != FLOAT32:
        kernels.append(elementwise(f"{name}.to_float32", n, size, FLOAT32))
    kernels += [elementwise(f"{name}.pow", n, FLOAT32, FLOAT32),
                elementwise(f"{name}.mean", n, FLOAT32, FLOAT32 / width),
                elementwise(f"{name}.add_eps", rows, FLOAT32, FLOAT32),
                elementwise(f"{name}.rsqrt", rows, FLOAT32, FLOAT32),
                elementwise(f"{name}.mul", n, FLOAT32, FLOAT32)]
    if size != FLOAT32:
        kernels.append(elementwise(f"{name}.to_dtype", n, FLOAT32, size))
    kernels.append(elementwise(f"{name}.mul_weight", n, size, size))
    return kernels


def rotary(name: str, rows: int, width: int, size: int) -> list[Kernel]:
    """transformers' `apply_rotary_pos_emb` on one tensor: x·cos + rotate_half(x)·sin — mul, neg (of one
    half), cat, mul, add."""
    n = rows * width
    return [elementwise(f"{name}.mul_cos", n, 2 * size, size), elementwise(f"{name}.neg", n / 2, size, size),
            elementwise(f"{name}.cat", n, size, size), elementwise(f"{name}.mul_sin", n, 2 * size, size),
            elementwise(f"{name}.add", n, 2 * size, size)]


def attention_kernels(rows: int, keys: int, heads: int, kv_heads: int, head_dim: int, size: int, *,
                      implementation: str, causal: bool) -> OperatorList:
    """Scaled dot-product attention of `rows` queries over `keys` keys, as each implementation runs it.

    Fused (`sdpa`, `flash_attention_2`): one kernel, 4 · heads · head_dim FLOPs per (query, key) pair — the
    pairs below the diagonal only when causal — reading q, k, v and writing the output once. `eager`
    (transformers' `eager_attention_forward`): `repeat_kv` copies of keys and values under GQA, QKᵀ as a
    batched GEMM over every pair, the scale, the (materialised) mask, softmax in float32 (with its casts outside
    float32), P·V as a batched GEMM, and the transposed output made contiguous (a copy when rows > 1).
    """
    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    if implementation not in ATTENTION_IMPLEMENTATIONS:
        raise ValueError(f"attention implementation '{implementation}' is not one of {ATTENTION_IMPLEMENTATIONS}")
    if implementation != "eager":
        pairs = rows * keys - (rows * (rows - 1) // 2 if causal else 0)
        moved = (2 * rows * q_width + 2 * keys * kv_width) * size
        return OperatorList((Kernel("attention", ATTENTION, 4.0 * pairs * q_width, float(moved),
                                    (rows, keys, q_width), 1, causal),))
    kernels: list[Kernel] = []
    if kv_heads != heads:
        kernels += [elementwise("repeat_kv.keys", keys * q_width, size, size),
                    elementwise("repeat_kv.values", keys * q_width, size, size)]
    scores = heads * rows * keys
    kernels.append(gemm("attention.qk", rows, keys, head_dim, size, batch=heads, weight=False))
    kernels.append(elementwise("attention.scale", scores, size, size))
    kernels.append(elementwise("attention.mask", scores, 2 * size, size))
    if size != FLOAT32:
        kernels.append(elementwise("attention.softmax_to_float32", scores, size, FLOAT32))
    kernels.append(elementwise("attention.softmax", scores, FLOAT32, FLOAT32))
    if size != FLOAT32:
        kernels.append(elementwise("attention.softmax_to_dtype", scores, FLOAT32, size))
    kernels.append(gemm("attention.pv", rows, head_dim, keys, size, batch=heads, weight=False))
    if rows > 1:
        kernels.append(elementwise("attention.contiguous", rows * q_width, size, size))
    return OperatorList(tuple(kernels), EAGER_GQA_HOST_OPS if kv_heads != heads else 0)


def decoder_layer_kernels(spec: ModelSpec, rows: int, keys: int, size: int, *, implementation: str = "sdpa",
                          cached: int = 0) -> OperatorList:
    """One decoder layer (`Qwen2DecoderLayer`, `LlamaDecoderLayer`) on `rows` new tokens attending to `keys`
    keys (rows + the `cached` ones): RMSNorm, q/k/v projections, rotary on q and k, attention, o_proj,
    residual, RMSNorm, the SwiGLU MLP (gate, up, SiLU, product, down), residual. With a cache (`cached` > 0,
    a decode step) the `DynamicCache` update concatenates the new keys and values to the cached ones: two
    copies of the whole layer cache.
    """
    d, q_width, kv_width = spec.hidden_size, spec.num_heads * spec.head_dim, spec.kv_dim
    kernels = rms_norm("input_layernorm", rows, d, size)
    kernels += [gemm("q_proj", rows, q_width, d, size), gemm("k_proj", rows, kv_width, d, size),
                gemm("v_proj", rows, kv_width, d, size)]
    kernels += rotary("rotary.q", rows, q_width, size) + rotary("rotary.k", rows, kv_width, size)
    if cached:
        kernels += [elementwise("cache.cat_keys", keys * kv_width, size, size),
                    elementwise("cache.cat_values", keys * kv_width, size, size)]
    attention = attention_kernels(rows, keys, spec.num_heads, spec.num_kv_heads, spec.head_dim, size,
                                  implementation=implementation, causal=rows > 1)
    kernels += list(attention.kernels)
    kernels += [gemm("o_proj", rows, d, q_width, size), elementwise("residual", rows * d, 2 * size, size)]
    kernels += rms_norm("post_attention_layernorm", rows, d, size)
    m = spec.intermediate_size
    if spec.mlp_matrices == 3:
        kernels += [gemm("gate_proj", rows, m, d, size), gemm("up_proj", rows, m, d, size),
                    elementwise("act", rows * m, size, size), elementwise("gate_times_up", rows * m, 2 * size, size)]
    else:
        kernels += [gemm("fc1", rows, m, d, size), elementwise("act", rows * m, size, size)]
    kernels += [gemm("down_proj", rows, d, m, size), elementwise("residual", rows * d, 2 * size, size)]
    return OperatorList(tuple(kernels), DECODER_HOST_OPS[implementation] + attention.host_ops)


def vision_layer_kernels(rows: int, sequence: int, sequences: int, scores: int, width: int, intermediate: int,
                         heads: int, size: int, *, mlp_matrices: int = 2, implementation: str = "sdpa") -> OperatorList:
    """One vision encoder layer over `rows` patches in `sequences` attention sequences of `sequence` patches
    (`scores`: Σ n² over them): LayerNorm, q/k/v/out projections, attention, residual, LayerNorm, the MLP
    (fc1, GELU, fc2 — SigLIP's `SiglipEncoderLayer`; Qwen2.5-VL's SwiGLU with `mlp_matrices` 3), residual.
    Attention as `implementation` runs it: fused, or `eager_attention_forward` (`vision_eager_attention`)."""
    kernels = [elementwise("layer_norm1", rows * width, size, size)]
    kernels += [gemm(name, rows, width, width, size) for name in ("q_proj", "k_proj", "v_proj")]
    if implementation == "eager":
        kernels += vision_eager_attention(rows, sequence, sequences, scores, width, heads, size)
    else:
        moved = 4 * rows * width * size
        kernels.append(Kernel("attention", ATTENTION, 4.0 * scores * width, float(moved),
                              (sequence, sequence, width), sequences))
    kernels += [gemm("out_proj", rows, width, width, size), elementwise("residual", rows * width, 2 * size, size),
                elementwise("layer_norm2", rows * width, size, size)]
    if mlp_matrices == 3:
        kernels += [gemm("gate_proj", rows, intermediate, width, size), gemm("up_proj", rows, intermediate, width, size),
                    elementwise("gate_times_up", rows * intermediate, 2 * size, size)]
    else:
        kernels.append(gemm("fc1", rows, intermediate, width, size))
    kernels += [elementwise("act", rows * intermediate, size, size), gemm("fc2", rows, width, intermediate, size),
                elementwise("residual", rows * width, 2 * size, size)]
    return OperatorList(tuple(kernels), VISION_HOST_OPS[implementation])


def vision_eager_attention(rows: int, sequence: int, sequences: int, scores: int, width: int, heads: int,
                           size: int) -> list[Kernel]:
    """transformers' `eager_attention_forward` in a vision layer (no mask, dropout 0 in eval): the transposed
    q and k made contiguous for the batched QKᵀ, the scale, softmax in float32 (with its casts outside
    float32), v made contiguous for P·V, and the transposed output made contiguous — every score materialised
    (LLaVA-NeXT's own SigLIP runs this)."""
    head_dim, matrices, n = width // heads, heads * sequences, heads * scores
    kernels = [elementwise("attention.q_contiguous", rows * width, size, size),
               elementwise("attention.k_contiguous", rows * width, size, size),
               gemm("attention.qk", sequence, sequence, head_dim, size, batch=matrices, weight=False),
               elementwise("attention.scale", n, size, size)]
    if size != FLOAT32:
        kernels.append(elementwise("attention.softmax_to_float32", n, size, FLOAT32))
    kernels.append(elementwise("attention.softmax", n, FLOAT32, FLOAT32))
    if size != FLOAT32:
        kernels.append(elementwise("attention.softmax_to_dtype", n, FLOAT32, size))
    kernels += [elementwise("attention.v_contiguous", rows * width, size, size),
                gemm("attention.pv", sequence, head_dim, sequence, size, batch=matrices, weight=False),
                elementwise("attention.contiguous", rows * width, size, size)]
    return kernels


def vision_kernels(spec: ModelSpec, size: int, implementation: str = "sdpa") -> OperatorList:
    """The vision tower over every frame in one batch, as the runtime runs it: the patch embedding as a GEMM,
    then every encoder layer (`vision_layer_kernels`, attention as `implementation`); Qwen-VL's windowed
    layers attend within windows."""
    if not spec.vision_layers or not spec.patch_size:
        return OperatorList(())
    dv, mv, patches = spec.vision_hidden_size, spec.vision_intermediate_size, spec.patches_per_frame
    qwen = spec.architecture in QWEN_VL_FAMILIES
    groups = spec.temporal_patches if qwen else spec.frames
    rows = groups * patches
    embed_inputs = 3 * spec.patch_size ** 2 * (spec.temporal_patch_size if qwen else 1)
    total = OperatorList((gemm("patch_embedding", rows, dv, embed_inputs, size),))
    mlp_matrices = 3 if spec.architecture == "qwen2_5_vl" else 2
    for layer in range(spec.vision_layers):
        windowed = qwen and spec.vision_window_size and layer not in spec.vision_full_attention_layers
        scores = groups * (_window_scores(spec) if windowed else patches * patches)
        # A windowed layer's sequences: windows of the side's square (their count is Σn² / n² for equal windows).
        side = spec.vision_window_size // spec.patch_size if windowed else 0
        sequence = min(patches, side * side) if windowed else patches
        total += vision_layer_kernels(rows, sequence, max(1, round(scores / sequence ** 2)), scores, dv, mv,
                                      spec.vision_heads, size, mlp_matrices=mlp_matrices,
                                      implementation=implementation)
    return total


def projector_kernels(spec: ModelSpec, size: int) -> OperatorList:
    """LLaVA-OneVision's projector (Linear d_v→d, GELU, Linear d→d on every patch) or Qwen-VL's patch merger
    (a norm, then Linear 4·d_v→4·d_v, GELU, Linear 4·d_v→d on each group of four patches)."""
    if not spec.vision_layers or not spec.patch_size:
        return OperatorList(())
    dv, d = spec.vision_hidden_size, spec.hidden_size
    if spec.architecture in QWEN_VL_FAMILIES:
        group = spec.pool_stride ** 2 * dv
        rows = spec.temporal_patches * spec.patches_per_frame // spec.pool_stride ** 2
        return OperatorList((elementwise("merger.norm", rows * group, size, size),
                             gemm("merger.fc1", rows, group, group, size), elementwise("merger.act", rows * group, size, size),
                             gemm("merger.fc2", rows, d, group, size)))
    rows = spec.frames * spec.patches_per_frame
    return OperatorList((gemm("projector.linear_1", rows, d, dv, size), elementwise("projector.act", rows * d, size, size),
                         gemm("projector.linear_2", rows, d, d, size)))


def head_kernels(spec: ModelSpec, size: int) -> OperatorList:
    """The final RMSNorm and the LM head on the last position (the first token's logits)."""
    return OperatorList(tuple(rms_norm("norm", 1, spec.hidden_size, size))
                        + (gemm("lm_head", 1, spec.vocab_size, spec.hidden_size, size),))


@dataclass(frozen=True)
class OperatorModel:
    """Stage latencies from each kernel's price on a device; `stage_ms` as `LatencyModel.stage_ms`.

    Attributes:
        device: the device, with its SM count, efficiencies, launch floor and host cost per op.
        dtype: the dtype of weights and activations.
        attention: the attention implementation the model runs ("sdpa", "flash_attention_2", "eager").
        vision_attention: the vision tower's (transformers' SigLIP under vidcost's runtime: "sdpa"; LLaVA-NeXT's
            own SigLIP: "eager").
    """

    device: DeviceSpec
    dtype: str
    attention: str = "sdpa"
    vision_attention: str = "sdpa"

    def kernel_seconds(self, kernel: Kernel) -> float:
        """The longer of a kernel's compute and memory time, and at least the launch floor."""
        device = self.device
        # A GEMM streams its weights (measured apart where `--device-spec local` did); the rest of the memory-bound
        # kernels move their bytes at the fraction of the bandwidth such kernels sustain.
        bandwidth = (device.weight_read_bandwidth if kernel.kind == GEMM
                     else device.memory_bandwidth * device.memory_efficiency)
        memory = kernel.bytes / bandwidth
        compute = 0.0
        if kernel.kind == GEMM:
            compute = self.gemm_compute_seconds(*kernel.shape, batch=kernel.batch)
        elif kernel.kind == ATTENTION:
            rate = device.flops_per_second(self.dtype) * device.flash_efficiency_at(kernel.shape[1])
            compute = kernel.flops / rate if rate else 0.0
        return max(compute, memory, device.launch_seconds)

    def gemm_compute_seconds(self, m: int, n: int, k: int, *, batch: int = 1) -> float:
        """Tile and wave quantisation: ceil(m / tm) · ceil(n / TILE) tiles per matrix run in waves of one tile
        per SM, each wave as long as a full tile's 2 · tm · TILE · k FLOPs at the SM's share of the sustained
        rate (peak × `gemm_efficiency`). A device without an SM count is priced at the sustained rate alone."""
        device = self.device
        rate = device.flops_per_second(self.dtype) * device.gemm_efficiency
        if not device.sm_count:
            return 2.0 * batch * m * n * k / rate
        tile_rows = TILE if m >= TILE else max(MIN_TILE_ROWS, 1 << max(0, math.ceil(math.log2(max(m, 1)))))
        tiles = batch * math.ceil(m / tile_rows) * math.ceil(n / TILE)
        waves = math.ceil(tiles / device.sm_count)
        return waves * 2.0 * tile_rows * TILE * k / (rate / device.sm_count)

    def seconds(self, operators: OperatorList) -> float:
        """A stage: on a GPU the longer of its kernels' device time and the host's time to dispatch them (the
        host runs ahead); on a CPU (`DeviceSpec.host_overlaps` False) their sum."""
        device_time = sum(self.kernel_seconds(kernel) * count for kernel, count in operators.distinct)
        host_time = (len(operators.kernels) + operators.host_ops) * self.device.host_op_seconds
        return max(device_time, host_time) if self.device.host_overlaps else device_time + host_time

    def layered_seconds(self, layers: Iterable[OperatorList]) -> float:
        """Layers one after another: each is device- or host-bound on its own."""
        return sum(self.seconds(layer) for layer in layers)

    def stage_ms(self, config: Configuration) -> dict[str, float]:
        """Milliseconds of each stage ("other" is 0, and "selection" holds a pre-LLM selection only: see the
        module docstring)."""
        stages = stage_operators(config, self.attention, self.vision_attention)
        return {name: 1e3 * self.layered_seconds(lists) for name, lists in stages.items()}


@functools.lru_cache(maxsize=1024)
def stage_operators(config: Configuration, attention: str = "sdpa", vision_attention: str = "sdpa"
                    ) -> dict[str, tuple[OperatorList, ...]]:
    """Each stage of `config` as the operator lists that run one after another (a layer, a selection segment
    between host synchronisations), priced one by one (`OperatorModel.layered_seconds`). The shapes depend on
    the configuration only, so a fit that prices the same profiles at many device numbers builds them once."""
    from vidcost.selection_trace import selection_operators

    spec, schedule, size = config.spec, config.schedule, config.dtype_bytes
    text = schedule.text_tokens
    head = head_kernels(spec, size)
    lengths = decode_kv_lengths(schedule, generated_tokens=config.decode_tokens // 2)
    embedding = OperatorList((elementwise("embed_tokens", spec.hidden_size, size, size),), 1)
    return {"vision": (vision_kernels(spec, size, vision_attention),),
            "projector": (projector_kernels(spec, size),),
            "selection": selection_operators(config),
            "llm_prefill": tuple(decoder_layer_kernels(spec, visual + text, visual + text, size,
                                                       implementation=attention)
                                 for visual in schedule.visual_tokens),
            "first_token": (head,), "other": (),
            DECODE: (embedding, *(decoder_layer_kernels(spec, 1, length + 1, size, implementation=attention,
                                                        cached=length) for length in lengths), head)}
