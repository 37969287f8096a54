"""ProfileRecord: one measured (or failed) configuration, in the store's profile-record schema — and the
one vocabulary every output speaks (DESIGN §8).

A `vidcost profile` invocation produces a `vanilla` record and a method record sharing one `run_id`;
both are appended to the store (`vidcost.store.append_record`) as one JSON line each. `to_dict()` is
exactly that JSON object (schema_version 2). Older records (schema 1: `prefill_ms`, a `total` stage,
`flops.exact` with the LM head) are read through `upgrade_record`, so every reader sees one vocabulary.

`compare_records(vanilla, method)` derives every `vanilla_*` value and every ratio from the two records
— the profile JSON, the sweep table, the report and the fit all call it, so a speedup is always the
quotient of the two values shown beside it. Pure Python: no torch.
"""

from __future__ import annotations

import datetime as _dt
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

SCHEMA_VERSION = 2
# The stages of a prefill, in order (`stages_ms` keys); `ttft` is their sum, timed as one window.
STAGES = ("vision", "projector", "selection", "llm_prefill", "first_token")
TTFT = "ttft"
DECODE = "decode"
# Values a comparison reports for both configurations: the method's under its own name, vanilla's as vanilla_*.
COMPARED_KEYS = ("ttft_ms", "llm_prefill_ms", "decode_ms_per_token", "kv_cache_bytes", "peak_increase_bytes",
                 "peak_memory_bytes", "energy_j", "power_w")
# ratio name → (the value it divides: vanilla's over the method's)
SPEEDUPS = {"speedup": "ttft_ms", "llm_prefill_speedup": "llm_prefill_ms",
            "decode_speedup": "decode_ms_per_token"}


def new_run_id() -> str:
    """A fresh run id (uuid4 hex)."""
    return uuid.uuid4().hex


