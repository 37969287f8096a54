"""Answerer: one model, one method, one budget; answers video questions and measures each answer's cost.

`Answerer(config)` checks the configuration, builds the model (its directory's weights, tokenizer and
processor; or the embedded model with random weights and a tokenizer and processor built offline by
`vidcost.checkpoint`), and `answer(...)` runs one request: frames sampled (`prompt.sample_frames`), the
processor's ids and pixels (`prompt.process`), the staged prefill with the method, then greedy decode steps
on the pruned KV cache until the end-of-sequence token, a stop string (`until`) or `max_new_tokens`.
The stage windows of that one forward pass are the request's cost (`RequestRecord`), appended to the store
before the next request starts. The first request is run once untimed before its timed run (a warm-up, as
`vidcost profile` does), so that one-off start-up costs are not charged to whichever method ran first.

Decoding is greedy, as lmms-eval's HF backends run at temperature 0; a request asking for sampling is
answered greedily with a warning (the cost of a sampled answer is the same forward pass).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from vidcost.errors import ProfilingError, VidcostError
from vidcost.eval.config import EvalConfig, check_config
from vidcost.eval.record import RequestRecord

DEFAULT_MAX_NEW_TOKENS = 128  # lmms-eval's HF backends default to 1024; tasks set their own


class Answerer:
    """Answers requests with the staged runtime and a method, and records their cost.

    Args:
        config: the backend configuration (checked first: bad input fails before the model is built).
        config_hash: the evaluation run's hash, stored in every record.
        progress: called with a line of text at each step of the set-up.
    """

    def __init__(self, config: EvalConfig, *, config_hash: str | None = None, progress: Any = None) -> None:
        from vidcost.methods import budget_for
        from vidcost.profiling.environment import capture_environment
        from vidcost.runtime import StagedRuntime, build_model
        from vidcost.runtime.model import resolve_device, resolve_dtype

        say = progress or (lambda message: None)
        spec, self.method = check_config(config)
        self.config, self.config_hash = config, config_hash or config.configuration_hash()
        self.budget = budget_for(self.method.name, config.budget)
        device = resolve_device(config.device)
        dtype = resolve_dtype(config.dtype, device)
        say(f"building {spec.name} on {device} in {dtype}")
        self.loaded = build_model(spec, model_path=config.model_path, device=device, dtype=dtype, seed=config.seed,
                                  attn_implementation=config.attn_implementation)
        self.processor = load_processor(self.loaded, config.model_path)
        self.tokenizer = self.processor.tokenizer
        self.runtime = StagedRuntime(self.loaded)
        self.environment = capture_environment(device, dtype, config.seed)
        self._warned_sampling = False
        self._warm = False

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    def answer(self, *, context: str, video: str, gen_kwargs: dict[str, Any], task: str, doc_id: int,
               split: str | None = None) -> tuple[str, RequestRecord]:
        """The greedy answer to one video question, and its cost.

        A video that cannot be decoded or processed is a failed request: the answer is "" and the record
        says why (the evaluation goes on).
        """
        from vidcost.profiling.timer import make_timer

        started = time.perf_counter()
        base = self._request_fields(task, doc_id, split)
        max_new_tokens, until = self._generation(gen_kwargs)
        try:
            inputs = self._inputs(context, video, base["frames"])
        except (VidcostError, ValueError, RuntimeError, OSError) as err:
            return "", self.failed_record(task, doc_id, split, f"{type(err).__name__}: {err}",
                                          request_ms=_ms_since(started))
        if not self._warm:  # the first forward pass pays one-off costs (allocator, kernels): untimed, as sweeps warm up
            warm_started = time.perf_counter()
            self.runtime.prefill(inputs, self.method, self.budget, seed=self.config.seed, decode_tokens=1)
            self._warm = True
            started += time.perf_counter() - warm_started  # request_ms leaves the warm-up out
        timer = make_timer(self.loaded.device)
        stopper = _Stopper(self.tokenizer, self.eos_token_id, until)
        result = self.runtime.prefill(inputs, self.method, self.budget, seed=self.config.seed, timer=timer,
                                      decode_tokens=max_new_tokens - 1, stop_when=stopper)
        run = timer.finish_run()
        bookkeeping_started = time.perf_counter()
        text = stopper.text(result.generated)
        decode = timer.samples_ms.get("decode", [])
        record = RequestRecord(
            **{**base, "frames": inputs.spec.frames}, answer=text, ttft_ms=run["ttft"], llm_prefill_ms=run["llm_prefill"],
            stages_ms={k: v for k, v in run.items() if k not in ("ttft", "decode")},
            visual_tokens_before=result.planned.initial_visual_tokens,
            visual_tokens_after=result.executed.visual_tokens[-1],
            decode_ms_per_token=sorted(decode)[len(decode) // 2] if decode else None,
            tokens_generated=len(result.generated), kv_cache_bytes=result.kv_cache_bytes,
            bookkeeping_ms=stopper.elapsed_ms + _ms_since(bookkeeping_started), request_ms=_ms_since(started))
        return text, record

    def failed_record(self, task: str, doc_id: int, split: str | None, reason: str,
                      request_ms: float | None = None) -> RequestRecord:
        """The record of a request answered "" (`reason` says why: an undecodable video, an image request)."""
        return RequestRecord(**self._request_fields(task, doc_id, split), status="failed", error=reason,
                             request_ms=request_ms)

    def _request_fields(self, task: str, doc_id: int, split: str | None) -> dict[str, Any]:
        """What every record of a request of this run holds: the request's key and the configuration."""
        return dict(task=task, doc_id=int(doc_id), split=split, model=self.loaded.spec.name,
                    frames=self.config.frames or self.loaded.spec.frames, method=self.method.name,
                    budget=self.budget, params=self.method.resolved_params(), config_hash=self.config_hash,
                    device=self.loaded.device, dtype=self.loaded.dtype, environment=self.environment)

    def _inputs(self, context: str, video: str, frames: int) -> Any:
        from vidcost.eval.prompt import process, prompt_inputs, sample_frames

        if not Path(video).is_file():
            raise ProfilingError(f"video '{video}' does not exist")
        processed = process(self.processor, context, sample_frames(video, frames))
        question = list(self.tokenizer.encode(context, add_special_tokens=False))
        return prompt_inputs(self.loaded, processed, question)

    def _generation(self, gen_kwargs: dict[str, Any]) -> tuple[int, list[str]]:
        """(max_new_tokens, stop strings) of a request's generation kwargs."""
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        if float(gen_kwargs.get("temperature") or 0) > 0 and not self._warned_sampling:
            warnings.warn("the task asks for sampling (temperature > 0); the vidcost backend decodes greedily",
                          stacklevel=2)
            self._warned_sampling = True
        return max(1, int(gen_kwargs.get("max_new_tokens") or DEFAULT_MAX_NEW_TOKENS)), until


