"""Plots: the report's figures, rendered with matplotlib's Agg backend to PNG and SVG.

Four figures: accuracy vs FLOPs ratio with the Pareto fronts highlighted; prefill speedup vs budget
(published and, one panel per model, measured points beside the FLOPs-ideal curve of the cost model, one
legend entry per method and each marker style explained once); latency per stage (stacked: vision,
selection, LLM); peak memory vs frames (axes from zero). Each says in its caption whether it is measured, predicted or
published. matplotlib is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from vidcost.pareto import compute_fronts

# One colour and marker per method, fixed across figures (colour-blind-safe "tab10" order).
METHOD_STYLE: dict[str, tuple[str, str]] = {
    "vanilla": ("#000000", "*"), "streamingllm": ("#7f7f7f", "v"), "fastv": ("#1f77b4", "s"),
    "prumerge": ("#9467bd", "P"), "prunevid": ("#ff7f0e", "D"), "framefusion": ("#2ca02c", "^"),
    "hieravid": ("#d62728", "o"), "mmgvid": ("#17becf", "X"), "pdrop": ("#8c564b", "<"),
    "divprune": ("#e377c2", ">"), "dycoke": ("#bcbd22", "h"), "uniform": ("#aec7e8", "d"),
    "random": ("#c49c94", "p"),
}
GIB = 1024 ** 3


@dataclass(frozen=True)
class Figure:
    """A rendered figure: its files (relative to the report directory) and where its data comes from."""

    name: str
    title: str
    provenance: str
    caption: str
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.title} [{self.provenance}]: {', '.join(self.files)}"


def _style(method: str) -> tuple[str, str]:
    return METHOD_STYLE.get(method, ("#333333", "o"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 9,
                         "svg.fonttype": "none", "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _save(fig: Any, out_dir: str | os.PathLike[str], name: str) -> tuple[str, ...]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=150, bbox_inches="tight", metadata={"Date": None}
                    if ext == "svg" else None)
        files.append(f"{name}.{ext}")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return tuple(files)


def time_unit(milliseconds: list[float]) -> tuple[str, float]:
    """The unit that keeps the largest of these times readable, and the factor from milliseconds to it:
    ms below 10 s, s below 10 min, min beyond (a CPU calibration predicts minutes for a 7B model)."""
    largest = max(milliseconds, default=0.0)
    if largest >= 600_000:
        return "min", 1 / 60_000
    if largest >= 10_000:
        return "s", 1 / 1000
    return "ms", 1.0


def plot_accuracy_vs_flops(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str], *,
                           name: str = "accuracy_vs_flops", provenance: str = "published",
                           x: str = "flops_ratio", device_label: str = "") -> Figure:
    """Relative accuracy vs FLOPs ratio — or, with `x="predicted_ttft_ms"`, vs the TTFT predicted on a device
    (`device_label` says which) — one panel per model, the Pareto front of each drawn as a line.

    Rows need `model`, `method`, `budget`, `x` (a FLOPs ratio as a fraction, or milliseconds) and `relative_pct`.
    """
    plt = _pyplot()
    ratio = x == "flops_ratio"
    usable = [r for r in rows if r.get(x) is not None and r.get("relative_pct") is not None]
    unit, scale = ("%", 100.0) if ratio else time_unit([float(r[x]) for r in usable])
    models = sorted({str(r["model"]) for r in usable})
    fig, axes = plt.subplots(1, max(len(models), 1), figsize=(4.6 * max(len(models), 1), 4.2), squeeze=False,
                             sharey=True)
    fronts = {f.group: f for f in compute_fronts(usable, x=x, y="relative_pct", group="model")} \
        if usable else {}
    methods_seen: dict[str, Any] = {}
    for ax, model in zip(axes[0], models):
        for row in (r for r in usable if r["model"] == model):
            colour, marker = _style(str(row["method"]))
            handle = ax.scatter(scale * float(row[x]), float(row["relative_pct"]), c=colour,
                                marker=marker, s=46, zorder=3, edgecolors="white", linewidths=0.5)
            methods_seen.setdefault(str(row["method"]), handle)
        front = fronts.get(model)
        if front is not None:
            xs = [scale * p.x for p in front.points]
            ys = [p.y for p in front.points]
            line, = ax.step(xs, ys, where="post", color="#444444", lw=1.2, ls="--", zorder=2)
            ax.scatter(xs, ys, s=130, facecolors="none", edgecolors="#444444", linewidths=1.1, zorder=4)
            methods_seen.setdefault("Pareto front", line)
            for p in front.points:
                budget = usable[p.row].get("budget")
                if budget is not None and budget < 1:
                    ax.annotate(f"{budget:.0%}", (scale * p.x, p.y), textcoords="offset points", xytext=(5, -11),
                                fontsize=8, color="#444444")
        if ratio:
            ax.set_xscale("log")
            ax.set_xticks([5, 10, 20, 30, 50, 100])
            ax.set_xticklabels(["5", "10", "20", "30", "50", "100"])
        ax.set_title(model)
        ax.set_xlabel("prefill FLOPs (% of vanilla, HieraVid Eq. 12)" if ratio else f"TTFT ({unit}, predicted)")
        if not ratio:  # the unit carries the magnitude: no "1e6" offset on the axis
            ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    axes[0][0].set_ylabel("average score (% of vanilla)")
    if not models:
        axes[0][0].text(0.5, 0.5, f"no rows with both {'FLOPs ratio' if ratio else 'a predicted TTFT'} and a "
                        "relative score", ha="center", transform=axes[0][0].transAxes)
    fig.legend(list(methods_seen.values()), list(methods_seen), loc="lower center",
               ncol=min(len(methods_seen), 8), bbox_to_anchor=(0.5, -0.08 if ratio else -0.13), frameon=False)
    if ratio:
        fig.suptitle("Accuracy vs prefill FLOPs (circled: Pareto front; labels: token budget)")
        caption = ("Average score relative to the unpruned model vs paper-convention prefill FLOPs ratio; "
                   "the dashed line joins the non-dominated rows.")
        title = "Accuracy vs FLOPs ratio"
    else:
        fig.suptitle(f"Accuracy vs TTFT {device_label} (circled: Pareto front; labels: token budget)")
        caption = (f"Average score relative to the unpruned model vs the time to first token {device_label} "
                   "(vidcost predict: vision tower, selection where fitted, LLM prefill); the dashed line joins "
                   "the non-dominated rows. The latency is a prediction, not a measurement.")
        title = f"Accuracy vs TTFT {device_label}"
    files = _save(fig, out_dir, name)
    return Figure(name, title, provenance, caption, files)


_SPEEDUP_CAPTION = (
    "Lines: FLOPs-ideal speedup (1 / FLOPs ratio of a constant schedule keeping budget·T·P tokens in every "
    "layer; cost model, paper convention). Published panel: hollow markers are 1 / the FLOPs ratio a paper "
    "prints (in-LLM methods keep more tokens early), filled ones a speedup it claims. Measured panels, one per "
    "model in the store: black-edged filled markers the LLM-prefill speedup (comparable with the lines), joined "
    "to a hollow one for the TTFT speedup (vision tower included, which pruning does not shorten); the number "
    "under each pair is its frame count, and pairs measured at one budget (dotted line) sit a few points apart "
    "on either side of it. One legend entry per method; the marker styles are explained once.")
# The marker styles of the figure, explained once in the legend: (label, face, edge).
_SPEEDUP_STYLES = {"claimed": ("speedup claimed by the paper", "#888888", "#888888"),
                   "ratio": ("1 / FLOPs ratio printed by the paper", "none", "#888888"),
                   "llm": ("measured, LLM prefill", "#888888", "black"),
                   "ttft": ("measured, TTFT (with vision tower)", "none", "black")}
_DODGE_PT = 11.0  # sideways step between configurations measured at one budget: wider than a marker (7.7 pt)


def plot_speedup_vs_budget(models: Sequence[str], out_dir: str | os.PathLike[str], *,
                           measured: Sequence[Mapping[str, Any]] = (),
                           published: Sequence[Mapping[str, Any]] = (),
                           name: str = "speedup_vs_budget") -> Figure:
    """Prefill speedup vs token budget, published (left) and measured (right) on one log scale, each panel
    with the FLOPs-ideal curve (cost model, a pre-LLM constant schedule) of its models among `models`."""
    plt = _pyplot()
    measured = [r for r in measured if r.get("method") != "vanilla" and r.get("budget") is not None
                and (r.get("llm_prefill_speedup") or r.get("speedup"))]
    published = [r for r in published if r.get("method") != "vanilla"]
    # Published rows in one panel, each measured model in its own: no two models' points share one.
    panels = [("published", published)] if published else []
    for model in sorted({str(r.get("model")) for r in measured}):
        panels.append(("measured", [r for r in measured if str(r.get("model")) == model]))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.3 * max(len(panels), 1) + 2.8, 4.4),
                             squeeze=False, sharey=True)
    seen: dict[str, Any] = {"method": set(), "style": set(), "line": {}}
    styles = {m: _IDEAL_STYLES[i % 4] for i, m in enumerate(models)}
    sources: list[str] = []
    for ax, (panel, rows) in zip(axes[0], panels or [("published", [])]):
        drawn = [m for m in models if m in {str(r.get("model")) for r in rows}] if rows else list(models)
        sources += _draw_ideal_speedups(ax, drawn, seen, styles)
        sources += (_draw_published_speedups if panel == "published" else _draw_measured_speedups)(ax, rows, seen)
        _format_speedup_axes(ax, panel, rows)
    axes[0][0].set_ylabel("prefill speedup over vanilla (×)")
    _speedup_legend(fig, axes[0][-1], seen)
    fig.suptitle("Prefill speedup vs budget")
    files = _save(fig, out_dir, name)
    provenance = " + ".join(dict.fromkeys(sources)) or "none"
    return Figure(name, "Speedup vs budget", provenance, _SPEEDUP_CAPTION, files)


_IDEAL_STYLES = ("-", "--", ":", "-.")


def _draw_ideal_speedups(ax: Any, models: Sequence[str], seen: dict[str, Any], styles: Mapping[str, str]
                         ) -> list[str]:
    """One FLOPs-ideal line per preset model (cost model, constant pre-LLM schedule); "predicted" per line."""
    from vidcost.pareto import flops_ideal_speedup

    budgets = [b / 100 for b in range(5, 101)]
    sources = []
    for model in models:
        curve = [(b, flops_ideal_speedup(model, b)) for b in budgets]
        curve = [(b, s) for b, s in curve if s is not None]
        if curve:
            ax.plot([100 * b for b, _ in curve], [s for _, s in curve], lw=1.4, ls=styles[model], color="#555555",
                    zorder=1)
            seen["line"][model] = styles[model]  # one style per model in both panels and the legend
            sources.append("predicted")
    return sources


def _draw_published_speedups(ax: Any, published: Sequence[Mapping[str, Any]], seen: dict[str, Any]) -> list[str]:
    """Claimed speedups (filled) and 1 / published FLOPs ratio (hollow); "published" per marker."""
    sources = []
    for row in published:
        speedup = row.get("prefill_speedup") or (1 / row["flops_ratio"] if row.get("flops_ratio") else None)
        if speedup is None:
            continue
        colour, marker = _style(str(row["method"]))
        claimed = bool(row.get("prefill_speedup"))
        ax.scatter(100 * row["budget"], speedup, c=colour if claimed else "none", edgecolors=colour,
                   marker=marker, s=60 if claimed else 40, zorder=3)
        seen["method"].add(str(row["method"]))
        seen["style"].add("claimed" if claimed else "ratio")
        sources.append("published")
    return sources


def _draw_measured_speedups(ax: Any, measured: Sequence[Mapping[str, Any]], seen: dict[str, Any]) -> list[str]:
    """Measured LLM-prefill speedups (filled, black edge) over TTFT speedups (hollow), each pair labelled with its
    frame count below it; pairs at one budget are set apart by a display offset, so their budget stays exact."""
    from matplotlib.transforms import offset_copy

    columns: dict[float, list[tuple[str, Any, str]]] = {}
    for row in measured:
        key = (str(row["method"]), row.get("frames") or 0, str(row.get("model")))
        columns.setdefault(round(float(row["budget"]), 6), [])
        if key not in columns[round(float(row["budget"]), 6)]:
            columns[round(float(row["budget"]), 6)].append(key)
    for keys in columns.values():
        keys.sort()
    for budget in columns:  # the exact budget, under configurations set apart for visibility
        ax.axvline(100 * budget, color="#aaaaaa", lw=0.8, ls=":", zorder=0)
    sources = []
    for row in measured:
        keys = columns[round(float(row["budget"]), 6)]
        slot = keys.index((str(row["method"]), row.get("frames") or 0, str(row.get("model"))))
        shift = offset_copy(ax.transData, fig=ax.figure, x=_DODGE_PT * (slot - (len(keys) - 1) / 2), units="points")
        colour, marker = _style(str(row["method"]))
        x, llm, ttft = 100 * row["budget"], row.get("llm_prefill_speedup"), row.get("speedup")
        top, bottom = (llm or ttft), (ttft if llm else None)
        ax.scatter([x], [top], c=colour, marker=marker, s=60, zorder=4, edgecolors="black", linewidths=0.8,
                   transform=shift)
        seen["style"].add("llm" if llm else "ttft")
        if bottom:
            ax.scatter([x], [bottom], c="none", marker=marker, s=42, zorder=4, edgecolors="black", linewidths=0.8,
                       transform=shift)
            ax.plot([x, x], [bottom, top], color="black", lw=0.6, zorder=3, transform=shift)
            seen["style"].add("ttft")
        ax.annotate(f"{row.get('frames')}", (x, min(top, bottom or top)), xycoords=shift, xytext=(0, -7),
                    textcoords="offset points", ha="center", va="top", fontsize=7, zorder=5)
        seen["method"].add(str(row["method"]))
        sources.append("measured")
    return sources


def _format_speedup_axes(ax: Any, panel: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Budget axis in %, a log speedup axis with plain tick labels, a title naming the panel's models."""
    ax.set_xlabel("token budget (% of visual tokens kept)")
    ax.set_yscale("log")
    ticks = [0.5, 1, 2, 3, 5, 10, 20]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.set_ylim(0.5, 40)
    budgets = [100 * float(r["budget"]) for r in rows if r.get("budget") is not None]
    if panel == "measured" and budgets:
        # Close in on the measured budgets: configurations set apart at one budget stay clear of the next budget.
        low, high = max(0.0, min(budgets) - 8), min(102.0, max(budgets) + 8)
        ax.set_xlim(low, max(high, low + 20))
    else:
        ax.set_xlim(0, 102)
    ax.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
    where = sorted({f"{r.get('model')}" + (f", {r.get('device')}" if panel == "measured" else "") for r in rows})
    ax.set_title(f"{panel}: {'; '.join(where)}" if where else panel, fontsize=9)


