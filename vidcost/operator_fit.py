"""The per-operator model calibrated from profiles: the device's kernel numbers fitted to measured stages
(issue #19, `vidcost fit --per-operator-out`).

The shapes of every kernel come from the model (`vidcost.operators`); what a sweep measures is how fast this
device runs them. So a fit adjusts only device numbers — the fraction of peak GEMMs sustain
(`gemm_efficiency`), the fraction fused attention sustains (`flash_efficiency`), the fraction of the
bandwidth memory-bound kernels sustain (`memory_efficiency`), the host's cost per dispatched op
(`host_op_seconds`) and the device's per-kernel floor (`launch_seconds`) — starting from the device's
datasheet entry or a `--device-spec local` measurement (peaks and bandwidth are kept). The result is a
`DeviceSpec` like any other: written as a device JSON it prices any model, frame count or resolution on
that device with `vidcost predict --device-spec FILE`, because none of what was fitted depends on the model.

The fit minimises the relative error of the stages the operator model prices (vision, projector, a pre-LLM
selection, LLM prefill, first token, a decode step) over the profiles, each stage weighted by its share of the
TTFT (a stage of a few microseconds must not weigh as much as the prefill), in log-parameters (scipy's
`least_squares`, bounded: an efficiency above 1 of a datasheet peak is not physical). `operator_fitter` hands the same fit to
`vidcost.validation`'s held-out splits, which measure the bands a fitted device JSON carries.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

from vidcost.devices import DeviceSpec
from vidcost.errors import FitError
from vidcost.latency import DECODE, Observation
from vidcost.operators import OperatorModel
from vidcost.selection_trace import prices_selection

FITTED = ("gemm_efficiency", "flash_efficiency", "memory_efficiency", "host_op_seconds", "launch_seconds")
PRICED_STAGES = ("vision", "projector", "selection", "llm_prefill", "first_token", DECODE)
MIN_SHARE = 0.01  # a stage's weight floor, as a fraction of its profile's TTFT (as `fit_latency`)
_START = {"gemm_efficiency": 0.7, "flash_efficiency": 0.5, "memory_efficiency": 0.7, "host_op_seconds": 10e-6,
          "launch_seconds": 2e-6}


def fit_operator_device(data: Sequence[Observation], base: DeviceSpec, *, attention: str = "sdpa",
                        source: str = "", start: DeviceSpec | None = None) -> DeviceSpec:
    """The device numbers that make `OperatorModel` reproduce the measured stages of `data`.

    Args:
        data: observations of one device and dtype (`vidcost.latency.observations`).
        base: the device's peaks and bandwidth (its datasheet entry, or `--device-spec local`).
        attention: the attention implementation the profiles ran.
        source: where the profiles come from, for the device's `kernel_source`.
        start: a device whose fitted numbers start the search (a refit on most of the same profiles, as the
            held-out splits run, converges in a few steps from the full fit).

    Raises:
        FitError: no observation with a stage the model prices, or observations of several dtypes.
    """
    import numpy as np
    from scipy.optimize import least_squares

    dtypes = {o.config.dtype for o in data}
    if len(dtypes) != 1:
        raise FitError(f"the profiles are in {len(dtypes)} dtypes ({sorted(dtypes)}); fit one (--dtype)")
    dtype = dtypes.pop()
    base.flops_per_second(dtype)
    # A selection the model prices (a pre-LLM one); an in-LLM method's measured selection is not in its model.
    rows = [(o, stage) for o in data for stage in PRICED_STAGES if o.stages_ms.get(stage, 0) > 0
            and (stage != "selection" or prices_selection(o.config))]
    if not rows:
        raise FitError("no profile has a stage the per-operator model prices (vision, projector, a pre-LLM "
                       "selection, llm_prefill, first_token, decode)")
    measured = np.array([o.stages_ms[stage] for o, stage in rows])
    weights = np.sqrt(np.maximum(measured, MIN_SHARE * np.array([o.ttft_ms for o, _ in rows])) /
                      np.array([o.ttft_ms for o, _ in rows]))
    # A measured peak (local) can be beaten by the real kernels; a datasheet peak cannot.
    ceiling = 8.0 if base.measured else 1.0

    def device_at(x: np.ndarray) -> DeviceSpec:
        values = {name: float(math.exp(v)) for name, v in zip(FITTED, x)}
        return dataclasses.replace(base, **values)

    def residuals(x: np.ndarray) -> np.ndarray:
        model = OperatorModel(device_at(x), dtype, attention)
        priced = {id(o): model.stage_ms(o.config) for o in data}  # every stage of a profile from one pricing
        predicted = [priced[id(observation)][stage] for observation, stage in rows]
        return (np.log(np.maximum(predicted, 1e-12)) - np.log(measured)) * weights

    initial = np.log([getattr(start, name) if start is not None and getattr(start, name) > 0 else _START[name]
                      for name in FITTED])
    lower = np.log([1e-3, 1e-3, 1e-3, 1e-9, 1e-9])  # efficiencies ≥ 0.1 %, host and launch cost ≥ 1 ns
    upper = np.log([ceiling, ceiling, 1.0, 1e-2, 1e-3])
    initial = np.clip(initial, lower + 1e-9, upper - 1e-9)
    result = least_squares(residuals, initial, bounds=(lower, upper), diff_step=1e-3)
    fitted = device_at(result.x)
    efficiencies = {name: getattr(fitted, name) for name in ("gemm_efficiency", "flash_efficiency")}
    if max(efficiencies.values()) > 1:
        # Beyond the measured peak: the peak was not one; move it, so the efficiencies stay fractions.
        scale = max(efficiencies.values())
        fitted = dataclasses.replace(fitted, peak_flops={k: v * scale for k, v in fitted.peak_flops.items()},
                                     **{name: value / scale for name, value in efficiencies.items()})
    rms = float(np.sqrt(np.mean((result.fun / weights) ** 2)))
    models = sorted({o.config.spec.name for o in data})
    described = (f"fitted by vidcost fit --per-operator-out on {len(data)} profiles of {', '.join(models)}"
                 f"{' (' + source + ')' if source else ''}: GEMM {fitted.gemm_efficiency:.3f} and fused attention "
                 f"{fitted.flash_efficiency:.3f} of peak, memory-bound kernels {fitted.memory_efficiency:.3f} of the "
                 f"bandwidth, {fitted.host_op_seconds * 1e6:.2f} µs per dispatched op, "
                 f"{fitted.launch_seconds * 1e6:.2f} µs per kernel; RMS log error {rms:.3f} over {len(rows)} stages "
                 f"(peaks and bandwidth from {base.name})")
    return dataclasses.replace(fitted, name=f"{base.name} (fitted)", kernel_source=described)


def operator_fitter(base: DeviceSpec, *, attention: str = "sdpa", start: DeviceSpec | None = None
                    ) -> Callable[[Sequence[Observation]], OperatorModel]:
    """A `fit` for `vidcost.validation.held_out`: observations → the `OperatorModel` of the device fitted to
    them, so the held-out splits measure the per-operator model's error as they measure `fit_latency`'s."""

    def fit(data: Sequence[Observation]) -> OperatorModel:
        device = fit_operator_device(data, base, attention=attention, start=start)
        return OperatorModel(device, next(iter(data)).config.dtype, attention)

    return fit
