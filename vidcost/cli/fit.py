"""`vidcost fit --store profiles/runs.jsonl --out calib.json`: fit the latency model to a store's profiles.

Prints every stage's fitted terms with their standard errors, what they mean physically (achieved
TFLOP/s, Hockney's n½), the terms this store cannot identify, and the leave-one-configuration-out error —
the band `vidcost predict --calibration` puts around its predictions. No torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vidcost.cli.common import check_output_file, print_json
from vidcost.errors import ConfigError, DataFormatError, FitError
from vidcost.store import DEFAULT_STORE, iter_records


def register(subparsers: argparse._SubParsersAction) -> None:
    from vidcost.operators import ATTENTION_IMPLEMENTATIONS

    parser = subparsers.add_parser(
        "fit", help="fit the latency model to profiles (calibration JSON for `vidcost predict`)",
        description="Fit each stage's latency terms (GEMM and attention FLOPs, per-layer and per-frame costs, "
                    "each method's selection, decode bytes) to the ok profile records of one device, dtype "
                    "and model family, measure the error on held-out configurations, and write a calibration.")
    parser.add_argument("--store", default=str(DEFAULT_STORE), help=f"profile records (default {DEFAULT_STORE})")
    parser.add_argument("--out", required=True, help="calibration JSON to write, e.g. calib.json")
    select = parser.add_argument_group("choose one group when the store holds several")
    select.add_argument("--device-name", help="records whose device contains this text (e.g. H100, 'EPYC (1 thread)')")
    select.add_argument("--dtype", help="records of this dtype (float32, bfloat16, float16)")
    select.add_argument("--family", help="records of this model family (llava_onevision, qwen2_5_vl, qwen2_vl)")
    parser.add_argument("--device-spec", metavar="NAME",
                        help="take the byte terms (a decode step's weight and KV reads, the prefill's weight read) "
                             "from this device's bandwidth instead of fitting them: 'local' measures the machine "
                             "the profiles ran on (with their torch threads), or a table name or device JSON. "
                             "Needed for predictions across model sizes when the store holds one model")
    parser.add_argument("--per-operator-out", metavar="DEVICE.json",
                        help="also fit the per-operator model's device numbers (GEMM, attention and memory-kernel "
                             "efficiencies, host cost per op, kernel floor) on top of --device-spec's peaks and "
                             "bandwidth, and write them as a device JSON with their held-out error by regime "
                             "(skipped with --no-validation): `vidcost predict --device-spec DEVICE.json` then "
                             "prices any model, frames or resolution on this device, with that band")
    parser.add_argument("--attention", choices=ATTENTION_IMPLEMENTATIONS, default="sdpa",
                        help="with --per-operator-out: the attention implementation the profiles ran (default sdpa)")
    parser.add_argument("--no-validation", action="store_true",
                        help="skip the leave-one-configuration-out error (predictions then carry no band)")
    parser.add_argument("--json", action="store_true", help="print the calibration and the held-out rows as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vidcost.latency import Calibration, coverage_of, derived_quantities, fit_latency, observations

    if not Path(args.store).is_file():
        raise DataFormatError(f"store '{args.store}' does not exist; measure profiles with `vidcost sweep` or "
                              "`vidcost profile` first, or give --store PATH")
    check_output_file(args.out, "--out")  # before the fit, not after it
    if args.per_operator_out:
        if not args.device_spec:
            raise ConfigError("--per-operator-out fits efficiencies against a device's peaks and bandwidth: give "
                              "--device-spec (its table name, or 'local' for the CPU the profiles ran on)")
        check_output_file(args.per_operator_out, "--per-operator-out")
    data = observations(iter_records(args.store, kind="profile"))
    chosen = [o for o in data
              if (args.device_name is None or args.device_name.lower() in o.device.lower())
              and (args.dtype is None or o.config.dtype == args.dtype)
              and (args.family is None or o.config.spec.architecture == args.family)]
    if not chosen:
        raise FitError(f"no usable profile in '{args.store}' matches the choice ({len(data)} usable in all); "
                       "drop or change --device-name / --dtype / --family")
    fixed = None
    if args.device_spec:
        from vidcost.devices import byte_terms_for

        fixed = byte_terms_for(args.device_spec, chosen)
    model = fit_latency(chosen, fixed)
    if args.per_operator_out:
        _write_operator_device(args, chosen)
    held, outside = None, {}
    if not args.no_validation:
        outside = _held_out_by_regime(chosen, fixed=fixed)
        held = outside.pop("inside")
    calibration = Calibration(model, held.summary() if held else {}, len(chosen), len({o.key for o in chosen}),
                              str(args.store), coverage_of(chosen), {r: h.summary() for r, h in outside.items()})
    calibration.save(args.out)
    spec = chosen[0].config.spec
    if args.json:
        print_json({**calibration.to_dict(), "derived": derived_quantities(model, spec, model.dtype),
                    "held_out_rows": held.to_dict()["rows"] if held else [],
                    "held_out_outside_rows": {r: h.to_dict()["rows"] for r, h in outside.items()}, "out": args.out})
        return 0
    print(_render(calibration, derived_quantities(model, spec, model.dtype), held, outside, args.out))
    return 0


def _write_operator_device(args: argparse.Namespace, chosen: list) -> None:
    """Fit and write the per-operator device (`vidcost.operator_fit`) with its held-out bands by regime (each
    split refitting the device numbers without the held-out group, as for the calibration), printing what was
    fitted on stderr."""
    import dataclasses

    from vidcost.devices import device_for_observations
    from vidcost.latency import coverage_of
    from vidcost.operator_fit import fit_operator_device, operator_fitter
    from vidcost.store import write_json_atomic

    base = device_for_observations(args.device_spec, chosen)
    device = fit_operator_device(chosen, base, attention=args.attention, source=str(args.store))
    bands = {}
    if not args.no_validation:
        fit = operator_fitter(base, attention=args.attention, start=device)
        bands = {regime: result.summary() for regime, result in _held_out_by_regime(chosen, fit=fit).items()}
    device = dataclasses.replace(device, coverage=coverage_of(chosen), held_out=bands)
    write_json_atomic(args.per_operator_out, device.to_dict())
    print(f"per-operator device: {device.kernel_source}; wrote {args.per_operator_out}", file=sys.stderr)
    for regime, summary in bands.items():
        shown = [f"{q} max {v['max']:.1%}" for q, v in summary.items() if q in ("speedup", "llm_prefill_speedup",
                                                                                "ttft_ms", "decode_ms_per_token")]
        print(f"  per-operator held-out error, {regime.replace('_', ' ')}: {', '.join(shown)}", file=sys.stderr)


def _held_out_by_regime(chosen: list, **kwargs: Any) -> dict[str, Any]:
    """The held-out error in every regime the store can measure: "inside" (leave-one-configuration-out, with a
    progress bar), and outside the range the splits of `REGIME_SPLITS` (a store of one model or one frame count
    cannot measure that regime: it is left out). `kwargs` go to every split (`fixed` or `fit`)."""
    from vidcost.validation import REGIME_SPLITS, leave_one_configuration_out

    progress = _progress(len({o.key for o in chosen}))
    results = {"inside": leave_one_configuration_out(chosen, progress=progress, **kwargs)}
    progress(0, 0)
    for regime, split in REGIME_SPLITS.items():
        try:
            results[regime] = split(chosen, **kwargs)
        except FitError:
            continue
    return results


def _progress(groups: int):
    """A tqdm bar on stderr for the refits (each group's model fitted without it); call (0, 0) to close."""
    from tqdm import tqdm

    bar = tqdm(total=groups, desc="vidcost fit: held-out refits", unit="fit", file=sys.stderr, leave=False,
               disable=groups < 8)

    def update(done: int, total: int) -> None:
        if total == 0:
            bar.close()
        else:
            bar.update(done - bar.n)

    return update


def _render(calibration, derived, held, outside, out: str) -> str:
    model = calibration.model
    lines = [f"latency model of {model.device} / {model.dtype} / {model.family}: {calibration.records} profiles of "
             f"{calibration.configurations} configurations ({', '.join(model.models)}; methods "
             f"{', '.join(model.methods) or 'none'})", ""]
    for stage, fit in model.stages.items():
        lines.append(f"{stage}  ({fit.rows} profiles, in-sample RMS error {fit.rms_relative_error:.1%})")
        for term in fit.terms:
            lines.append(f"  {term}")
        if fit.unidentified:
            lines.append(f"  not identifiable from this store (carried by the terms above): {', '.join(fit.unidentified)}")
    if derived:
        readings = []
        if "gemm_tflops" in derived:
            readings.append(f"GEMMs at {derived['gemm_tflops'] * 1e3:.1f} GFLOP/s asymptotically, n½ ≈ "
                            f"{derived['gemm_half_rows']:.0f} rows (fixed per-layer time included)")
        if "attention_tflops" in derived:
            readings.append(f"attention at {derived['attention_tflops'] * 1e3:.1f} GFLOP/s")
        lines += ["", "decoder layers: " + "; ".join(readings)]
    if held is not None:
        lines += ["", f"held-out error ({held.split}: each configuration predicted by a fit without it):"]
        lines.append(f"  {'quantity':<22} {'median':>8} {'max':>8} {'n':>4}")
        for quantity, values in held.summary().items():
            lines.append(f"  {quantity:<22} {values['median']:>8.1%} {values['max']:>8.1%} {values['count']:>4}")
        for skipped in held.skipped:
            lines.append(f"  not predicted: {skipped}")
        for regime, result in outside.items():
            lines += ["", f"held-out error outside the range ({result.split}: the band of predictions for "
                          f"{'another model' if regime == 'other_model' else 'another frame count'}):"]
            for quantity, values in result.summary().items():
                lines.append(f"  {quantity:<22} {values['median']:>8.1%} {values['max']:>8.1%} {values['count']:>4}")
        words = {"other_model": "another model", "other_frames": "another frame count"}
        missing = [words[regime] for regime in words if regime not in outside]
        if missing:
            lines += ["", f"no band measured for {' or '.join(missing)}: the store holds only one (predictions "
                          "there print no band)"]
    lines += ["", f"wrote {out}"]
    return "\n".join(lines)
