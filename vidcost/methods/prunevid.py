"""PruneVid: spatio-temporal token merging before the LLM, question-attention pruning inside it.

Huang, Zhou & Han, "PruneVid: Visual Token Pruning for Efficient Video Large Language Models",
ACL Findings 2025 (arXiv 2412.16117). Official code: Visual-AI/PruneVid — `merge_frames_dynamic`,
`cluster_dpc_knn`, `refine_clusters`, `segment_lengths` (models/pllava/modeling_pllava.py) and
`VTPWindowCache.process_attention` / `prompt_prefill` (models/pllava/elastic_cache.py), run by
`LlamaModelVTP.forward` (models/pllava/llama.py). Read, not copied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult
from vidcost.methods.common import check_budget, check_features, keep_count, split_budget
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

# The pre-LLM count K0 is solved with the prune depth of a 28-layer model (LLaVA-OneVision-7B / Qwen2-7B),
# so that `select_visual` needs no model spec; `plan` then solves the in-LLM count on the real depth.
REFERENCE_LAYERS = 28


class PruneVid(Method):
    """PruneVid (Huang et al. 2025): temporal segments, static merging, DPC-kNN merging, per-group attention.

    Stages, as `merge_frames_dynamic` and `VTPWindowCache` run them (defaults from the official
    `scripts/eval.sh`: τ = 0.8, temporal_segment_ratio = 0.25, cluster_ratio = 0.5, selected_layer = 10,
    α = 0.4, k = 7):

    1. Temporal segments: `cluster_dpc_knn` (k = `k`) on the mean-pooled frame features into
       int(T·`temporal_segment_ratio`) clusters (at least 1), refined by `refine_clusters` (each
       cluster keeps its longest run, fragments join the neighbour with the longer run); every run of
       one refined label is a segment (`segment_lengths`).
    2. Static tokens: inside a segment of F ≥ 2 frames, a position whose mean pairwise cross-frame cosine
       (paper Eq. 2–3) exceeds τ = `tau` is static and averaged over the segment's frames (Eq. 4) into one
       token at the segment's first frame; the others are the dynamic tokens of each frame.
    3. Spatial merging: each segment's static group and each frame's dynamic group with more than
       `cluster_above` (14) tokens is DPC-kNN-clustered and every cluster becomes the mean of its
       members (`compute_cluster_vectors`), placed at its centre token; smaller groups are kept whole.
    4. Inside the LLM: after layer `prune_layer` (10), ranked by that layer's attention from every row
       after the video to the visual tokens (before RoPE, unmasked; max over heads, then rows), the top α =
       `alpha` of every group — each segment's static group and each frame's dynamic group
       (`SelectionResult.groups`) — survive (`process_attention`). In vidcost's terms: a drop before layer
       `prune_layer` + 1 with `attention_source = "previous"`. The official code then trims the KV cache of
       layers 0…`prune_layer` to the survivors (`prompt_prefill`): the plan's `cached_visual_tokens` say so.

    Budget: PruneVid sets its retention only indirectly (τ, the cluster ratio, α). vidcost defines the
    budget as the mean visual fraction over layers and solves for the free ratio, the cluster ratio:
    K0 = budget·N / (φ + α(1 − φ)) tokens leave the pre-LLM stage, φ = (`prune_layer` + 1)/28, clipped to
    N; the groups of stage 3 get K0 between them — the small ones whole, the others in proportion to their
    size (largest remainder), which at the official defaults is int(size·0.5) give or take one token
    (when that split is impossible: ∝ segment size with ≥ 1 per segment, then ∝ group size). Inside the
    LLM the planned count (≈ α·K0, solved so the mean over the model's layers is the budget) is split over
    the groups — int(size·α) each when that is the planned count, as the official code floors it, else in
    proportion to their size — and each keeps its best-attended tokens. If temporal merging alone goes
    below K0 (a very static video at a high budget), the least similar static positions are treated as
    dynamic until K0 tokens remain (an effective τ above the default); when K0 is below the number of
    segments, the most similar adjacent segments are merged first. On models with fewer than
    `prune_layer` + 2 layers the prune moves to the second-to-last layer's attention.

    Departures from the official code, all reported by `analysis/compare_official.py`: ties in density
    go to the lower index where the official code adds 1e-6 of uniform noise (so the official code is
    not deterministic). The attention of stage 4 is the official one: every row after the video, q·kᵀ
    without RoPE and without a mask in the model's dtype (`attention_form` "plain"). The merged sequence is laid out as the official one (segment by segment,
    static clusters then each frame's dynamic clusters, each group in cluster order) and numbered 0…n′−1
    (`position_rule` "compact": the official code feeds the LLM the shorter sequence).
    With the defaults on LLaVA-OV-7B at a 20 % budget the paper-convention prefill is 6.96 TFLOPs
    (17.1 %; HieraVid's Table 2 lists PruneVid at 6.9, 16.9 %). Deterministic (the seed is ignored).
    """

    name: ClassVar[str] = "prunevid"
    position_rule: ClassVar[str] = "compact"  # the official code feeds the LLM the shorter sequence (PositionRule)
    sequence_order: ClassVar[str] = "method"  # merge_frames_dynamic's: per segment, static then per-frame dynamic
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("k", 7, "int", 1, 10_000, doc="neighbours of the DPC-kNN density"),
        Param("temporal_segment_ratio", 0.25, "float", 0.0, 1.0, low_open=True,
              doc="temporal clusters per frame (int(T·ratio) clusters)"),
        Param("tau", 0.8, "float", -1.0, 1.0, doc="τ: mean cross-frame cosine above which a position is static"),
        Param("alpha", 0.4, "float", 0.0, 1.0, low_open=True, doc="α: share of every group kept inside the LLM"),
        Param("prune_layer", 10, "int", 0, None, doc="the layer whose question attention ranks; the next layers "
              "see the pruned tokens (< L-1)"),
        Param("cluster_above", 14, "int", 0, 1_000_000, doc="groups with more tokens than this are clustered, "
              "smaller ones kept whole"),
    )
    paper: ClassVar[str] = "Huang, Zhou & Han, PruneVid: Visual Token Pruning for Efficient Video LLMs, ACL Findings 2025"
    attention_need: ClassVar[str] = "after_video"  # obtain_language_attention: every row after the video
    attention_form: ClassVar[str] = "plain"  # attn_weights_wo_pos: no RoPE, no mask, the model's dtype
    attention_precision: ClassVar[str] = "model"
    official: ClassVar[str] = ("cluster_ratio = 0.5: int(size·0.5) of every group over 14 tokens, a count the "
                               "video decides; vidcost's quotas are exactly those when the budget gives that K0 "
                               "(analysis/compare_official.py), and at any other budget solve the ratio — "
                               "vidcost's variant")
    attention_source: ClassVar[str] = "previous"

    def pre_llm_count(self, num_visual_tokens: int, budget: float, **params: Any) -> int:
        """K0: tokens leaving the pre-LLM stage (independent of the model depth)."""
        p = self.checked_params(**params)
        depth = min(REFERENCE_LAYERS, p["prune_layer"] + 1) / REFERENCE_LAYERS
        share = depth + p["alpha"] * (1.0 - depth)  # mean over layers of (kept / K0)
        return keep_count(num_visual_tokens, min(1.0, check_budget(budget) / share))

    def drop_layer(self, num_layers: int, **params: Any) -> int:
        """The first decoder layer that sees the pruned tokens: `prune_layer` + 1, at most L − 1."""
        p = self.checked_params(**params)
        return max(1, min(num_layers - 1, p["prune_layer"] + 1))

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """K0 tokens up to the prune, then the count that makes the mean fraction the budget; caches trimmed."""
        total, layers = spec.num_visual_tokens, spec.num_layers
        first = self.pre_llm_count(total, budget, **params)
        if layers < 2:
            if first > keep_count(total, check_budget(budget)):  # the budget needs the in-LLM stage
                raise ConfigError(f"prunevid at budget {budget} prunes inside the LLM, which needs 2 layers or "
                                  f"more; the model has {layers}")
            return Schedule.constant(layers, first, spec.text_tokens, total)
        cut = self.drop_layer(layers, **params)
        rest = (check_budget(budget) * layers * total - cut * first) / (layers - cut)
        later = min(first, max(1, round(rest)))
        counts = (first,) * cut + (later,) * (layers - cut)
        # `prompt_prefill` keeps only the survivors' keys and values in the layers before the prune too.
        return Schedule(counts, spec.text_tokens, total, cached_visual_tokens=(later,) * layers)

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Stages 1–3 on [T, P, D]: exactly K0 merged tokens, with their group ids; see the class docstring."""
        import torch

        from vidcost.methods import clustering

        p = self.checked_params(**params)
        frames, per_frame, _ = check_features(features, self.name)
        target = self.pre_llm_count(frames * per_frame, budget, **params)
        x = features.detach()  # [T, P, D], in the model's dtype: merge_frames_dynamic averages in it
        frame_means = x.mean(1)  # [T, D]
        segments = self.segment(frame_means, p["k"], p["temporal_segment_ratio"])
        segments = clustering.limit_segments(segments, frame_means, target)
        static = _static_positions(x, segments, p["tau"], target)  # [P] bool per segment
        quotas = _group_quotas(segments, static, target, p["cluster_above"])
        tokens, positions, groups, next_group = [], [], [], 0
        for (a, b), is_static, seg_quotas in zip(segments, static, quotas):
            seg_tokens, seg_positions, seg_groups = _merge_segment(x[a:b + 1], is_static, seg_quotas, p["k"])
            tokens.append(seg_tokens)
            positions.append(seg_positions + a * per_frame)
            groups.append(seg_groups + next_group)
            next_group += 1 + (b - a + 1)  # one static group and one dynamic group per frame
        # The official sequence (`merge_frames_dynamic`): segment after segment, its static clusters then
        # each frame's dynamic ones, every group in its cluster order.
        return SelectionResult(tokens=torch.cat(tokens).to(features.dtype), positions=torch.cat(positions),
                               segments=segments, groups=torch.cat(groups))

    @staticmethod
    def segment(frame_means: "torch.Tensor", k: int = 7, ratio: float = 0.25) -> tuple[tuple[int, int], ...]:
        """Temporal segments of [T, D] pooled frame features: DPC-kNN clusters, refined, as contiguous runs."""
        from vidcost.methods import clustering

        clusters = max(1, int(frame_means.shape[0] * ratio))
        _, labels = clustering.dpc_cluster(frame_means.unsqueeze(0), clusters, k, exact=True)
        return clustering.runs_of(clustering.refine_labels(labels[0].tolist()))

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Keep the best-attended tokens of every group, `keep` in all (∝ group size; see the class docstring)."""
        import torch

        if context.attention is None or context.attention.dim() != 3:
            raise ConfigError("prunevid ranks visual tokens by the attention of the rows after the video inside "
                              "the LLM, got none; run it through the runtime (it passes those rows' attention)")
        score = context.attention.float().amax(dim=(0, 1))  # [Q, H, N] → [N]: max over heads and rows
        count = score.numel()
        if not 1 <= keep <= count or count != context.hidden.shape[0]:
            raise ConfigError(f"prunevid asked to keep {keep} of {count} visual tokens with attention over "
                              f"{context.hidden.shape[0]}; keep must be in [1, N] and the attention over N tokens")
        groups = context.groups if context.groups is not None else torch.zeros(
            count, dtype=torch.long, device=score.device)
        return LayerReduction(keep=top_per_group(score, groups, keep, self.checked_params()["alpha"]))


def top_per_group(score: "torch.Tensor", groups: "torch.Tensor", keep: int, alpha: float) -> "torch.Tensor":
    """Ascending indices of `keep` tokens: each group's highest scores.

    Every group keeps int(size·α), as `process_attention` does, when that adds up to `keep` (the plan's
    count at the official settings); otherwise `keep` is split ∝ group size (floors, then the largest
    remainders). One stable sort by score then one by group puts every group's tokens in descending score
    order; a token survives when its rank inside its group is below the group's quota (ties → lower index).
    """
    import torch

    groups = groups.long()
    sizes = torch.bincount(groups)  # [G]
    size_list = sizes.tolist()  # once per stage, not per token
    official = [int(size * alpha) for size in size_list]
    shares = official if sum(official) == keep else split_budget(keep, [float(s) for s in size_list], size_list,
                                                                 minimum=0)
    quotas = torch.tensor(shares, device=score.device)
    order = torch.sort(score.float(), descending=True, stable=True).indices
    order = order[torch.sort(groups[order], stable=True).indices]  # grouped, best first inside a group
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(score.numel(), device=score.device) - starts[groups[order]]
    return torch.sort(order[rank < quotas[groups[order]]]).values


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
        if count < 2:  # the official 0/0 is NaN, never > τ: a one-frame segment is all dynamic
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


def _group_quotas(segments: tuple[tuple[int, int], ...], static: list["torch.Tensor"], target: int,
                  cluster_above: int) -> list[list[int]]:
    """Tokens per group — [static, frame 0, frame 1, …] per segment — summing to `target`.

    The official rule keeps a group of at most `cluster_above` tokens whole and clusters a larger one to
    int(size·cluster_ratio); vidcost keeps the small groups whole and splits the rest of `target` over the
    large ones ∝ size (floors, then the largest remainders), which is the official count whenever `target`
    is what the official ratio gives. Where that cannot give every large group a token, `target` is split
    over segments ∝ their size (each ≥ 1) and inside a segment over its groups ∝ size.
    """
    sizes: list[list[int]] = []
    for (a, b), is_static in zip(segments, static):
        n_static = int(is_static.sum())
        sizes.append([n_static] + [is_static.numel() - n_static] * (b - a + 1))
    flat = [size for seg in sizes for size in seg]
    large = [i for i, size in enumerate(flat) if size > cluster_above]
    rest = target - sum(size for size in flat if size <= cluster_above)
    shares = (split_budget(rest, [float(flat[i]) for i in large], [flat[i] for i in large], minimum=0)
              if large and len(large) <= rest <= sum(flat[i] for i in large) else [])
    # ∝ size from zero (not "one each, then ∝ size"): at the official ratio this is int(size·0.5) exactly.
    if (large and shares and min(shares) >= 1) or (not large and rest == 0):
        quota_flat = list(flat)
        for i, share in zip(large, shares):
            quota_flat[i] = share
        out, start = [], 0
        for seg in sizes:
            out.append(quota_flat[start:start + len(seg)])
            start += len(seg)
        return out
    totals = [sum(seg) for seg in sizes]
    per_segment = split_budget(target, [float(t) for t in totals], totals, minimum=1)
    return [split_budget(quota, [float(s) for s in seg], seg, minimum=0) for quota, seg in zip(per_segment, sizes)]


def _official_order(rank: "torch.Tensor", quotas: list[int]) -> "torch.Tensor":
    """Flat indices into the rows of `rank` [R, n] of each row's `quotas[r]` centres, row after row, in the
    order `merge_frames_dynamic` lays them out: a group kept whole (quota n: no clustering, the official
    `shape[1] > 14` test) in place, a clustered group in cluster order — its centres by descending ρ·δ
    (`compute_cluster_vectors` writes cluster j, the centre `topk(score)` put j-th)."""
    import torch

    rows, n = rank.shape
    order = torch.arange(n, device=rank.device).expand(rows, n)
    whole = torch.tensor([quota == n for quota in quotas], device=rank.device).unsqueeze(-1)
    key = torch.where(whole, order, rank)  # the centres of a row have keys 0…quota−1
    picked = [row * n + torch.argsort(key[row])[:quota] for row, quota in enumerate(quotas) if quota]
    return torch.cat(picked)


def _merge_segment(x: "torch.Tensor", is_static: "torch.Tensor", quotas: list[int],
                   k: int) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """Merge one segment [F, P, D] to sum(quotas) tokens.

    Returns:
        tokens [K, D], flat positions in F·P, and local group ids (0 static, 1 + f frame f's dynamic).
    """
    import torch

    from vidcost.methods import clustering

    frames, per_frame, dim = x.shape
    device = x.device
    static_idx = torch.nonzero(is_static).flatten()
    dynamic_idx = torch.nonzero(~is_static).flatten()
    tokens, positions, groups = [], [], []
    if len(static_idx) and quotas[0]:
        averaged = x[:, static_idx].mean(0, keepdim=True)  # PruneVid Eq. 4: [1, S, D]
        _, labels, rank = clustering.dpc_cluster_ranked(averaged, quotas[0], k)
        means = clustering.cluster_means(averaged, labels)
        picked = _official_order(rank, [quotas[0]])  # [Ks] into S, in the official cluster order
        tokens.append(means[0][picked])
        positions.append(static_idx[picked])  # at the segment's first frame
        groups.append(torch.zeros(quotas[0], dtype=torch.long, device=device))
    if len(dynamic_idx) and sum(quotas[1:]):
        dynamic = x[:, dynamic_idx]  # [F, Dn, D]
        _, labels, rank = clustering.dpc_cluster_ranked(dynamic, torch.tensor(quotas[1:], device=device), k)
        means = clustering.cluster_means(dynamic, labels)
        picked = _official_order(rank, quotas[1:])  # [Kd] into F·Dn, frame by frame
        frame_of = picked // dynamic.shape[1]
        tokens.append(means.reshape(-1, dim)[picked])
        positions.append(frame_of * per_frame + dynamic_idx[picked % dynamic.shape[1]])
        groups.append(1 + frame_of)
    if not tokens:
        return (torch.zeros(0, dim, device=device), torch.zeros(0, dtype=torch.long, device=device),
                torch.zeros(0, dtype=torch.long, device=device))
    return torch.cat(tokens), torch.cat(positions), torch.cat(groups)
