"""ProfileRecord: one measured (or failed) configuration, in the store's profile-record schema.

A `vidcost profile` invocation produces a `vanilla` record and a method record sharing one `run_id`;
both are appended to the store (`vidcost.store.append_record`) as one JSON line each. The schema
(schema_version 1) is agreed with the report side; `to_dict()` is exactly that JSON object.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


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
        run_id: shared by the vanilla and method records of one invocation.
        method / params / budget: what was measured (params resolved with defaults).
        model: `ModelSpec.to_dict()` of the inputs actually run (frames, text tokens).
        device / dtype: e.g. "cpu", "float32".
        status: "ok" or "failed"; `error` holds the message of a failure.
        planned_schedule / executed_schedule: `Schedule.to_dict()` forms (None if the run failed early).
        stages_ms: per-stage medians (vision, projector, selection, llm_prefill, first_token, total).
        samples_ms: raw samples per stage.
        stats_ms: per-stage {"median", "iqr", "min", "count"}.
        prefill_ms: median of `total` (vision encoder through first token).
        peak_memory_bytes / memory_source: "cuda_max_allocated" or "rss".
        peak_increase_bytes: GPU: the allocator peak above the allocation before the run (what the run
            itself added); None on CPU.
        energy_j / avg_power_w: NVML energy per prefill and mean power (GPU only, else None).
        nvml_peak_used_bytes: NVML device memory in use at its peak (all processes; GPU only).
        flops: {"paper": .., "exact": .., "exact_with_vision": ..} of the executed schedule.
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
    stages_ms: dict[str, float] = field(default_factory=dict)
    samples_ms: dict[str, list[float]] = field(default_factory=dict)
    stats_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    prefill_ms: float | None = None
    peak_memory_bytes: int | None = None
    peak_increase_bytes: int | None = None
    memory_source: str | None = None
    energy_j: float | None = None
    avg_power_w: float | None = None
    nvml_peak_used_bytes: int | None = None
    flops: dict[str, float] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    @property
    def frames(self) -> int:
        return int(self.model.get("frames", 0))

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object (profile-record schema, version 1)."""
        return {
            "kind": "profile", "schema_version": SCHEMA_VERSION, "run_id": self.run_id,
            "created_at": self.created_at, "status": self.status, "error": self.error,
            "method": self.method, "params": dict(self.params), "budget": self.budget,
            "model": dict(self.model), "frames": self.frames, "device": self.device, "dtype": self.dtype,
            "planned_schedule": self.planned_schedule, "executed_schedule": self.executed_schedule,
            "stages_ms": dict(self.stages_ms), "samples_ms": {k: list(v) for k, v in self.samples_ms.items()},
            "stats_ms": {k: dict(v) for k, v in self.stats_ms.items()}, "prefill_ms": self.prefill_ms,
            "peak_memory_bytes": self.peak_memory_bytes, "peak_increase_bytes": self.peak_increase_bytes,
            "memory_source": self.memory_source,
            "energy_j": self.energy_j, "avg_power_w": self.avg_power_w,
            "nvml_peak_used_bytes": self.nvml_peak_used_bytes, "flops": dict(self.flops),
            "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProfileRecord":
        """Rebuild from a stored object (unknown keys ignored)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def __str__(self) -> str:
        if self.status != "ok":
            return f"ProfileRecord({self.method} @ {self.budget}: failed — {self.error})"
        return (f"ProfileRecord({self.method} @ {self.budget}: prefill {self.prefill_ms:.2f} ms, "
                f"peak {(self.peak_memory_bytes or 0) / 2**20:.0f} MiB on {self.device})")
