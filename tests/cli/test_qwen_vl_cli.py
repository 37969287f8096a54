"""`vidcost profile` and `vidcost flops` on Qwen-VL models, as a user runs them; bad input is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the shared 2-core machine: one thread is faster


def vidcost(command: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", command, *args], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


def test_profile_tiny_qwen2_5_vl_with_mmgvid(tmp_path):
    done = vidcost("profile", "--model", "tiny-qwen2.5-vl", "--method", "mmgvid", "--frames", "5", "--repeats", "1",
                   "--warmup", "0", "--threads", "1", "--json", "--no-store", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    # 5 frames: three temporal patches (the last repeats frame 5) of 64 tokens.
    assert payload["executed_schedule"] == payload["planned_schedule"]
    assert payload["planned_schedule"]["initial_visual_tokens"] == 3 * 64
    assert payload["executed_schedule"]["visual_tokens"] == [48] * 6
    assert payload["model"] == "tiny-qwen2.5-vl" and payload["frames"] == 5
    assert payload["flops_speedup"] > 2 and {"vision", "projector", "selection"} <= set(payload["stages_ms"])


def test_flops_prices_a_plan_on_temporal_patches():
    done = vidcost("flops", "--model", "qwen2.5-vl-7b", "--frames", "8", "--method", "uniform", "--budget", "0.25",
                   "--resolution", "336x588", "--convention", "exact", "--include-vision", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"]["tokens_per_frame"] == 12 * 21 and data["layers"][0]["visual_tokens"] < 4 * 12 * 21
    assert data["vision_flops"] > 0


@pytest.mark.parametrize("command, args, message", [
    ("profile", ["--model", "tiny-qwen2.5-vl", "--resolution", "230"],
     "resolution 230x230 is not a multiple of the 28 px patch grid"),
    ("flops", ["--model", "qwen2.5-vl-3b", "--resolution", "448x"], "malformed --resolution '448x'"),
    ("profile", ["--model", "tiny", "--resolution", "224"], "takes 224 px frames; --resolution applies to"),
])
def test_bad_resolution_is_one_line(tmp_path, command, args, message):
    done = vidcost(command, *args, "--no-store" if command == "profile" else "--json", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr.strip().splitlines()[-1]


def test_a_config_of_an_unsupported_family_lists_the_supported_ones(tmp_path):
    config = {"model_type": "idefics3", "text_config": {"hidden_size": 64, "intermediate_size": 128,
                                                        "num_hidden_layers": 2, "num_attention_heads": 4,
                                                        "vocab_size": 100},
              "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                "num_attention_heads": 2, "image_size": 56, "patch_size": 14}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    done = vidcost("profile", "--model", str(tmp_path), "--method", "uniform", "--no-store", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    # Refused where the config is read (so `vidcost flops` refuses it too), naming the families vidcost reads.
    assert "key 'model_type' is 'idefics3', not a model family vidcost reads" in line
    assert "video LLMs llava_onevision, qwen2_5_vl, qwen2_vl" in line and "building" not in done.stderr
