"""FrameFusion: merge visual tokens into the previous surviving same-position token while it pays, then prune.

Paper: T. Fu et al., "FrameFusion: Combining Similarity and Importance for Video Token Reduction on
Large Vision Language Models" (ICCV 2025, arXiv 2501.01986). Official code: thu-nics/FrameFusion,
`FrameFusion.forward`, `compute_similarity_and_token_index_by_patch`, `merge_tokens_and_get_mask` and
`_compute_pruning_ratio` (framefusion/main.py), called by `Qwen2DecoderLayer_merge_then_prune_by_cost_forward`
(framefusion/models/qwen2/modeling_qwen2.py). Read, not copied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult
from vidcost.methods.common import (check_budget, check_features, keep_count, last_query_scores, low_precision,
                                    official_topk, rank_keep)
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

OFFICIAL_LAYERS = 28  # `_compute_pruning_ratio(num_layers=28)`: used when the runtime does not say L


@dataclass(frozen=True)
class FusionState:
    """FrameFusion's per-run state (the official module's attributes), handed from stage to stage.

    Attributes:
        cost: the budget (the official `cost`), which the in-LLM calls need and are not handed.
        sparsity: merge ratio of every merging step so far (`sparsity_list`), each relative to the
            tokens entering that step.
        finish_merging / finish_pruning: the official flags.
    """

    cost: float = 1.0
    sparsity: tuple[float, ...] = ()
    finish_merging: bool = False
    finish_pruning: bool = False


def pruning_ratio(sparsity: tuple[float, ...], cost: float, num_layers: int) -> float:
    """The sparsity the remaining layers need so the mean token fraction is `cost` (`_compute_pruning_ratio`).

    Each merging step counts as one layer at the density it leaves; the other L − len(sparsity) layers
    run at density · (1 − ratio).

    Raises:
        ConfigError: the merging steps already spent more than the cost (the official ValueError).
    """
    density, spent = 1.0, 0.0
    for ratio in sparsity:
        density *= 1.0 - ratio
        spent += density
    remaining = num_layers * cost - spent
    if remaining < 0:  # the official ValueError("The cost is too small")
        raise ConfigError(f"framefusion's merging steps already spent {spent / num_layers:.4g} of the {num_layers} "
                          f"layers' tokens, more than the budget {cost}: on this video it reaches budgets from "
                          f"{spent / num_layers:.4g}; raise the budget")
    needed = remaining / ((num_layers - len(sparsity)) * density)
    return 0.0 if needed > 1 else 1.0 - needed


def patch_similarity(tokens: "torch.Tensor", positions: "torch.Tensor", per_frame: int,
                     frames: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Similarity of every token to the previous surviving token at its spatial position.

    As `compute_similarity_and_token_index_by_patch`: the present tokens ordered by (position in the frame,
    frame) — "by patch" — and each compared (cosine) with the one before it in that order when both share
    the position; the first token of every position gets −2.

    Returns:
        order [N] (indices into `tokens`, patch-major) and similarity [N] in that order.
    """
    import torch

    key = (positions % per_frame) * frames + positions // per_frame  # unique: one token per (frame, position)
    order = torch.argsort(key)
    ordered = tokens[order]  # [N, D], patch-major
    spatial = (positions % per_frame)[order]
    reduced = low_precision(tokens)
    similarity = torch.full((order.numel(),), -2.0, device=tokens.device,
                            dtype=tokens.dtype if reduced else torch.float32)
    if order.numel() > 1 and reduced:
        # the official `cosine_similarity` in that dtype (dot product over the product of the norms), kept
        # in it, so that near-threshold pairs and ties round as they do there
        a, b = ordered[1:], ordered[:-1]
        cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
        similarity[1:] = torch.where(spatial[1:] == spatial[:-1], cos, torch.full_like(cos, -2.0))
    elif order.numel() > 1:
        unit = torch.nn.functional.normalize(ordered.float(), dim=-1)
        cos = (unit[1:] * unit[:-1]).sum(-1)  # each token with the one before it
        similarity[1:] = torch.where(spatial[1:] == spatial[:-1], cos, torch.full_like(cos, -2.0))
    return order, similarity


