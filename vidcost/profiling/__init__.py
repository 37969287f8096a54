"""Profiling: measure what a pruning method buys on a real model.

Main entry: `ProfileSession` (a model built once) → `measure(...)` → `ProfileComparison` (vanilla and
method `ProfileRecord`s); `profile_method` is the one-shot form. Parts: `StageTimer` (CUDA events or
perf_counter_ns), `summarize` (median / IQR / min), memory probes (allocator peaks per stage),
`NvmlSampler` (device memory and power on a background thread), energy blocks, environment capture.
"""

from vidcost.profiling.record import (ProfileComparison, ProfileRecord, achieved_tflops, compare_records,
                                      upgrade_record)
from vidcost.profiling.session import ProfileSession, check_request, profile_method
from vidcost.profiling.stats import NoisyMeasurementWarning, SampleStats, summarize
from vidcost.profiling.timer import CudaEventBackend, PerfCounterBackend, StageTimer, make_timer

__all__ = ["CudaEventBackend", "NoisyMeasurementWarning", "PerfCounterBackend", "ProfileComparison",
           "ProfileRecord", "ProfileSession", "SampleStats", "StageTimer", "achieved_tflops", "check_request",
           "compare_records", "make_timer", "profile_method", "summarize", "upgrade_record"]
