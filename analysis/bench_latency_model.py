"""How well does the fitted latency model predict configurations it was not fitted on?

For each store (profiles of one model on one device, e.g. from `vidcost sweep`), with the model of
`vidcost.latency` and the splits of `vidcost.validation`:

* leave-one-budget-out — every budget predicted (all methods and frame counts at it) by a fit on the other
  budgets: goal median |error| of the predicted TTFT speedup ≤ 5 %, max ≤ 10 %;
* frame extrapolation — fitted on --train-frames, every profile at --test-frames predicted: goal
  |error| of the predicted speedup ≤ 10 %.

* across models (issue #19), when two or more stores of different models are given — each model predicted by a
  fit on the others' profiles (leave-one-model-out): goal LLM-prefill speedup median ≤ 10 %, max ≤ 20 %.
  With `--device-spec local` the byte terms come from this machine's measured bandwidth (`vidcost fit
  --device-spec`), which a decode step's transfer across sizes needs.

Beside the goals it prints the TTFT errors and the noise floor they sit on: how much the vanilla TTFT of
one frame count varies from cell to cell (max / min − 1) — a model cannot be shown better than the
measurements it is checked against.

The error of a speedup is predicted / measured − 1, the measured speedup being vanilla over method within
one sweep cell (one run_id). The LLM-prefill speedup's error is printed beside (no goal). Exits 1 when a
goal is missed.

The stores in profiles/ were measured with (CPU, float32, one torch thread):

    vidcost sweep --model tiny --methods fastv,mmgvid --budgets 0.1,0.2,0.3,0.5,0.7 --frames 4,8,16 \\
        --decode-tokens 4 --threads 1 --store profiles/latency_cpu_tiny.jsonl
    for each (frames, budget) of 4 × {0.1, 0.2, 0.3, 0.5, 0.7}, 8 × {0.1} and 16 × {0.25} (one process each:
    a long session's RSS grows at 16 frames; two hours of this CPU in all, the SigLIP tower dominating):
    vidcost sweep --model llava-onevision-0.5b --methods fastv,mmgvid --budgets B --frames F \
        --decode-tokens 2 --repeats 1 --warmup 1 --threads 1 --store profiles/latency_cpu_0.5b.jsonl

    python analysis/bench_latency_model.py --store profiles/latency_cpu_tiny.jsonl \\
        --store profiles/latency_cpu_0.5b.jsonl [--train-frames 4,8 --test-frames 16] [--device-spec local]
        [--per-operator]

With --per-operator the frame and across-models splits measure the per-operator model (`vidcost.operators`,
its device numbers refitted by `vidcost.operator_fit` without the held-out group) in place of the fitted
stage terms; its TTFT leaves out the selection and "other" stages it does not price.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

GOAL_BUDGET_MEDIAN = 0.05
GOAL_BUDGET_MAX = 0.10
GOAL_FRAMES = 0.10
GOAL_MODELS_MEDIAN, GOAL_MODELS_MAX = 0.10, 0.20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", required=True, help="a profile store; repeat for several")
    parser.add_argument("--train-frames", default="4,8", help="frame counts to fit on (default 4,8)")
    parser.add_argument("--test-frames", default="16", help="frame counts to predict (default 16)")
    parser.add_argument("--rows", action="store_true", help="also print every held-out row")
    parser.add_argument("--device-spec", help="set the byte terms from this device (e.g. local) in the "
                                               "across-models split, as `vidcost fit --device-spec` does")
    parser.add_argument("--per-operator", action="store_true",
                        help="measure the per-operator model instead (`vidcost fit --per-operator-out`: the device "
                             "numbers refitted without each held-out group, on --device-spec's peaks, default local) "
                             "in the frame and across-models splits")
    args = parser.parse_args(argv)

    from vidcost.latency import observations
    from vidcost.store import read_records

    train = [int(f) for f in args.train_frames.split(",")]
    test = [int(f) for f in args.test_frames.split(",")]
    missed = []
    for store in args.store:
        data = observations(read_records(store, kind="profile"))
        print(f"\n{store}: {len(data)} profiles of {len({o.key for o in data})} configurations "
              f"({', '.join(sorted({o.config.spec.name for o in data}))}, "
              f"frames {sorted({o.config.spec.frames for o in data})}, "
              f"methods {sorted({o.config.method for o in data} - {'vanilla'})})")
        _noise_floor(data)
        if not args.per_operator:  # the per-operator model has no per-budget terms to leave out
            missed += _budget_split(store, data, args.rows)
        fit = _operator_fit(args.device_spec, data) if args.per_operator else None
        if {o.config.spec.frames for o in data} & set(test):
            missed += _frame_split(store, data, train, test, args.rows, fit)
        else:
            print(f"  no profile at {test} frames: frame extrapolation not measured")
    everything = [o for store in args.store for o in observations(read_records(store, kind="profile"))]
    if len({o.config.spec.name for o in everything}) > 1:
        fit = _operator_fit(args.device_spec, everything) if args.per_operator else None
        missed += _model_split(everything, args.device_spec, args.rows, fit)
    print("\nall goals met" if not missed else "\nMISSED: " + "; ".join(missed))
    return 1 if missed else 0


def _budget_split(store: str, data: list[Any], rows: bool) -> list[str]:
    from vidcost.validation import leave_one_budget_out

    result = leave_one_budget_out(data)
    summary = result.summary()
    _print(result, rows)
    speedup = summary.get("speedup")
    if speedup is None:
        return [f"{store}: no speedup could be predicted held-out"]
    missed = []
    if speedup["median"] > GOAL_BUDGET_MEDIAN:
        missed.append(f"{store} leave-one-budget-out median {speedup['median']:.1%} > {GOAL_BUDGET_MEDIAN:.0%}")
    if speedup["max"] > GOAL_BUDGET_MAX:
        missed.append(f"{store} leave-one-budget-out max {speedup['max']:.1%} > {GOAL_BUDGET_MAX:.0%}")
    return missed


def _operator_fit(device_spec: str | None, data: list[Any]) -> Any:
    """The per-operator fit on `device_spec`'s peaks and bandwidth (default: this machine, measured)."""
    from vidcost.devices import device_for_observations
    from vidcost.operator_fit import operator_fitter

    base = device_for_observations(device_spec or "local", data)
    print(f"\nper-operator model: device numbers fitted on {base.name}'s peaks and bandwidth")
    return operator_fitter(base)


