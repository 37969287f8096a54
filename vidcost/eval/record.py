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
from collections import Counter
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
        bookkeeping_ms: the backend's own time inside this request outside the model (the stop checks and
            building this record); `analysis/bench_eval_overhead.py` adds the store append and the loop.
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


REQUEST_PROVENANCE = "measured on the evaluated requests"


def summarise_requests(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, frames, method, budget, device, dtype), in the profile vocabulary (DESIGN §8).

    `ttft_ms`, `llm_prefill_ms` and their `vanilla_*` are medians over the *same* requests — those answered
    both by the method and by vanilla (paired by `request_key`) — so `speedup` and `llm_prefill_speedup` are
    the quotients of the two numbers beside them; `median_request_speedup` is the median of the per-request
    TTFT quotients. Without vanilla records the medians are over every answered request and the speedups
    are None. `requests` counts the answered requests, `paired_requests` those with a vanilla partner,
    `failed_requests` those answered "" (an undecodable video).
    """
    records = [r for r in records if r.get("kind") == KIND]
    ok = [r for r in records if r.get("status") == "ok" and r.get("ttft_ms")]
    group_of = lambda r: (r.get("model"), r.get("frames"), r.get("method"), r.get("budget"),  # noqa: E731
                          r.get("device"), r.get("dtype"))
    vanilla = {(request_key(r), r.get("device"), r.get("dtype")): r for r in ok if r.get("method") == "vanilla"}
    failed = Counter(group_of(r) for r in records if r.get("status") != "ok")
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in ok:
        groups.setdefault(group_of(record), []).append(record)
    rows = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        model, frames, method, budget, device, dtype = key
        pairs = [(r, vanilla[request_key(r), device, dtype]) for r in members
                 if (request_key(r), device, dtype) in vanilla]
        measured = [r for r, _ in pairs] or members
        base = [v for _, v in pairs]
        row = {"model": model, "frames": frames, "method": method, "budget": budget, "device": device,
               "dtype": dtype, "requests": len(members), "paired_requests": len(pairs),
               "failed_requests": failed.get(key, 0)}
        for column in ("ttft_ms", "llm_prefill_ms"):
            row[column] = _median(r.get(column) for r in measured)
            row[f"vanilla_{column}"] = _median(v.get(column) for v in base)
        row["speedup"] = _quotient(row["vanilla_ttft_ms"], row["ttft_ms"])
        row["llm_prefill_speedup"] = _quotient(row["vanilla_llm_prefill_ms"], row["llm_prefill_ms"])
        row["median_request_speedup"] = _median(v["ttft_ms"] / r["ttft_ms"] for r, v in pairs)
        row.update(decode_ms_per_token=_median(r.get("decode_ms_per_token") for r in members),
                   tokens_generated=_median(r.get("tokens_generated") for r in members),
                   visual_tokens_before=_median(r.get("visual_tokens_before") for r in members),
                   visual_tokens_after=_median(r.get("visual_tokens_after") for r in members),
                   selection_ms=_median((r.get("stages_ms") or {}).get("selection") for r in members),
                   provenance=REQUEST_PROVENANCE)
        rows.append(row)
    return rows


def _quotient(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def _median(values: Iterable[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
