"""Report: the tables behind the Pareto fronts (from the store and the published data) and the report
directory written from them — `index.html`, `report.md`, plots (PNG, SVG), CSV tables, configuration.

Every figure and table says where its numbers come from: measured (profile records in the store),
predicted (the analytic cost model), published (papers, `profiles/published/`) or evaluated (lmms-eval
accuracy records). No number is invented: a figure without data is left out and the report says why.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vidcost.accuracy import accuracy_rows
from vidcost.errors import DataFormatError
from vidcost.join import JoinResult, attach_measured, join_rows
from vidcost.published import AVERAGE_BENCHMARK, published_rows

PROFILE_KEY = ("model", "frames", "method", "budget", "device", "dtype")


# ------------------------------------------------------------------------------------------------- tables

def profile_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per measured configuration (the latest `ok` profile record of each), in the profile vocabulary
    (DESIGN §8): the method's values, vanilla's beside them as `vanilla_*` (the vanilla record of the same
    run) and every ratio between them, all from `compare_records` — so each speedup is the quotient of the
    two values in its row. Stages are `<stage>_ms` (`vision_ms`, `projector_ms`, `selection_ms`,
    `llm_prefill_ms`, `first_token_ms`); older records are read through `upgrade_record`.
    """
    from vidcost.profiling.record import upgrade_record

    records = [upgrade_record(r) for r in records if r.get("kind") == "profile" and r.get("status", "ok") == "ok"]
    vanilla = {r.get("run_id"): r for r in records if r.get("method") == "vanilla"}
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    counts: Counter[tuple[Any, ...]] = Counter()
    for record in sorted(records, key=lambda r: str(r.get("created_at", ""))):
        row = _profile_row(record, vanilla.get(record.get("run_id")))
        key = tuple(row[k] for k in PROFILE_KEY)
        latest[key] = row
        counts[key] += 1
    for key, row in latest.items():
        row["repeats_in_store"] = counts[key]
    return list(latest.values())


