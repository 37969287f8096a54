"""`vidcost profile` as a user runs it: JSON output, stored records, one-line errors that never touch the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the shared 2-core machine: one thread is faster


def vidcost(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", "profile", *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def fastv_run(tmp_path_factory):
    store = tmp_path_factory.mktemp("cli") / "runs.jsonl"
    done = vidcost("--method", "fastv", "--json", "--frames", "4", "--repeats", "2", "--warmup", "1",
                   "--store", str(store))
    return done, store


def test_json_output(fastv_run):
    done, _ = fastv_run
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    for key in ("method", "budget", "ttft_ms", "vanilla_ttft_ms", "speedup", "flops_speedup", "samples_ms",
                "peak_memory_bytes", "planned_schedule", "executed_schedule", "stages_ms", "device"):
        assert key in payload, key
    assert payload["method"] == "fastv" and payload["budget"] == 0.25 and payload["device"] == "cpu"
    assert payload["executed_schedule"] == payload["planned_schedule"]
    assert payload["executed_schedule"]["visual_tokens"] == [256, 256, 64, 64, 64, 64]
    assert len(payload["samples_ms"]) == 2 and payload["flops_speedup"] > 1.5
    assert "repeat 2/2" in done.stderr and "building tiny" in done.stderr


def test_records_are_stored(fastv_run):
    _, store = fastv_run
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert [r["method"] for r in records] == ["vanilla", "fastv"]
    assert len({r["run_id"] for r in records}) == 1 and all(r["status"] == "ok" for r in records)


def test_table_output_with_uniform_and_params(tmp_path):
    done = vidcost("--method", "uniform", "--frames", "2", "--repeats", "1", "--warmup", "0", "--no-store",
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for text in ("vision encoder", "LLM prefill", "TTFT (total)", "KV cache", "peak above weights: LLM",
                 "achieved TFLOP/s", "measured speedup", "FLOPs-predicted", "executed Schedule(L0-5:32 of 128",
                 "input: synthetic clip (seed 0); shape-only: random weights (seed 0); memory from "
                 "cpu_allocator_events"):
        assert text in done.stdout, text
    assert not (tmp_path / "profiles").exists()
    assert "layer 00" not in done.stdout and "decode / token" not in done.stdout  # no decode asked for


def test_per_layer_times_are_printed(tmp_path):
    done = vidcost("--method", "fastv", "--frames", "1", "--repeats", "1", "--warmup", "0", "--no-store",
                   "--per-layer", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("layer ")]
    assert [row[1] for row in rows] == [f"{i:02d}" for i in range(6)]  # the tiny preset's 6 layers
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)  # vanilla and fastv milliseconds


@pytest.mark.parametrize("args,message", [
    (["--method", "mmg"], "Unknown pruning method 'mmg'; choose one of ["),
    (["--method", "uniform", "--budget", "1.5"], "budget 1.5 is outside (0, 1]"),
    (["--method", "uniform", "--budget", "0"], "budget 0.0 is outside (0, 1]"),
    (["--method", "uniform", "--frames", "0"], "argument --frames: 0 is below 1; see vidcost profile --help"),
    (["--method", "fastv", "--param", "layer"], "malformed --param 'layer'"),
    (["--method", "fastv", "--param", "layer=9"], "fastv parameter layer=9 is outside [1, 5]"),
    (["--method", "uniform", "--threads", "0"], "argument --threads: 0 is below 1"),
    (["--method", "uniform", "--decode-tokens", "-1"], "argument --decode-tokens: -1 is below 0"),
    (["--method", "uniform", "--budget", "nan"], "argument --budget: 'nan' is not a finite number"),
    (["--store", "/proc/x.jsonl"], "cannot append to store '/proc/x.jsonl'"),
])
def test_bad_input_is_one_line_and_leaves_the_store_alone(tmp_path, args, message):
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kind": "accuracy"}\n')
    done = vidcost("--store", str(store), *args)  # a later --store wins: /proc/x.jsonl
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcost profile: error: ") and message in lines[0], lines
    assert "Traceback" not in done.stderr
    assert store.read_text() == '{"kind": "accuracy"}\n'


def test_too_few_text_tokens_fail_before_the_model_is_built(tmp_path):
    done = vidcost("--method", "uniform", "--text-tokens", "1", "--no-store", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pass --text-tokens 2 or more" in done.stderr.strip().splitlines()[-1]
    assert "building" not in done.stderr  # no minutes spent on a model that cannot be fed


def test_unwritable_store_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("")
    done = vidcost("--method", "uniform", "--frames", "1", "--store", str(tmp_path / "file" / "runs.jsonl"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "cannot append to store" in done.stderr.strip().splitlines()[-1]


def test_undecodable_video(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 1000)
    store = tmp_path / "runs.jsonl"
    done = vidcost("--method", "uniform", "--frames", "2", "--video", str(video), "--store", str(store))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"cannot decode video '{video}'" in done.stderr.strip().splitlines()[-1]
    assert not store.exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda(tmp_path):
    done = vidcost("--method", "uniform", "--device", "cuda", "--store", str(tmp_path / "runs.jsonl"))
    assert done.returncode == 2
    assert "CUDA is not available" in done.stderr and "--device cpu" in done.stderr
    assert not (tmp_path / "runs.jsonl").exists()


def test_decode_keys_and_a_kv_cache_in_proportion_to_the_kept_tokens(tmp_path):
    """`vidcost profile --method fastv --decode-tokens 8 --json` on the default model (issue #8)."""
    done = vidcost("--method", "fastv", "--decode-tokens", "8", "--json", "--frames", "4", "--repeats", "1",
                   "--warmup", "0", "--no-store", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["decode_tokens"] == 8
    assert payload["decode_ms_per_token"] > 0 and payload["vanilla_decode_ms_per_token"] > 0
    assert payload["decode_speedup"] == pytest.approx(
        payload["vanilla_decode_ms_per_token"] / payload["decode_ms_per_token"])
    text = 32  # the tiny preset's text tokens enter and stay in every layer's cache
    kept = sum(payload["executed_schedule"]["visual_tokens"]) + text * 6
    full = 4 * 64 * 6 + text * 6
    assert payload["kv_cache_bytes"] / payload["vanilla_kv_cache_bytes"] == pytest.approx(kept / full)


def test_decode_tokens_must_be_a_whole_number(tmp_path):
    done = vidcost("--method", "fastv", "--decode-tokens", "2.5", "--no-store", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --decode-tokens: '2.5' is not a whole number" in done.stderr


def test_help_lists_every_method():
    from vidcost.methods import method_names

    done = vidcost("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps the help text
    assert all(name in text for name in method_names()) and "(default: mmgvid)" in text


def test_the_default_store_in_the_checkout_is_ignored_by_git():
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(["git", "check-ignore", "-q", "profiles/runs.jsonl"], cwd=root, timeout=30)
    assert done.returncode == 0, "profiles/runs.jsonl, written by `vidcost profile` in the checkout, is not ignored"