def merge_marked(tokens: "torch.Tensor", order: "torch.Tensor",
                 marked: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """Merge the marked tokens (patch order) into the token before their run (`merge_tokens_and_get_mask`).

    A run of consecutive marked tokens joins the unmarked token just before it; that token becomes the
    plain mean of itself and the run — unweighted by earlier merges, as the official `index_add_` then
    divide by (run length + 1) does.

    Returns:
        keep [K] ascending indices into `tokens` of the unmarked ones, merged [K, D] their new states.
    """
    import torch

    count = order.numel()
    device = tokens.device
    slot = torch.arange(count, device=device)
    representative = torch.where(marked, torch.zeros_like(slot), slot).cummax(0).values  # [N] patch order
    members = order[marked]  # the tokens that merge away (one read of the mask's size per step)
    keep = torch.sort(order[~marked]).values
    into = torch.searchsorted(keep, order[representative[marked]])  # the kept slot each member joins
    if low_precision(tokens):
        # `merge_tokens_and_get_mask`'s arithmetic in that dtype: index_add_ of the members into their
        # representative, then a division by the (integer) group size, so the means round as the official's
        sums = tokens[keep].index_add_(0, into, tokens[members])
        sizes = torch.ones(keep.numel(), dtype=torch.long, device=device).index_add_(
            0, into, torch.ones(members.numel(), dtype=torch.long, device=device))
        return keep, sums / sizes.unsqueeze(-1)
    sums = tokens[keep].float().index_add_(0, into, tokens[members].float())  # [K, D]: only members added
    sizes = torch.ones(keep.numel(), dtype=torch.float32, device=device).index_add_(
        0, into, torch.ones(members.numel(), dtype=torch.float32, device=device))
    return keep, (sums / sizes.unsqueeze(-1)).to(tokens.dtype)


class FrameFusion(Method):
    """FrameFusion (Fu et al. 2025): similarity-based merging while it pays, then importance-based pruning.

    The official state machine (`FrameFusion.forward`), one call per layer:

    * Merging (until `finish_merging`): every visual token is compared with the previous surviving token
      at its spatial position (cosine); the pairs at or above `threshold` (S_th, 0.6) are candidates, a
      fraction r of the current tokens. With u = the sparsity the rest would need to meet the cost
      (`_compute_pruning_ratio`): if r < u every candidate merges, r is recorded, and merging finishes
      when r < `ratio_lower_bound` (0.1); otherwise only the int(u·N) most similar pairs merge and the
      method is done (no pruning). A pair below the threshold is never merged.
    * Pruning (once, at the call after merging finished): the tokens are ranked by the attention the
      last token pays them (mean over heads) and round(N·(1 − u)) survive, u from all recorded ratios.

    vidcost's calls: the first (the official layer-0 call, before attention) is `select_visual` on the
    projected features; call j ≥ 1 is `reduce_in_llm` where the official makes it — inside layer j−1, after
    its attention and residual, before its MLP (`in_llm_stage_at = "after_attention"`), on those
    post-attention states — so a prune ranks by layer j−1's attention (the last row, on its input), as the
    official one does (`attention_source = "previous"`), layer j−1 caches every token that entered it and
    its MLP runs on the kept ones. (The schedule and the cost model count layer j−1 whole at the count that
    entered it: its MLP's saving on the dropped tokens is not priced.) The official accounting counts merging step j
    as layer j, which is what vidcost's executed schedule records. L is the model's (the official code
    assumes 28). Pairs the official top-k could take across two positions (only when u exceeds the share
    of comparable pairs) are excluded.

    Budget: the cost — the mean visual-token fraction over layers (HieraVid FLOPs-matches it with pre-LLM
    methods at the same budget). How many merges happen depends on the data (`data_dependent_counts`):
    the runtime records the executed counts. The plan is an estimate: the layer-0 merge removes
    `estimated_merge` (0.3) of the tokens (at least enough to leave one token for every later layer),
    merging then stops and layer 1 prunes to the cost, so the plan's mean fraction is the budget while its
    per-layer split is a guess; the executed mean equals the budget up to rounding whatever the data.

    Parameters (defaults): threshold=0.6 (S_th), ratio_lower_bound=0.1, estimated_merge=0.3 (plan only).
    """

    name: ClassVar[str] = "framefusion"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("threshold", 0.6, "float", -1.0, 1.0, doc="S_th: the least similarity of a merged pair"),
        Param("ratio_lower_bound", 0.1, "float", 0.0, 1.0, doc="merging stops after a step merging less than this"),
        Param("estimated_merge", 0.3, "float", 0.0, 1.0, high_open=True,
              doc="plan only: the share of tokens the layer-0 merge is assumed to remove"),
    )
    paper: ClassVar[str] = ("Fu et al., FrameFusion: Combining Similarity and Importance for Video Token Reduction "
                            "on Large Vision Language Models, ICCV 2025")
    budget_rule: ClassVar[str] = "mean"
    data_dependent_counts: ClassVar[bool] = True
    attention_need: ClassVar[str] = "last"
    attention_source: ClassVar[str] = "previous"
    attention_precision: ClassVar[str] = "model"  # utils.scaled_dot_product_attention in the model's dtype
    in_llm_stage_at: ClassVar[str] = "after_attention"  # Qwen2DecoderLayer_merge_then_prune_by_cost_forward

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """The estimate: merge `estimated_merge` at layer 0, prune to the cost before layer 1."""
        budget = check_budget(budget)
        p = self.checked_params(**params)
        total, layers = spec.num_visual_tokens, spec.num_layers
        if layers < 2:
            raise ConfigError(f"framefusion prunes inside the LLM and needs 2 layers or more, got {layers}")
        if p["estimated_merge"] >= 1.0 - budget:  # merging alone reaches the cost
            return Schedule.constant(layers, keep_count(total, budget), spec.text_tokens, total)
        # Layer 0 after the merge, leaving at least one token for each later layer.
        first = min(round(total * (1.0 - p["estimated_merge"])), int(budget * layers * total) - (layers - 1))
        first = max(first, keep_count(total, budget))
        later = min(first, max(1, round((budget * layers * total - first) / (layers - 1))))
        return Schedule((first,) + (later,) * (layers - 1), spec.text_tokens, total)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """The official layer-0 call: one merging step on the projected features."""
        import torch

        budget = check_budget(budget)
        p = self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        flat = features.reshape(frames * per_frame, dim)
        positions = torch.arange(frames * per_frame, device=features.device)
        if budget >= 1.0:
            done = FusionState(cost=budget, finish_merging=True, finish_pruning=True)
            return SelectionResult(tokens=flat.clone(), positions=positions, state=done)
        # The first step's bound is 1 − cost whatever L is (no ratio recorded yet).
        keep, merged, state = self._merge_step(flat, positions, frames, per_frame, FusionState(cost=budget),
                                               OFFICIAL_LAYERS, p)
        return SelectionResult(tokens=merged, positions=positions[keep], state=state)

    def _merge_step(self, tokens: "torch.Tensor", positions: "torch.Tensor", frames: int, per_frame: int,
                    state: FusionState, num_layers: int,
                    p: dict[str, Any]) -> tuple["torch.Tensor", "torch.Tensor", FusionState]:
        """One official merging step; returns (keep, merged states, next state)."""
        import torch

        count = tokens.shape[0]
        upper = pruning_ratio(state.sparsity, state.cost, num_layers)
        order, similarity = patch_similarity(tokens, positions, per_frame, frames)
        candidates = similarity >= p["threshold"]
        merges = int(candidates.sum())  # one read per step, not per token
        if merges / count < upper:
            state = replace(state, sparsity=state.sparsity + (merges / count,),
                            finish_merging=merges / count < p["ratio_lower_bound"])
            marked = candidates
        else:  # merging alone meets the cost: the int(u·N) most similar pairs, and the method is done
            comparable = similarity > -2.0
            scores, count_top = similarity.masked_fill(~comparable, -3.0), min(int(upper * count), int(comparable.sum()))
            top = official_topk(scores, count_top)  # the official `torch.topk` on its similarities
            marked = torch.zeros_like(candidates).index_fill_(0, top, True)
            state = replace(state, finish_merging=True, finish_pruning=True)
        if not bool(marked.any()):
            return torch.arange(count, device=tokens.device), tokens, state
        keep, merged = merge_marked(tokens, order, marked)
        return keep, merged, state

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Official call `context.layer`: another merging step, the pruning step, or nothing."""
        import torch

        p = self.checked_params()
        count = context.hidden.shape[0]
        everything = torch.arange(count, device=context.hidden.device)
        state = context.state
        if not isinstance(state, FusionState):  # driven by a fixed plan: prune to the planned count now
            return LayerReduction(keep=rank_keep(context.attention, count, keep, self.name))
        if state.finish_pruning:
            return LayerReduction(keep=everything, state=state, finished=True)
        num_layers = context.num_layers or OFFICIAL_LAYERS
        if state.finish_merging:
            ratio = pruning_ratio(state.sparsity, state.cost, num_layers)
            kept = max(1, min(count, round(count * (1.0 - ratio))))
            scores = last_query_scores(context.attention, count, kept, self.name)
            return LayerReduction(keep=official_topk(scores, kept), state=replace(state, finish_pruning=True),
                                  finished=True)
        frames = context.num_frames
        kept_index, merged, state = self._merge_step(context.hidden, context.positions, frames,
                                                     context.tokens_per_frame, state, num_layers, p)
        return LayerReduction(keep=kept_index, hidden=None if kept_index.numel() == count else merged, state=state)
