"""Export: a store flattened into one table — one row per record, in the profile vocabulary (DESIGN §8).

Profile records are read through `upgrade_record` (older stores' `prefill_ms` becomes `ttft_ms`) and each is
compared with the vanilla record of its run (`compare_records`): the row carries `vanilla_*` beside every
value and each ratio (`speedup`, `llm_prefill_speedup`, …), so a spreadsheet shows the same numbers as the
report. Nested objects become dotted columns (`stages_ms.vision`, `model.hidden_size`; pandas'
`json_normalize`); lists (raw samples, schedules) become JSON text, which both CSV and Parquet keep intact.
Parquet needs pyarrow (the `parquet` extra).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from vidcost.errors import ConfigError, DataFormatError

if TYPE_CHECKING:
    import pandas as pd

FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class Export:
    """A written table: where, how many rows of which kinds, and its columns."""

    path: str
    rows: int
    kinds: dict[str, int]
    columns: int

    def __str__(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items()))
        return f"wrote {self.rows} row(s) ({kinds}), {self.columns} columns, to {self.path}"


def load_frame(path: str | os.PathLike[str], *, kind: str | None = None) -> "pd.DataFrame":
    """Records of a store as a pandas DataFrame, one row each, nested objects flattened to dotted column names,
    profile records in the current vocabulary beside their vanilla comparison (`records_table`)."""
    from vidcost.store import read_records

    return records_table(read_records(path, kind=kind))


def records_table(records: Iterable[Mapping[str, Any]]) -> "pd.DataFrame":
    """Records as one flat DataFrame, profile records in the current vocabulary with their comparisons."""
    import pandas as pd

    from vidcost.profiling.record import compare_records, upgrade_record

    records = [upgrade_record(r) for r in records]
    vanilla = {r.get("run_id"): r for r in records if r.get("kind") == "profile" and r.get("method") == "vanilla"}
    rows = []
    for record in records:
        row = dict(record)
        base = vanilla.get(record.get("run_id")) if record.get("kind") == "profile" else None
        if base is not None and record.get("status", "ok") == "ok":
            compared = compare_records(base, record)
            row.update({k: v for k, v in compared.items() if k not in row})
        rows.append({k: (json.dumps(v) if isinstance(v, (list, tuple)) else v) for k, v in row.items()})
    frame = pd.json_normalize(rows) if rows else pd.DataFrame()
    return _uniform_columns(frame)


def _uniform_columns(frame: "pd.DataFrame") -> "pd.DataFrame":
    """One type per column (Parquet requires it): JSON text for lists or empty objects, text for mixed types."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column].dropna()
        values = values.map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
        types = {type(v) for v in values}
        if types <= {int, float} and types:
            frame[column] = frame[column].astype(float)
        elif len(types) > 1:  # e.g. a parameter given as 2 by one method and "auto" by another
            frame[column] = frame[column].map(lambda v: None if _missing(v) else str(v))
        else:
            frame.loc[values.index, column] = values
    return frame


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def export_store(store: str | os.PathLike[str], out: str | os.PathLike[str], *, kind: str | None = None) -> Export:
    """Write the store (or its records of one `kind`) as one table to `out` (`.csv` or `.parquet`).

    Raises:
        ConfigError: an output format other than .csv / .parquet, Parquet without pyarrow, an unwritable --out.
        DataFormatError: the store is missing or holds no records (of that kind).
    """
    from vidcost.store import read_records

    target = Path(out)
    check_format(target)
    records = read_records(store, kind=kind)
    if not records:
        which = f" of kind '{kind}'" if kind else ""
        raise DataFormatError(f"store '{store}' holds no records{which}; nothing to export")
    frame = records_table(records)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".csv":
            frame.to_csv(target, index=False)
        else:
            frame.to_parquet(target, index=False)
    except OSError as err:
        raise ConfigError(f"cannot write --out '{target}': {err.strerror or err}; choose a writable path") from err
    kinds: dict[str, int] = {}
    for record in records:
        kinds[str(record.get("kind"))] = kinds.get(str(record.get("kind")), 0) + 1
    return Export(str(target), len(frame), kinds, len(frame.columns))


def check_format(target: Path) -> None:
    """The output format from the file's extension, and for Parquet that pyarrow is there — before any work.

    Raises:
        ConfigError: naming the extensions vidcost writes, or the install that adds Parquet support.
    """
    if target.suffix not in FORMATS:
        raise ConfigError(f"cannot tell the format of --out '{target}'; end it in {' or '.join(FORMATS)}")
    if target.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401  (pandas writes Parquet through it)
        except ImportError:
            raise ConfigError('writing Parquet needs pyarrow: pip install -e ".[parquet]" (or write --out '
                              f"{target.with_suffix('.csv')})") from None
