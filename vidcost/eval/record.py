"""RequestRecord: the measured cost of one answered lmms-eval request, in the store's vocabulary (DESIGN §8).

One JSON line per request (`kind: "request"`), appended as soon as the request is answered, so a killed
evaluation keeps every request it finished. Keyed by task, doc id (and split), model, frames, method and
budget; `config_hash` names the evaluation run (one (method, budget) of `vidcost eval`). The cost is that
of the forward pass that produced the answer — the real video and question, one timed run, no warm-up
repeats — so its figures are single samples, not medians: compare methods by the median over requests
(`summarise_requests`). Pure Python: no torch.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping

from vidcost.profiling.record import utc_now

KIND = "request"


@dataclass(frozen=True)
class RequestRecord:
    """One request's cost.

    Attributes:
        task / doc_id / split: the lmms-eval request.
        model: the spec name (a preset, or the model directory) and `frames` the frames fed.
        method / budget / params: the pruning configuration.
        status: "ok", or "failed" with `error` (an undecodable video, say): the request was answered "".
        answer: the text answered (what lmms-eval scored), so that a killed evaluation resumes without
            answering a stored request again.
        ttft_ms / llm_prefill_ms / stages_ms: this request's time to first token, decoder-layer prefill and
            each stage (`STAGES`).
        visual_tokens_before / visual_tokens_after: visual tokens the video encodes to, and those entering
            the last decoder layer.
        decode_ms_per_token / tokens_generated: median decode step on the pruned cache, and tokens produced
            (the first token included).
        kv_cache_bytes: the KV cache after the prefill.
        bookkeeping_ms: the backend's own time for this request outside the model (stop checks, the record,
            the store write of the previous request), what `analysis/bench_eval_overhead.py` reads.
        request_ms: the whole request, from the video's decode to the answer's text.
        config_hash / device / dtype / environment: the run.
    """

    task: str
    doc_id: int
    split: str | None
    model: str
    frames: int
    method: str
    budget: float
    params: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    answer: str = ""
    ttft_ms: float | None = None
    llm_prefill_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    visual_tokens_before: int | None = None
    visual_tokens_after: int | None = None
    decode_ms_per_token: float | None = None
    tokens_generated: int = 0
    kv_cache_bytes: int | None = None
    bookkeeping_ms: float | None = None
    request_ms: float | None = None
    config_hash: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    environment: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        """The stored JSON object."""
        return {"kind": KIND, **asdict(self)}

    def __str__(self) -> str:
        if self.status != "ok":
            return f"RequestRecord({self.task}#{self.doc_id}, {self.method} @ {self.budget}: failed — {self.error})"
        return (f"RequestRecord({self.task}#{self.doc_id}, {self.method} @ {self.budget}: TTFT {self.ttft_ms:.1f} ms, "
                f"{self.tokens_generated} tokens)")


def request_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What two records of the same request share across configurations: task, split, doc id, model, frames."""
    return (record.get("task"), record.get("split"), record.get("doc_id"), record.get("model"), record.get("frames"))


def summarise_requests(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, frames, method, budget): median TTFT, LLM prefill and decode over its answered
    requests, and the median TTFT speedup over vanilla on the *same* requests (paired by `request_key`).
    """
    ok = [r for r in records if r.get("kind") == KIND and r.get("status") == "ok" and r.get("ttft_ms")]
    vanilla = {request_key(r): r for r in ok if r.get("method") == "vanilla"}
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in ok:
        groups.setdefault((record["model"], record["frames"], record["method"], record["budget"]), []).append(record)
    rows = []
    for (model, frames, method, budget), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        paired = [vanilla[request_key(r)]["ttft_ms"] / r["ttft_ms"] for r in members if request_key(r) in vanilla]
        rows.append({
            "model": model, "frames": frames, "method": method, "budget": budget, "requests": len(members),
            "ttft_ms": statistics.median(r["ttft_ms"] for r in members),
            "llm_prefill_ms": statistics.median(r["llm_prefill_ms"] for r in members),
            "decode_ms_per_token": _median(r.get("decode_ms_per_token") for r in members),
            "visual_tokens_after": _median(r.get("visual_tokens_after") for r in members),
            "speedup": statistics.median(paired) if paired else None, "paired_requests": len(paired),
        })
    return rows


def _median(values: Iterable[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
