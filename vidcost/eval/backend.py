"""VidcostLMM: the lmms-eval model `vidcost` — a pruning method answering lmms-eval's requests.

    python -m lmms_eval --model vidcost \
        --model_args model_path=DIR,method=mmgvid,budget=0.25,frames=32,device=cuda,dtype=bfloat16,store=eval.jsonl \
        --tasks videomme

Registered through the entry-point group `lmms_eval.models` (`vidcost.eval.manifests`). `generate_until`
answers each request with `vidcost.eval.answer.Answerer` (the staged runtime with the method, greedy
decoding on the pruned KV cache) and appends its cost to `store` before the next request. It answers video
requests; `loglikelihood`, multi-round generation and image-only requests are not supported: the first two
raise a one-line `ConfigError` naming the request type, an image request is a failed request ("" answer and a
failed record) so that the rest of a mixed task still runs. This module imports lmms-eval; nothing else in
vidcost does at import time.
"""

from __future__ import annotations

from typing import Any

from lmms_eval.api.model import lmms

from vidcost.errors import ConfigError
from vidcost.eval.config import parse_model_args, unsupported_request


class VidcostLMM(lmms):
    """lmms-eval's `vidcost` model (see the module docstring for its `model_args`)."""

    is_simple = True

    def __init__(self, config_hash: str | None = None, **model_args: Any) -> None:
        super().__init__()
        from vidcost.eval.answer import Answerer

        self.config = parse_model_args(model_args)
        self.answerer = Answerer(self.config, config_hash=config_hash)
        self.failed_requests = 0
        self.answered = stored_answers(self.config.store, self.answerer.config_hash)
        self.resumed_requests = 0

    # lmms-eval reads these of a model.
    @property
    def batch_size(self) -> int:
        return 1

    @property
    def device(self) -> str:
        return self.answerer.loaded.device

    @property
    def tokenizer(self) -> Any:
        return self.answerer.tokenizer

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        raise ConfigError(unsupported_request("loglikelihood"))

    def generate_until_multi_round(self, requests: list[Any]) -> list[str]:
        raise ConfigError(unsupported_request("generate_until_multi_round"))

    def generate_until(self, requests: list[Any]) -> list[str]:
        """One greedy answer per request, in order; each request's cost appended to the store as it ends."""
        from tqdm import tqdm

        from vidcost.store import append_record

        answers = []
        for request in tqdm(requests, desc="vidcost answering", disable=self.rank != 0):
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            if (task, split, int(doc_id)) in self.answered:  # answered before this run was killed
                answers.append(self.answered[task, split, int(doc_id)])
                self.resumed_requests += 1
                continue
            visuals = _flatten(doc_to_visual(self.task_dict[task][split][doc_id]))
            if len(visuals) != 1 or not isinstance(visuals[0], str):
                text, record = "", self.answerer.failed_record(task, doc_id, split, _visual_problem(visuals))
            else:
                text, record = self.answerer.answer(context=context, video=visuals[0], gen_kwargs=dict(gen_kwargs),
                                                    task=task, doc_id=doc_id, split=split)
            if record.status != "ok":
                self.failed_requests += 1
            if self.config.store is not None:
                append_record(self.config.store, record.to_dict())
            answers.append(text)
            self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
        return answers


def stored_answers(store: str | None, config_hash: str) -> dict[tuple[Any, Any, int], str]:
    """(task, split, doc id) → answer of the requests this configuration already answered in `store`."""
    from pathlib import Path

    from vidcost.eval.record import KIND
    from vidcost.store import iter_records

    if store is None or not Path(store).is_file():
        return {}
    return {(r.get("task"), r.get("split"), int(r.get("doc_id"))): str(r.get("answer") or "")
            for r in iter_records(store, kind=KIND)
            if r.get("config_hash") == config_hash and r.get("status") == "ok" and isinstance(r.get("doc_id"), int)}


def _flatten(visuals: Any) -> list[Any]:
    if visuals is None:
        return []
    if not isinstance(visuals, (list, tuple)):
        return [visuals]
    flat: list[Any] = []
    for item in visuals:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    return flat


def _visual_problem(visuals: list[Any]) -> str:
    if not visuals:
        return "a text-only request: the vidcost backend answers requests with one video"
    if not isinstance(visuals[0], str):
        return (f"a {type(visuals[0]).__name__} visual (an image task?): the vidcost backend answers requests "
                "with one video file")
    return f"{len(visuals)} videos in one request: the vidcost backend answers requests with one video"
