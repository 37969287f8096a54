"""ProfileComparison: measure a pruning method against vanilla on a real model, and store both records.

`profile_method(...)` builds the model (shape-only or local weights), the inputs (synthetic or decoded
video), runs warm-ups, then alternates vanilla and method repeats (A B A B …, so slow drifts of a busy
machine hit both alike), timing every stage, and measures peak memory per run and NVML power/energy on
GPU (energy per prefill pooled over the repeats: one fast prefill is too short for NVML's counter).
FLOPs come from the cost model on the schedule actually executed. Both records are appended to
the store with one run_id. Running out of memory writes a `failed` record and raises a ProfilingError
that says what to lower.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vidcost.errors import ConfigError, ProfilingError
from vidcost.methods import Method, check_budget, get_method
from vidcost.profiling.environment import capture_environment
from vidcost.profiling.memory import make_peak_memory
from vidcost.profiling.nvml import pooled_energy_j
from vidcost.profiling.record import (STAGES, TTFT, ProfileRecord, achieved_tflops, compare_records,
                                      new_run_id)
from vidcost.profiling.stats import NOISY_IQR_FRACTION, NoisyMeasurementWarning, summarize
from vidcost.profiling.timer import StageTimer, make_timer
from vidcost.spec import ModelSpec
from vidcost.store import append_record, check_writable

Progress = Callable[[str], None]
STAGE_KEYS = (*STAGES, TTFT)


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


@dataclass
class _Config:
    """One measured configuration during a session."""

    method: Method
    budget: float
    timer: StageTimer
    peaks: list[int] = field(default_factory=list)
    increases: list[int | None] = field(default_factory=list)
    energy: list[Any] = field(default_factory=list)  # NvmlSummary per repeat (GPU)
    memory_source: str | None = None
    result: Any = None


def profile_method(*, spec: ModelSpec, method: str, budget: float, params: dict[str, Any] | None = None,
                   repeats: int = 5, warmup: int = 1, seed: int = 0, device: str = "cpu", dtype: str | None = None,
                   model_path: str | None = None, video: str | None = None, question: str | None = None,
                   per_layer: bool = False, store: str | Path | None = None, threads: int | None = None,
                   progress: Progress | None = None) -> ProfileComparison:
    """Measure `method` at `budget` against vanilla and append both records to `store` (None: don't store).

    `threads` sets torch's CPU threads (None: torch's choice); the record's environment says how many ran.

    Raises:
        ConfigError: unknown method or parameter, budget outside (0, 1], repeats < 1, warmup < 0.
        ProfilingError: no CUDA for --device cuda, an undecodable video, out of memory (a failed record is
            stored first).
        DataFormatError: the store cannot be appended to (checked before measuring).
    """
    from vidcost.runtime import StagedRuntime, build_inputs, build_model
    from vidcost.runtime.inputs import check_text_tokens
    from vidcost.runtime.video import decode_video
    from vidcost.runtime.model import resolve_device, resolve_dtype

    say = progress or (lambda message: None)
    budget = check_budget(budget)
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"need --repeats ≥ 1 and --warmup ≥ 0, got {repeats} and {warmup}")
    chosen = get_method(method, **(params or {}))
    chosen.plan(spec, budget)  # bad parameters fail here, before minutes of model building
    if model_path is None:  # shape-only: seeded token ids, whose length the spec fixes now
        check_text_tokens(spec.text_tokens)
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    _set_threads(threads)
    if store is not None:
        check_writable(store)  # now, not after minutes of measuring
    run_id = new_run_id()
    base = dict(run_id=run_id, model=spec.to_dict(), device=device, dtype=dtype)
    configs = [_Config(chosen, budget, make_timer(device))]
    if chosen.name != "vanilla":
        configs.insert(0, _Config(get_method("vanilla"), 1.0, make_timer(device)))
    # Decode first: an unreadable video fails in a second, not after the model is built.
    frames_rgb = decode_video(video, spec.frames, spec.image_size) if video else None
    try:
        say(f"building {spec.name} ({'shape-only' if model_path is None else model_path}) on {device} in {dtype}")
        loaded = build_model(spec, model_path=model_path, device=device, dtype=dtype, seed=seed)
        inputs = build_inputs(loaded, video=frames_rgb, question=question, seed=seed, model_path=model_path)
        runtime = StagedRuntime(loaded)
        base["model"] = inputs.spec.to_dict()
        sampler = _nvml_sampler(device)
        _measure(configs, runtime, inputs, repeats, warmup, seed, per_layer, device, sampler, say)
    except (MemoryError, RuntimeError, ProfilingError) as err:  # build_model reports a CUDA OOM as ProfilingError
        if not _is_out_of_memory(err):
            raise
        message = (f"out of memory profiling {method} on {spec.name} with {spec.frames} frames on {device}; "
                   "lower --frames, use a smaller --model, or --dtype bfloat16")
        _store_failed(store, configs, base, message)
        raise ProfilingError(message) from err
    environment = capture_environment(device, dtype, seed)
    records = [_record(c, base, inputs.spec, environment) for c in configs]
    if store is not None:
        for record in records:
            append_record(store, record.to_dict())
    return ProfileComparison(vanilla=records[0], method=records[-1])


def _measure(configs: list[_Config], runtime: Any, inputs: Any, repeats: int, warmup: int, seed: int,
             per_layer: bool, device: str, sampler: Any, say: Progress) -> None:
    memory = make_peak_memory(device)
    for i in range(warmup):
        say(f"warm-up {i + 1}/{warmup}")
        for config in configs:
            runtime.prefill(inputs, config.method, config.budget, seed=seed, timer=config.timer)
            config.timer.discard_run()
    for i in range(repeats):
        say(f"repeat {i + 1}/{repeats}")
        for config in configs:  # interleaved: vanilla, method, vanilla, method, ...
            memory.reset()
            # The sampler's thread stops even when the prefill raises (out of memory): no leaked poller.
            with sampler if sampler is not None else contextlib.nullcontext():
                config.result = runtime.prefill(inputs, config.method, config.budget, seed=seed,
                                                timer=config.timer, per_layer=per_layer)
            config.timer.finish_run()
            config.peaks.append(memory.peak_bytes())
            config.increases.append(memory.increase_bytes())
            if sampler is not None:
                config.energy.append(sampler.summary)
    for config in configs:
        config.memory_source = memory.source


def _record(config: _Config, base: dict[str, Any], spec: ModelSpec, environment: dict[str, Any]) -> ProfileRecord:
    from vidcost.cost import estimate_cost

    samples = config.timer.samples_ms
    stats = {stage: summarize(values, stage=stage, warn=False) for stage, values in samples.items()}
    noisy = [f"{stage} {value.relative_iqr:.0%}" for stage, value in stats.items()
             if value.relative_iqr > NOISY_IQR_FRACTION and stage in STAGE_KEYS]
    if noisy:
        warnings.warn(f"{config.method.name}: noisy timings (IQR/median > {NOISY_IQR_FRACTION:.0%}): "
                      f"{', '.join(noisy)}; use more --repeats or a quieter machine",
                      NoisyMeasurementWarning, stacklevel=3)
    executed = config.result.executed
    flops = {"paper": estimate_cost(spec, executed, convention="paper").prefill_flops,
             "llm_prefill": estimate_cost(spec, executed, convention="exact").layer_flops,
             "ttft": estimate_cost(spec, executed, convention="exact", include_vision=True).prefill_flops}
    summaries = [s for s in config.energy if s is not None]
    powers = [s.avg_power_w for s in summaries if s.avg_power_w is not None]
    return ProfileRecord(
        **base, method=config.method.name, params=config.method.resolved_params(), budget=config.budget,
        planned_schedule=config.result.planned.to_dict(), executed_schedule=executed.to_dict(),
        ttft_ms=stats[TTFT].median, llm_prefill_ms=stats["llm_prefill"].median,
        stages_ms={k: v.median for k, v in stats.items() if k != TTFT},
        samples_ms={k: list(v) for k, v in samples.items()},
        stats_ms={k: v.to_dict() for k, v in stats.items()},
        peak_memory_bytes=max(config.peaks), memory_source=config.memory_source,
        peak_increase_bytes=None if None in config.increases else max(config.increases),
        energy_j=pooled_energy_j(summaries),  # per prefill, pooled over repeats: one prefill may be too short
        power_w=sum(powers) / len(powers) if powers else None,
        nvml_peak_used_bytes=max((s.peak_used_bytes for s in summaries), default=None),
        flops=flops, environment=environment)


def _store_failed(store: str | Path | None, configs: list[_Config], base: dict[str, Any], message: str) -> None:
    """Append a `failed` record per configuration; the store is only ever appended to."""
    if store is None:
        return
    for config in configs:
        record = ProfileRecord(**base, method=config.method.name, params=config.method.resolved_params(),
                               budget=config.budget, status="failed", error=message)
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
    if threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, ProfilingError):  # e.g. build_model's, raised from torch.OutOfMemoryError
        return err.__cause__ is not None and _is_out_of_memory(err.__cause__)
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return "out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text