def _frame_split(store: str, data: list[Any], train: list[int], test: list[int], rows: bool,
                 fit: Any = None) -> list[str]:
    from vidcost.validation import extrapolate_frames

    result = extrapolate_frames(data, train, test, fit=fit)
    summary = result.summary()
    _print(result, rows)
    missed = []
    if "speedup" in summary and summary["speedup"]["max"] > GOAL_FRAMES:
        missed.append(f"{store} {result.split}: speedup max {summary['speedup']['max']:.1%} > {GOAL_FRAMES:.0%}")
    return missed


def _model_split(data: list[Any], device_spec: str | None, rows: bool, fit: Any = None) -> list[str]:
    """Each model predicted by a fit on the other models' profiles, per model and in all."""
    from vidcost.validation import HeldOut, leave_one_model_out

    fixed = None
    if device_spec and fit is None:
        from vidcost.devices import byte_terms_for

        fixed = byte_terms_for(device_spec, data)
        print(f"\nbyte terms from {next(iter(fixed['decode'].values())).source}")
    result = leave_one_model_out(data, fixed=fixed, fit=fit)
    print("\nacross models (each model predicted by a fit on the others):")
    for model in sorted({row.model for row in result.rows}):
        _print(HeldOut(f"{model}, fitted without it", tuple(r for r in result.rows if r.model == model)), rows)
    prefill = result.summary().get("llm_prefill_speedup")
    missed = []
    if prefill and (prefill["median"] > GOAL_MODELS_MEDIAN or prefill["max"] > GOAL_MODELS_MAX):
        missed.append(f"across models: LLM-prefill speedup median {prefill['median']:.1%} / max {prefill['max']:.1%}"
                      f" > {GOAL_MODELS_MEDIAN:.0%} / {GOAL_MODELS_MAX:.0%}")
    return missed


def _noise_floor(data: list[Any]) -> None:
    """Cell-to-cell spread of vanilla's TTFT at each frame count (max / min − 1)."""
    spreads = []
    for frames in sorted({o.config.spec.frames for o in data}):
        vanilla = [o.ttft_ms for o in data if o.config.method == "vanilla" and o.config.spec.frames == frames]
        if len(vanilla) > 1:
            spreads.append(f"{frames} frames {max(vanilla) / min(vanilla) - 1:.0%} over {len(vanilla)} cells")
    if spreads:
        print("  noise floor, vanilla TTFT from cell to cell: " + ", ".join(spreads))


def _print(result: Any, rows: bool) -> None:
    print(f"  {result.split}")
    print(f"    {'quantity':<22} {'median |err|':>12} {'max |err|':>10} {'n':>4}")
    for quantity, values in result.summary().items():
        print(f"    {quantity:<22} {values['median']:>12.1%} {values['max']:>10.1%} {values['count']:>4}")
    for skipped in result.skipped:
        print(f"    not predicted: {skipped}")
    if rows:
        print(f"    {'method':<8} {'frames':>6} {'budget':>6} {'speedup meas':>12} {'pred':>6} {'err':>7}")
        for row in result.rows:
            if row.measured.get("speedup") is None:
                continue
            print(f"    {row.method:<8} {row.frames:>6} {row.budget:>6g} {row.measured['speedup']:>12.3f} "
                  f"{row.predicted['speedup']:>6.3f} {row.error('speedup'):>+7.1%}")


if __name__ == "__main__":
    from vidcost.cli.args import run_script

    sys.exit(run_script(main))