def _speedup_legend(fig: Any, ax: Any, seen: dict[str, Any]) -> None:
    """One legend beside the last panel: each method once, each marker style once, each FLOPs-ideal line once."""
    from matplotlib.lines import Line2D

    def header(text: str) -> Line2D:
        return Line2D([], [], ls="none", label=text)

    def dot(face: str, edge: str, marker: str = "o", label: str = "") -> Line2D:
        return Line2D([], [], ls="none", marker=marker, markersize=7, markerfacecolor=face, markeredgecolor=edge,
                      label=label)

    handles = [header("method")]
    for method in sorted(seen["method"], key=lambda m: list(METHOD_STYLE).index(m) if m in METHOD_STYLE else 99):
        colour, marker = _style(method)
        handles.append(dot(colour, colour, marker, method))
    handles.append(header("marker"))
    handles += [dot(face, edge, label=label) for key, (label, face, edge) in _SPEEDUP_STYLES.items()
                if key in seen["style"]]
    if seen["line"]:
        handles.append(header("line"))
        handles += [Line2D([], [], color="#555555", lw=1.4, ls=style, label=f"FLOPs-ideal: {model}")
                    for model, style in seen["line"].items()]
    legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
                       handletextpad=0.5)
    for text, handle in zip(legend.get_texts(), handles):
        if handle.get_marker() in ("None", None, "") and handle.get_linestyle() in ("None", "none", ""):
            text.set_fontweight("bold")  # the section headers


