"""Published results: accuracy and FLOPs that papers report, read from CSV and checked.

One row per (source, source table, model, frames, method, variant, budget, benchmark) with the score
(0–100), the relative score the paper prints (% of its vanilla model), the prefill FLOPs (T) and FLOPs
ratio the paper prints, and a free-text note. The files live under `profiles/published/`; numbers are
transcribed as printed, typos included, and `check_consistency` recomputes what the tables derive
(averages, relative scores, FLOPs ratios) so a reader sees where a paper and its own arithmetic disagree.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from vidcost.errors import ConfigError, DataFormatError

if TYPE_CHECKING:
    import pandas as pd

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "profiles" / "published"

KEY_COLUMNS = ("source", "source_table", "model", "frames", "method", "variant", "budget", "benchmark")
REQUIRED_COLUMNS = KEY_COLUMNS + ("score", "relative_pct", "flops_t", "flops_ratio")
_FLOAT_COLUMNS = ("budget", "score", "relative_pct", "flops_t", "flops_ratio", "prefill_speedup")
AVERAGE_BENCHMARK = "avg"  # the row holding a table's printed mean over its benchmarks


@dataclass(frozen=True)
class PublishedResult:
    """One published number: a method at a budget on one benchmark, as a paper prints it.

    Attributes:
        source: the paper, with its arXiv id.
        source_table: where in the paper ("Table 2", "Abstract").
        model: vidcost preset name of the model evaluated.
        frames: frames per video, None when the paper does not say.
        method: vidcost method name ("vanilla" for the unpruned model).
        variant: an ablation setting, "" for the method's default configuration.
        budget: fraction of visual tokens kept (1.0 for vanilla).
        benchmark: benchmark name, or "avg" for the table's mean over its benchmarks.
        score: score on a 0–100 scale, None when the paper gives only a relative score.
        relative_pct: score as a percentage of vanilla, as printed (None when not printed).
        flops_t: prefill FLOPs in units of 1e12 as printed (HieraVid Eq. 12 convention).
        flops_ratio: FLOPs relative to vanilla, as a fraction.
        prefill_speedup: a prefill speedup the paper claims (×), None when none.
        note: provenance remarks and any inconsistency found.
    """

    source: str
    source_table: str
    model: str
    frames: int | None
    method: str
    variant: str
    budget: float
    benchmark: str
    score: float | None
    relative_pct: float | None
    flops_t: float | None
    flops_ratio: float | None
    prefill_speedup: float | None = None
    note: str = ""
    file: str = ""
    line: int = 0

    @property
    def key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in KEY_COLUMNS)

    def __str__(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        score = "—" if self.score is None else f"{self.score:g}"
        return (f"{self.method}{variant} @ {self.budget:.0%} on {self.model} {self.benchmark}: {score} "
                f"({self.source}, {self.source_table})")


@dataclass(frozen=True)
class Inconsistency:
    """A derived number a table prints that its own inputs do not reproduce."""

    source_table: str
    model: str
    method: str
    variant: str
    budget: float
    quantity: str
    printed: float
    recomputed: float

    def __str__(self) -> str:
        variant = f" [{self.variant}]" if self.variant else ""
        return (f"{self.source_table} {self.model} {self.method}{variant} @ {self.budget:g}: {self.quantity} "
                f"printed {self.printed:g}, recomputed {self.recomputed:.3g}")


def published_files(directory: str | os.PathLike[str] = PUBLISHED_DIR) -> list[Path]:
    """The published CSV files, sorted by name."""
    return sorted(Path(directory).glob("*.csv"))


def read_published(paths: Iterable[str | os.PathLike[str]] | None = None) -> list[PublishedResult]:
    """Read and validate published CSV files (default: every file under `profiles/published/`).

    Raises:
        DataFormatError: a missing file or column, a non-numeric value, no rows at all, or duplicate rows
            (all named).
    """
    files = published_files() if paths is None else [Path(p) for p in paths]
    if not files:
        raise DataFormatError(f"no published CSV files under '{PUBLISHED_DIR}'; pass the files explicitly")
    results: list[PublishedResult] = []
    for path in files:
        results.extend(_read_one(path))
    if not results:
        raise DataFormatError(f"published file(s) {[str(p) for p in files]} hold a header but no rows; add rows "
                              "or pass other files")
    check_duplicates(results)
    return results


def _read_one(path: Path) -> list[PublishedResult]:
    if not path.is_file():
        raise DataFormatError(f"published file '{path}' does not exist; check the path")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataFormatError(
                    f"'{path}' lacks column(s) {missing}; a published CSV needs {list(REQUIRED_COLUMNS)}")
            return [_parse_row(row, path, number) for number, row in enumerate(reader, 2)]
    except UnicodeDecodeError:
        raise DataFormatError(f"'{path}' is not text (not UTF-8); pass a published-results CSV") from None


def _parse_row(row: dict[str, str], path: Path, line: int) -> PublishedResult:
    values: dict[str, Any] = {}
    for name in _FLOAT_COLUMNS:
        text = (row.get(name) or "").strip()
        try:
            values[name] = float(text) if text else None
        except ValueError:
            raise DataFormatError(
                f"{path}:{line}: column '{name}' holds '{text}', not a number; write e.g. 58.4 or leave "
                "it empty") from None
    if values["budget"] is None or not 0.0 < values["budget"] <= 1.0:
        raise DataFormatError(f"{path}:{line}: budget '{row.get('budget')}' must be a fraction in (0, 1]")
    frames_text = (row.get("frames") or "").strip()
    try:
        frames = int(frames_text) if frames_text else None
    except ValueError:
        raise DataFormatError(f"{path}:{line}: frames '{frames_text}' is not a whole number") from None
    text = {name: (row.get(name) or "").strip() for name in
            ("source", "source_table", "model", "method", "variant", "benchmark", "note")}
    for name in ("source", "model", "method", "benchmark"):
        if not text[name]:
            raise DataFormatError(f"{path}:{line}: column '{name}' is empty; every row names its {name}")
    return PublishedResult(frames=frames, file=str(path), line=line, **text, **values)


def check_duplicates(results: Sequence[PublishedResult]) -> None:
    """Reject rows that share a key (source, table, model, frames, method, variant, budget, benchmark).

    Raises:
        DataFormatError: naming the first duplicated key and where its rows are.
    """
    seen: dict[tuple[Any, ...], PublishedResult] = {}
    duplicates: list[tuple[PublishedResult, PublishedResult]] = []
    for result in results:
        if result.key in seen:
            duplicates.append((seen[result.key], result))
        else:
            seen[result.key] = result
    if duplicates:
        first, again = duplicates[0]
        raise DataFormatError(
            f"{len(duplicates)} duplicate row(s); e.g. {first.file}:{first.line} and {again.file}:{again.line} "
            f"both give {first.method} @ {first.budget:g} on {first.model} {first.benchmark} "
            f"({first.source_table}); remove one or set 'variant' to tell them apart")


def check_consistency(results: Sequence[PublishedResult], *, score_tolerance: float = 0.051,
                      relative_tolerance_pct: float = 0.15,
                      ratio_tolerance: float = 0.003) -> list[Inconsistency]:
    """Recompute what a table derives and list where it disagrees with what it prints.

    Checks (per table and model): the printed average equals the mean of the row's benchmarks (scores are
    printed to 0.1, so ±0.05); the printed relative score equals average / vanilla average; the printed
    FLOPs ratio equals FLOPs / vanilla FLOPs (FLOPs are printed to about 0.1 T).
    """
    rows: dict[tuple[Any, ...], list[PublishedResult]] = defaultdict(list)
    for result in results:
        rows[(result.source, result.source_table, result.model, result.frames, result.method, result.variant,
              result.budget)].append(result)
    vanilla = {key[:4]: members for key, members in rows.items() if key[4] == "vanilla"}
    found: list[Inconsistency] = []
    for key, members in rows.items():
        avg = next((r for r in members if r.benchmark == AVERAGE_BENCHMARK), None)
        if avg is None:
            continue
        parts = [r.score for r in members if r.benchmark != AVERAGE_BENCHMARK and r.score is not None]
        if parts and avg.score is not None:
            mean = sum(parts) / len(parts)
            if abs(mean - avg.score) > score_tolerance:
                found.append(_issue(avg, "average score", avg.score, mean))
        base = next((r for r in vanilla.get(key[:4], []) if r.benchmark == AVERAGE_BENCHMARK), None)
        if base is None:
            continue
        if avg.relative_pct is not None and avg.score is not None and base.score:
            relative = 100.0 * avg.score / base.score
            if abs(relative - avg.relative_pct) > relative_tolerance_pct:
                found.append(_issue(avg, "relative score %", avg.relative_pct, relative))
        if avg.flops_ratio is not None and avg.flops_t is not None and base.flops_t:
            ratio = avg.flops_t / base.flops_t
            if abs(ratio - avg.flops_ratio) > ratio_tolerance:
                found.append(_issue(avg, "FLOPs ratio", avg.flops_ratio, ratio))
    return found


def _issue(row: PublishedResult, quantity: str, printed: float, recomputed: float) -> Inconsistency:
    return Inconsistency(row.source_table, row.model, row.method, row.variant, row.budget, quantity, printed,
                         recomputed)


def with_relative_scores(results: Sequence[PublishedResult]) -> list[PublishedResult]:
    """Fill `relative_pct` where the paper prints none: score / vanilla score of the same table and benchmark."""
    base = {(r.source, r.source_table, r.model, r.frames, r.benchmark): r.score
            for r in results if r.method == "vanilla" and r.score}
    filled = []
    for r in results:
        vanilla = base.get((r.source, r.source_table, r.model, r.frames, r.benchmark))
        if r.relative_pct is None and r.score is not None and vanilla:
            r = replace(r, relative_pct=100.0 * r.score / vanilla)
        filled.append(r)
    return filled


def published_rows(results: Sequence[PublishedResult], *, benchmark: str = AVERAGE_BENCHMARK,
                   include_variants: bool = False) -> list[dict[str, Any]]:
    """Published rows of one benchmark, relative scores filled in, as plain dicts.

    Ablation tables (any table with a variant row) are left out unless asked for: their variants are not
    deployable configurations, and their default rows repeat a main table's configuration with an "avg"
    over fewer benchmarks, which would skew an accuracy-vs-budget curve mixed with the main table's.

    Raises:
        ConfigError: the benchmark does not occur (the ones that do are listed).
    """
    ablations = {(r.source, r.source_table) for r in results if r.variant}
    rows = [r for r in with_relative_scores(results)
            if r.benchmark == benchmark and (include_variants or (r.source, r.source_table) not in ablations)]
    if not rows:
        names = sorted({r.benchmark for r in results})
        raise ConfigError(f"benchmark '{benchmark}' is not in the published data; choose one of {names}")
    table = []
    for r in rows:
        row = {name: getattr(r, name) for name in r.__dataclass_fields__ if name not in ("file", "line")}
        row["provenance"] = "published"
        table.append(row)
    return table


def to_frame(results: Sequence[PublishedResult]) -> "pd.DataFrame":
    """Published results as a pandas DataFrame, one column per field."""
    import pandas as pd

    columns = [f.name for f in fields(PublishedResult)]
    return pd.DataFrame([asdict(r) for r in results], columns=columns)
