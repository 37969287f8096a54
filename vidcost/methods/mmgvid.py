"""MMG-Vid: segment-level and token-level marginal-gain pruning before the LLM.

Ma et al., "MMG-Vid: Maximizing Marginal Gains at Segment-level and Token-level for Efficient Video
LLMs", arXiv 2508.21044 (2025). Only the abstract is public (no full text, no code; DESIGN §5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.methods.base import Method, SelectionResult, check_budget
from vidcost.methods.common import check_features, check_range, keep_count, pre_llm_plan, split_budget
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec


class MMGVid(Method):
    """MMG-Vid (Ma et al. 2025): frame-similarity segments, marginal-gain budgets, temporal-guided DPC.

    Pre-LLM only: `select_visual` keeps exactly round(budget·T·P) of the original tokens (at least one
    per segment) and every LLM layer sees that many. The abstract fixes the three stages; vidcost's
    choices where it is silent, and why:

    1. Segments. A boundary falls before frame t when the cosine similarity of the mean-pooled features
       of frames t−1 and t is below `threshold` (0.95, the reported value). Segments shorter than
       `min_segment_frames` (2) are absorbed into their more similar neighbour, because a one-frame
       "segment" is usually a transition, not a scene. If the budget leaves fewer tokens than
       segments, the most similar adjacent segments are merged until every segment gets one token.
    2. Segment budgets. The marginal gain of the k-th token in segment m is w_m / k, i.e. segment
       utility w_m·log k: diminishing returns, so the greedy "give the next token to the largest
       marginal gain" allocation equals the proportional allocation k_m ∝ w_m (the KKT point), which is
       computed in closed form (largest remainder, each k_m in [1, tokens in m]). The weight
       w_m = n_m · (richness_m + novelty_m) / 2: n_m tokens, richness = mean token score (below) — how
       much unique, diverse content the segment holds — and novelty = 1 − the largest cosine similarity
       of its pooled feature to any other segment's, so a segment that repeats another gets less.
    3. Temporal-guided DPC. Every token gets intra-frame diversity: DPC-kNN within its frame (k = `k`,
       7 as PruneVid), ρ·δ scaled to [0, 1] per frame; and inter-frame uniqueness: (1 − cos) / 2 with
       the same-position token of the previous frame (1 on a segment's first frame, which nothing in
       the segment precedes). score = (1 − w)·diversity + w·uniqueness, w = `uniqueness_weight` (0.5,
       no reason to favour either). Inside a segment tokens are then picked greedily by marginal gain
       score_i − γ·max cos(i, kept tokens of the same frame), γ = `redundancy_weight` (0.5): the
       paper's "information kept minus redundancy among kept tokens"; across frames, redundancy is
       already priced by the uniqueness term, so the greedy step stays O(P) per pick.

    The question is not used (MMG-Vid is query-agnostic) and the selection is deterministic (the seed
    is ignored). Kept tokens are the original features (pruning, no merging).
    """

    name: ClassVar[str] = "mmgvid"
    defaults: ClassVar[dict[str, Any]] = {
        "threshold": 0.95, "min_segment_frames": 2, "k": 7, "uniqueness_weight": 0.5, "redundancy_weight": 0.5,
    }

    def _checked(self, **params: Any) -> dict[str, Any]:
        p = self.resolved_params(**params)
        check_range(self.name, "threshold", p["threshold"], -1.0, 1.0)
        check_range(self.name, "min_segment_frames", p["min_segment_frames"], 1, 10_000)
        check_range(self.name, "k", p["k"], 1, 10_000)
        check_range(self.name, "uniqueness_weight", p["uniqueness_weight"], 0.0, 1.0)
        check_range(self.name, "redundancy_weight", p["redundancy_weight"], 0.0, 10.0)
        return p

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """Every layer sees round(budget·T·P) visual tokens (pre-LLM only)."""
        self._checked(**params)
        return pre_llm_plan(spec, budget)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Keep round(budget·T·P) tokens of [T, P, D] features; see the class docstring."""
        import torch

        from vidcost.methods import clustering

        p = self._checked(**params)
        frames, per_frame, _ = check_features(features, self.name)
        total = keep_count(frames * per_frame, check_budget(budget))
        x = features.detach().float()  # [T, P, D]
        frame_means = x.mean(1)  # [T, D]
        segments = self.segment(frame_means, threshold=p["threshold"], min_frames=p["min_segment_frames"])
        segments = clustering.limit_segments(segments, frame_means, total)
        score, gram = _token_scores(x, segments, p["k"], p["uniqueness_weight"])  # [T, P], [T, P, P]
        quotas = _segment_quotas(x, frame_means, segments, score, total)
        picked = [_greedy_segment(score[a:b + 1], gram[a:b + 1], quota, p["redundancy_weight"]) + a * per_frame
                  for (a, b), quota in zip(segments, quotas)]
        positions = torch.sort(torch.cat(picked)).values.to(features.device)
        tokens = features.reshape(frames * per_frame, -1)[positions]
        return SelectionResult(tokens=tokens, positions=positions, segments=segments)

    @staticmethod
    def segment(frame_means: "torch.Tensor", threshold: float = 0.95,
                min_frames: int = 2) -> tuple[tuple[int, int], ...]:
        """Segments of [T, D] pooled frame features: cut where adjacent cosine < threshold, absorb short runs."""
        import torch

        from vidcost.methods import clustering

        adjacent = torch.nn.functional.cosine_similarity(frame_means[1:], frame_means[:-1], dim=-1)  # [T-1]
        cuts = [False] + (adjacent < threshold).tolist()
        return clustering.absorb_short_segments(clustering.boundaries_to_segments(cuts), frame_means, min_frames)


