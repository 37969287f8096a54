"""Plots render to PNG and SVG with their provenance; empty inputs are handled, not drawn as nothing."""

from __future__ import annotations

import re
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
    figure = plot_speedup_vs_budget(["llava-onevision-7b", "tiny"], tmp_path, measured=PROFILE_ROWS)
    _check(figure, tmp_path, "predicted + measured")
    svg = (tmp_path / "speedup_vs_budget.svg").read_text()
    assert "FLOPs-ideal: tiny" in svg and "measured: tiny, cpu" in svg and "prefill speedup over vanilla (×)" in svg
    assert "measured, TTFT (with vision tower)" in svg
    assert "measured, LLM prefill" not in svg  # these rows have no LLM-stage speedup: no such marker drawn


def test_speedup_legend_has_one_entry_per_method_and_each_style_once(tmp_path):
    published = [r for r in published_rows(read_published()) if r["model"] == "llava-onevision-7b"]
    rows = [dict(row, llm_prefill_speedup=2 * row["speedup"]) for row in PROFILE_ROWS]
    rows += [dict(row, model="llava-onevision-0.5b") for row in rows]  # a second measured model: its own panel
    plot_speedup_vs_budget(["llava-onevision-7b", "tiny", "llava-onevision-0.5b"], tmp_path, measured=rows,
                           published=published)
    svg = (tmp_path / "speedup_vs_budget.svg").read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for method in ("mmgvid", "hieravid", "fastv"):
        assert texts.count(method) == 1, (method, texts.count(method))
    for label in ("1 / FLOPs ratio printed by the paper", "speedup claimed by the paper", "measured, LLM prefill",
                  "measured, TTFT (with vision tower)", "FLOPs-ideal: llava-onevision-7b"):
        assert texts.count(label) == 1, label
    assert {"measured: tiny, cpu", "measured: llava-onevision-0.5b, cpu", "published: llava-onevision-7b"} <= set(texts)


def test_frame_labels_do_not_overlap_any_marker():
    """Five configurations at one budget and one at the next: every frame label clear of every marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidcost.plots import _draw_measured_speedups, _format_speedup_axes

    rows = [dict(model="tiny", method=m, budget=b, frames=f, speedup=s, llm_prefill_speedup=2.2 * s)
            for m, b, f, s in (("mmgvid", 0.25, 8, 1.6), ("mmgvid", 0.25, 16, 1.7), ("mmgvid", 0.25, 32, 1.8),
                               ("divprune", 0.25, 16, 1.6), ("fastv", 0.25, 16, 1.5), ("fastv", 0.3, 16, 1.45))]
    fig, ax = plt.subplots(figsize=(4.3, 4.4))
    _draw_measured_speedups(ax, rows, {"method": set(), "style": set(), "line": {}})
    _format_speedup_axes(ax, "measured", rows)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(labels) == len(rows)
    radius = 0.5 * (60 ** 0.5) * fig.dpi / 72  # scatter size 60 pt² → radius in pixels
    for collection in ax.collections:
        for cx, cy in collection.get_offset_transform().transform(collection.get_offsets()):
            for box in labels:
                clear = (cx + radius < box.x0 or cx - radius > box.x1 or cy + radius < box.y0 or cy - radius > box.y1)
                assert clear, f"a frame label at {box} covers the marker at ({cx:.0f}, {cy:.0f})"
    for a, b in zip(labels, labels[1:]):
        assert not a.overlaps(b), "two frame labels overlap"
    plt.close(fig)


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


def test_memory_axes_start_at_zero():
    """Measured peaks of 0.95 and 1.0 GiB must not fill the axis as if one were double the other."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vidcost.plots import _format_memory_axes

    fig, ax = plt.subplots()
    ax.plot([8, 16], [0.95, 1.0], label="mmgvid 25%")
    _format_memory_axes(ax, "measured", [8, 16])
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] >= 1.0
    plt.close(fig)


def test_the_predicted_ttft_axis_picks_a_readable_unit():
    from vidcost.plots import time_unit

    assert time_unit([120.0, 950.0]) == ("ms", 1.0)
    assert time_unit([2_000.0, 45_000.0]) == ("s", 1 / 1000)
    unit, scale = time_unit([1.2e6, 3.4e6])  # a CPU calibration pricing a 7B model
    assert unit == "min" and 3.4e6 * scale == pytest.approx(56.67, abs=0.01)
