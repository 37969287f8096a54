"""DivPrune: keep the most diverse visual tokens (greedy max–min diversity on cosine distance).

Paper: S. R. Alvar et al., "DivPrune: Diversity-based Visual Token Pruning for Large Multimodal Models"
(CVPR 2025): pruning as a Max-Min Diversity Problem (MMDP) solved greedily. Official code: vbdi/divprune,
`LlavaMetaForCausalLM.DivPrune` (LLaVA/llava/model/llava_arch.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.methods.base import Method, SelectionResult
from vidcost.methods.common import (check_budget, check_features, cosine_matrix, keep_count, low_precision,
                                    pre_llm_plan)
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

_ROW_BLOCK = 2048  # rows of the N×N distance matrix computed at once: bounds the float32 temporaries
_MAX_MATRIX_TOKENS = 16384  # keep the full N×N distances up to 1 GiB of float32; beyond, stream rows


def distance_rows(flat: "torch.Tensor", start: int) -> "torch.Tensor":
    """Cosine distances 1 − cos of rows start..start+B to all tokens, own entries +inf: [B, N]."""
    import torch

    distance = 1.0 - cosine_matrix(flat[start:start + _ROW_BLOCK], flat)  # [B, N]
    rows = torch.arange(distance.shape[0], device=flat.device)
    distance[rows, rows + start] = float("inf")  # a token is not its own neighbour
    return distance


def nearest_neighbour_distance(flat: "torch.Tensor") -> "torch.Tensor":
    """Cosine distance of each token to its nearest other token: [N, D] → [N] (the greedy's first pick)."""
    import torch

    count = flat.shape[0]
    if count == 1:
        return torch.ones(1, device=flat.device)
    return torch.cat([distance_rows(flat, start).min(dim=1).values for start in range(0, count, _ROW_BLOCK)])


def greedy_max_min(flat: "torch.Tensor", keep: int) -> "torch.Tensor":
    """Greedy Max-Min Diversity (DivPrune's MMDP solver): indices (in pick order) of `keep` tokens.

    The first pick is the token farthest from its nearest neighbour (the official code's second-smallest
    entry of each distance column, the smallest being the token itself); each next pick maximises the
    minimum cosine distance to the tokens already picked. The official loop recomputes that minimum over
    all picked rows at every step (O(k²·N)); here each step folds one [N] row into a running minimum
    (O(k·N)), the same picks. Rows come from the N×N distance matrix, computed once by blocked matrix
    products ([N, N] float32 memory); above `_MAX_MATRIX_TOKENS` tokens each row is recomputed (an
    [N, D] mat-vec per pick) instead. The loop never reads a device value on the host: every pick stays
    a device tensor, so on a GPU the k steps queue without a synchronisation. In float32 the distances are
    float32 and a token's own distance is excluded; in bf16 / fp16 they are computed as the official computes
    them, in that dtype (see the code).
    """
    import torch

    count = flat.shape[0]
    matrix = None
    if low_precision(flat) and 1 < count <= _MAX_MATRIX_TOKENS:
        # In a low precision, the official arithmetic in that dtype (`pairwise_cosine_similarity`: divide
        # by the norm, one matmul, 1 − cos) and its first pick (the second-smallest entry of each column,
        # the token's own distance counted), so that its rounding decides the near-ties as it does there.
        unit_low = flat / flat.norm(dim=1, keepdim=True)
        matrix = 1.0 - unit_low @ unit_low.T  # [N, N] in the features' dtype
        nearest = torch.topk(matrix, 2, dim=0, largest=False).values[1]
    elif 1 < count <= _MAX_MATRIX_TOKENS:
        matrix = torch.cat([distance_rows(flat, start) for start in range(0, count, _ROW_BLOCK)])  # [N, N]
        nearest = matrix.min(dim=1).values
    else:
        nearest = nearest_neighbour_distance(flat)
    unit = torch.nn.functional.normalize(flat.float(), dim=-1)  # [N, D]

    def row(index: "torch.Tensor") -> "torch.Tensor":  # distances from token `index` ([1] on device) to all, [N]
        return matrix.index_select(0, index)[0] if matrix is not None else 1.0 - unit @ unit.index_select(0, index)[0]

    picks = torch.empty(keep, dtype=torch.long, device=flat.device)
    pick = torch.argmax(nearest).view(1)
    picks[0:1] = pick
    min_distance = row(pick).clone()
    for step in range(1, keep):
        min_distance.index_fill_(0, pick, -float("inf"))  # never picked twice, even among exact duplicates
        pick = torch.argmax(min_distance).view(1)  # first maximum: ties go to the lower index
        picks[step:step + 1] = pick
        torch.minimum(min_distance, row(pick), out=min_distance)
    return picks


class DivPrune(Method):
    """DivPrune (Alvar et al. 2025): before the LLM, keep a maximally diverse subset of the visual tokens.

    Selection solves the Max-Min Diversity Problem (maximise the smallest pairwise cosine
    distance 1 − cos among the kept tokens) greedily, over all T·P tokens of the
    video at once, as the paper does for video LMMs. Ties go to the lower index, so it is deterministic
    and needs no seed or query.

    Budget: the fraction of visual tokens kept, round(budget·T·P) (at least 1), from layer 0 on.

    Parameters: none.
    """

    name: ClassVar[str] = "divprune"
    position_rule: ClassVar[str] = "compact"  # the official code feeds the LLM the shorter sequence (PositionRule)
    parameters: ClassVar[tuple[Param, ...]] = ()
    paper: ClassVar[str] = ("Alvar et al., DivPrune: Diversity-based Visual Token Pruning for Large Multimodal Models, "
                            "CVPR 2025")

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """round(budget·T·P) visual tokens at every layer."""
        self.checked_params(**params)
        return pre_llm_plan(spec, budget)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """The greedy max–min diverse subset, returned in ascending position order."""
        import torch

        self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        total = frames * per_frame
        kept = keep_count(total, check_budget(budget))
        flat = features.reshape(total, dim)
        if kept == total:
            positions = torch.arange(total, device=features.device)
        else:
            positions = torch.sort(greedy_max_min(flat, kept)).values
        return SelectionResult(tokens=flat[positions].clone(), positions=positions)