def plot_stage_breakdown(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike[str], *,
                         name: str = "latency_stages") -> Figure | None:
    """Stacked prefill latency per measured configuration beside the vanilla run it was measured with:
    vision (+ projector), selection, LLM; one panel per model, each on its own latency scale (a 7B
    run would flatten a tiny one). Returns None when no row has stage timings."""
    rows = [r for r in rows if r.get("vision_ms") is not None and r.get("llm_prefill_ms") is not None
            and r.get("method") != "vanilla"]
    if not rows:
        return None
    plt = _pyplot()
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (str(r.get("model")), r.get("frames") or 0, str(r.get("method")))):
        by_model.setdefault(str(r.get("model")), []).append(r)
    panels = [_stage_bars(model_rows) for model_rows in by_model.values()]
    widths = [max(2.0, 0.75 * len(bars)) for bars in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 2.5 + 0.8 * len(panels), 4.6), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    for ax, bars, (model, model_rows) in zip(axes[0], panels, by_model.items()):
        _draw_stage_bars(ax, bars)
        devices = sorted({f"{r.get('device')}, {r.get('dtype')}" for r in model_rows})
        ax.set_title(f"{model} ({'; '.join(devices)})", fontsize=9)
    axes[0][0].set_ylabel("median latency (ms)")
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Prefill latency by stage, each method beside the vanilla run of the same profile (hatched)",
                 fontsize=10)
    files = _save(fig, out_dir, name)
    return Figure(name, "Latency by stage", "measured", "Median stage latencies of the latest profile record "
                  "of each configuration, beside the vanilla record of the same run (hatched); one panel per "
                  "model, each with its own latency axis.", files)


