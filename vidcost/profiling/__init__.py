"""Profiling: measure what a pruning method buys on a real model.

Main entry: `profile_method` → `ProfileComparison` (vanilla and method `ProfileRecord`s). Parts:
`StageTimer` (CUDA events or perf_counter_ns), `summarize` (median / IQR / min), `NvmlSampler`
(memory, power, energy on a background thread), peak memory probes, and environment capture.
"""

from vidcost.profiling.record import ProfileRecord
from vidcost.profiling.record import achieved_tflops, compare_records, upgrade_record
from vidcost.profiling.session import ProfileComparison, profile_method
from vidcost.profiling.stats import NoisyMeasurementWarning, SampleStats, summarize
from vidcost.profiling.timer import CudaEventBackend, PerfCounterBackend, StageTimer, make_timer

__all__ = ["CudaEventBackend", "NoisyMeasurementWarning", "PerfCounterBackend", "ProfileComparison",
           "ProfileRecord", "SampleStats", "StageTimer", "achieved_tflops", "compare_records", "make_timer",
           "profile_method", "summarize", "upgrade_record"]
