"""FrameFusion: merge each visual token into the same-position token of the previous frame, then prune.

Paper: T. Fu et al., "FrameFusion: Combining Similarity and Importance for Video Token Reduction on
Large Visual Language Models" (arXiv 2501.01986, ICCV 2025): similarity-based merging, then
importance-based pruning. The full text is not among the seeds; components are cited by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult, check_budget
from vidcost.methods.common import check_features, check_range, keep_count, last_query_scores, sorted_topk
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec


def merge_into_previous(tokens: "torch.Tensor", frame: "torch.Tensor", spatial: "torch.Tensor",
                        similarity_floor: float | None, max_merges: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Merge tokens into their same-position predecessor in the previous frame (FrameFusion's merging).

    A token at (frame f, position p) is a merge candidate when (f-1, p) is also present; its score is the
    cosine similarity of the two. The `max_merges` most similar candidates (only those ≥ `similarity_floor`
    when one is given) are merged. Chains collapse: a run of merged tokens along time joins the run's
    earliest unmerged token, whose state becomes the mean of the run.

    Args:
        tokens: [N, D] tokens, ascending by (frame, position).
        frame: [N] frame index of each token.
        spatial: [N] position within the frame.
        similarity_floor: merge only pairs at least this similar; None → merge exactly `max_merges`.
        max_merges: the most tokens to merge away.

    Returns:
        keep [K] ascending indices of the representatives, merged [K, D] their averaged states.
    """
    import torch

    count = tokens.shape[0]
    # Index of each token's predecessor (f-1, p) among the present tokens, or -1: [N].
    key = frame.long() * (int(spatial.max()) + 1) + spatial.long()
    order = torch.argsort(key)
    prev_key = key - (int(spatial.max()) + 1)
    slot = torch.searchsorted(key[order], prev_key).clamp(max=count - 1)
    found = key[order][slot] == prev_key
    predecessor = torch.where(found, order[slot], torch.full_like(key, -1))
    similarity = torch.full((count,), -2.0)
    has = predecessor >= 0
    if bool(has.any()):
        a = torch.nn.functional.normalize(tokens[has].float(), dim=-1)
        b = torch.nn.functional.normalize(tokens[predecessor[has]].float(), dim=-1)
        similarity[has] = (a * b).sum(-1)  # [candidates]
    eligible = has if similarity_floor is None else has & (similarity >= similarity_floor)
    merges = min(max_merges, int(eligible.sum()))
    merged_mask = torch.zeros(count, dtype=torch.bool)
    if merges > 0:
        score = torch.where(eligible, similarity, torch.full_like(similarity, -3.0))
        merged_mask[sorted_topk(score, merges)] = True
    # Follow predecessor links until a kept token: at most T hops, each one vectorised over all tokens.
    root = torch.arange(count)
    for _ in range(int(frame.max()) + 1 if count else 0):
        step = merged_mask[root]
        if not bool(step.any()):
            break
        root = torch.where(step, predecessor[root], root)
    keep = torch.nonzero(~merged_mask).flatten()
    slot_of = torch.full((count,), -1, dtype=torch.long)
    slot_of[keep] = torch.arange(keep.numel())
    group = slot_of[root]  # [N] representative slot of every token
    sums = torch.zeros(keep.numel(), tokens.shape[1], dtype=torch.float32).index_add_(0, group, tokens.float())
    sizes = torch.bincount(group, minlength=keep.numel()).clamp(min=1).unsqueeze(1)
    return keep, (sums / sizes).to(tokens.dtype)