def _stage_bars(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any], str]]:
    """(tick label, row, key prefix) per bar: the vanilla run ("vanilla_" keys) before each method's."""
    bars: list[tuple[str, Mapping[str, Any], str]] = []
    for r in rows:
        if r.get("vanilla_vision_ms") is not None:
            bars.append((f"vanilla\n100%\n{r.get('frames')} fr", r, "vanilla_"))
        bars.append((f"{r['method']}\n{r['budget']:.0%}\n{r.get('frames')} fr", r, ""))
    return bars


def _draw_stage_bars(ax: Any, bars: Sequence[tuple[str, Mapping[str, Any], str]]) -> None:
    positions, x = [], 0.0
    for _, _, prefix in bars:
        positions.append(x)
        x += 1.0 if prefix == "vanilla_" else 1.5  # pairs sit together, a gap before the next pair
    bottom = [0.0] * len(bars)
    for stages, label, colour in ((("vision", "projector"), "vision tower + projector", "#4c72b0"),
                                  (("selection",), "token selection", "#dd8452"),
                                  (("llm_prefill", "first_token"), "LLM prefill + first token", "#55a868")):
        values = [sum(float(r.get(f"{prefix}{stage}_ms") or 0.0) for stage in stages) for _, r, prefix in bars]
        ax.bar(positions, values, bottom=bottom, color=colour, label=label, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values)]
    hatched = [(p, total) for p, total, (_, _, prefix) in zip(positions, bottom, bars) if prefix == "vanilla_"]
    if hatched:  # white hatching over the vanilla bars, colours kept
        ax.bar([p for p, _ in hatched], [t for _, t in hatched], width=0.8, fill=False, hatch="//",
               edgecolor="#ffffff", linewidth=0)
    ax.set_xticks(positions)
    ax.set_xticklabels([label for label, _, _ in bars], fontsize=8)