def _token_scores(x: "torch.Tensor", segments: tuple[tuple[int, int], ...], k: int,
                  uniqueness_weight: float) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Temporal-guided DPC score [T, P] and the per-frame cosine Gram matrices [T, P, P]."""
    import torch

    from vidcost.methods import clustering
    from vidcost.methods.common import cosine_matrix

    density, delta, _ = clustering.dpc_knn(x, k)  # intra-frame DPC, [T, P] each
    diversity = density * delta
    diversity = diversity / diversity.amax(-1, keepdim=True).clamp_min(1e-12)
    uniqueness = torch.ones_like(diversity)
    if x.shape[0] > 1:
        same_position = torch.nn.functional.cosine_similarity(x[1:], x[:-1], dim=-1)  # [T-1, P]
        uniqueness[1:] = (1.0 - same_position) / 2.0
    for first, _ in segments:  # nothing in the segment precedes its first frame
        uniqueness[first] = 1.0
    score = (1.0 - uniqueness_weight) * diversity + uniqueness_weight * uniqueness
    return score, cosine_matrix(x, x)


def _segment_quotas(x: "torch.Tensor", frame_means: "torch.Tensor", segments: tuple[tuple[int, int], ...],
                    score: "torch.Tensor", total: int) -> list[int]:
    """Tokens per segment ∝ n_m·(richness + novelty)/2 (the greedy log-utility allocation), each ≥ 1."""
    import torch

    per_frame = x.shape[1]
    pooled = torch.stack([frame_means[a:b + 1].mean(0) for a, b in segments])  # [M, D]
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    if len(segments) > 1:
        sims = pooled @ pooled.T
        sims.fill_diagonal_(-1.0)
        novelty = (1.0 - sims.amax(-1)).clamp_min(0.0).tolist()
    else:
        novelty = [1.0]
    sizes = [(b - a + 1) * per_frame for a, b in segments]
    weights = [size * (float(score[a:b + 1].mean()) + nov) / 2.0 + 1e-9
               for size, (a, b), nov in zip(sizes, segments, novelty)]
    return split_budget(total, weights, sizes, minimum=1)


def _greedy_segment(score: "torch.Tensor", gram: "torch.Tensor", quota: int,
                    redundancy_weight: float) -> "torch.Tensor":
    """Greedy marginal-gain picks inside one segment; returns [quota] flat indices (frame·P + token)."""
    import torch

    frames, per_frame = score.shape
    if quota >= frames * per_frame:
        return torch.arange(frames * per_frame, device=score.device)
    flat_score = score.reshape(-1)
    device = score.device
    redundancy = torch.zeros(frames, per_frame, device=device)  # max cosine to kept tokens of the same frame
    taken = torch.zeros(frames * per_frame, dtype=torch.bool, device=device)
    picks = torch.empty(quota, dtype=torch.long, device=device)
    for step in range(quota):  # one step per kept token; each step is O(T·P) vectorised
        gain = (flat_score - redundancy_weight * redundancy.reshape(-1)).masked_fill(taken, -float("inf"))
        j = int(torch.argmax(gain))
        frame, token = divmod(j, per_frame)
        redundancy[frame] = torch.maximum(redundancy[frame], gram[frame, token].clamp_min(0.0))
        taken[j] = True
        picks[step] = j
    return picks
