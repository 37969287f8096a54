"""A pre-LLM selection priced from its method's own dispatched kernels (`vidcost.selection_trace`): traced at
the proxy width, it counts what the method dispatches at the real width; it cuts at host synchronisations;
only pre-LLM selections are priced (issue #19)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidcost.devices import DEVICES
from vidcost.latency import Configuration
from vidcost.operators import GEMM, OperatorModel
from vidcost.predict import plan_schedule
from vidcost.schedule import Schedule
from vidcost.selection_trace import PROXY_WIDTH, SYNC_OPS, record_selection, selection_operators
from vidcost.spec import load_spec

WIDTH = 128  # the "real" width of the check; no token or frame count below is 128 or PROXY_WIDTH


def _features(width: int, frames: int = 4, per_frame: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(frames, per_frame, width, generator=generator), torch.randn(8, width, generator=generator)


# Methods whose control flow does not depend on the feature values (a fixed number of greedy steps, fixed
# per-frame counts): their kernels at the proxy width are the real width's, one for one. MMG-Vid, PruneVid and
# HieraVid branch on similarities (segments, clusters), so random features of two widths take two paths.
@pytest.mark.parametrize("method", ["divprune", "uniform", "sinkwindow", "random", "dycoke"])
def test_a_trace_at_the_proxy_width_counts_what_the_real_width_dispatches(method):
    budget = 0.5
    proxy = record_selection(method, *_features(PROXY_WIDTH), budget, WIDTH)
    real = record_selection(method, *_features(WIDTH), budget, WIDTH)
    proxy_kernels = [k for segment in proxy for k in segment.kernels]
    real_kernels = [k for segment in real for k in segment.kernels]
    assert [k.name for k in proxy_kernels] == [k.name for k in real_kernels]
    assert [k.shape for k in proxy_kernels] == [k.shape for k in real_kernels]
    assert sum(k.bytes for k in proxy_kernels) == pytest.approx(sum(k.bytes for k in real_kernels))
    assert sum(s.host_ops for s in proxy) == sum(s.host_ops for s in real)
    features, query = _features(WIDTH)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        from vidcost.methods import get_method

        get_method(method).select_visual(features, budget, query=query, seed=0)
    assert sum(k.flops for k in proxy_kernels if k.kind == GEMM) == counter.get_total_flops()


def test_divprune_is_a_similarity_gemm_and_a_greedy_pass_per_kept_token():
    """DivPrune's cosine similarities are one [n, D] × [D, n] GEMM; its greedy pass adds kernels per kept
    token, so doubling the kept tokens adds about as many kernels again."""
    features, query = _features(PROXY_WIDTH, frames=4, per_frame=32)
    n = 4 * 32
    quarter = [k for s in record_selection("divprune", features, query, 0.25, 3584) for k in s.kernels]
    half = [k for s in record_selection("divprune", features, query, 0.5, 3584) for k in s.kernels]
    assert (n, n, 3584) in [k.shape for k in quarter if k.kind == GEMM]
    assert len(half) - len(quarter) == pytest.approx(len(quarter), rel=0.2)


def test_segments_end_at_host_synchronisations():
    segments = record_selection("mmgvid", *_features(PROXY_WIDTH, frames=6), 0.3, WIDTH)
    assert len(segments) > 1  # MMG-Vid reads similarities back to plan its segments
    for segment in segments[:-1]:
        assert segment.kernels[-1].name in SYNC_OPS


def _configuration(method: str, frames: int, budget: float) -> Configuration:
    spec = load_spec("llava-onevision-0.5b", frames=frames)
    schedule = plan_schedule(spec, method, budget)[0] if method != "vanilla" else Schedule.constant(
        spec.num_layers, spec.num_visual_tokens, spec.text_tokens)
    return Configuration(spec, schedule, method, "bfloat16")


def test_only_a_pre_llm_selection_is_priced():
    assert selection_operators(_configuration("vanilla", 8, 1.0)) == ()
    assert selection_operators(_configuration("fastv", 8, 0.3)) == ()  # its ranking runs inside the LLM
    assert selection_operators(_configuration("divprune", 8, 0.3))
    unknown = dataclasses.replace(_configuration("divprune", 8, 0.3), method="schedule")
    assert selection_operators(unknown) == ()


def test_a_selection_costs_more_on_more_frames():
    device = dataclasses.replace(DEVICES["a100-sxm-80gb"], launch_seconds=2e-6)
    model = OperatorModel(device, "bfloat16")
    few, many = (model.stage_ms(_configuration("divprune", frames, 0.3))["selection"] for frames in (4, 16))
    assert 0 < few < many


def test_a_trace_is_read_back_from_the_cache_and_a_corrupt_one_traced_again(tmp_path, monkeypatch):
    import vidcost.selection_trace as trace

    monkeypatch.setenv("VIDCOST_CACHE", str(tmp_path))
    trace.traced_selection.cache_clear()
    first = trace.traced_selection("divprune", 4, 16, 256, 8, 4, "float32")
    files = list((tmp_path / "selection-traces").glob("*.json"))
    assert len(files) == 1
    trace.traced_selection.cache_clear()
    monkeypatch.setattr(trace, "record_selection", lambda *a, **k: pytest.fail("traced although cached"))
    again = trace.traced_selection("divprune", 4, 16, 256, 8, 4, "float32")
    model = OperatorModel(DEVICES["a100-sxm-80gb"], "bfloat16")
    price = model.layered_seconds
    assert [len(s.kernels) for s in again] == [len(s.kernels) for s in first]
    assert price(again) == pytest.approx(price(first))
    files[0].write_text("{not json")
    trace.traced_selection.cache_clear()
    monkeypatch.undo()
    monkeypatch.setenv("VIDCOST_CACHE", str(tmp_path))
    with pytest.warns(UserWarning, match="cannot be read.*tracing divprune again"):
        traced = trace.traced_selection("divprune", 4, 16, 256, 8, 4, "float32")
    assert price(traced) == pytest.approx(price(first))
    trace.traced_selection.cache_clear()