def _profile_row(record: Mapping[str, Any], base: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record (current schema) as a table row, compared with its vanilla record when there is one."""
    from vidcost.profiling.record import STAGES, compare_records

    compared = compare_records(base or {}, record)
    model = record.get("model") or {}
    row: dict[str, Any] = {
        "model": model.get("name") if isinstance(model, Mapping) else str(model),
        "frames": record.get("frames", model.get("frames") if isinstance(model, Mapping) else None),
        "method": record.get("method"), "budget": record.get("budget"),
        "device": record.get("device"), "dtype": record.get("dtype"),
    }
    stages = {f"{prefix}{stage}_ms": compared[f"{prefix}stages_ms"].get(stage)
              for prefix in ("", "vanilla_") for stage in STAGES}
    row.update({k: v for k, v in compared.items() if not k.endswith("stages_ms")}, **stages)
    paper, base_paper = (((r or {}).get("flops") or {}).get("paper") for r in (record, base))
    row.update({
        "variant": _variant(record, model),
        "flops_paper": paper, "flops_ratio": paper / base_paper if paper is not None and base_paper else None,
        "memory_source": record.get("memory_source"), "ttft_iqr_pct": _spread_pct(record),
        "run_id": record.get("run_id"), "created_at": record.get("created_at"), "provenance": "measured",
    })
    return row


def _variant(record: Mapping[str, Any], model: Any) -> str:
    """"official" / "vidcost's variant" for a method that solves a ratio for its budget (`catalog.variant`)."""
    from vidcost.errors import VidcostError
    from vidcost.latency import spec_from_record
    from vidcost.methods.catalog import variant

    budget = record.get("budget")
    if not isinstance(model, Mapping) or not isinstance(budget, (int, float)) or record.get("method") == "vanilla":
        return ""
    try:
        return variant(str(record.get("method")), spec_from_record(model), float(budget))
    except (VidcostError, TypeError, ValueError):  # a model this vidcost cannot rebuild: no label
        return ""


def _spread_pct(record: Mapping[str, Any]) -> float | None:
    """IQR / median of the TTFT, in % (the profiler warns above 10 %)."""
    stats = (record.get("stats_ms") or {}).get("ttft") or {}
    if stats.get("median") and stats.get("iqr") is not None:
        return 100.0 * stats["iqr"] / stats["median"]
    return None


def store_rows(path: str | os.PathLike[str], *, benchmark: str = AVERAGE_BENCHMARK) -> JoinResult:
    """The store as one table: evaluated accuracy joined with measured profiles of the same model, frames,
    method and budget (`vidcost.join`); what found no partner is kept, and `unjoined` says why.

    Raises:
        DataFormatError: the store is missing or holds neither profile nor accuracy records.
    """
    from vidcost.store import read_records

    records = read_records(path)
    profiles, accuracy = _record_tables(records, benchmark)
    if not profiles and not any(r.get("kind") == "accuracy" for r in records):
        raise DataFormatError(f"store '{path}' holds no profile or accuracy records; run `vidcost profile` or "
                              "`vidcost ingest lmms-eval` first")
    return join_rows(accuracy, profiles)


def _record_tables(records: Sequence[Mapping[str, Any]], benchmark: str
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cost rows and accuracy rows of the store's records (no accuracy records: no accuracy rows).

    The cost rows are the profiles' (`profile_rows`) and those of the requests `vidcost eval` answered
    (`summarise_requests`: the cost measured in the forward passes that produced the accuracy beside it).
    """
    from vidcost.eval.record import summarise_requests

    has_accuracy = any(r.get("kind") == "accuracy" for r in records)
    cost = profile_rows(records) + summarise_requests(records)
    return cost, (accuracy_rows(records, benchmark=benchmark) if has_accuracy else [])


def check_no_duplicates(rows: Sequence[Mapping[str, Any]], *, source: str) -> None:
    """Reject identical rows in a user table (a copy-paste slip, not a tie).

    Raises:
        DataFormatError: naming the first duplicated row's index and how many there are.
    """
    seen: dict[tuple[Any, ...], int] = {}
    duplicates = []
    for index, row in enumerate(rows):
        key = tuple(sorted((k, str(v)) for k, v in row.items()))
        if key in seen:
            duplicates.append((seen[key], index))
        else:
            seen[key] = index
    if duplicates:
        first, again = duplicates[0]
        raise DataFormatError(f"'{source}' has {len(duplicates)} duplicate row(s), e.g. data rows {first + 1} and "
                              f"{again + 1} are identical; remove the copies")


# ------------------------------------------------------------------------------------------------- report

@dataclass(frozen=True)
class Report:
    """A written report directory: its files and what it could not show."""

    out_dir: str
    figures: tuple[Any, ...]
    tables: tuple[str, ...]
    notes: tuple[str, ...]

    def __str__(self) -> str:
        return (f"report in {self.out_dir}: {len(self.figures)} figures, {len(self.tables)} tables"
                + (f", {len(self.notes)} notes" if self.notes else ""))


def build_report(out_dir: str | os.PathLike[str], *, store: str | os.PathLike[str] | None = None,
                 published_paths: Sequence[str | os.PathLike[str]] | None = None,
                 benchmark: str = AVERAGE_BENCHMARK, max_drop_pct: float = 1.0, min_speedup: float = 2.0,
                 title: str = "vidcost report", latency: Any = None) -> Report:
    """Write `index.html`, `report.md`, figures, CSV tables, `config.json` and `environment.json`.

    With `latency` (a `vidcost.predict.DeviceLatency`), published and ingested rows are also priced on
    that device: an accuracy-vs-predicted-TTFT figure (labelled predicted), the predicted columns in the
    tables, and recommendations that use the predicted speedup where none was measured.

    Raises:
        ConfigError / DataFormatError: bad published data, an unknown benchmark, a corrupt store.
    """
    from vidcost.pareto import compute_fronts, recommend
    from vidcost.plots import (plot_accuracy_vs_flops, plot_memory_vs_frames, plot_speedup_vs_budget,
                               plot_stage_breakdown)
    from vidcost.published import check_consistency, read_published, to_frame

    out = Path(out_dir)
    published = read_published(published_paths)
    pub_rows = published_rows(published, benchmark=benchmark)
    records, profiles, accuracy, notes = _store_tables(store, benchmark)
    out.mkdir(parents=True, exist_ok=True)  # after every input is read: a bad one leaves nothing behind
    fronts = compute_fronts(pub_rows, x="flops_ratio", y="relative_pct", group="model")
    inconsistencies = check_consistency(published)
    join = join_rows(accuracy, profiles)
    if accuracy and profiles:  # with one side empty, everything is unjoined and the notes above say so
        notes.extend(f"{line[0].upper()}{line[1:]}." for line in join.notes())
    if latency is not None:
        from vidcost.predict import attach_predicted

        pub_rows, unpriced = attach_predicted(pub_rows, latency)
        joined, unpriced_joined = attach_predicted(join.rows, latency)
        join = dataclasses.replace(join, rows=tuple(joined))
        if unpriced + unpriced_joined:
            notes.append(f"{unpriced + unpriced_joined} row(s) could not be priced {latency.label.removeprefix('predicted ')}"
                         " (a model that is not a preset, or a budget its method cannot plan).")
    recommendations = recommend(attach_measured(pub_rows, profiles) + list(join.rows),
                                max_drop_pct=max_drop_pct, min_speedup=min_speedup, predicted=latency)
    tables = {"published.csv": to_frame(published), f"published_{benchmark}.csv": pub_rows,
              "pareto_fronts.csv": [dict(group=f.group, x=f.x_column, y=f.y_column, label=p.label, x_value=p.x,
                                         y_value=p.y) for f in fronts for p in f.points],
              "recommendations.csv": [r.to_dict() for r in recommendations],
              "published_inconsistencies.csv": [vars(i) for i in inconsistencies]}
    if profiles:
        tables["profiles.csv"] = profiles
    if accuracy:
        tables["accuracy.csv"] = accuracy
    if accuracy and profiles:
        tables["accuracy_with_cost.csv"] = list(join.rows)
        if join.unjoined:
            tables["unjoined.csv"] = [u.to_dict() for u in join.unjoined]
    _write_tables(out, tables)
    figures = [plot_accuracy_vs_flops(pub_rows, out)]
    if latency is not None:
        figures.append(plot_accuracy_vs_flops(pub_rows + list(join.rows), out, name="accuracy_vs_predicted_ttft",
                                              provenance="published accuracy, predicted latency",
                                              x="predicted_ttft_ms", device_label=latency.label))
    models = sorted({str(r["model"]) for r in pub_rows if r.get("flops_ratio") is not None})
    reference = "llava-onevision-7b" if "llava-onevision-7b" in models else (models[0] if models else "")
    profiled = sorted({str(r["model"]) for r in profiles if r.get("speedup") is not None})
    figures.append(plot_speedup_vs_budget([reference, *profiled[:2]] if reference else profiled[:3], out,
                                          measured=profiles,
                                          published=[r for r in pub_rows if r["model"] == reference]))
    stages = plot_stage_breakdown(profiles, out)
    if stages is None:
        notes.append("Latency by stage: no profile records with stage timings in the store, figure left out.")
    else:
        figures.append(stages)
    figures.append(plot_memory_vs_frames(out, measured=profiles))
    config = {"store": None if store is None else str(store), "benchmark": benchmark,
              "published": [str(p) for p in (published_paths or [])] or "profiles/published/*.csv",
              "max_drop_pct": max_drop_pct, "min_speedup": min_speedup,
              "latency_source": latency.label if latency is not None else None}
    environment = _environment(profiles, records)
    _write_json(out / "config.json", config)
    _write_json(out / "environment.json", environment)
    context = dict(title=title, figures=figures, fronts=fronts, recommendations=recommendations, notes=notes,
                   tables=sorted(tables), environment=environment, config=config, benchmark=benchmark,
                   inconsistencies=inconsistencies, profiles=profiles, accuracy=accuracy)
    (out / "report.md").write_text(render_markdown(**context), encoding="utf-8")
    (out / "index.html").write_text(render_html(**context), encoding="utf-8")
    return Report(str(out), tuple(figures), tuple(sorted(tables)), tuple(notes))


def _store_tables(store: str | os.PathLike[str] | None, benchmark: str
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The store's records, profile rows, accuracy rows and notes on what it lacks (read once)."""
    from vidcost.store import read_records

    if store is None:
        return [], [], [], ["No store given: the report shows published data and predictions only."]
    path = Path(store)
    if not path.is_file():
        return [], [], [], [f"Store '{path}' does not exist: no measurements; the report shows published data "
                             "and predictions only."]
    records = read_records(path)
    profiles, accuracy = _record_tables(records, benchmark)
    notes = []
    if not profiles:
        notes.append(f"Store '{path}' holds no successful profile records: no measured latency or memory.")
    if not accuracy:
        notes.append(f"Store '{path}' holds no evaluated accuracy records (`vidcost ingest lmms-eval`).")
    noisy = [r for r in profiles if (r.get("ttft_iqr_pct") or 0.0) > 10.0]
    if noisy:
        worst = max(r["ttft_iqr_pct"] for r in noisy)
        notes.append(f"{len(noisy)} of {len(profiles)} measured configurations have noisy timings (IQR/median of "
                     f"the TTFT above 10 %, up to {worst:.0f} %): re-run them with more --repeats on a quiet "
                     "machine before trusting their speedups.")
    failed = sum(1 for r in records if r.get("kind") == "profile" and r.get("status") == "failed")
    if failed:
        notes.append(f"{failed} failed profile record(s) in the store were left out.")
    return records, profiles, accuracy, notes


def _write_tables(out: Path, tables: Mapping[str, Any]) -> None:
    import pandas as pd

    for name, data in tables.items():
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(list(data))
        frame.to_csv(out / name, index=False)


def _write_json(path: Path, payload: Any) -> None:
    import json

    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _environment(profiles: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Where the report was generated and, separately, where its measurements were taken."""
    import platform
    import subprocess
    import sys
    from datetime import datetime, timezone

    import matplotlib
    import pandas

    from vidcost import __version__

    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        revision = None
    measured_on = []
    seen = set()
    for record in records:
        env = record.get("environment") or {}
        key = tuple(sorted((k, str(v)) for k, v in env.items()))
        if record.get("kind") == "profile" and env and key not in seen:
            seen.add(key)
            measured_on.append(env)
    return {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "vidcost": __version__, "vidcost_git": revision, "python": sys.version.split()[0],
            "platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "matplotlib": matplotlib.__version__, "pandas": pandas.__version__,
            "measured_on": measured_on, "profile_rows": len(profiles)}


# ---------------------------------------------------------------------------------------------- rendering

def _summary_lines(ctx: Mapping[str, Any]) -> list[str]:
    measured = len(ctx["profiles"])
    evaluated = len(ctx["accuracy"])
    return [f"Measured configurations in the store: {measured}" + ("" if measured else
            " — no measurements are in the store; every latency and memory figure below is predicted or "
            "published, never measured."),
            f"Evaluated accuracy rows in the store: {evaluated}",
            f"Benchmark: `{ctx['benchmark']}` (\"avg\" = the mean over a table's benchmarks).",
            f"Recommendation target: accuracy drop ≤ {ctx['config']['max_drop_pct']:g} pt of % of vanilla, "
            f"prefill speedup ≥ {ctx['config']['min_speedup']:g}×."]


def render_markdown(**ctx: Any) -> str:
    """The report as Markdown (figures linked as PNG)."""
    out = [f"# {ctx['title']}", "", *[f"- {line}" for line in _summary_lines(ctx)], ""]
    if ctx["notes"]:
        out += ["## Notes", "", *[f"- {n}" for n in ctx["notes"]], ""]
    out += ["## Figures", ""]
    for fig in ctx["figures"]:
        out += [f"### {fig.title} ({fig.provenance})", "", f"![{fig.title}]({fig.files[0]})", "",
                f"{fig.caption} Files: " + ", ".join(f"[{f}]({f})" for f in fig.files), ""]
    out += ["## Pareto fronts (published, relative score vs FLOPs ratio)", ""]
    for front in ctx["fronts"]:
        out += [f"**{front.group}** — {len(front.points)} of {front.total} rows non-dominated", "",
                "| configuration | FLOPs ratio | score (% of vanilla) |", "|---|---:|---:|"]
        out += [f"| {p.label} | {p.x:.1%} | {p.y:.1f} |" for p in front.points] + [""]
    if ctx["profiles"]:
        out += ["## Measured prefill (store)", "", "| " + " | ".join(_MEASURED_HEADER) + " |",
                "|" + "|".join(["---"] * 2 + ["---:"] * 2 + ["---"] + ["---:"] * (len(_MEASURED_HEADER) - 5)) + "|"]
        out += ["| " + " | ".join(cells) + " |" for cells in _measured_cells(ctx["profiles"])] + [""]
    if ctx["accuracy"]:
        out += ["## Evaluated accuracy (store, lmms-eval)", "",
                "| model | frames | method | budget | score | % of vanilla |", "|---|---:|---|---:|---:|---:|"]
        out += [f"| {r['model']} | {r.get('eval_frames') or '—'} | {r['method']} | {r['budget']:g} | "
                f"{r['score']:.2f} | {_fmt(r.get('relative_pct'))} |" for r in ctx["accuracy"]] + [""]
    out += ["## Recommendations", ""]
    if ctx["recommendations"]:
        out += [f"- {r}" for r in ctx["recommendations"]]
    else:
        out.append("- No method meets both targets.")
    out += ["", "Speedups labelled *flops-ideal* come from the cost model, not from a measurement.", ""]
    if ctx["inconsistencies"]:
        out += ["## Published numbers that disagree with their own tables", "",
                *[f"- {i}" for i in ctx["inconsistencies"]], ""]
    out += ["## Tables", "", *[f"- [{t}]({t})" for t in ctx["tables"]], "",
            "## Environment", "", "```", *_environment_lines(ctx["environment"]), "```", ""]
    return "\n".join(out)


# The vocabulary's own names (DESIGN §8), so a reader finds each column in profiles.csv and `--json`;
# every speedup stands right after the two values it divides.
_MEASURED_HEADER = ("model", "method", "budget", "frames", "device", "ttft_ms", "vanilla_ttft_ms", "speedup",
                    "llm_prefill_ms", "vanilla_llm_prefill_ms", "llm_prefill_speedup", "selection_ms",
                    "peak_memory_bytes (MiB)", "ttft IQR/median (%)")


def _measured_cells(profiles: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows = sorted(profiles, key=lambda r: (str(r.get("model")), r.get("frames") or 0, -(r.get("budget") or 0),
                                           str(r.get("method"))))
    mib = (lambda n: None if n is None else n / 2 ** 20)  # noqa: E731
    method = lambda r: f"{r.get('method')} ({r['variant']})" if r.get("variant") else str(r.get("method"))  # noqa: E731
    return [(str(r.get("model")), method(r), _fmt(r.get("budget"), ".0%"), str(r.get("frames")),
             str(r.get("device")), _fmt(r.get("ttft_ms")), _fmt(r.get("vanilla_ttft_ms")),
             _fmt(r.get("speedup"), ".2f"), _fmt(r.get("llm_prefill_ms")), _fmt(r.get("vanilla_llm_prefill_ms")),
             _fmt(r.get("llm_prefill_speedup"), ".2f"), _fmt(r.get("selection_ms")),
             _fmt(mib(r.get("peak_memory_bytes")), ".0f"), _fmt(r.get("ttft_iqr_pct"), ".0f")) for r in rows]


def _fmt(value: Any, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _environment_lines(env: Mapping[str, Any]) -> list[str]:
    lines = [f"{k}: {v}" for k, v in sorted(env.items()) if k != "measured_on"]
    for index, measured in enumerate(env.get("measured_on") or [], 1):
        lines.append(f"measured_on[{index}]: " + ", ".join(f"{k}={v}" for k, v in sorted(measured.items())))
    if not env.get("measured_on"):
        lines.append("measured_on: (no profile records)")
    return lines


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}
.tag{display:inline-block;padding:0 .5em;border-radius:.7em;background:#eef;font-size:.85em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}"""


def _code(text: str) -> str:
    """Markdown `code` spans as <code> (text already escaped)."""
    import re

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def render_html(**ctx: Any) -> str:
    """The report as one HTML page; figures and tables are files beside it (relative links only)."""
    from html import escape

    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(ctx['title'])}</title>",
             f"<style>{_CSS}</style></head><body><h1>{escape(ctx['title'])}</h1><ul>",
             *[f"<li>{_code(escape(line))}</li>" for line in _summary_lines(ctx)], "</ul>"]
    if ctx["notes"]:
        parts += ["<h2>Notes</h2><ul>", *[f"<li>{_code(escape(n))}</li>" for n in ctx["notes"]], "</ul>"]
    parts.append("<h2>Figures</h2>")
    for fig in ctx["figures"]:
        links = " ".join(f"<a href='{escape(f)}'>{escape(f)}</a>" for f in fig.files)
        parts += [f"<h3>{escape(fig.title)} <span class='tag'>{escape(fig.provenance)}</span></h3>",
                  f"<img src='{escape(fig.files[0])}' alt='{escape(fig.title)}'>",
                  f"<p>{escape(fig.caption)} {links}</p>"]
    parts.append("<h2>Pareto fronts <span class='tag'>published</span></h2>")
    for front in ctx["fronts"]:
        parts += [f"<h3>{escape(str(front.group))}: {len(front.points)} of {front.total} non-dominated</h3>",
                  "<table><tr><th>configuration</th><th>FLOPs ratio</th><th>score (% of vanilla)</th></tr>",
                  *[f"<tr><td>{escape(p.label)}</td><td>{p.x:.1%}</td><td>{p.y:.1f}</td></tr>"
                    for p in front.points], "</table>"]
    if ctx["profiles"]:
        parts += ["<h2>Measured prefill <span class='tag'>measured</span></h2><table><tr>",
                  *[f"<th>{escape(h)}</th>" for h in _MEASURED_HEADER], "</tr>",
                  *["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
                    for cells in _measured_cells(ctx["profiles"])], "</table>"]
    if ctx["accuracy"]:
        parts += ["<h2>Evaluated accuracy <span class='tag'>store, lmms-eval</span></h2>",
                  ("<table><tr><th>model</th><th>frames</th><th>method</th><th>budget</th><th>score</th>"
                   "<th>% of vanilla</th></tr>"),
                  *[f"<tr><td>{escape(str(r['model']))}</td><td>{r.get('eval_frames') or '—'}</td>"
                    f"<td>{escape(str(r['method']))}</td><td>{r['budget']:g}</td><td>{r['score']:.2f}</td>"
                    f"<td>{_fmt(r.get('relative_pct'))}</td></tr>" for r in ctx["accuracy"]], "</table>"]
    parts.append("<h2>Recommendations</h2><ul>")
    parts += [f"<li>{escape(str(r))}</li>" for r in ctx["recommendations"]] or ["<li>No method meets both "
                                                                                 "targets.</li>"]
    parts.append("</ul><p>Speedups labelled <em>flops-ideal</em> come from the cost model, not a measurement.</p>")
    if ctx["inconsistencies"]:
        parts += ["<h2>Published numbers that disagree with their own tables</h2><ul>",
                  *[f"<li>{escape(str(i))}</li>" for i in ctx["inconsistencies"]], "</ul>"]
    parts += ["<h2>Tables</h2><ul>", *[f"<li><a href='{escape(t)}'>{escape(t)}</a></li>" for t in ctx["tables"]],
              "</ul><h2>Environment</h2>",
              f"<pre>{escape(chr(10).join(_environment_lines(ctx['environment'])))}</pre>",
              "<p><a href='config.json'>config.json</a> · <a href='environment.json'>environment.json</a> · "
              "<a href='report.md'>report.md</a></p></body></html>"]
    return "\n".join(parts) + "\n"