class _Stopper:
    """Stops decoding at the end-of-sequence token or once a stop string appears; times its own work."""

    def __init__(self, tokenizer: Any, eos_token_id: int, until: list[str]) -> None:
        self.tokenizer, self.eos_token_id, self.until = tokenizer, eos_token_id, [u for u in until if u]
        self.tokens: list[int] = []
        self.elapsed_ms = 0.0

    def __call__(self, token: int) -> bool:
        started = time.perf_counter()
        self.tokens.append(token)
        done = token == self.eos_token_id or (
            bool(self.until) and any(u in self.tokenizer.decode(self.tokens, skip_special_tokens=True)
                                     for u in self.until))
        self.elapsed_ms += _ms_since(started)
        return done

    def text(self, generated: tuple[int, ...]) -> str:
        """The answer: the tokens before the end-of-sequence token, cut at the first stop string."""
        tokens = list(generated)
        if self.eos_token_id in tokens:
            tokens = tokens[:tokens.index(self.eos_token_id)]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        for stop in self.until:
            text = text.split(stop)[0]
        return text


def load_processor(loaded: Any, model_path: str | None) -> Any:
    """The model directory's processor, or (no directory) one built offline for the embedded model.

    Raises:
        ConfigError: the directory has no processor, or torchvision is missing.
    """
    from vidcost.errors import ConfigError

    if model_path is None:
        from vidcost.checkpoint import build_processor, build_tokenizer
        from vidcost.runtime.families import get_family

        family = get_family(loaded.spec.architecture).name
        config = loaded.model.config
        tokenizer = build_tokenizer(config, family, loaded.spec.vocab_size)
        return build_processor(config, family, tokenizer, loaded.spec)
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model_path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, ImportError) as err:
        raise ConfigError(f"cannot load a processor from '{model_path}': {err}; the directory needs the "
                          "processor, tokenizer and chat template files (vidcost save-model writes them)") from err


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
