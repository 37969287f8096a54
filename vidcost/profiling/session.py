"""ProfileSession: measure pruning methods against vanilla on one real model, built once.

`ProfileSession(spec, ...)` builds the model (shape-only or local weights) and decodes the video once;
`session.measure(method, budget, ...)` then measures one configuration beside vanilla, in the same run:

1. timed runs — warm-ups, then vanilla and method alternating (A B A B …, so slow drifts of a busy
   machine hit both alike), every stage timed (`StageTimer`: CUDA events on a GPU, one synchronise per
   run; perf counters on a CPU), `decode_tokens` greedy decode steps after each prefill, NVML sampling
   device memory at ≤ 50 Hz on a GPU;
2. a memory run per configuration (untimed): its own peak allocation above the resident weights, per
   stage (`vidcost.profiling.memory`);
3. energy blocks on a GPU (`vidcost.profiling.energy`): back-to-back prefills (no decode steps) of one
   configuration for ≥ 5 s after an idle window whose power is subtracted, configurations alternating.

FLOPs come from the cost model on the schedule actually executed; the KV-cache bytes from the cache
object itself. Both records are appended to the store with one run_id. Running out of memory writes a
`failed` record per configuration and raises a ProfilingError that says what to lower — a sweep
records it and goes on. `profile_method(...)` is the one-shot form: validate, build, measure.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vidcost.errors import ConfigError, ProfilingError
from vidcost.methods import Method, budget_for, get_method
from vidcost.profiling.environment import capture_environment
from vidcost.profiling.memory import make_memory_probe, resident_bytes
from vidcost.profiling.record import DECODE, TTFT, ProfileComparison, ProfileRecord, new_run_id
from vidcost.profiling.stats import NOISY_IQR_FRACTION, NoisyMeasurementWarning, summarize
from vidcost.profiling.timer import StageTimer, make_timer
from vidcost.spec import ModelSpec
from vidcost.store import append_record, check_writable

Progress = Callable[[str], None]
DEFAULT_ENERGY_BLOCKS = 3


@dataclass
class _Config:
    """One measured configuration of a `measure` call."""

    method: Method
    budget: float
    timer: StageTimer
    nvml: list[Any] = field(default_factory=list)  # NvmlSummary per timed repeat (GPU)
    memory: Any = None  # MemoryMeasurement of the memory run
    energy: Any = None  # EnergySummary of the energy blocks (GPU)
    result: Any = None  # PrefillResult of the last timed run


def check_request(spec: ModelSpec, method: str | Method, budget: float, *, params: dict[str, Any] | None = None,
                  repeats: int = 5, warmup: int = 1, decode_tokens: int = 0,
                  energy_blocks: int = DEFAULT_ENERGY_BLOCKS) -> Method:
    """Validate one profile configuration before anything is built; returns the method.

    Raises:
        ConfigError: unknown method or parameter, a budget outside (0, 1] or one the method cannot
            reach, repeats < 1, warmup < 0, decode tokens or energy blocks negative or not whole, a model
            family the runtime does not build.
    """
    chosen = method if isinstance(method, Method) else get_method(method, **(params or {}))  # before its budget
    budget = budget_for(chosen.name, budget)  # vanilla runs at 1.0 (a warning if given another)
    chosen.plan(spec.method_view(), budget)  # bad parameters fail here, before minutes of model building
    for name, value, low in (("--repeats", repeats, 1), ("--warmup", warmup, 0), ("--decode-tokens", decode_tokens, 0),
                             ("--energy-blocks", energy_blocks, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    return chosen


class ProfileSession:
    """A model and its inputs, built once, measured for as many configurations as asked.

    Args:
        spec: the model's spec (its `frames` are the default frame count).
        device: "cpu", "cuda" or "cuda:N".
        dtype: "float32", "bfloat16", "float16"; default bfloat16 on GPU, float32 on CPU.
        model_path: local weights directory; None builds the model shape-only (seeded random weights).
        video: a video file (decoded with PyAV); None uses the seeded synthetic clip.
        question: question text (tokenised when the model directory has a tokenizer).
        seed: seeds the weights, the synthetic video and the token ids.
        threads: torch CPU threads (None: torch's choice); the environment records how many ran.
        progress: called with one-line progress messages.

    Raises:
        ConfigError / ProfilingError: a bad device or dtype, too few text tokens, an undecodable video
            (all before the model is built), out of memory while building.
    """

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", dtype: str | None = None,
                 model_path: str | None = None, video: str | None = None, question: str | None = None,
                 seed: int = 0, threads: int | None = None, progress: Progress | None = None) -> None:
        from vidcost.runtime import StagedRuntime, build_model
        from vidcost.runtime.inputs import check_text_tokens
        from vidcost.runtime.model import resolve_device, resolve_dtype

        self.say = progress or (lambda message: None)
        if model_path is None:  # shape-only: seeded token ids, whose length the spec fixes now
            check_text_tokens(spec.text_tokens)
        self.spec, self.seed, self.question, self.video, self.model_path = spec, seed, question, video, model_path
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        _set_threads(threads)
        self._frames: dict[int, Any] = {}
        self._inputs: dict[int, Any] = {}
        self.frames_rgb(spec.frames)  # an unreadable video fails in a second, not after the build
        weights = "shape-only, random weights" if model_path is None else model_path
        self.say(f"building {spec.name} ({weights}) on {self.device} in {self.dtype}")
        self.loaded = build_model(spec, model_path=model_path, device=self.device, dtype=self.dtype, seed=seed)
        self.runtime = StagedRuntime(self.loaded)
        self.sampler = _nvml_sampler(self.device)
        self.environment = capture_environment(self.device, self.dtype, seed)

    def frames_rgb(self, frames: int) -> Any:
        """The decoded video at `frames` frames (uint8 [T, H, W, 3]), or None for the synthetic clip."""
        from vidcost.runtime.video import decode_video

        if self.video is None:
            return None
        if frames not in self._frames:
            self._frames[frames] = decode_video(self.video, frames, self.spec.frame_shape)
        return self._frames[frames]

    def inputs(self, frames: int | None = None) -> Any:
        """Pixels and token ids for `frames` frames (default the spec's), built once per frame count."""
        from vidcost.runtime import build_inputs

        frames = frames or self.spec.frames
        if frames not in self._inputs:
            self._inputs[frames] = build_inputs(self.loaded, frames=frames, video=self.frames_rgb(frames),
                                                question=self.question, seed=self.seed, model_path=self.model_path)
        return self._inputs[frames]

    def describe_inputs(self) -> dict[str, str]:
        """What is fed and with which weights, in words (stored in every record)."""
        video = f"synthetic clip (seed {self.seed})" if self.video is None else f"video file {self.video}"
        weights = (f"shape-only: random weights (seed {self.seed})" if self.model_path is None
                   else f"weights from {self.model_path}")
        return {"video": video, "weights": weights}

    def measure(self, method: str | Method, budget: float, *, params: dict[str, Any] | None = None,
                frames: int | None = None, repeats: int = 5, warmup: int = 1, decode_tokens: int = 0,
                per_layer: bool = False, energy_blocks: int = DEFAULT_ENERGY_BLOCKS,
                store: str | Path | None = None, config_hash: str | None = None,
                run_id: str | None = None) -> ProfileComparison:
        """Measure `method` at `budget` beside vanilla in one run; append both records to `store`.

        Raises:
            ConfigError: see `check_request`.
            ProfilingError: out of memory (a `failed` record per configuration is stored first).
        """
        spec = self.spec.with_overrides(frames=frames)
        chosen = check_request(spec, method, budget, params=params, repeats=repeats, warmup=warmup,
                               decode_tokens=decode_tokens, energy_blocks=energy_blocks)
        configs = [_Config(chosen, 1.0 if chosen.name == "vanilla" else budget, make_timer(self.device))]
        if chosen.name != "vanilla":
            configs.insert(0, _Config(get_method("vanilla"), 1.0, make_timer(self.device)))
        base = dict(run_id=run_id or new_run_id(), model=spec.to_dict(), device=self.device, dtype=self.dtype,
                    decode_tokens=decode_tokens, inputs=self.describe_inputs(), config_hash=config_hash)
        try:
            inputs = self.inputs(spec.frames)
            base["model"] = inputs.spec.to_dict()
            runs = dict(inputs=inputs, seed=self.seed, decode_tokens=decode_tokens)
            self._timed(configs, runs, repeats, warmup, per_layer)
            self._memory(configs, runs)
            if self.sampler is not None and energy_blocks:
                self._energy(configs, runs, energy_blocks)
        except (MemoryError, RuntimeError, ProfilingError) as err:
            if not is_out_of_memory(err):
                raise
            message = (f"out of memory profiling {chosen.name} on {spec.name} with {spec.frames} frames on "
                       f"{self.device}; lower --frames, use a smaller --model, or --dtype bfloat16")
            store_failed(store, [(c.method, c.budget) for c in configs], base, message)
            _release_cuda_memory(self.device)
            raise ProfilingError(message) from err
        records = [_record(c, base, inputs.spec, self.environment) for c in configs]
        if store is not None:
            for record in records:
                append_record(store, record.to_dict())
        return ProfileComparison(vanilla=records[0], method=records[-1])

    def _prefill(self, config: _Config, runs: dict[str, Any], timer: Any, per_layer: bool = False) -> Any:
        return self.runtime.prefill(runs["inputs"], config.method, config.budget, seed=runs["seed"], timer=timer,
                                    per_layer=per_layer, decode_tokens=runs["decode_tokens"])

    def _timed(self, configs: list[_Config], runs: dict[str, Any], repeats: int, warmup: int,
               per_layer: bool) -> None:
        for i in range(warmup):
            self.say(f"warm-up {i + 1}/{warmup}")
            for config in configs:
                self._prefill(config, runs, config.timer)
                config.timer.discard_run()
        for i in range(repeats):
            self.say(f"repeat {i + 1}/{repeats}")
            for config in configs:  # interleaved: vanilla, method, vanilla, method, ...
                # The sampler's thread stops even when the prefill raises (out of memory): no leaked poller.
                with self.sampler if self.sampler is not None else contextlib.nullcontext():
                    config.result = self._prefill(config, runs, config.timer, per_layer)
                config.timer.finish_run()
                if self.sampler is not None:
                    config.nvml.append(self.sampler.summary)

    def _memory(self, configs: list[_Config], runs: dict[str, Any]) -> None:
        """One untimed run per configuration under the allocator probe."""
        self.say("memory runs")
        for config in configs:
            probe = make_memory_probe(self.device, resident_bytes(self.loaded.model, runs["inputs"].pixel_values))
            with probe.run():
                self._prefill(config, runs, probe)
            config.memory = probe.result

    def _energy(self, configs: list[_Config], runs: dict[str, Any], blocks: int) -> None:
        import torch

        from vidcost.profiling.energy import measure_energy_blocks

        # Energy per prefill is the prefill's: vision to first token, no decode steps (timed apart).
        one_run = lambda config: lambda: self.runtime.prefill(  # noqa: E731
            runs["inputs"], config.method, config.budget, seed=runs["seed"], decode_tokens=0)
        summaries = measure_energy_blocks([(c.method.name, one_run(c)) for c in configs], self.sampler,
                                          blocks=blocks, synchronize=lambda: torch.cuda.synchronize(self.device),
                                          progress=self.say)
        for config in configs:
            config.energy = summaries.get(config.method.name)


def profile_method(*, spec: ModelSpec, method: str, budget: float, params: dict[str, Any] | None = None,
                   repeats: int = 5, warmup: int = 1, seed: int = 0, device: str = "cpu", dtype: str | None = None,
                   model_path: str | None = None, video: str | None = None, question: str | None = None,
                   per_layer: bool = False, decode_tokens: int = 0, energy_blocks: int = DEFAULT_ENERGY_BLOCKS,
                   store: str | Path | None = None, threads: int | None = None,
                   progress: Progress | None = None) -> ProfileComparison:
    """Measure `method` at `budget` against vanilla and append both records to `store` (None: don't store).

    Everything is checked before the model is built; see `ProfileSession` and `ProfileSession.measure`.

    Raises:
        ConfigError: see `check_request`; a bad device or dtype.
        ProfilingError: no CUDA for --device cuda, an undecodable video, out of memory (a failed record is
            stored first).
        DataFormatError: the store cannot be appended to (checked before measuring).
    """
    from vidcost.runtime.model import resolve_device, resolve_dtype

    chosen = check_request(spec, method, budget, params=params, repeats=repeats, warmup=warmup,
                           decode_tokens=decode_tokens, energy_blocks=energy_blocks)
    if store is not None:
        check_writable(store)  # now, not after minutes of measuring
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    try:
        session = ProfileSession(spec, device=device, dtype=dtype, model_path=model_path, video=video,
                                 question=question, seed=seed, threads=threads, progress=progress)
    except (MemoryError, RuntimeError, ProfilingError) as err:  # build_model reports a CUDA OOM as ProfilingError
        if not is_out_of_memory(err):
            raise
        message = (f"out of memory building {spec.name} for {chosen.name} on {device}; use a smaller --model, "
                   "lower --frames, or --dtype bfloat16")
        pairs = [(get_method("vanilla"), 1.0)] * (chosen.name != "vanilla") + [(chosen, budget)]
        store_failed(store, pairs, dict(run_id=new_run_id(), model=spec.to_dict(), device=device, dtype=dtype),
                     message)
        raise ProfilingError(message) from err
    return session.measure(chosen, budget, repeats=repeats, warmup=warmup, decode_tokens=decode_tokens,
                           per_layer=per_layer, energy_blocks=energy_blocks, store=store)


def _record(config: _Config, base: dict[str, Any], spec: ModelSpec, environment: dict[str, Any]) -> ProfileRecord:
    from vidcost.cost import estimate_cost

    samples = config.timer.samples_ms
    stats = {stage: summarize(values, stage=stage, warn=False) for stage, values in samples.items()}
    noisy = [f"{stage} {value.relative_iqr:.0%}" for stage, value in stats.items()
             if value.relative_iqr > NOISY_IQR_FRACTION and not stage.startswith("layer_")]
    if noisy:
        warnings.warn(f"{config.method.name}: noisy timings (IQR/median > {NOISY_IQR_FRACTION:.0%}): "
                      f"{', '.join(noisy)}; use more --repeats or a quieter machine",
                      NoisyMeasurementWarning, stacklevel=3)
    executed = config.result.executed
    flops = {"paper": estimate_cost(spec, executed, convention="paper").prefill_flops,
             "llm_prefill": estimate_cost(spec, executed, convention="exact").layer_flops,
             "ttft": estimate_cost(spec, executed, convention="exact", include_vision=True).prefill_flops}
    nvml = [s for s in config.nvml if s is not None]
    memory, energy = config.memory, config.energy
    return ProfileRecord(
        **base, method=config.method.name, params=config.method.resolved_params(), budget=config.budget,
        planned_schedule=config.result.planned.to_dict(), executed_schedule=executed.to_dict(),
        ttft_ms=stats[TTFT].median, llm_prefill_ms=stats["llm_prefill"].median,
        stages_ms={k: v.median for k, v in stats.items() if k not in (TTFT, DECODE)},
        decode_ms_per_token=stats[DECODE].median if DECODE in stats else None,
        samples_ms={k: list(v) for k, v in samples.items()}, stats_ms={k: v.to_dict() for k, v in stats.items()},
        kv_cache_bytes=config.result.kv_cache_bytes,
        peak_increase_bytes=memory.peak_increase_bytes, stage_peak_increase_bytes=memory.stage_peak_increase_bytes,
        peak_memory_bytes=memory.peak_memory_bytes, memory_source=memory.source,
        energy_j=energy.energy_j if energy else None, energy_j_iqr=energy.energy_j_iqr if energy else None,
        energy_blocks=[b.to_dict() for b in energy.blocks] if energy else [],
        power_w=energy.power_w if energy else None, power_source=energy.power_source if energy else None,
        nvml_peak_used_bytes=max((s.peak_used_bytes for s in nvml if s.peak_used_bytes is not None), default=None),
        flops=flops, environment=environment)


def store_failed(store: str | Path | None, configs: list[tuple[Method, float]], base: dict[str, Any],
                 message: str) -> None:
    """Append a `failed` record per (method, budget); the store is only ever appended to."""
    if store is None:
        return
    for method, budget in configs:
        record = ProfileRecord(**base, method=method.name, params=method.resolved_params(), budget=budget,
                               status="failed", error=message)
        append_record(store, record.to_dict())


def _nvml_sampler(device: str) -> Any:
    """An NVML sampler on GPU (None on CPU, or when NVML is unusable: power and energy are then None)."""
    if not device.startswith("cuda"):
        return None
    import torch

    from vidcost.profiling.nvml import NvmlSampler

    try:
        # By UUID: torch's device index is not NVML's under CUDA_VISIBLE_DEVICES (see vidcost.profiling.nvml).
        return NvmlSampler(device_uuid=str(torch.cuda.get_device_properties(device).uuid))
    except ProfilingError as err:
        warnings.warn(f"{err}; power and energy are not recorded", stacklevel=3)
        return None


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"--threads must be a whole number ≥ 1, got {threads!r}")
    import torch

    torch.set_num_threads(threads)


def _release_cuda_memory(device: str) -> None:
    """After an out-of-memory error, hand the allocator's cache back so the next configuration can run."""
    if device.startswith("cuda"):
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()


def is_out_of_memory(err: BaseException) -> bool:
    """Whether an exception (or the one it was raised from) is an out-of-memory error, on any device."""
    if isinstance(err, ProfilingError):  # e.g. build_model's, raised from torch.OutOfMemoryError
        return err.__cause__ is not None and is_out_of_memory(err.__cause__)
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return "out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text
