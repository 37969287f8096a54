"""Plots render to PNG and SVG with their provenance; empty inputs are handled, not drawn as nothing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from vidcost.plots import (Figure, plot_accuracy_vs_flops, plot_memory_vs_frames, plot_speedup_vs_budget,
                           plot_stage_breakdown)
from vidcost.published import published_rows, read_published

PROFILE_ROWS = [
    dict(model="tiny", frames=f, method=m, budget=b, device="cpu", dtype="float32", ttft_ms=p,
         vision_ms=v, projector_ms=1.0, selection_ms=s, llm_prefill_ms=p - v - 1.0 - s - 2.0, first_token_ms=2.0,
         peak_memory_bytes=mem, memory_source="rss", speedup=sp)
    for f, m, b, p, v, s, mem, sp in ((8, "vanilla", 1.0, 120.0, 40.0, 0.0, 900e6, 1.0),
                                       (8, "mmgvid", 0.25, 70.0, 40.0, 6.0, 850e6, 120 / 70),
                                       (16, "vanilla", 1.0, 260.0, 80.0, 0.0, 1100e6, 1.0),
                                       (16, "mmgvid", 0.25, 140.0, 80.0, 11.0, 990e6, 260 / 140))]


def _check(figure: Figure, tmp_path, provenance: str) -> None:
    import matplotlib.image

    assert figure.provenance == provenance
    png, svg = (tmp_path / f for f in figure.files)
    assert png.suffix == ".png" and svg.suffix == ".svg"
    height, width = matplotlib.image.imread(png).shape[:2]
    assert width > 600 and height > 400  # readable at report size
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")


def test_accuracy_vs_flops_marks_each_models_front(tmp_path):
    rows = published_rows(read_published())
    figure = plot_accuracy_vs_flops(rows, tmp_path)
    _check(figure, tmp_path, "published")
    svg = (tmp_path / "accuracy_vs_flops.svg").read_text()
    for text in ("llava-onevision-7b", "llava-video-7b", "qwen2-vl-7b", "Pareto front", "hieravid",
                 "prefill FLOPs (% of vanilla", "average score (% of vanilla)"):
        assert text in svg


def test_speedup_vs_budget_labels_measured_and_ideal(tmp_path):
    figure = plot_speedup_vs_budget(["llava-onevision-7b"], tmp_path, measured=PROFILE_ROWS)
    _check(figure, tmp_path, "predicted + measured")
    svg = (tmp_path / "speedup_vs_budget.svg").read_text()
    assert "FLOPs-ideal: llava-onevision-7b" in svg and "mmgvid measured, LLM prefill (tiny, cpu)" in svg
    assert "prefill speedup over vanilla (×)" in svg
    assert "measured end to end" not in svg  # rows without an LLM-stage speedup have one figure only


def test_speedup_vs_budget_shows_llm_stage_beside_end_to_end(tmp_path):
    rows = [dict(row, llm_prefill_speedup=2 * row["speedup"]) for row in PROFILE_ROWS]
    plot_speedup_vs_budget(["tiny"], tmp_path, measured=rows)
    svg = (tmp_path / "speedup_vs_budget.svg").read_text()
    assert "mmgvid measured, LLM prefill (tiny, cpu)" in svg
    assert "measured end to end (TTFT, with vision tower)" in svg


def test_stage_breakdown_needs_stage_timings(tmp_path):
    assert plot_stage_breakdown([], tmp_path) is None
    figure = plot_stage_breakdown(PROFILE_ROWS, tmp_path)
    _check(figure, tmp_path, "measured")
    svg = (tmp_path / "latency_stages.svg").read_text()
    assert "token selection" in svg and "median latency (ms)" in svg


@pytest.mark.parametrize("measured, provenance", [((), "predicted"), (PROFILE_ROWS, "measured + predicted")])
def test_memory_vs_frames(tmp_path, measured, provenance):
    figure = plot_memory_vs_frames(tmp_path, measured=measured, frames=(8, 16, 32))
    _check(figure, tmp_path, provenance)
    assert "peak memory (GiB)" in (tmp_path / "memory_vs_frames.svg").read_text()
