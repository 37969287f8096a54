"""DPC-kNN, segment helpers and greedy DPP MAP (vidcost.methods.clustering)."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidcost.methods import clustering

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def two_blobs(per_blob: int = 6, dim: int = 5, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[5.0] * dim, [-5.0] * dim])
    return (centres.repeat_interleave(per_blob, 0) + 0.1 * torch.randn(2 * per_blob, dim, generator=generator))


def test_dpc_knn_densest_point_gets_the_largest_distance_of_the_matrix():
    """PruneVid's `cluster_dpc_knn` gives the peak `dist_max`, the largest entry of the whole distance matrix."""
    x = two_blobs().unsqueeze(0)
    density, delta, dist = clustering.dpc_knn(x, k=3)
    peak = int(torch.argmax(density[0]))
    assert delta[0, peak] == pytest.approx(float(dist[0].max()))
    assert float(dist[0, peak].max()) < float(dist[0].max())  # the row's own maximum would differ
    assert bool((delta >= 0).all())
    # every other point's δ is the distance to some denser point, so it is below the peak's
    others = torch.ones(12, dtype=torch.bool)
    others[peak] = False
    assert bool((delta[0, others] <= delta[0, peak]).all())


def test_dpc_cluster_separates_two_blobs():
    x = two_blobs().unsqueeze(0)
    is_center, labels = clustering.dpc_cluster(x, 2, k=3)
    assert int(is_center.sum()) == 2
    first, second = labels[0, :6], labels[0, 6:]
    assert len(set(first.tolist())) == 1 and len(set(second.tolist())) == 1
    assert int(first[0]) != int(second[0])
    # one centre per blob
    assert int(is_center[0, :6].sum()) == 1 and int(is_center[0, 6:].sum()) == 1


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 12), st.integers(0, 10_000), st.data())
def test_dpc_cluster_meets_each_rows_count(batch, n, seed, data):
    counts = torch.tensor(data.draw(st.lists(st.integers(0, n), min_size=batch, max_size=batch)))
    x = torch.randn(batch, n, 3, generator=torch.Generator().manual_seed(seed))
    is_center, labels = clustering.dpc_cluster(x, counts, k=3)
    assert is_center.sum(-1).tolist() == counts.tolist()
    for b in range(batch):
        if counts[b] > 0:  # everyone joins a centre; a centre joins itself
            assert bool(is_center[b, labels[b]].all())
            centres = torch.nonzero(is_center[b]).flatten()
            assert torch.equal(labels[b, centres], centres)


def test_cluster_means_average_the_members():
    x = torch.tensor([[[0.0, 0.0], [2.0, 4.0], [10.0, 10.0]]])
    labels = torch.tensor([[1, 1, 2]])
    means = clustering.cluster_means(x, labels)
    assert torch.allclose(means[0, 1], torch.tensor([1.0, 2.0]))
    assert torch.allclose(means[0, 2], torch.tensor([10.0, 10.0]))


def test_identical_points_form_one_cluster_without_centres_own():
    x = torch.ones(1, 8, 4)
    _, labels = clustering.dpc_cluster(x, 3, k=3, exact=True, centres_own=False)
    assert set(labels[0].tolist()) == {0}


def test_runs_and_boundaries():
    assert clustering.runs_of([2, 2, 0, 0, 0, 2]) == ((0, 1), (2, 4), (5, 5))
    assert clustering.boundaries_to_segments([False, False, True, False, True]) == ((0, 1), (2, 3), (4, 4))


def test_short_segments_join_the_more_similar_neighbour():
    frames = torch.tensor([[1.0, 0.0]] * 3 + [[0.9, 0.1]] + [[0.0, 1.0]] * 3)
    merged = clustering.absorb_short_segments(((0, 2), (3, 3), (4, 6)), frames, 2)
    assert merged == ((0, 3), (4, 6))


def test_limit_segments_merges_the_most_similar_pair():
    frames = torch.tensor([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]])
    assert clustering.limit_segments(((0, 0), (1, 1), (2, 2)), frames, 2) == ((0, 1), (2, 2))
    assert clustering.limit_segments(((0, 0), (1, 1), (2, 2)), frames, 1) == ((0, 2),)


def test_segment_ids():
    frames = torch.tensor([0, 1, 2, 3, 4, 5])
    assert clustering.segment_ids(frames, ((0, 1), (2, 4), (5, 5))).tolist() == [0, 0, 1, 1, 1, 2]


def naive_greedy(kernel: torch.Tensor, k: int) -> list[int]:
    """Greedy MAP by explicit determinants: each step maximises det(L_{S ∪ i})."""
    chosen: list[int] = []
    for _ in range(k):
        best, best_det = None, -1.0
        for i in range(kernel.shape[0]):
            if i in chosen:
                continue
            subset = chosen + [i]
            det = float(torch.linalg.det(kernel[subset][:, subset]))
            if det > best_det + 1e-9:
                best, best_det = i, det
        chosen.append(best)
    return chosen


def brute_force(kernel: torch.Tensor, k: int) -> tuple[int, ...]:
    dets = {s: float(torch.linalg.det(kernel[list(s)][:, list(s)]))
            for s in itertools.combinations(range(kernel.shape[0]), k)}
    return max(dets, key=dets.get)


@SETTINGS
@given(st.integers(2, 7), st.integers(0, 10_000), st.data())
def test_greedy_dpp_cholesky_updates_equal_explicit_determinants(n, seed, data):
    k = data.draw(st.integers(1, n))
    features = torch.randn(n, n + 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    kernel = features @ features.T  # full rank, well conditioned
    assert clustering.greedy_dpp_map(kernel, k).tolist() == naive_greedy(kernel, k)


@SETTINGS
@given(st.integers(2, 4), st.integers(1, 3), st.integers(0, 10_000))
def test_greedy_dpp_equals_brute_force_argmax_on_clustered_items(groups, copies, seed):
    # `groups` orthogonal directions with distinct weights, each repeated `copies` times: the best
    # set of size `groups` takes one item per direction (any duplicate makes det 0).
    generator = torch.Generator().manual_seed(seed)
    weights = torch.linspace(1.0, 2.0, groups, dtype=torch.float64) + torch.rand(groups, generator=generator,
                                                                                 dtype=torch.float64) * 0.1
    items = torch.diag(weights).repeat_interleave(copies, 0)  # [groups·copies, groups]
    kernel = items @ items.T
    greedy = tuple(sorted(clustering.greedy_dpp_map(kernel, groups).tolist()))
    best = brute_force(kernel, groups)
    assert float(torch.linalg.det(kernel[list(greedy)][:, list(greedy)])) == pytest.approx(
        float(torch.linalg.det(kernel[list(best)][:, list(best)])))
    assert greedy == best  # ties (duplicates) resolve to the lowest index in both


def test_greedy_dpp_equals_brute_force_on_diagonal_kernels():
    kernel = torch.diag(torch.tensor([0.5, 3.0, 1.0, 2.0, 0.1]))
    for k in range(1, 6):
        assert tuple(sorted(clustering.greedy_dpp_map(kernel, k).tolist())) == brute_force(kernel, k)


def test_greedy_dpp_fills_past_the_kernel_rank():
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    picked = clustering.greedy_dpp_map(vectors @ vectors.T, 4)
    assert sorted(picked.tolist()) == [0, 1, 2, 3]
    assert picked[0].item() == 3  # largest diagonal first


def test_min_max():
    assert clustering.min_max(torch.tensor([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert clustering.min_max(torch.tensor([5.0, 5.0])).tolist() == [1.0, 1.0]
