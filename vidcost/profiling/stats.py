"""SampleStats: median, interquartile range and minimum of raw timing samples, with a spread warning.

Medians and IQRs are what torch.utils.benchmark reports; a spread above 10 % of the median means the
measurement is noisy (other load on the machine, frequency scaling) and is flagged, not rejected.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import dataclass
from typing import Sequence

from vidcost.errors import ProfilingError

NOISY_IQR_FRACTION = 0.10


class NoisyMeasurementWarning(UserWarning):
    """IQR / median above 10 %: the samples spread widely."""


@dataclass(frozen=True)
class SampleStats:
    """Summary of one stage's samples, in milliseconds.

    Attributes:
        median: median sample.
        iqr: 75th minus 25th percentile (linear interpolation; 0 for one sample).
        min: smallest sample.
        count: number of samples.
    """

    median: float
    iqr: float
    min: float
    count: int

    @property
    def relative_iqr(self) -> float:
        return self.iqr / self.median if self.median > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"median": self.median, "iqr": self.iqr, "min": self.min, "count": self.count}

    def __str__(self) -> str:
        return f"{self.median:.2f} ms (IQR {self.iqr:.2f}, min {self.min:.2f}, n={self.count})"


def summarize(samples: Sequence[float], *, stage: str = "", warn: bool = True) -> SampleStats:
    """Median / IQR / min of raw samples; warns (`NoisyMeasurementWarning`) when IQR/median > 10 %.

    Raises:
        ProfilingError: no samples.
    """
    values = sorted(float(v) for v in samples)
    if not values:
        raise ProfilingError(f"no timing samples for stage '{stage}'; use --repeats 1 or more")
    iqr = 0.0
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        iqr = q3 - q1
    stats = SampleStats(median=statistics.median(values), iqr=iqr, min=values[0], count=len(values))
    if warn and stats.relative_iqr > NOISY_IQR_FRACTION:
        warnings.warn(
            f"stage '{stage}' is noisy: IQR {stats.iqr:.2f} ms is {stats.relative_iqr:.0%} of the median "
            f"{stats.median:.2f} ms; use more --repeats or a quieter machine",
            NoisyMeasurementWarning, stacklevel=2)
    return stats
