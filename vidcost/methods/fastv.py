"""FastV: in-LLM pruning by the attention the last token pays the visual tokens (Chen et al., 2024).

Layers 0 … K−1 see every visual token. Before layer K the visual tokens are ranked by the attention the
last query row pays them at layer K−1 (mean over heads; only that one row is computed, from the
layer's q/k — never the n×n matrix) and the top R are kept for layers K … L−1, as in FastV's code
(the "K=2, R=50 %" setting prunes after the second layer).

Parameters:
    layer: K, the first layer that sees the pruned tokens (default 2, 1 ≤ K < L).

Budget: the kept fraction after layer K, R = round(budget · T·P) (FastV reports its ratio this way);
the mean fraction over layers is therefore higher, and the plan says by how much.

Official code: pkunlp-icler/FastV, `LlamaModel.forward` of its transformers fork (the `FASTV_INPLACE`
branch at `idx == AGG_LAYER`): mean over heads of `layer_outputs[1]` (the attention of layer K−1), the last
row, `topk(ATTENTION_RANK)` over the image span — the ranking `reduce_in_llm` follows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method
from vidcost.methods.common import check_budget, check_whole_number, keep_count, rank_keep
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    from vidcost.spec import ModelSpec


class FastV(Method):
    """FastV: keep the visual tokens the last token attends to most, from layer K on."""

    name = "fastv"
    parameters = (Param("layer", 2, "int", 1, None, doc="K: the first layer that sees the pruned tokens (< L)"),)
    paper = "Chen et al., An Image is Worth 1/2 Tokens After Layer 2 (FastV), ECCV 2024"
    budget_rule = "after_first_stage"
    attention_need = "last"
    attention_precision = "model"  # `layer_outputs[1]`: eager attention in the model's dtype, its head mean too

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        check_budget(budget)
        layer = self._layer(spec.num_layers, **params)
        total = spec.num_visual_tokens
        kept = keep_count(total, budget)
        counts = [total] * layer + [kept] * (spec.num_layers - layer)
        return Schedule(tuple(counts), spec.text_tokens, total)

    def _layer(self, num_layers: int, **params: Any) -> int:
        value = self.checked_params(**params)["layer"]
        if num_layers < 2:
            raise ConfigError(f"fastv needs 2 layers or more (one before K to rank tokens), the model has {num_layers}")
        # K ≥ 1: FastV ranks with the attention of the layer before K.
        return check_whole_number(self.name, "layer", value, 1, num_layers - 1)

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Keep the `keep` tokens with the highest head-mean attention from the last token, in order."""
        # attention [Q=1, H, N] → [N]: FastV averages over heads (and the single query row).
        return LayerReduction(keep=rank_keep(context.attention, context.hidden.shape[0], keep, self.name))
