"""Profiling: measure what a pruning method buys on a real model.

Main entry: `profile_method` → `ProfileComparison` (vanilla and method `ProfileRecord`s). Parts:
`StageTimer` (CUDA events or perf_counter_ns), `summarize` (median / IQR / min), `NvmlSampler`
(memory, power, energy on a background thread), peak memory probes, and environment capture.
"""

from vidcost.profiling.record import ProfileRecord
from vidcost.profiling.session import ProfileComparison, achieved_tflops, profile_method
from vidcost.profiling.stats import NoisyMeasurementWarning, SampleStats, summarize
from vidcost.profiling.timer import CudaEventBackend, PerfCounterBackend, StageTimer, make_timer

__all__ = ["CudaEventBackend", "NoisyMeasurementWarning", "PerfCounterBackend", "ProfileComparison",
           "ProfileRecord", "SampleStats", "StageTimer", "achieved_tflops", "make_timer", "profile_method",
           "summarize"]
