"""`vidcost fit` and `vidcost predict` as a user runs them: in a subprocess, on a synthetic store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def vidcost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidcost", *args], capture_output=True, text=True, timeout=180)


def write_store(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def fitted(synthetic, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("fit")
    store = write_store(folder / "runs.jsonl", synthetic(models=("tiny",), noise=0.01))
    result = vidcost("fit", "--store", str(store), "--out", str(folder / "calib.json"))
    return folder / "calib.json", result


def test_fit_prints_terms_uncertainty_and_held_out_error(fitted) -> None:
    calibration, result = fitted
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "latency model of Synthetic CPU (1 thread) / float32 / llava_onevision: 60 profiles of 33 configurations" in out
    assert "gemm_flops = " in out and " ± " in out and "s/FLOP" in out
    assert "not identifiable from this store (carried by the terms above): weight_bytes" in out
    assert "held-out error (leave-one-configuration-out" in out
    data = json.loads(calibration.read_text())
    assert data["kind"] == "vidcost-calibration" and data["held_out"]["speedup"]["count"] == 30


def test_predict_json_from_a_calibration(fitted) -> None:
    calibration, _ = fitted
    result = vidcost("predict", "--model", "tiny", "--frames", "8", "--method", "fastv", "--budget", "0.3",
                     "--calibration", str(calibration), "--decode-tokens", "4", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["calibrated"] is True and data["device"] == "Synthetic CPU (1 thread)"
    assert data["speedup_low"] < data["speedup"] < data["speedup_high"]
    assert data["decode_ms_per_token_low"] < data["decode_ms_per_token"] < data["decode_ms_per_token_high"]
    other = vidcost("predict", "--model", "tiny", "--method", "fastv", "--budget", "0.3", "--calibration",
                    str(calibration), "--device-spec", "h100")
    assert other.returncode == 0 and ("warning: the calibration was fitted on 'Synthetic CPU (1 thread)', not on "
                                      "'h100'") in other.stderr
    assert data["decode_ms_per_token"] > 0 and data["kv_cache_bytes"] < data["vanilla_kv_cache_bytes"]


def test_a_prediction_outside_the_calibrations_range_says_so(fitted) -> None:
    calibration, _ = fitted
    coverage = json.loads(calibration.read_text())["coverage"]
    assert coverage["models"] == ["tiny"] and len(coverage["frames"]) == 2 and "fastv" in coverage["methods"]
    inside = vidcost("predict", "--model", "tiny", "--frames", str(coverage["frames"][0]), "--method", "fastv",
                     "--budget", "0.3", "--calibration", str(calibration))
    assert inside.returncode == 0 and "extrapolating" not in inside.stderr
    outside = vidcost("predict", "--model", "llava-onevision-0.5b", "--frames", str(coverage["frames"][1] * 2),
                      "--method", "fastv", "--budget", "0.3", "--calibration", str(calibration))
    lines = [line for line in outside.stderr.splitlines() if "extrapolating" in line]
    assert outside.returncode == 0 and len(lines) == 1
    assert "model llava-onevision-0.5b (fitted on tiny)" in lines[0] and "frames (fitted on" in lines[0]


def test_predict_curve_plot_and_target(fitted, tmp_path) -> None:
    calibration, _ = fitted
    plot = tmp_path / "curve.png"
    result = vidcost("predict", "--model", "tiny", "--method", "mmgvid", "--budgets", "0.1,0.25,0.5",
                     "--calibration", str(calibration), "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert plot.stat().st_size > 1000 and "calibrated" in result.stdout and result.stdout.count("×") >= 6
    target = vidcost("predict", "--model", "llava-onevision-7b", "--frames", "32", "--method", "fastv",
                     "--target-speedup", "1.5", "--device-spec", "h100", "--json")
    assert target.returncode == 0, target.stderr
    found = json.loads(target.stdout)
    assert found["calibrated"] is False and 0 < found["budget"] < 1 and found["speedup"] >= 1.5


@pytest.mark.parametrize("args, message", [
    (["predict", "--model", "tiny", "--device-spec", "h900"], "unknown --device-spec 'h900'; choose one of"),
    (["predict", "--model", "tiny"], "give --calibration FILE"),
    (["predict", "--model", "tiny", "--device-spec", "a100", "--target-speedup", "90"], "is unreachable"),
    (["predict", "--model", "tiny", "--device-spec", "a100", "--plot", "x.png"], "--plot draws"),
    (["fit", "--store", "/nonexistent.jsonl", "--out", "c.json"], "store '/nonexistent.jsonl' does not exist"),
])
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = vidcost(*args)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_fit_refuses_mixed_groups_and_too_few(synthetic, tmp_path) -> None:
    mixed = write_store(tmp_path / "mixed.jsonl", synthetic(models=("tiny",)) + synthetic(models=("tiny",),
                                                                                            dtype="bfloat16"))
    result = vidcost("fit", "--store", str(mixed), "--out", str(tmp_path / "c.json"))
    assert result.returncode == 2 and "2 device/dtype/family groups" in result.stderr
    chosen = vidcost("fit", "--store", str(mixed), "--out", str(tmp_path / "c.json"), "--dtype", "bfloat16",
                     "--no-validation")
    assert chosen.returncode == 0, chosen.stderr
    few = write_store(tmp_path / "few.jsonl", synthetic(models=("tiny",), frames=(4,), budgets=(0.3,),
                                                        methods=("fastv",)))
    result = vidcost("fit", "--store", str(few), "--out", str(tmp_path / "c.json"))
    assert result.returncode == 2 and "too few profiles to fit: 2 usable profile record(s) of 2" in result.stderr


def test_pareto_on_the_users_hardware_uses_predicted_latency(fitted) -> None:
    result = vidcost("pareto", "--published", "--group", "model", "--device-spec", "h100", "--max-drop", "1",
                     "--min-speedup", "2", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["latency_source"] == "predicted on h100-sxm (per-operator)"
    assert {f["x"] for f in data["fronts"]} == {"predicted_ttft_ms"}
    sources = {r["speedup_source"] for r in data["recommendations"]}
    assert sources == {"predicted on h100-sxm (per-operator)"}
    text = vidcost("pareto", "--published", "--group", "model", "--device-spec", "h100")
    assert "latency predicted on h100-sxm (per-operator)" in text.stdout and "measured ttft_ms" in text.stdout


def test_pareto_speedups_follow_the_device(tmp_path) -> None:
    """The same published rows priced on two devices recommend from two different predicted speedups."""
    speedups = {}
    for device in ("a100", "rtx-4090"):
        data = json.loads(vidcost("pareto", "--published", "--device-spec", device, "--max-drop", "1",
                                  "--min-speedup", "1.5", "--json").stdout)
        speedups[device] = {(r["model"], r["method"]): r["speedup"] for r in data["recommendations"]}
    shared = set(speedups["a100"]) & set(speedups["rtx-4090"])
    assert shared and any(speedups["a100"][k] != speedups["rtx-4090"][k] for k in shared)


def test_report_with_a_bad_device_writes_nothing(tmp_path) -> None:
    result = vidcost("report", "--out", str(tmp_path / "report"), "--device-spec", "zz")
    assert result.returncode == 2 and "unknown --device-spec 'zz'" in result.stderr
    assert not (tmp_path / "report").exists()


def test_report_with_a_calibration_draws_predicted_latency(fitted, tmp_path) -> None:
    calibration, _ = fitted
    out = tmp_path / "report"
    result = vidcost("report", "--out", str(out), "--calibration", str(calibration))
    assert result.returncode == 0, result.stderr
    assert (out / "accuracy_vs_predicted_ttft.png").stat().st_size > 1000
    config = json.loads((out / "config.json").read_text())
    assert config["latency_source"] == "predicted on Synthetic CPU (1 thread) (calibrated)"
    markdown = (out / "report.md").read_text()
    assert "Accuracy vs TTFT predicted on Synthetic CPU (1 thread) (calibrated)" in markdown
    assert "The latency is a prediction, not a measurement." in markdown


def test_fit_takes_the_byte_terms_from_a_device_and_says_so(synthetic, tmp_path) -> None:
    store = write_store(tmp_path / "runs.jsonl", synthetic(models=("tiny",), noise=0.01))
    result = vidcost("fit", "--store", str(store), "--out", str(tmp_path / "calib.json"), "--device-spec", "h100")
    assert result.returncode == 0, result.stderr
    assert "weight_bytes = " in result.stdout and "(set from h100-sxm: memory bandwidth 3350.0 GB/s)" in result.stdout
    decode = json.loads((tmp_path / "calib.json").read_text())["latency_model"]["stages"]["decode"]
    sources = {term["name"]: term.get("source", "") for term in decode["terms"]}
    assert sources["weight_bytes"].startswith("h100-sxm") and sources["layers"] == ""  # the rest fitted
    assert "no band measured for another model" in result.stdout  # one model: no leave-one-model-out
    bad = vidcost("fit", "--store", str(store), "--out", str(tmp_path / "c2.json"), "--device-spec", "nosuch")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown --device-spec 'nosuch'" in bad.stderr
    assert not (tmp_path / "c2.json").exists()


def test_a_per_operator_device_fitted_to_profiles_carries_its_bands(synthetic, tmp_path) -> None:
    """`fit --per-operator-out` writes the device with what it was fitted on and its held-out error by regime;
    `predict --device-spec` on that JSON prints the band inside the range and says when none was measured."""
    store = write_store(tmp_path / "runs.jsonl", synthetic(models=("tiny",), frames=(4, 16), budgets=(0.2, 0.5),
                                                           methods=("fastv",), noise=0.01))
    base = tmp_path / "cpu.json"  # CPU-like peaks: the synthetic stage times are a CPU's
    base.write_text(json.dumps({"name": "cpu", "peak_tflops": {"float32": 0.1}, "memory_bandwidth_gbps": 50,
                                "measured": True, "host_overlaps": False}))
    result = vidcost("fit", "--store", str(store), "--out", str(tmp_path / "calib.json"), "--device-spec",
                     str(base), "--per-operator-out", str(tmp_path / "dev.json"))
    assert result.returncode == 0, result.stderr
    assert "per-operator held-out error, inside: speedup max" in result.stderr
    device = json.loads((tmp_path / "dev.json").read_text())
    assert device["coverage"]["models"] == ["tiny"] and device["coverage"]["frames"] == [4, 16]
    assert set(device["held_out"]) == {"inside", "other_frames"}  # one model: no leave-one-model-out
    assert device["held_out"]["inside"]["speedup"]["count"] == 4
    inside = vidcost("predict", "--model", "tiny", "--frames", "8", "--method", "fastv", "--budget", "0.3",
                     "--device-spec", str(tmp_path / "dev.json"), "--dtype", "float32", "--json")
    assert inside.returncode == 0, inside.stderr
    data = json.loads(inside.stdout)
    assert data["kind"] == "per-operator" and data["regime"] == "inside"
    assert data["speedup_low"] < data["speedup"] < data["speedup_high"]
    other = vidcost("predict", "--model", "llava-onevision-0.5b", "--method", "fastv", "--budget", "0.3",
                    "--device-spec", str(tmp_path / "dev.json"), "--dtype", "float32", "--json")
    assert other.returncode == 0, other.stderr
    data = json.loads(other.stdout)
    assert data["regime"] == "other_model" and data["speedup_low"] is None
    assert any("no held-out error was measured" in note for note in data["notes"])
    assert "extrapolating beyond the fit: model llava-onevision-0.5b" in other.stderr
