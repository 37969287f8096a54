"""Device hygiene (#8.6): methods create tensors on their input's device and never read the device inside a
loop over tokens.

A CPU-only machine cannot run CUDA, so these stand in for it: `factory_device_guard` fails any tensor factory
called without `device=` (on a GPU that tensor would land on the CPU and the method would fail or copy), and
`HostReadCounter` counts the operations that synchronise a GPU with the host. Every registered method runs
under the guard in the registry-wide checks (tests/methods/test_properties.py); what only a real GPU shows —
the time a synchronisation costs — is measured by analysis/bench_selection.py on one.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

from vidcost.methods import Method, SelectionResult, clustering
from vidcost.methods.common import pre_llm_plan
from vidcost.methods.divprune import greedy_max_min
from vidcost.methods.mmgvid import _token_scores, greedy_segments
from vidcost.methods.testing import HostReadCounter, check_method, constructed_video, factory_device_guard


class _CpuBuilder(Method):
    """Keeps the first tokens, but builds its positions with a bare `torch.arange` (on the default device)."""

    name: ClassVar[str] = "cpubuilder"
    parameters: ClassVar[tuple] = ()

    def plan(self, spec: Any, budget: float, **params: Any):
        return pre_llm_plan(spec, budget)

    def select_visual(self, features, budget, query=None, seed=0, **params):
        from vidcost.methods.common import keep_count

        positions = torch.arange(keep_count(features.shape[0] * features.shape[1], budget))
        return SelectionResult(tokens=features.reshape(-1, features.shape[-1])[positions], positions=positions)


def test_the_guard_fails_a_method_that_builds_a_tensor_without_a_device():
    with pytest.raises(AssertionError, match=r"torch.arange called without device="):
        check_method(_CpuBuilder(), kinds=("random",))


def test_the_guard_lets_explicit_and_inherited_devices_through():
    x = torch.randn(3)
    with factory_device_guard():
        torch.arange(3, device=x.device), torch.zeros_like(x), torch.full_like(x, 2.0), x.new_zeros(2)


def _reads(fn, *args) -> int:
    with HostReadCounter() as reads:
        fn(*args)
    return reads.count


def test_divprune_greedy_reads_nothing_on_the_host_in_its_loop():
    flat = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    assert _reads(greedy_max_min, flat, 5) == _reads(greedy_max_min, flat, 150) == 0


def test_greedy_dpp_map_reads_nothing_on_the_host_in_its_loop():
    h = torch.randn(120, 24, generator=torch.Generator().manual_seed(1))
    kernel = h @ h.T
    assert _reads(clustering.greedy_dpp_map, kernel, 4) == _reads(clustering.greedy_dpp_map, kernel, 60) == 0
    low_rank = torch.randn(40, 3, generator=torch.Generator().manual_seed(2))
    assert _reads(clustering.greedy_dpp_map, low_rank @ low_rank.T, 10) == 0  # the degenerate tail too


def test_mmgvid_greedy_reads_do_not_grow_with_the_picks():
    x = constructed_video("scenes", frames=6, per_frame=16, dim=12)
    score, gram = _token_scores(x, ((0, 2), (3, 5)), 7, 0.5)
    few = _reads(greedy_segments, score, gram, ((0, 2), (3, 5)), [2, 2], 0.5)
    many = _reads(greedy_segments, score, gram, ((0, 2), (3, 5)), [30, 30], 0.5)
    assert few == many
