"""PruneVid: spatio-temporal token merging before the LLM, question-attention pruning inside it.

Huang, Zhou & Han, "PruneVid: Visual Token Pruning for Efficient Video Large Language Models",
ACL Findings 2025 (arXiv 2412.16117); public code github.com/Visual-AI/PruneVid (read, not copied).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult, check_budget
from vidcost.methods.common import (check_features, check_range, check_whole_number, keep_count, sorted_topk,
                                     split_budget)
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

# PruneVid prunes at layer 10; vidcost reads that as a depth of 10/28 (LLaVA-OneVision-7B's 28 layers)
# so that models of other depths prune at the same relative depth.
REFERENCE_LAYERS = 28


class PruneVid(Method):
    """PruneVid (Huang et al. 2025): static-token temporal merging, DPC-kNN spatial merging, attention pruning.

    Stages (paper §3, defaults from the paper / its code):

    1. Temporal segments: DPC-kNN (k = `k`, 7) on mean-pooled frame features with
       max(1, round(T·`temporal_segment_ratio`)) clusters (0.25); each contiguous run of one cluster
       label is a segment.
    2. Static tokens: inside a segment of F ≥ 2 frames, a position whose mean pairwise cross-frame
       cosine similarity (paper Eq. 2–3) exceeds τ = `tau` (0.8) is static and averaged over the
       segment's frames (Eq. 4) into one token at the segment's first frame.
    3. Spatial merging: DPC-kNN clustering of the static tokens of each segment and of the dynamic
       tokens of each frame; every cluster becomes the mean of its members, placed at its centre token.
    4. Inside the LLM at layer `prune_layer` (10, of a 28-layer model; scaled to other depths): rank
       visual tokens by question-to-visual attention, max over heads and question tokens, keep the top
       fraction α = `alpha` (0.4). Without attention, tokens far from the mean visual token rank first.

    Budget: PruneVid sets its retention only indirectly (τ, the cluster ratio, α). vidcost defines the
    budget as the mean visual fraction over layers and solves for the free ratio: the pre-LLM count is
    K0 = budget·N / (φ + α(1 − φ)), φ = prune depth, clipped to N; the in-LLM count is whatever makes the
    mean over the model's layers equal the budget (≈ α·K0). The cluster ratio of stage 3 is then the
    one that yields exactly K0 tokens: K0 is split over segments (≥ 1 each, ∝ their size after temporal
    merging) and inside a segment over its static group and its frames (∝ size). If temporal merging
    alone already goes below K0 (a very static video at a high budget), the least similar static
    positions are treated as dynamic until K0 tokens remain — an effective τ above the default. When
    K0 is below the number of segments, the most similar adjacent segments are merged first (one token
    per segment at least). Frames that duplicate a denser frame never open a cluster of their own, so an
    exactly static video is one segment. φ = 10/28; with the defaults on LLaVA-OV-7B at a 20 % budget
    the paper-convention prefill is 6.96 TFLOPs (17.1 %; HieraVid's Table 2 lists PruneVid at 6.9, 16.9 %).
    Deterministic (the seed is ignored).
    """

    name: ClassVar[str] = "prunevid"
    defaults: ClassVar[dict[str, Any]] = {
        "k": 7, "temporal_segment_ratio": 0.25, "tau": 0.8, "alpha": 0.4, "prune_layer": 10,
    }
    attention_need: ClassVar[str] = "question"

    def _checked(self, **params: Any) -> dict[str, Any]:
        p = self.resolved_params(**params)
        check_whole_number(self.name, "k", p["k"], 1, 10_000)
        check_range(self.name, "temporal_segment_ratio", p["temporal_segment_ratio"], 0.0, 1.0, low_open=True)
        check_range(self.name, "tau", p["tau"], -1.0, 1.0)
        check_range(self.name, "alpha", p["alpha"], 0.0, 1.0, low_open=True)
        check_whole_number(self.name, "prune_layer", p["prune_layer"], 1, REFERENCE_LAYERS - 1)
        return p

    def pre_llm_count(self, num_visual_tokens: int, budget: float, **params: Any) -> int:
        """K0: tokens leaving the pre-LLM stage (independent of the model depth)."""
        p = self._checked(**params)
        depth = p["prune_layer"] / REFERENCE_LAYERS
        share = depth + p["alpha"] * (1.0 - depth)  # mean over layers of (kept / K0)
        return keep_count(num_visual_tokens, min(1.0, check_budget(budget) / share))

    def attention_layer(self, num_layers: int, **params: Any) -> int:
        """The decoder layer before which the attention stage runs on a model of `num_layers` layers."""
        p = self._checked(**params)
        return min(num_layers - 1, max(1, round(p["prune_layer"] * num_layers / REFERENCE_LAYERS)))

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """K0 tokens up to the prune layer, then the count that makes the mean fraction equal the budget."""
        total, layers = spec.num_visual_tokens, spec.num_layers
        first = self.pre_llm_count(total, budget, **params)
        if layers < 2:
            if first > keep_count(total, check_budget(budget)):  # the budget needs the in-LLM stage
                raise ConfigError(f"prunevid at budget {budget} prunes inside the LLM, which needs 2 layers or "
                                  f"more; the model has {layers}")
            return Schedule.constant(layers, first, spec.text_tokens, total)
        cut = self.attention_layer(layers, **params)
        rest = (check_budget(budget) * layers * total - cut * first) / (layers - cut)
        later = min(first, max(1, round(rest)))
        counts = (first,) * cut + (later,) * (layers - cut)
        return Schedule(counts, spec.text_tokens, total)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Stages 1–3 on [T, P, D]: exactly K0 merged tokens; see the class docstring."""
        import torch

        from vidcost.methods import clustering

        p = self._checked(**params)
        frames, per_frame, _ = check_features(features, self.name)
        target = self.pre_llm_count(frames * per_frame, budget, **params)
        x = features.detach().float()  # [T, P, D]
        frame_means = x.mean(1)  # [T, D]
        segments = self.segment(frame_means, p["k"], p["temporal_segment_ratio"])
        segments = clustering.limit_segments(segments, frame_means, target)
        static = _static_positions(x, segments, p["tau"], target)  # list of [P] bool per segment
        sizes = [int(s.sum()) + (b - a + 1) * int((~s).sum()) for s, (a, b) in zip(static, segments)]
        quotas = split_budget(target, [float(n) for n in sizes], sizes, minimum=1)
        tokens, positions = [], []
        for (a, b), is_static, quota in zip(segments, static, quotas):
            seg_tokens, seg_positions = _merge_segment(x[a:b + 1], is_static, quota, p["k"])
            tokens.append(seg_tokens)
            positions.append(seg_positions + a * per_frame)
        positions_t = torch.cat(positions)
        order = torch.argsort(positions_t)
        merged = torch.cat(tokens)[order].to(features.dtype).to(features.device)
        return SelectionResult(tokens=merged, positions=positions_t[order].to(features.device), segments=segments)

    @staticmethod
    def segment(frame_means: "torch.Tensor", k: int = 7, ratio: float = 0.25) -> tuple[tuple[int, int], ...]:
        """Temporal segments of [T, D] pooled frame features: DPC-kNN clusters, split into contiguous runs."""
        from vidcost.methods import clustering

        clusters = max(1, round(frame_means.shape[0] * ratio))
        _, labels = clustering.dpc_cluster(frame_means.unsqueeze(0), clusters, k, exact=True, centres_own=False)
        return clustering.runs_of(labels[0].tolist())

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Keep the `keep` tokens with the largest question attention (max over heads and question rows)."""
        import torch

        if context.attention is not None:
            score = context.attention.float().amax(dim=(0, 1))  # [Q, H, N] → [N]
        else:  # query-free fallback: distinctiveness from the mean visual token
            hidden = context.hidden.float()
            score = 1.0 - torch.nn.functional.cosine_similarity(hidden, hidden.mean(0, keepdim=True), dim=-1)
        if keep > score.numel():
            raise ConfigError(f"prunevid asked to keep {keep} of {score.numel()} visual tokens; keep at most N")
        return LayerReduction(keep=sorted_topk(score, keep))


def _static_positions(x: "torch.Tensor", segments: tuple[tuple[int, int], ...], tau: float,
                      target: int) -> list["torch.Tensor"]:
    """Per segment, [P] bool: positions whose mean pairwise cross-frame cosine > τ (PruneVid Eq. 2–3).

    Static positions of long segments are dropped from the static set, least similar first, while the
    temporal merge would leave fewer than `target` tokens.
    """
    import torch

    frames, per_frame, _ = x.shape
    unit = torch.nn.functional.normalize(x, dim=-1)
    sims, savings = [], []
    for a, b in segments:
        count = b - a + 1
        if count < 2:
            sims.append(torch.full((per_frame,), -float("inf"), device=x.device))
        else:  # mean over pairs t≠t' of cos = (‖Σ_t x̂_t‖² − F) / (F(F−1)), O(F·P·D)
            summed = unit[a:b + 1].sum(0)
            sims.append(((summed * summed).sum(-1) - count) / (count * (count - 1)))
        savings.append(torch.full((per_frame,), float(count - 1), device=x.device))
    sim, saving = torch.cat(sims), torch.cat(savings)  # [M·P]
    order = torch.sort(sim, descending=True, stable=True).indices
    allowed = frames * per_frame - target  # tokens the temporal merge may remove
    fits = torch.cumsum(saving[order], 0) <= allowed
    chosen = torch.zeros_like(sim, dtype=torch.bool)
    chosen[order] = fits & (sim[order] > tau)
    return list(chosen.split(per_frame))


def _merge_segment(x: "torch.Tensor", is_static: "torch.Tensor", quota: int,
                   k: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Merge one segment [F, P, D] to `quota` tokens; returns tokens [quota, D] and flat positions in F·P."""
    import torch

    from vidcost.methods import clustering

    frames, per_frame, _ = x.shape
    static_idx = torch.nonzero(is_static).flatten()
    dynamic_idx = torch.nonzero(~is_static).flatten()
    groups = [len(static_idx)] + [len(dynamic_idx)] * frames
    shares = split_budget(quota, [float(g) for g in groups], groups, minimum=0)
    tokens, positions = [], []
    if len(static_idx) and shares[0]:
        averaged = x[:, static_idx].mean(0, keepdim=True)  # PruneVid Eq. 4: [1, S, D]
        centre, labels = clustering.dpc_cluster(averaged, shares[0], k)
        means = clustering.cluster_means(averaged, labels)
        tokens.append(means[0][centre[0]])
        positions.append(static_idx[centre[0]])  # at the segment's first frame
    if len(dynamic_idx) and sum(shares[1:]):
        dynamic = x[:, dynamic_idx]  # [F, Dn, D]
        centre, labels = clustering.dpc_cluster(dynamic, torch.tensor(shares[1:], device=x.device), k)
        means = clustering.cluster_means(dynamic, labels)
        frame_of = torch.arange(frames, device=x.device).unsqueeze(-1).expand_as(centre)
        tokens.append(means[centre])
        positions.append(frame_of[centre] * per_frame + dynamic_idx.expand_as(centre)[centre])
    return torch.cat(tokens), torch.cat(positions)
