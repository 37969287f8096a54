"""DyCoke temporal token merging (TTM): in groups of 4 frames, keep what differs from the frame it is compared with.

Paper: K. Tao et al., "DyCoke: Dynamic Compression of Tokens for Fast Video Large Language Models"
(CVPR 2025). Official code: KD-TAO/DyCoke, `dycole_ttm` in llava/model/llava_arch.py (the merge before
the LLM) and `dycoke_pruning` / `update_cache` in llava/model/language_model/modeling_qwen2.py (the
dynamic pruning of the visual KV cache while decoding, `DyCoke.reduce_in_decode`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import DecodeContext, DecodeReduction, Method, SelectionResult
from vidcost.methods.common import check_budget, check_features, low_precision
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

GROUP_FRAMES = 4  # `dycole_ttm` strides: pairs (i, i+1) for even i, and (i, i+2) for i a multiple of 4


def reference_frames(frames: int) -> list[int]:
    """The frame each frame is compared with (its own index for the anchors 0, 4, 8, …).

    In a group (a, a+1, a+2, a+3): a+1 and a+2 are compared with the anchor a, a+3 with a+2 — the
    comparisons `dycole_ttm` makes (its even-pair loop gives a+1 ↔ a and a+3 ↔ a+2, its stride-4 loop
    gives a+2 ↔ a).
    """
    offsets = {0: 0, 1: 0, 2: 0, 3: 2}
    return [t - (t % GROUP_FRAMES) + offsets[t % GROUP_FRAMES] for t in range(frames)]


def reference_similarity(x: "torch.Tensor") -> "torch.Tensor":
    """Cosine of every token with the same position of its reference frame (`reference_frames`): [T, P, D] →
    [T, P] in the features' dtype (float32 for float32 features); an anchor's row is 1 (its own reference).

    The frames of one offset in their group (a+1 ↔ a, a+2 ↔ a, a+3 ↔ a+2) are strided views of the video,
    so nothing is gathered. In float32 each cosine is a dot product over the product of the norms — no
    normalised copy of the video; it equals `cosine_similarity` to 1e-7 and is 5× faster at 32 × 196 × 896
    on the CPU. In a lower precision (bf16, fp16) the official operations run in that dtype, as `dycole_ttm`
    runs them on the model's features — normalise then cosine for the pairs of its first loop (a+1 ↔ a,
    a+3 ↔ a+2), cosine of the raw features for its stride-4 loop (a+2 ↔ a) — so the rounding, and with it
    the near-ties between tokens, are the official ones.
    """
    import torch
    import torch.nn.functional as F

    similarity = torch.ones(x.shape[:2], dtype=torch.float32, device=x.device)
    reduced = low_precision(x)
    norms = None if reduced else torch.linalg.vector_norm(x, dim=-1).clamp_min(1e-8)  # [T, P]
    for offset, back in ((1, 1), (2, 2), (3, 1)):  # the offsets of `reference_frames`
        later = x[offset::GROUP_FRAMES]
        count = later.shape[0]
        earlier = x[offset - back::GROUP_FRAMES][:count]
        if reduced:
            # Frame by frame, as the official loops: on one [P, D] frame torch's cosine kernel is twice as fast
            # as on the strided [T/4, P, D] views, and bit for bit the same.
            if back == 1:  # the pair loop: F.normalize, then cosine_similarity
                pairs = [F.cosine_similarity(F.normalize(a, p=2, dim=-1), F.normalize(b, p=2, dim=-1), dim=-1)
                         for a, b in zip(later, earlier)]
            else:  # the stride-4 loop: cosine_similarity of the raw features
                pairs = [F.cosine_similarity(a, b, dim=-1) for a, b in zip(later, earlier)]
            value = torch.stack(pairs) if pairs else later.new_zeros(later.shape[:2])
        else:
            value = torch.linalg.vecdot(later, earlier) / (norms[offset::GROUP_FRAMES]
                                                           * norms[offset - back::GROUP_FRAMES][:count])
        similarity[offset::GROUP_FRAMES] = value.float()
    return similarity.to(x.dtype) if reduced else similarity


def anchor_count(frames: int) -> int:
    """Frames kept whole: the first of every group of 4."""
    return math.ceil(frames / GROUP_FRAMES)


def per_frame_count(frames: int, per_frame: int, budget: float) -> int:
    """Tokens every non-anchor frame keeps so that G·P + (T−G)·c is nearest budget·T·P (G anchors).

    Raises:
        ConfigError: the budget is below the lowest DyCoke reaches — whole anchors and one token of every
            other frame — or, for a video of one frame per group, below 1.
    """
    budget = check_budget(budget)
    anchors = anchor_count(frames)
    others = frames - anchors
    lowest = (anchors * per_frame + others) / (frames * per_frame)
    count = per_frame if others == 0 else round((budget * frames * per_frame - anchors * per_frame) / others)
    if count < 1 or (others == 0 and budget < 1.0):
        raise ConfigError(
            f"dycoke at budget {budget} cannot keep its {anchors} anchor frame(s) of {per_frame} tokens whole "
            f"(1 in {GROUP_FRAMES} frames) plus at least one token of the other {others}: it reaches budgets in "
            f"[{lowest:.4g}, 1] for {frames} frames × {per_frame} tokens; raise the budget")
    return min(per_frame, count)


class DyCoke(Method):
    """DyCoke TTM (Tao et al. 2025): before the LLM, groups of 4 frames, a fixed keep count per frame.

    Following `dycole_ttm`: the frames form groups of 4; the group's first frame (the anchor) is kept
    whole; frames 1 and 2 of the group are compared with the anchor, frame 3 with frame 2, position by
    position (cosine similarity of the same-position tokens); each non-anchor frame keeps its c least
    similar tokens (`topk(largest=False)`), the same c in every frame. The official code sets
    c = int((1 − dycoke_k)·P) with dycoke_k = 0.7; vidcost solves c for the budget:
    c = round((budget·T·P − G·P) / (T − G)) with G = ⌈T/4⌉ anchors, so the plan keeps G·P + (T−G)·c
    tokens — the reachable count nearest budget·T·P. A budget below (G·P + T − G)/(T·P) (≈ 1/4: whole
    anchors, one token elsewhere) is a ConfigError naming the reachable range; DyCoke never turns into
    frame sampling. The c are taken with `topk(largest=False)` as the official takes them (ties broken as
    topk breaks them, deterministic on a device), from cosines computed in the features' dtype as the
    official computes them (`reference_similarity`): in bf16 the same tokens as the official.

    Two boundary cases where vidcost follows the algorithm rather than the official loop bounds
    (`analysis/compare_official.py` reports both): `dycole_ttm`'s stride-4 loop stops at
    `range(0, T - 4, 4)`, so when 4 divides T the last group's frame 2 is kept whole; and its pair loop
    `range(0, T - 1, 2)` drops the last frame of an odd-length video. vidcost compares the last group like
    every other and keeps an odd last frame as the anchor of its own group.

    Decoding (the official `dycoke_pruning`, called at layer `dycoke_l` = `decode_layer` of every decode
    step): the attention the new token pays the visual rows of the cache at the layer before (mean over
    heads) is compared (cosine) with the previous step's; when the similarity is below `refresh_below`
    (0.9; the first step always) the layers from `decode_layer` on attend to the int(Nv·(1 − p)) visual
    rows it attends to most (p = `decode_prune`, the official `dycoke_p` = 0.8) besides every text row and
    generated token. When it is not below, the official code attends to the whole cache (its `kv_cache`
    is reset to None at every step below `dycoke_l`, so the kept rows are not carried over) — vidcost does
    the same; `reuse_when_similar` = true keeps the previous step's rows instead, as the paper describes.
    The cache itself keeps every row. `decode_layer` = 0 turns the decoding stage off (the merge alone).
    Deciding between the two needs the similarity on the host: one read per decode step after the first
    (the official `if config.similarity < 0.9` reads it too).

    Parameters (defaults): decode_layer=3, decode_prune=0.8, refresh_below=0.9, reuse_when_similar=false
    (the group size 4 of the merge is fixed by the official code).
    """

    name: ClassVar[str] = "dycoke"
    position_rule: ClassVar[str] = "compact"  # the official code feeds the LLM the shorter sequence (PositionRule)
    sequence_order: ClassVar[str] = "method"  # dycole_ttm's: frame by frame, kept tokens by ascending similarity
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("decode_layer", 3, "int", 0, None, doc="dycoke_l: the first layer whose decode attention is pruned "
              "(0: no pruning while decoding)"),
        Param("decode_prune", 0.8, "float", 0.0, 1.0, high_open=True,
              doc="dycoke_p: the share of visual cache rows a decode step leaves out"),
        Param("refresh_below", 0.9, "float", -1.0, 1.0, doc="re-pick the rows when the step's visual attention "
              "has a cosine below this with the previous step's"),
        Param("reuse_when_similar", False, "bool", doc="on a similar step keep the previous rows (the paper) "
              "instead of attending to the whole cache (the official code)"),
    )
    paper: ClassVar[str] = "Tao et al., DyCoke: Dynamic Compression of Tokens for Fast Video Large Language Models, CVPR 2025"
    budget_rule: ClassVar[str] = "nearest"
    official: ClassVar[str] = ("dycoke_k = 0.7: c = int(0.3·P) tokens in every non-anchor frame, i.e. budget "
                               "(G·P + (T−G)·int(0.3·P)) / (T·P) — 0.472 at 32 × 196; any other budget solves c — "
                               "vidcost's variant")
    attention_precision: ClassVar[str] = "model"  # calculate_attention_weights: q·kᵀ, softmax in the model's dtype

    def kept_tokens(self, frames: int, per_frame: int, budget: float, **params: Any) -> int:
        """G·P + (T−G)·c: the tokens DyCoke keeps at this budget."""
        self.checked_params(**params)
        count = per_frame_count(frames, per_frame, budget)
        anchors = anchor_count(frames)
        return anchors * per_frame + (frames - anchors) * count

    def official_budget(self, spec: "ModelSpec") -> float | None:
        """dycoke_k = 0.7: c = int(0.3·P) in every non-anchor frame (three decimals, as budgets are quoted)."""
        view = spec.method_view()
        frames, per_frame = view.frames, view.tokens_per_frame
        anchors = anchor_count(frames)
        return round((anchors * per_frame + (frames - anchors) * int(0.3 * per_frame)) / (frames * per_frame), 3)

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """The kept count at every layer."""
        kept = self.kept_tokens(spec.frames, spec.tokens_per_frame, budget, **params)
        return Schedule.constant(spec.num_layers, kept, spec.text_tokens, spec.num_visual_tokens)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Anchors whole; elsewhere the c tokens least similar to the reference frame, in the official order:
        frame by frame, each non-anchor frame's kept tokens in ascending similarity (so positions do not
        ascend within those frames; with `position_rule` "compact" the LLM numbers them in this order)."""
        import torch

        self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        count = per_frame_count(frames, per_frame, budget)
        device = features.device
        similarity = reference_similarity(features)  # [T, P], in the features' dtype as the official
        # The c least similar of every frame at once, by `topk(largest=False)` as the official takes them (in
        # bf16 many cosines tie, and topk's order among ties is the official's); an anchor is compared with
        # itself, so its row is meaningless and it is kept whole instead.
        order = torch.topk(similarity, count, dim=-1, largest=False).indices  # [T, c] ascending similarity
        # The official order: frame after frame, an anchor's tokens in place and another frame's kept
        # tokens in ascending similarity (`dycole_ttm` appends `frame_tokens[topk(largest=False).indices]`).
        # Which frames are anchors is host arithmetic, so the sequence is cut without reading the device.
        # At budget 1.0 nothing is dropped and every frame stays in place: the stock sequence.
        whole = torch.arange(per_frame, device=device)
        pieces = [t * per_frame + (whole if t % GROUP_FRAMES == 0 or count == per_frame else order[t])
                  for t in range(frames)]
        positions = torch.cat(pieces)
        return SelectionResult(tokens=features.reshape(frames * per_frame, dim)[positions],  # a new tensor
                               positions=positions)


    def decode_layer(self, num_layers: int) -> int | None:
        """`dycoke_l`, or None when it is 0 (no decode-time pruning).

        Raises:
            ConfigError: a layer the model does not have past its first.
        """
        layer = self.checked_params()["decode_layer"]
        if layer == 0:
            return None
        if layer >= num_layers:
            raise ConfigError(f"dycoke parameter decode_layer={layer} must be below the model's {num_layers} layers "
                              "(or 0 to leave decoding alone)")
        return layer

    def reduce_in_decode(self, context: DecodeContext) -> DecodeReduction:
        """The visual cache rows this step attends to (see the class docstring); state: (attention, rows)."""
        import torch

        p = self.checked_params()
        attention = context.attention.mean(0)  # [Nv]: mean over heads in the attention's dtype, as `attn[1].mean(1)`
        previous, rows = context.state if context.state is not None else (None, None)
        refresh = previous is None or bool(
            torch.nn.functional.cosine_similarity(attention, previous, dim=0) < p["refresh_below"])
        if refresh:
            count = max(1, int(attention.numel() * (1.0 - p["decode_prune"])))
            rows = torch.topk(attention, count, sorted=False).indices
        keep = rows if refresh or p["reuse_when_similar"] else None
        return DecodeReduction(keep=keep, state=(attention, rows))