class FrameFusion(Method):
    """FrameFusion (Fu et al. 2025): similarity-based temporal merging, then importance-based pruning.

    Stage 1 (layer 0, similarity-based merging): each visual token is compared with the token at the same
    spatial position in the previous frame (cosine similarity); the most similar are merged into it (mean
    of the merged run, which keeps the representative's position). Layer 0's input is the projected
    visual features, so vidcost runs this stage in `select_visual`.
    Stage 2 (before `prune_layer`, merging then importance-based pruning): the merge is repeated on the
    hidden states for pairs with similarity ≥ `threshold`, and the remaining reduction is FastV-style
    importance pruning (attention of the last query, mean over heads) down to the planned count.

    Budget: the mean visual-token fraction over layers — FrameFusion's "cost" (relative token-layers),
    which is why it is FLOPs-matched with pre-LLM methods at the same budget (HieraVid Table 1). The
    paper's merge amount is set indirectly by its threshold (0.6) and is data-dependent; vidcost fixes the
    layer-0 merge count (a plan must not depend on data) and merges exactly that many, the most similar
    first: layer 0 keeps round(T·P · max(budget, min(1 - merge_ratio, 2·budget))) tokens (`merge_ratio`
    at generous budgets; at tight budgets at most twice the budget, so that the pruning stage always keeps
    a positive count), and never fewer than one frame's P tokens (frame 0 has nothing to merge into).
    The prune count after `prune_layer` is the free ratio, solved so that the mean over
    layers equals the budget (rounded to whole tokens, at least 1).

    Parameters (defaults): merge_ratio=0.3 in [0, 1) — fraction of tokens merged away at layer 0;
    threshold=0.6 in [-1, 1] — similarity lower bound for the in-LLM merge (the paper's value);
    prune_layer=2 in [1, L-1] — the layer before which the in-LLM stage runs (FastV's K = 2).
    """

    name: ClassVar[str] = "framefusion"
    defaults: ClassVar[dict[str, Any]] = {"merge_ratio": 0.3, "threshold": 0.6, "prune_layer": 2}
    attention_need: ClassVar[str] = "last"

    def _params(self, **params: Any) -> dict[str, Any]:
        resolved = self.resolved_params(**params)
        for key in ("merge_ratio", "threshold", "prune_layer"):
            value = resolved[key]
            try:
                if isinstance(value, bool):  # True would silently read as 1
                    raise TypeError(key)
                resolved[key] = (int if key == "prune_layer" else float)(value)
            except (TypeError, ValueError):
                raise ConfigError(f"framefusion parameter {key}={value!r} is not a number") from None
            if key == "prune_layer" and resolved[key] != float(value):  # int(2.5) would truncate to 2
                raise ConfigError(f"framefusion parameter prune_layer={value!r} must be a whole layer number")
        check_range(self.name, "merge_ratio", resolved["merge_ratio"], 0.0, 1.0, high_open=True)
        check_range(self.name, "threshold", resolved["threshold"], -1.0, 1.0)
        return resolved

    def counts(self, total: int, per_frame: int, num_layers: int | None, budget: float,
               **params: Any) -> tuple[int, int, int]:
        """(tokens after the layer-0 merge, tokens after `prune_layer`, prune_layer); the first needs no L."""
        budget = check_budget(budget)
        resolved = self._params(**params)
        layer = resolved["prune_layer"]
        # Layer 0 merges to min(1 - merge_ratio, 2·budget) of the tokens, never below the budget: the
        # factor 2 leaves pruning a positive count for every depth L > 2·prune_layer.
        first = keep_count(total, max(budget, min(1.0 - resolved["merge_ratio"], 2.0 * budget)))
        first = max(first, min(total, per_frame))  # merging into earlier frames leaves ≥ one frame
        if num_layers is None:
            return first, first, layer
        check_range(self.name, "prune_layer", layer, 1, num_layers - 1)
        pruned = round((budget * num_layers * total - layer * first) / (num_layers - layer))
        if pruned < 1:
            raise ConfigError(
                f"framefusion at budget {budget} cannot keep even one token after layer {layer}: layer 0 "
                f"keeps {first} of {total} tokens (it merges down to one frame at most); raise the budget")
        return first, min(pruned, first), layer

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """Merged count for layers [0, prune_layer), then the pruned count (see the class docstring)."""
        if spec.num_layers < 2:
            raise ConfigError(f"framefusion prunes inside the LLM and needs 2 layers or more, got {spec.num_layers}")
        first, later, layer = self.counts(spec.num_visual_tokens, spec.tokens_per_frame, spec.num_layers,
                                          budget, **params)
        visual = (first,) * layer + (later,) * (spec.num_layers - layer)
        return Schedule(visual, spec.text_tokens, spec.num_visual_tokens)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Layer-0 merge: exactly T·P − plan[0] tokens merged into their previous-frame neighbours."""
        import torch

        frames, per_frame, dim = check_features(features, self.name)
        total = frames * per_frame
        first, _, _ = self.counts(total, per_frame, None, budget, **params)
        flat = features.reshape(total, dim)
        index = torch.arange(total)
        keep, merged = merge_into_previous(flat, index // per_frame, index % per_frame, None, total - first)
        return SelectionResult(tokens=merged, positions=keep)

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Merge pairs with similarity ≥ threshold (at most N − keep), then keep the top by attention."""
        hidden, count = context.hidden, context.hidden.shape[0]
        scores = last_query_scores(context.attention, count, keep, self.name)  # [N]
        frame = context.positions // context.tokens_per_frame
        spatial = context.positions % context.tokens_per_frame
        kept, merged = merge_into_previous(hidden, frame, spatial, self._params()["threshold"], count - keep)
        # Rank the representatives by their own last-query attention (FrameFusion's importance).
        top = sorted_topk(scores[kept], keep)
        return LayerReduction(keep=kept[top], hidden=merged[top] if kept.numel() < count else None)