def plot_memory_vs_frames(out_dir: str | os.PathLike[str], *, measured: Sequence[Mapping[str, Any]] = (),
                          model: str = "llava-onevision-7b", budgets: Sequence[float] = (1.0, 0.3, 0.1),
                          frames: Sequence[int] = (8, 16, 32, 64, 128),
                          name: str = "memory_vs_frames") -> Figure:
    """Peak memory vs frames: measured profile records (left, when any) and the cost model's prediction for
    `model` in bfloat16 with a pre-LLM schedule at each budget (right)."""
    from vidcost.cost import estimate_memory
    from vidcost.methods.common import pre_llm_plan
    from vidcost.spec import load_spec

    plt = _pyplot()
    measured = [r for r in measured if r.get("peak_memory_bytes") and r.get("frames")]
    # One panel per measured model: a 0.5B model's GiB would flatten a tiny one's MiB to a line at zero.
    models = sorted({str(r.get("model")) for r in measured})
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(5.2 * (len(models) + 1), 4.2), squeeze=False)
    for ax, model_name in zip(axes[0], models):
        _draw_measured_memory(ax, [r for r in measured if str(r.get("model")) == model_name], model_name)
    ax = axes[0][-1]
    spec = load_spec(model)
    for budget, style in zip(budgets, ("-", "--", ":", "-.")):
        values = []
        for count in frames:
            sized = spec.with_overrides(frames=count)
            values.append(estimate_memory(sized, pre_llm_plan(sized, budget), dtype_bytes=2).total_bytes / GIB)
        ax.plot(list(frames), values, ls=style, marker="o", ms=4, color="#333333", label=f"budget {budget:.0%}")
    _format_memory_axes(ax, f"predicted: {model}, bfloat16 (weights + KV + activations)", frames, fontsize=9)
    fig.suptitle("Peak prefill memory vs frames")
    files = _save(fig, out_dir, name)
    provenance = "measured + predicted" if measured else "predicted"
    caption = (f"Right: cost-model prediction for {model} (bfloat16, pre-LLM schedule at each budget). "
               + ("Left, one panel per measured model: the LLM prefill's own peak allocation above what was "
                  "allocated when it began (activations and the KV cache it fills: what pruning changes; the run's "
                  "whole peak is often the vision tower's) where the records have it, else the run's peak above "
                  "the weights, else the peak with the weights (series shifted sideways slightly so that equal "
                  "readings stay visible)." if measured else
                  "No measured memory in the store."))
    return Figure(name, "Memory vs frames", provenance, caption, files)


