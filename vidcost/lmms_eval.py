"""Where lmms-eval puts its files: every run in an output folder, each with its own samples files.

lmms-eval ≥ 0.2.4 (`loggers/evaluation_tracker.py`) writes each run into `<output_path>/<model>/` as
`<date>_results.json` beside `<date>_samples_<task>.jsonl` (date `YYYYMMDD_HHMMSS`), so one folder holds
several runs, told apart by their date prefix. lmms-eval 0.2.0–0.2.3 wrote one folder per run,
`<date>_<suffix>_<model>_model_args_<hash>/`, holding `results.json` and one `<task>.json` of samples
per task. `find_runs` accepts a results file or any folder above them and pairs each results file with
its own run's samples only. The contents are read by `vidcost.accuracy.read_lmms_eval`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidcost.errors import DataFormatError

RESULTS_SUFFIX = "_results.json"  # lmms-eval >= 0.2.4
LEGACY_RESULTS = "results.json"  # lmms-eval 0.2.0-0.2.3


@dataclass(frozen=True)
class RunFiles:
    """One lmms-eval run: its results file and the samples files written with it."""

    results: str
    samples: tuple[str, ...]


def find_runs(path: str | os.PathLike[str]) -> list[RunFiles]:
    """The runs at `path`: one results file, or every results file under a folder (oldest name first).

    Raises:
        DataFormatError: the path does not exist, or a folder holds no lmms-eval results file.
    """
    target = Path(path)
    if target.is_file():
        return [RunFiles(str(target), tuple(samples_beside(target)))]
    if not target.is_dir():
        raise DataFormatError(f"'{target}' does not exist; pass an lmms-eval results file or its output folder")
    found = sorted({*target.rglob(f"*{RESULTS_SUFFIX}"), *target.rglob(LEGACY_RESULTS)})
    if not found:
        raise DataFormatError(f"no lmms-eval results under '{target}' (looked for *{RESULTS_SUFFIX} and "
                              f"{LEGACY_RESULTS}); pass the --output_path lmms-eval wrote to")
    return [RunFiles(str(p), tuple(samples_beside(p))) for p in found]


def samples_beside(results: Path) -> list[str]:
    """The samples files of the run whose results file is `results` (never another run's)."""
    if results.name == LEGACY_RESULTS:  # one folder per run: every other JSON in it is a task's samples
        return sorted(str(p) for p in results.parent.glob("*.json") if p.name != LEGACY_RESULTS)
    if not results.name.endswith(RESULTS_SUFFIX):
        return []
    prefix = results.name.removesuffix(RESULTS_SUFFIX)
    return sorted(str(p) for p in results.parent.glob(f"{prefix}_samples_*.jsonl"))
