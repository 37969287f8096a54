"""DivPrune: keep the most diverse visual tokens (greedy max–min diversity on cosine distance).

Paper: S. R. Alvar et al., "DivPrune: Diversity-based Visual Token Pruning for Large Multimodal Models"
(CVPR 2025): pruning as a Max-Min Diversity Problem (MMDP) solved greedily. The full text is not among
the seeds; components are cited by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.methods.base import Method, SelectionResult, check_budget
from vidcost.methods.common import check_features, cosine_matrix, keep_count, pre_llm_plan
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
    rows = torch.arange(distance.shape[0])
    distance[rows, rows + start] = float("inf")  # a token is not its own neighbour
    return distance


def nearest_neighbour_distance(flat: "torch.Tensor") -> "torch.Tensor":
    """Cosine distance of each token to its nearest other token: [N, D] → [N] (the greedy's first pick)."""
    import torch

    count = flat.shape[0]
    if count == 1:
        return torch.ones(1)
    return torch.cat([distance_rows(flat, start).min(dim=1).values for start in range(0, count, _ROW_BLOCK)])


def greedy_max_min(flat: "torch.Tensor", keep: int) -> "torch.Tensor":
    """Greedy Max-Min Diversity (DivPrune's MMDP solver): indices (in pick order) of `keep` tokens.

    The first pick is the token farthest from its nearest neighbour; each next pick maximises the
    minimum cosine distance to the tokens already picked. The loop is over picks, never over token pairs:
    each step folds one [N] row into the running minimum. Rows come from the N×N distance matrix,
    computed once by blocked matrix products (one GEMM's worth of work, [N, N] float32 memory); above
    `_MAX_MATRIX_TOKENS` tokens each row is recomputed (an [N, D] mat-vec per pick) instead.
    """
    import torch

    count = flat.shape[0]
    matrix = None
    if 1 < count <= _MAX_MATRIX_TOKENS:
        matrix = torch.cat([distance_rows(flat, start) for start in range(0, count, _ROW_BLOCK)])  # [N, N]
        nearest = matrix.min(dim=1).values
    else:
        nearest = nearest_neighbour_distance(flat)
    unit = torch.nn.functional.normalize(flat.float(), dim=-1)  # [N, D]

    def row(index: "torch.Tensor") -> "torch.Tensor":  # distances from token `index` to all, [N]
        return matrix[index] if matrix is not None else 1.0 - unit @ unit[index]

    picks = torch.empty(keep, dtype=torch.long)
    picks[0] = int(torch.argmax(nearest))
    min_distance = row(picks[0]).clone()
    min_distance[picks[0]] = -float("inf")
    for step in range(1, keep):
        pick = torch.argmax(min_distance)  # first maximum: ties go to the lower index
        picks[step] = pick
        torch.minimum(min_distance, row(pick), out=min_distance)
        min_distance[pick] = -float("inf")  # never picked twice, even among exact duplicates
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
    defaults: ClassVar[dict[str, Any]] = {}

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """round(budget·T·P) visual tokens at every layer."""
        self.resolved_params(**params)
        return pre_llm_plan(spec, budget)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """The greedy max–min diverse subset, returned in ascending position order."""
        import torch

        self.resolved_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        total = frames * per_frame
        kept = keep_count(total, check_budget(budget))
        flat = features.reshape(total, dim)
        if kept == total:
            positions = torch.arange(total)
        else:
            positions = torch.sort(greedy_max_min(flat, kept)).values
        return SelectionResult(tokens=flat[positions].clone(), positions=positions)
