"""HieraVid: hierarchical (segment, frame, layer) token pruning for Video LLMs.

Guo, Zhu, Ji, Lin & Cao, "HieraVid: Hierarchical Token Pruning for Fast Video Large Language Models",
arXiv 2604.01881 (2026); full text in /work/shared/seeds/002_*.txt. Equation numbers below are the paper's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.methods.base import LayerContext, LayerReduction, Method, SelectionResult
from vidcost.methods.common import check_budget, check_features, keep_count, sorted_topk, split_budget
from vidcost.methods.params import Param
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.spec import ModelSpec

Segments = tuple[tuple[int, int], ...]


class HieraVid(Method):
    """HieraVid (Guo et al. 2026): merge-ratio segmentation, segment budgets, relevance-weighted DPP, stages.

    Before the LLM (stage s1):
      * Merge-ratio-guided segmentation (Eq. 1–2): S_t(i, j) = cosine of the same-position tokens of
        frames t and t−1; O_t = share of frame t's positions among the Top-K of S over the whole video,
        K = R_merge·N; a boundary falls before t when O_t < β = `beta` (0.4). Ties at the K-th value all
        count as in the Top-K, so an exactly static video is one segment.
      * Static-token merging (Eq. 3) with the same K: the K most similar (t, i, j) entries of S are merged
        into the first token of their same-position run, which becomes the run's mean — across the whole
        video, as the paper says, so a run may continue past a segment boundary (its token belongs to the
        segment of its first frame). N − K tokens remain.
      * If the budget needs fewer tokens at layer 0 than N − K (see Budget), the frame-level DPP below
        prunes the merged tokens to that count — the budget is met by the DPP, never by merging more.
        Instruction relevance (Eq. 8) comes from the question: H_t is the embedding of the question's last
        token (`query[-1]`; the runtime passes the question's own tokens, without the chat template).
    Inside the LLM, at the start of stages s2…sn (`stages` = 4 equal runs of layers, e.g. layers 7, 14,
    21 of 28): segment budget allocation (Eq. 4–5, λ = `lam` 0.5) and frame-level DPP per segment
    (Eq. 6–10): kernel L̃ = diag(r)·(H Hᵀ/d)·diag(r), block-diagonal by the segments of s1 (handed back
    by the runtime as `LayerContext.segments`), greedy MAP with incremental Cholesky updates. r = min-max
    of the attention the question's last token pays the visual tokens, mean over heads — the model's own
    softmax(q·k/√d), i.e. Eq. 8 with the layer's projections.

    Reading of Eq. 5: b_m is the segment's *budget* score (the text says richer / more diverse segments
    keep more, and §3.2 keeps k = R^{i,m}·N_m tokens of segment m), so vidcost adds R_var·z(b_m) to the
    keep ratio, not the prune ratio; R_var = `r_var` (0.1; the paper gives no value). Segments of
    Eq. 4 with no neighbour on one side get s = 0 there.

    The paper applies its relevance-based pruning at stage s2 and "layer-level balancing" at s3–s4
    without separate equations; vidcost runs the same Eq. 4–10 step at each of the three stage starts.

    Budget = the paper's "relative token budget", the mean kept fraction over layers. Stage i keeps
    f1·ρ^(i−1) of N (Eq. 11 with R_prune = 1 − ρ). R_merge = min(`merge_ratio`, 1 − budget) (0.5 by
    default: below a 50 % budget nothing changes; above it the merge takes only what the budget gives
    up), f1 = 1 − R_merge, and ρ is solved from the budget (equal-length stages); if that would need
    ρ < `stage_keep_min` (0.5), ρ = stage_keep_min and the s1 DPP prunes the merged tokens further, to
    f1 = budget / mean ρ^(i−1). f1 depends only on the budget (select_visual needs no model spec); `plan`
    then re-solves ρ on the model's real stage lengths, so the mean over layers is the budget even when
    n does not divide L. With the defaults on LLaVA-OV-7B at 30 % the paper-convention prefill is 10.7
    TFLOPs (26.3 %), as in the paper's Table 2; at 20 % / 10 % it is 7.05 / 3.41 T where Table 2 lists
    7.5 / 3.8 T (the paper gives no per-stage ratios; its own schedules there sit a little above the
    budget-matched one). Deterministic (the seed is ignored). The question is required: without one
    (query None or empty, or no attention inside the LLM) the selection is a ConfigError.
    """

    name: ClassVar[str] = "hieravid"
    parameters: ClassVar[tuple[Param, ...]] = (
        Param("beta", 0.4, "float", 0.0, 1.0, doc="β: a boundary falls where the overlap ratio O_t is below it"),
        Param("lam", 0.5, "float", 0.0, 1.0, doc="λ of Eq. 4: representativeness vs diversity of a segment"),
        Param("stages", 4, "int", 1, 1000, doc="n: equal-length stages over the layers"),
        Param("merge_ratio", 0.5, "float", 0.0, 1.0, high_open=True, doc="R_merge: K = R_merge·N for Eq. 2 and 3"),
        Param("stage_keep_min", 0.5, "float", 0.0, 1.0, low_open=True,
              doc="smallest per-stage keep factor ρ before the s1 DPP prunes too"),
        Param("r_var", 0.1, "float", 0.0, 1.0, doc="R_var of Eq. 5 (the paper gives no value)"),
    )
    paper: ClassVar[str] = "Guo et al., HieraVid: Hierarchical Token Pruning for Fast Video LLMs, arXiv 2604.01881"
    attention_need: ClassVar[str] = "question"


    def stage_fractions(self, budget: float, **params: Any) -> tuple[float, float]:
        """(f1, ρ): stage-1 kept fraction and the per-stage keep factor, with mean_i f1·ρ^(i−1) = budget."""
        p = self.checked_params(**params)
        budget, stages = check_budget(budget), int(p["stages"])
        first = 1.0 - p["merge_ratio"]
        if budget >= first or stages == 1:
            return budget, 1.0
        if first * _geometric_mean(p["stage_keep_min"], stages) <= budget:
            return first, _solve(lambda rho: first * _geometric_mean(rho, stages), budget, p["stage_keep_min"], 1.0)
        rho = p["stage_keep_min"]
        return budget / _geometric_mean(rho, stages), rho

    def plan(self, spec: "ModelSpec", budget: float, **params: Any) -> Schedule:
        """Stage-1 count at layer 0, shrinking by ρ at each stage start; mean fraction = budget."""
        total, layers = spec.num_visual_tokens, spec.num_layers
        first, _ = self.stage_fractions(budget, **params)
        count = keep_count(total, first)
        stage_of = self.stage_of_layers(layers, **params)
        stages = max(stage_of) + 1
        if stages == 1 and count > keep_count(total, budget):  # the budget needs the in-LLM stages
            raise ConfigError(f"hieravid at budget {budget} prunes inside the LLM, which needs 2 layers or more; "
                              f"the model has {layers}")
        # Re-solve ρ on the real layer counts so the mean over layers is the budget even when the
        # stage count does not divide the layer count.
        mean_over_layers = lambda rho: first * sum(rho ** s for s in stage_of) / layers  # noqa: E731
        rho = 1.0 if stages == 1 or first <= budget else _solve(mean_over_layers, budget, 0.0, 1.0)
        counts = [count if s == 0 else max(1, min(count, round(total * first * rho ** s))) for s in stage_of]
        return Schedule(tuple(counts), spec.text_tokens, total)

    def stage_of_layers(self, num_layers: int, **params: Any) -> list[int]:
        """Stage index of each layer: `stages` runs of round(L/n) layers (fewer stages on tiny models)."""
        stages = int(self.checked_params(**params)["stages"])
        starts = sorted({round(i * num_layers / stages) for i in range(stages)} - {num_layers})
        return [sum(1 for s in starts if s <= layer) - 1 for layer in range(num_layers)]

    def select_visual(self, features: "torch.Tensor", budget: float, query: "torch.Tensor | None" = None,
                      seed: int = 0, **params: Any) -> SelectionResult:
        """Stage s1 on [T, P, D]: segment, merge K = R_merge·N, DPP-prune if the budget needs it, to K0 tokens."""
        import torch

        from vidcost.methods import clustering

        p = self.checked_params(**params)
        frames, per_frame, dim = check_features(features, self.name)
        if query is None or query.numel() == 0:
            raise ConfigError("hieravid weighs tokens by their relevance to the question (Eq. 8) and got no "
                              "question; pass the question's token embeddings as query")
        if query.dim() not in (1, 2) or query.shape[-1] != dim:
            raise ConfigError(f"hieravid expects the question embeddings shaped [tokens, {dim}] like the visual "
                              f"features, got {tuple(query.shape)}")
        total = frames * per_frame
        target = keep_count(total, self.stage_fractions(budget, **params)[0])
        # K of Eq. 2 and Eq. 3: R_merge·N, never more than the budget gives up (1 − budget)·N.
        merges = min(round(p["merge_ratio"] * total), total - target)
        x = features.detach().float()  # [T, P, D]
        segments = self.segment(x, p["beta"], merges)
        segments = clustering.limit_segments(segments, x.mean(1), target)
        tokens, positions = merge_static(x, merges)  # Eq. 3: N − K tokens
        if tokens.shape[0] > target:  # the s1 DPP meets the rest of the budget
            instruction = query.reshape(-1, dim)[-1].float()  # the question's last token, Eq. 8
            relevance = instruction_relevance(tokens, instruction)
            picked = segment_dpp(tokens, positions // per_frame, segments, target, relevance, p["lam"], p["r_var"])
            picked = torch.sort(picked).values  # DPP order → ascending positions
            tokens, positions = tokens[picked], positions[picked]
        return SelectionResult(tokens=tokens.to(features.dtype), positions=positions, segments=segments)

    @staticmethod
    def segment(x: "torch.Tensor", beta: float = 0.4, top: int = 0) -> Segments:
        """Merge-ratio-guided segments of [T, P, D] features (Eq. 1–2) with K = `top`."""
        import torch

        from vidcost.methods import clustering

        frames, per_frame, _ = x.shape
        if frames < 2:
            return ((0, 0),)
        similarity = torch.nn.functional.cosine_similarity(x[1:], x[:-1], dim=-1)  # S_t, Eq. 1: [T-1, P]
        if top >= similarity.numel():
            in_top = torch.ones_like(similarity, dtype=torch.bool)
        elif top == 0:
            in_top = torch.zeros_like(similarity, dtype=torch.bool)
        else:  # ties at the K-th value count as inside the Top-K
            in_top = similarity >= torch.topk(similarity.flatten(), top).values[-1]
        overlap = in_top.float().mean(-1)  # O_t, Eq. 2: [T-1]
        return clustering.boundaries_to_segments([False] + (overlap < beta).tolist())

    def reduce_in_llm(self, context: LayerContext, keep: int) -> LayerReduction:
        """Stage start inside the LLM: per-segment budgets (Eq. 4–5) and relevance-weighted DPP (Eq. 6–10)."""
        import torch

        from vidcost.methods import clustering

        hidden = context.hidden.float()
        if keep > hidden.shape[0]:
            raise ConfigError(f"hieravid asked to keep {keep} of {hidden.shape[0]} visual tokens; keep at most N")
        if context.attention is None or context.attention.dim() != 3 or context.attention.shape[-1] != hidden.shape[0]:
            raise ConfigError("hieravid weighs tokens by the question's attention inside the LLM (Eq. 8) and got "
                              "none over its tokens; run it with a question")
        p = self.checked_params()
        segments = context.segments
        if not segments or segments[-1][1] != context.num_frames - 1:
            segments = ((0, context.num_frames - 1),)  # no pre-LLM segments reached this stage: one block
        # Eq. 8 with the layer's own projections: the question's last row, mean over heads.
        relevance = clustering.min_max(context.attention[-1].float().mean(0))
        frames = context.positions // context.tokens_per_frame
        picked = segment_dpp(hidden, frames, segments, keep, relevance, p["lam"], p["r_var"])
        return LayerReduction(keep=torch.sort(picked).values)


def _geometric_mean(rho: float, stages: int) -> float:
    return sum(rho ** i for i in range(stages)) / stages


def _solve(f: Any, target: float, low: float, high: float) -> float:
    """x in [low, high] with f(x) = target for increasing f (bisection, no numpy needed)."""
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if f(mid) < target else (low, mid)
    return (low + high) / 2


def instruction_relevance(tokens: "torch.Tensor", instruction: "torch.Tensor") -> "torch.Tensor":
    """HieraVid Eq. 8: r = min-max(softmax(H_t H_vᵀ / √d)) for tokens [n, D] and one instruction [D]."""
    import torch

    from vidcost.methods import clustering

    logits = tokens.float() @ instruction.float() / tokens.shape[-1] ** 0.5  # [n]
    return clustering.min_max(torch.softmax(logits, dim=0))


def merge_static(x: "torch.Tensor", remove: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """HieraVid Eq. 3 on [T, P, D]: merge the `remove` (= K) most similar tokens into their run starts.

    The entries (t ≥ 1, i, j) of S with the K largest similarities (ties → the lower index) are merged:
    each joins the run of same-position tokens before it, whose first token becomes the run's mean.

    Returns:
        tokens [N − K, D] (run means) and positions [N − K] (flat index of each run's first token), ascending.
    """
    import torch

    frames, per_frame, dim = x.shape
    device = x.device
    marked = torch.zeros(frames, per_frame, dtype=torch.bool, device=device)  # merges into the run before it
    if frames > 1 and remove > 0:
        similarity = torch.nn.functional.cosine_similarity(x[1:], x[:-1], dim=-1)  # [T-1, P]
        count = min(remove, similarity.numel())
        marked[1:].view(-1)[sorted_topk(similarity.flatten(), count)] = True
    frame_index = torch.arange(frames, device=device).unsqueeze(-1).expand(frames, per_frame)
    run_start = torch.where(marked, 0, frame_index).cummax(dim=0).values  # [T, P]
    target = (run_start * per_frame + torch.arange(per_frame, device=device)).flatten()  # run start, flat
    sums = torch.zeros(frames * per_frame, dim, device=device).index_add_(0, target, x.reshape(-1, dim))
    sizes = torch.zeros(frames * per_frame, device=device).index_add_(
        0, target, torch.ones(frames * per_frame, device=device))
    positions = torch.nonzero(~marked.flatten()).flatten()
    return sums[positions] / sizes[positions].unsqueeze(-1), positions


def segment_budgets(tokens: "torch.Tensor", seg: "torch.Tensor", sizes: list[int], keep: int, lam: float,
                    r_var: float) -> list[int]:
    """Tokens per segment from HieraVid Eq. 4–5 (keep-ratio reading), summing to exactly `keep`."""
    import torch

    count = len(sizes)
    device = tokens.device
    pooled = torch.zeros(count, tokens.shape[-1], device=device).index_add_(0, seg, tokens.float())
    pooled = pooled / torch.tensor(sizes, dtype=torch.float32, device=device).clamp_min(1).unsqueeze(-1)  # g_m
    left = torch.cumsum(pooled, 0) - pooled  # ḡ_l = Σ_{i<m} g_i
    right = pooled.sum(0, keepdim=True) - torch.cumsum(pooled, 0)  # ḡ_r = Σ_{i>m} g_i
    cos = torch.nn.functional.cosine_similarity  # 0 for an all-zero side (no neighbour there)
    score = lam * cos(pooled, right, dim=-1) + (1 - lam) * (1 - cos(pooled, left, dim=-1))  # b_m, Eq. 4
    spread = float(score.std(correction=0)) if count > 1 else 0.0
    z = (score - score.mean()) / spread if spread > 0 else torch.zeros(count, device=device)
    ratio = (keep / sum(sizes) + r_var * z).clamp(0.0, 1.0)  # Eq. 5 as a keep ratio
    weights = (ratio * torch.tensor(sizes, dtype=torch.float32, device=device)).tolist()  # one read per stage
    present = [m for m in range(count) if sizes[m] > 0]  # in-LLM, a segment may be emptied already
    shares = split_budget(keep, [weights[m] for m in present], [sizes[m] for m in present],
                          minimum=1 if keep >= len(present) else 0)
    quotas = [0] * count
    for m, share in zip(present, shares):
        quotas[m] = share
    return quotas


def segment_dpp(tokens: "torch.Tensor", frames: "torch.Tensor", segments: Segments, keep: int,
                relevance: "torch.Tensor", lam: float, r_var: float) -> "torch.Tensor":
    """Frame-level DPP pruning (Eq. 6–10) of tokens [n, D] to `keep`; returns indices (by segment)."""
    import torch

    from vidcost.methods import clustering

    seg = clustering.segment_ids(frames, segments)  # [n]
    sizes = torch.bincount(seg, minlength=len(segments)).tolist()
    quotas = segment_budgets(tokens, seg, sizes, keep, lam, r_var)
    picked = []
    for m, quota in enumerate(quotas):
        members = torch.nonzero(seg == m).flatten()
        if quota == 0:
            continue
        if quota >= len(members):
            picked.append(members)
            continue
        h = tokens[members].float()  # [n_m, D]
        r = relevance[members].float()
        kernel = (r.unsqueeze(-1) * (h @ h.T) / h.shape[-1]) * r.unsqueeze(0)  # L̃_m, Eq. 9–10
        picked.append(members[clustering.greedy_dpp_map(kernel, quota)])
    return torch.cat(picked) if picked else torch.zeros(0, dtype=torch.long, device=tokens.device)
