"""Clustering and subset selection shared by MMG-Vid, PruneVid and HieraVid.

Three primitives, each vectorised over tokens:

* density-peak clustering with k nearest neighbours (DPC-kNN; Rodriguez & Laio 2014, kNN density of
  Du et al. 2016, as used by PruneVid and Chat-UniVi): density ρ = exp(−mean kNN distance²), δ = distance
  to the nearest denser point, cluster centres = the largest ρ·δ (PruneVid's `cluster_dpc_knn`);
* temporal segments: contiguous frame runs, merged or absorbed by the similarity of pooled frame features,
  and PruneVid's `refine_clusters` (each cluster keeps its longest run; fragments join a neighbour);
* greedy MAP inference for a determinantal point process with incremental Cholesky updates
  (Chen, Zhang & Zhou, NeurIPS 2018) — HieraVid Eq. 7.

torch is imported inside each function so that importing a method module (to plan) stays torch-free.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from vidcost.methods.common import low_precision

if TYPE_CHECKING:
    import torch

Segments = tuple[tuple[int, int], ...]


def dpc_knn(x: "torch.Tensor", k: int, *, exact: bool = False,
            peak_delta: str = "matrix") -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """Density-peak statistics of every point, batched.

    Args:
        x: [B, n, D] points (each batch row is clustered on its own).
        k: neighbours for the density (the point itself counts, as in PruneVid's code); capped at n.
        exact: compute distances without the matrix-product shortcut, so identical points are at
            distance exactly 0 (use for small n, e.g. frames).
        peak_delta: δ of the densest point — "matrix": the largest distance of its batch row's whole
            matrix (PruneVid's `dist_max`); "row": its own largest distance (MMG-Vid's reconstruction).

    Returns:
        density [B, n] (ρ), delta [B, n] (δ; the densest point gets the largest distance of its batch row's
        matrix, as `cluster_dpc_knn`'s `dist_max` does) and the distances [B, n, n], Euclidean divided by √D.
        Ties in density go to the lower index where the official code adds 1e-6 uniform noise.
    """
    import torch

    n, dim = x.shape[-2], x.shape[-1]
    mode = "donot_use_mm_for_euclid_dist" if exact else "use_mm_for_euclid_dist_if_necessary"
    dist = torch.cdist(x.float(), x.float(), compute_mode=mode).clamp_min_(0.0) / math.sqrt(dim)  # [B, n, n]
    knn = dist.topk(min(k, n), dim=-1, largest=False).values
    density = torch.exp(-(knn ** 2).mean(-1))  # [B, n]
    # A strict order "j is denser than i" (ties to the lower index) makes exactly one point the peak.
    rank = _descending_rank(density)  # [B, n], 0 = densest
    denser = rank.unsqueeze(-2) < rank.unsqueeze(-1)  # [B, i, j]: j denser than i
    delta = dist.masked_fill(~denser, float("inf")).amin(-1)
    peak = dist.flatten(1).amax(-1, keepdim=True) if peak_delta == "matrix" else dist.amax(-1)
    delta = torch.where(rank == 0, peak, delta)
    return density, delta, dist


def _descending_rank(values: "torch.Tensor") -> "torch.Tensor":
    """Rank of each entry along the last dim when sorted descending (stable: ties to the lower index)."""
    import torch

    order = torch.sort(values, dim=-1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(-1, order, torch.arange(values.shape[-1], device=values.device).expand_as(order))
    return ranks


def dpc_cluster(x: "torch.Tensor", counts: "torch.Tensor | int", k: int, *, exact: bool = False,
                centres_own: bool = True) -> tuple["torch.Tensor", "torch.Tensor"]:
    """DPC-kNN clustering with a given number of clusters per batch row: (is_center, labels) of
    `dpc_cluster_ranked`, whose docstring says what they are."""
    is_center, labels, _ = dpc_cluster_ranked(x, counts, k, exact=exact, centres_own=centres_own)
    return is_center, labels


def dpc_cluster_ranked(x: "torch.Tensor", counts: "torch.Tensor | int", k: int, *, exact: bool = False,
                       centres_own: bool = True) -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]:
    """DPC-kNN clustering with a given number of clusters per batch row, and each point's decision rank.

    Args:
        x: [B, n, D] points.
        counts: clusters per row, an int or [B] ints in [0, n].
        k: kNN size for the density.
        exact: see `dpc_knn`.
        centres_own: a centre always joins itself. With False a centre that duplicates an earlier
            centre (distance 0) joins that one, so duplicate points never form two clusters.

    Returns:
        is_center [B, n] bool (exactly counts[b] per row), labels [B, n]: the index (in n) of the centre
        each point joins — its nearest centre, ties to the lower index — and rank [B, n]: each point's
        place when the decision values ρ·δ are sorted descending (0 first; ties to the lower index). The
        official `cluster_dpc_knn` takes its centres as `topk(score)`, so cluster j of its output is the
        centre of rank j: sorting the centres by rank gives its cluster order.
    """
    import torch

    batch, n = x.shape[0], x.shape[1]
    density, delta, dist = dpc_knn(x, k, exact=exact)
    score = density * delta  # DPC decision value ρ·δ
    counts_t = torch.as_tensor(counts, device=x.device).reshape(-1).expand(batch)
    rank = _descending_rank(score)
    is_center = rank < counts_t.unsqueeze(-1)  # [B, n]
    to_center = dist.masked_fill(~is_center.unsqueeze(-2), float("inf"))  # [B, n, n]
    labels = to_center.argmin(-1)
    own = torch.arange(n, device=x.device).expand(batch, n)
    if centres_own:
        labels = torch.where(is_center, own, labels)
    return is_center, labels, rank


def cluster_means(x: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
    """Mean of the points that joined each centre: [B, n, D] → [B, n, D] (rows of non-centres are 0).

    float32 inputs: float32 sums by scatter-add. bf16 / fp16 inputs: PruneVid's `compute_cluster_vectors`
    arithmetic in that dtype (a one-hot matrix product, then a division by the counts), so the means round
    as the official ones do.
    """
    import torch

    if low_precision(x):
        onehot = torch.nn.functional.one_hot(labels, num_classes=x.shape[1]).to(x.dtype)  # [B, n, n]
        sums = torch.bmm(onehot.transpose(1, 2), x)  # [B, n (centre), D]
        counts = onehot.sum(dim=1)  # [B, n]
        return sums / counts.masked_fill(counts == 0, 1).unsqueeze(-1)

    sums = torch.zeros_like(x, dtype=torch.float32).scatter_add_(
        1, labels.unsqueeze(-1).expand(-1, -1, x.shape[-1]), x.float())
    sizes = torch.zeros(labels.shape, dtype=torch.float32, device=x.device).scatter_add_(
        1, labels, torch.ones(labels.shape, dtype=torch.float32, device=x.device))
    return sums / sizes.clamp_min(1.0).unsqueeze(-1)


def runs_of(labels: Sequence[int]) -> Segments:
    """Contiguous runs of equal labels as inclusive (first, last) index pairs."""
    runs: list[tuple[int, int]] = []
    for index, label in enumerate(labels):
        if runs and labels[runs[-1][0]] == label:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return tuple(runs)


def refine_labels(labels: Sequence[int]) -> list[int]:
    """PruneVid's `refine_clusters` on one row of temporal cluster labels (modeling_pllava.py).

    1. Every cluster keeps its longest contiguous run(s) (all runs of the maximal length); a cluster whose
       runs are all one frame long keeps none.
    2. Left to right, every run of dropped frames joins the neighbour (left or right) whose run of one
       label is longer, counted on the labels as refined so far; ties go to the left; with no neighbour
       at all, label 0.

    Args:
        labels: [T] cluster label of each frame.

    Returns:
        [T] refined labels; their contiguous runs are the temporal segments.
    """
    runs = runs_of(labels)
    longest: dict[int, int] = {}
    for first, last in runs:
        longest[labels[first]] = max(longest.get(labels[first], 0), last - first + 1)
    refined = list(labels)
    for first, last in runs:
        length, best = last - first + 1, longest[labels[first]]
        if best == 1 or length < best:
            refined[first:last + 1] = [-1] * length
    index, count = 0, len(refined)
    while index < count:
        if refined[index] != -1:
            index += 1
            continue
        start = index
        while index < count and refined[index] == -1:
            index += 1
        left = _run_length(refined, start - 1, -1) if start > 0 else 0
        right = _run_length(refined, index, +1) if index < count else 0
        if left >= right and left > 0:
            label = refined[start - 1]
        elif right > 0:
            label = refined[index]
        else:
            label = 0
        refined[start:index] = [label] * (index - start)
    return refined


def _run_length(labels: Sequence[int], at: int, step: int) -> int:
    """Length of the run of labels[at]'s value starting at `at` and going in direction `step`."""
    length, index = 0, at
    while 0 <= index < len(labels) and labels[index] == labels[at]:
        length, index = length + 1, index + step
    return length


def boundaries_to_segments(is_boundary: Sequence[bool]) -> Segments:
    """Segments from per-frame flags "frame t starts a new segment" (frame 0 always does)."""
    starts = [0] + [t for t in range(1, len(is_boundary)) if is_boundary[t]]
    ends = [s - 1 for s in starts[1:]] + [len(is_boundary) - 1]
    return tuple(zip(starts, ends))


def _segment_similarity(frame_features: "torch.Tensor", a: tuple[int, int], b: tuple[int, int]) -> float:
    import torch

    mean_a = frame_features[a[0]:a[1] + 1].float().mean(0)
    mean_b = frame_features[b[0]:b[1] + 1].float().mean(0)
    return float(torch.nn.functional.cosine_similarity(mean_a, mean_b, dim=0))


def absorb_short_segments(segments: Segments, frame_features: "torch.Tensor", min_frames: int) -> Segments:
    """Merge every segment shorter than `min_frames` into its more similar neighbour.

    Args:
        segments: contiguous, covering all frames.
        frame_features: [T, D] pooled frame features.
        min_frames: shortest segment allowed (1 keeps all).
    """
    merged = list(segments)
    while len(merged) > 1:
        short = [i for i, (a, b) in enumerate(merged) if b - a + 1 < min_frames]
        if not short:
            break
        i = short[0]
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(merged)]
        j = max(neighbours, key=lambda j: (_segment_similarity(frame_features, merged[i], merged[j]), -j))
        lo, hi = min(i, j), max(i, j)
        merged[lo:hi + 1] = [(merged[lo][0], merged[hi][1])]
    return tuple(merged)


def limit_segments(segments: Segments, frame_features: "torch.Tensor", max_segments: int) -> Segments:
    """Merge the most similar adjacent segments until at most `max_segments` remain.

    Used when a budget is too small to give every segment a token: vidcost then keeps one token per
    (merged) segment rather than failing.
    """
    merged = list(segments)
    while len(merged) > max(max_segments, 1):
        sims = [_segment_similarity(frame_features, merged[i], merged[i + 1]) for i in range(len(merged) - 1)]
        i = max(range(len(sims)), key=lambda i: (sims[i], -i))
        merged[i:i + 2] = [(merged[i][0], merged[i + 1][1])]
    return tuple(merged)


def segment_ids(frames: "torch.Tensor", segments: Segments) -> "torch.Tensor":
    """Segment index of each frame index in `frames` ([N] ints) → [N] int64."""
    import torch

    starts = torch.tensor([a for a, _ in segments], device=frames.device)
    return torch.searchsorted(starts, frames.long(), right=True) - 1


def greedy_dpp_map(kernel: "torch.Tensor", k: int, eps: float = 1e-10) -> "torch.Tensor":
    """Greedy MAP of a DPP: k items approximately maximising det(L_S) (HieraVid Eq. 7).

    Each step adds the item with the largest marginal gain det(L_{S∪i}) / det(L_S), which is the
    squared pivot d_i² of an incremental Cholesky factorisation (Chen et al. 2018, Alg. 1):
    e_i = (L_ji − ⟨c_j, c_i⟩) / d_j, d_i² ← d_i² − e_i². Cost O(n k²) for n items.
    When no item adds volume any more (d² ≤ eps, e.g. k exceeds the kernel's rank), the rest are
    taken by their diagonal L_ii (largest first), so exactly k items are always returned.

    The loop never reads a device value on the host (no `int()`, no data-dependent `break`): a step whose
    best gain is ≤ eps contributes a zero factor row, and the degenerate tail is replaced after the loop
    by the diagonal fill in one vectorised pass — on a GPU the k steps queue without synchronising.

    Args:
        kernel: [n, n] symmetric positive semi-definite L.
        k: items to select, 0 ≤ k ≤ n.
        eps: smallest squared pivot treated as a gain.

    Returns:
        [k] int64 indices in selection order, on the kernel's device.
    """
    import torch

    n = kernel.shape[0]
    k = min(k, n)
    device = kernel.device
    L = kernel.double()
    gains = torch.diagonal(L).clone()  # d_i², [n]
    factors = torch.zeros(k, n, dtype=L.dtype, device=device)  # rows c_t, [k, n]
    chosen = torch.zeros(n, dtype=torch.bool, device=device)
    order = torch.zeros(k, dtype=torch.long, device=device)
    valid = torch.zeros(k, dtype=torch.bool, device=device)  # step t added volume
    for step in range(k):
        j = torch.argmax(gains.masked_fill(chosen, -float("inf"))).view(1)  # [1], stays on the device
        pivot = gains.index_select(0, j)  # [1]
        ok = pivot > eps
        e = (L.index_select(0, j)[0] - factors[:step].index_select(1, j)[:, 0] @ factors[:step])
        e = torch.where(ok, e / pivot.clamp_min(eps).sqrt(), torch.zeros_like(e))
        factors[step] = e
        gains = gains - e * e
        chosen.index_fill_(0, j, True)
        order[step:step + 1] = j
        valid[step:step + 1] = ok
    # Degenerate tail (after the first step without gain): fill by the diagonal among the items not in
    # the valid prefix, largest first — what a `break` then a diagonal sort would have picked.
    prefix = torch.cumprod(valid.long(), 0).bool()  # [k]
    in_prefix = torch.zeros(n, dtype=torch.bool, device=device).scatter_(0, order, prefix)  # order is unique
    fill = torch.sort(torch.diagonal(L).masked_fill(in_prefix, -float("inf")), descending=True, stable=True).indices
    tail = (torch.arange(k, device=device) - prefix.sum()).clamp_min(0)
    return torch.where(prefix, order, fill[tail])


def min_max(values: "torch.Tensor") -> "torch.Tensor":
    """Min-max normalise to [0, 1]; a constant vector maps to all ones (nothing to prefer)."""
    import torch

    low, high = values.min(), values.max()
    if float(high - low) <= 0.0:
        return torch.ones_like(values)
    return (values - low) / (high - low)