def _draw_measured_memory(ax: Any, rows: Sequence[Mapping[str, Any]], model_name: str) -> None:
    """One model's measured peaks by frames, a series per (method, budget): the LLM prefill's own peak
    above its start when every row has it (what pruning changes: the run's peak is often the vision
    tower's), else the run's increase above the weights, else the peak with the weights."""
    for key in ("llm_prefill_peak_increase_bytes", "peak_increase_bytes", "peak_memory_bytes"):
        if all(r.get(key) is not None for r in rows):
            break
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    series = sorted(groups.items(), key=str)
    for index, ((method, budget), members) in enumerate(series):
        members = sorted(members, key=lambda r: r["frames"])
        colour, marker = _style(str(method))
        # equal readings would hide each other: shift each series sideways a little (log axis: a factor)
        shift = 2 ** (0.05 * (index - (len(series) - 1) / 2))
        ax.plot([r["frames"] * shift for r in members], [r[key] / 2 ** 20 for r in members], marker=marker,
                color=colour, label=f"{method} {budget:.0%}")
    sources = ", ".join(sorted({str(r.get("memory_source")) for r in rows}))
    _format_memory_axes(ax, f"measured: {model_name} ({sources})", sorted({int(r["frames"]) for r in rows}),
                        fontsize=9)
    ax.set_ylabel({"llm_prefill_peak_increase_bytes": "LLM prefill's peak above its start (MiB)",
                   "peak_increase_bytes": "peak above the weights (MiB)"}.get(key, "peak memory with the weights (MiB)"))
    counts = sorted({int(r["frames"]) for r in rows})
    if len(counts) == 1:  # one frame count: a factor of 2 each side, so the sideways shift stays small
        ax.set_xlim(counts[0] / 2, counts[0] * 2)


def _format_memory_axes(ax: Any, title: str, frames: Sequence[int], **title_style: Any) -> None:
    """Frames per video on a log-2 axis with plain tick labels, peak memory in GiB, and the legend."""
    ax.set_title(title, **title_style)
    ax.set_xlabel("frames per video")
    ax.set_ylabel("peak memory (GiB)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(frames))
    ax.set_xticklabels([str(f) for f in frames])
    ax.set_ylim(bottom=0)  # from zero: a few percent of jitter must not look like a saving
    ax.legend(fontsize=8)


def plot_predicted_speedup(predictions: Sequence[Any], path: str | os.PathLike[str]) -> str:
    """Predicted TTFT and LLM-prefill speedup vs budget (`vidcost predict --budgets … --plot FILE.png`),
    with the held-out band where the prediction is calibrated; the title says what priced it (calibrated, per-operator or roofline at peak)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    budgets = [100 * p.budget for p in predictions]
    for key, label, colour in (("speedup", "TTFT speedup", "#1f77b4"),
                               ("llm_prefill_speedup", "LLM prefill speedup", "#d62728")):
        ax.plot(budgets, [getattr(p, key) for p in predictions], marker="o", color=colour, label=label)
        bands = [p.band(key) for p in predictions]
        if all(low is not None for low, _ in bands):
            top = ax.get_ylim()[1]  # an unbounded band (held-out error ≥ 100 %) is drawn to the axis' top
            ax.fill_between(budgets, [low for low, _ in bands], [min(high, top) for _, high in bands], color=colour,
                            alpha=0.15, label=f"{label}: held-out error band")
    first = predictions[0]
    kind = first.kind
    ax.set_xlabel("kept visual tokens (% of vanilla)")
    ax.set_ylabel("predicted speedup over vanilla (×)")
    ax.set_title(f"Predicted: {first.method} on {first.model}, {first.frames} frames\n{first.device} ({kind})")
    ax.legend()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return str(target)