def utc_now() -> str:
    """ISO-8601 UTC timestamp, seconds precision."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ProfileRecord:
    """One configuration's measurement.

    Attributes:
        run_id: shared by the vanilla and method records of one invocation (or one sweep cell).
        method / params / budget: what was measured (params resolved with defaults).
        model: `ModelSpec.to_dict()` of the inputs actually run (frames, text tokens).
        device / dtype: e.g. "cpu", "float32".
        status: "ok" or "failed"; `error` holds the message of a failure.
        planned_schedule / executed_schedule: `Schedule.to_dict()` forms (None if the run failed early).
        ttft_ms: median time to first token: vision encoder → projector → selection → LLM prefill →
            first token, timed as one window.
        llm_prefill_ms: median of the decoder layers over the prompt (what FLOPs ratios describe).
        stages_ms: per-stage medians (`STAGES`, + `layer_NN` with --per-layer).
        decode_tokens: greedy decode steps run after each prefill (0: prefill only).
        decode_ms_per_token: median over steps and repeats of one decode step, or None.
        samples_ms: raw samples: one per repeat for each stage and `ttft`, one per step for `decode`.
        stats_ms: {"median", "iqr", "min", "count"} of each `samples_ms` entry.
        kv_cache_bytes: bytes of the keys and values the cache object holds after the prefill.
        peak_increase_bytes: the run's own peak allocation above what was allocated when it began
            (weights and inputs), from allocator events; `stage_peak_increase_bytes` per stage, each
            above what was allocated when that stage began.
        peak_memory_bytes: the allocator's peak with the weights (what was allocated at the start + the
            increase).
        memory_source: how the peaks were measured ("cuda_allocator", "cpu_allocator_events").
        energy_j / energy_j_iqr: joules per prefill above idle power (prefill only: no decode steps),
            median and IQR over blocks of back-to-back runs of this configuration (≥ 5 s each, an idle
            window before each, blocks of configurations alternating); `energy_blocks` holds each block's
            runs, seconds, raw joules, idle power, and the SM / memory clocks and power limit at its start.
            GPU with NVML only, else None. (Records written before this measured ≥ 1 s blocks with the
            decode steps in them and no idle subtracted.)
        power_w / power_source: mean board power over the blocks; "instant" (NVML's instantaneous
            field, sampled) or "energy/time" (pooled energy over pooled time).
        nvml_peak_used_bytes: NVML device memory in use at its peak (all processes; GPU only).
        flops: FLOPs of the executed schedule — "llm_prefill": exact convention, decoder layers only
            (the work the `llm_prefill` window times); "ttft": exact, with the vision tower, projector
            and LM head; "paper": HieraVid Eq. 12.
        inputs: what was fed and with which weights: {"video", "weights"} in words.
        config_hash: the sweep cell's configuration hash (None outside sweeps).
        environment: device name, driver, versions, threads, git revision, seed, ...
        created_at: ISO-8601 UTC.
    """

    run_id: str
    method: str
    params: dict[str, Any]
    budget: float
    model: dict[str, Any]
    device: str
    dtype: str
    status: str = "ok"
    error: str | None = None
    planned_schedule: dict[str, Any] | None = None
    executed_schedule: dict[str, Any] | None = None
    ttft_ms: float | None = None
    llm_prefill_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    decode_tokens: int = 0
    decode_ms_per_token: float | None = None
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    stats_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    kv_cache_bytes: int | None = None
    peak_increase_bytes: int | None = None
    stage_peak_increase_bytes: dict[str, int] = field(default_factory=dict)
    peak_memory_bytes: int | None = None
    memory_source: str | None = None
    energy_j: float | None = None
    energy_j_iqr: float | None = None
    energy_blocks: list[dict[str, float]] = field(default_factory=list)
    power_w: float | None = None
    power_source: str | None = None
    nvml_peak_used_bytes: int | None = None
    flops: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    config_hash: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    @property
    def frames(self) -> int:
        return int(self.model.get("frames", 0))

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object (profile-record schema, version 2)."""
        return {
            "kind": "profile", "schema_version": SCHEMA_VERSION, "run_id": self.run_id,
            "created_at": self.created_at, "status": self.status, "error": self.error,
            "method": self.method, "params": dict(self.params), "budget": self.budget,
            "model": dict(self.model), "frames": self.frames, "device": self.device, "dtype": self.dtype,
            "planned_schedule": self.planned_schedule, "executed_schedule": self.executed_schedule,
            "ttft_ms": self.ttft_ms, "llm_prefill_ms": self.llm_prefill_ms, "stages_ms": dict(self.stages_ms),
            "decode_tokens": self.decode_tokens, "decode_ms_per_token": self.decode_ms_per_token,
            "samples_ms": {k: list(v) for k, v in self.samples_ms.items()},
            "stats_ms": {k: dict(v) for k, v in self.stats_ms.items()},
            "kv_cache_bytes": self.kv_cache_bytes, "peak_increase_bytes": self.peak_increase_bytes,
            "stage_peak_increase_bytes": dict(self.stage_peak_increase_bytes),
            "peak_memory_bytes": self.peak_memory_bytes, "memory_source": self.memory_source,
            "energy_j": self.energy_j, "energy_j_iqr": self.energy_j_iqr,
            "energy_blocks": [dict(b) for b in self.energy_blocks], "power_w": self.power_w,
            "power_source": self.power_source, "nvml_peak_used_bytes": self.nvml_peak_used_bytes,
            "flops": dict(self.flops), "inputs": dict(self.inputs), "config_hash": self.config_hash,
            "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ProfileRecord":
        """Rebuild from a stored object of any schema version (upgraded first; unknown keys ignored)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in upgrade_record(data).items() if k in names})

    def __str__(self) -> str:
        if self.status != "ok":
            return f"ProfileRecord({self.method} @ {self.budget}: failed — {self.error})"
        return (f"ProfileRecord({self.method} @ {self.budget}: TTFT {self.ttft_ms:.2f} ms, LLM prefill "
                f"{self.llm_prefill_ms:.2f} ms on {self.device})")


def upgrade_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored profile record in the current vocabulary (schema 2); other records are returned as they are.

    Schema 1 stored `prefill_ms` (now `ttft_ms`), a `total` stage (now the `ttft` samples, outside
    `stages_ms`) and `flops.exact` with the LM head on the last position (now `flops.llm_prefill`,
    decoder layers only; the LM head's 2·d·V is taken off, from the stored model dimensions).
    """
    record = dict(data)
    if record.get("kind", "profile") != "profile" or record.get("schema_version", 1) >= SCHEMA_VERSION:
        return record
    stages = dict(record.get("stages_ms") or {})
    total = stages.pop("total", None)
    record["stages_ms"] = stages
    record["ttft_ms"] = record.pop("prefill_ms", None) if record.get("prefill_ms") is not None else total
    record.pop("prefill_ms", None)
    record["llm_prefill_ms"] = stages.get("llm_prefill")
    for key in ("samples_ms", "stats_ms"):
        values = dict(record.get(key) or {})
        if "total" in values:
            values[TTFT] = values.pop("total")
        record[key] = values
    record["flops"] = _upgrade_flops(record.get("flops") or {}, record.get("model") or {})
    if "avg_power_w" in record:
        record["power_w"] = record.pop("avg_power_w")
    record["schema_version"] = SCHEMA_VERSION
    return record


def _upgrade_flops(flops: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    upgraded = {"paper": flops.get("paper")}
    exact, hidden, vocab = flops.get("exact"), model.get("hidden_size"), model.get("vocab_size")
    upgraded["llm_prefill"] = exact - 2 * hidden * vocab if None not in (exact, hidden, vocab) else None
    upgraded["ttft"] = flops.get("exact_with_vision")
    return upgraded


def compare_records(vanilla: Mapping[str, Any], method: Mapping[str, Any]) -> dict[str, Any]:
    """The method's values, vanilla's beside them (`vanilla_*`) and the ratios between them (DESIGN §8).

    Both records in the current vocabulary (see `upgrade_record`). A ratio is None when either value is
    missing or zero: it is always computed from the two values returned beside it.
    """
    result: dict[str, Any] = {}
    for key in COMPARED_KEYS:
        result[key] = method.get(key)
        result[f"vanilla_{key}"] = vanilla.get(key)
    for ratio, key in SPEEDUPS.items():
        result[ratio] = ratio_or_none(vanilla.get(key), method.get(key))
    # The LLM prefill's own peak: what pruning changes (the run's peak may be the vision tower's).
    for prefix, record in (("", method), ("vanilla_", vanilla)):
        peaks = record.get("stage_peak_increase_bytes") or {}
        result[f"{prefix}llm_prefill_peak_increase_bytes"] = peaks.get("llm_prefill")
    van_flops, met_flops = vanilla.get("flops") or {}, method.get("flops") or {}
    result["flops_speedup"] = ratio_or_none(van_flops.get("llm_prefill"), met_flops.get("llm_prefill"))
    result["ttft_flops_speedup"] = ratio_or_none(van_flops.get("ttft"), met_flops.get("ttft"))
    result["stages_ms"] = dict(method.get("stages_ms") or {})
    result["vanilla_stages_ms"] = dict(vanilla.get("stages_ms") or {})
    return result


def ratio_or_none(numerator: Any, denominator: Any) -> float | None:
    """numerator / denominator, or None when either is missing, zero or not finite."""
    try:
        a, b = float(numerator), float(denominator)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(a) and math.isfinite(b)) or a == 0 or b == 0:
        return None
    return a / b


def achieved_tflops(record: Mapping[str, Any]) -> float | None:
    """Exact decoder-layer FLOPs over the measured LLM-prefill median, in TFLOP/s."""
    ms, flops = record.get("llm_prefill_ms"), (record.get("flops") or {}).get("llm_prefill")
    return flops / (ms * 1e-3) / 1e12 if ms and flops else None


@dataclass(frozen=True)
class ProfileComparison:
    """Vanilla and method records of one invocation, and the ratios between them.

    Attributes:
        vanilla: the vanilla record (the same object as `method` when the method is vanilla).
        method: the method's record.
    """

    vanilla: ProfileRecord
    method: ProfileRecord

    @property
    def compared(self) -> dict[str, Any]:
        """`compare_records` of the two: every vanilla_* value and every ratio (DESIGN §8)."""
        return compare_records(self.vanilla.to_dict(), self.method.to_dict())

    @property
    def speedup(self) -> float | None:
        """Measured TTFT speedup over vanilla (vision encoder through first token)."""
        return self.compared["speedup"]

    @property
    def llm_prefill_speedup(self) -> float | None:
        """Measured speedup of the LLM prefill stage alone (decoder layers)."""
        return self.compared["llm_prefill_speedup"]

    @property
    def flops_speedup(self) -> float | None:
        """Exact decoder-layer FLOPs of the executed schedules: vanilla over method (what `llm_prefill` times)."""
        return self.compared["flops_speedup"]

    @property
    def ttft_flops_speedup(self) -> float | None:
        """Exact FLOPs with the vision tower and LM head: the best TTFT speedup the FLOPs allow."""
        return self.compared["ttft_flops_speedup"]

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object of `vidcost profile`."""
        m = self.method
        return {
            "run_id": m.run_id, "method": m.method, "params": m.params, "budget": m.budget, "model": m.model["name"],
            "frames": m.frames, "device": m.device, "dtype": m.dtype, **self.compared,
            "decode_tokens": m.decode_tokens, "samples_ms": m.samples_ms.get(TTFT, []),
            "memory_source": m.memory_source, "power_source": m.power_source,
            "flops": m.flops, "vanilla_flops": self.vanilla.flops,
            "achieved_tflops": achieved_tflops(m.to_dict()),
            "vanilla_achieved_tflops": achieved_tflops(self.vanilla.to_dict()),
            "planned_schedule": m.planned_schedule, "executed_schedule": m.executed_schedule,
            "inputs": m.inputs,
        }

    def __str__(self) -> str:
        return (f"{self.method.method} @ {self.method.budget}: {_times(self.speedup)} measured vs "
                f"{_times(self.flops_speedup)} FLOPs (LLM prefill {_times(self.llm_prefill_speedup)})")


def _times(value: float | None) -> str:
    return f"{value:.2f}×" if value is not None else "n/a"
