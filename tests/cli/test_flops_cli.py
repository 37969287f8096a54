"""`vidcost flops` as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest


def vidcost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidcost", "flops", *args], capture_output=True, text=True,
                          timeout=120)


def flops_json(*args: str) -> dict:
    result = vidcost(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_vanilla_json_has_the_documented_keys() -> None:
    data = flops_json("--model", "llava-onevision-7b")
    assert {"prefill_flops", "vanilla_prefill_flops", "flops_ratio", "mean_visual_fraction", "kv_cache_bytes",
            "weights_bytes", "layers", "convention"} <= set(data)
    assert data["convention"] == "paper" and data["flops_ratio"] == 1.0 and data["mean_visual_fraction"] == 1.0
    assert f"{data['prefill_flops'] / 1e12:.3g}" == "40.8"
    assert len(data["layers"]) == 28
    assert data["layers"][0] == {**data["layers"][0], "layer": 0, "visual_tokens": 6272, "text_tokens": 0}
    assert sum(entry["flops"] for entry in data["layers"]) == data["prefill_flops"]


def test_fastv_plan_matches_hieravid_table_and_schedule_form() -> None:
    fastv = flops_json("--model", "llava-onevision-7b", "--method", "fastv", "--layer", "2", "--keep", "0.3")
    assert f"{fastv['prefill_flops'] / 1e12:.3g}" == "12.7" and round(fastv["flops_ratio"], 3) == 0.312
    assert [entry["visual_tokens"] for entry in fastv["layers"][:3]] == [6272, 6272, 1882]
    schedule = flops_json("--model", "llava-onevision-7b", "--schedule", "0:1.0,2:0.3")
    assert schedule["prefill_flops"] == fastv["prefill_flops"]
    generic = flops_json("--model", "llava-onevision-7b", "--method", "fastv", "--budget", "0.3",
                         "--param", "layer=4")
    assert [entry["visual_tokens"] for entry in generic["layers"][3:5]] == [6272, 1882]
    assert generic["params"] == {"layer": 4} and generic["prefill_flops"] > fastv["prefill_flops"]


def test_any_registered_method_plans_through_the_registry() -> None:
    # A pre-LLM method with a parameter: constant schedule at the budget, ratio below the budget.
    data = flops_json("--model", "llava-onevision-7b", "--method", "sinkwindow", "--budget", "0.25",
                      "--param", "sink_tokens=2")
    assert data["method"] == "sinkwindow" and data["params"]["sink_tokens"] == 2
    counts = {entry["visual_tokens"] for entry in data["layers"]}
    assert counts == {round(0.25 * 6272)} and data["flops_ratio"] < 0.25


def test_text_tokens_count_in_paper_convention_only_when_given() -> None:
    without = flops_json("--model", "tiny")
    with_text = flops_json("--model", "tiny", "--text-tokens", "32")
    assert without["layers"][0]["text_tokens"] == 0 and with_text["layers"][0]["text_tokens"] == 32
    assert with_text["prefill_flops"] > without["prefill_flops"]


def test_exact_convention_options() -> None:
    exact = flops_json("--model", "tiny", "--convention", "exact")
    causal = flops_json("--model", "tiny", "--convention", "exact", "--causal")
    vision = flops_json("--model", "tiny", "--convention", "exact", "--include-vision")
    assert exact["lm_head_flops"] > 0 and exact["elementwise_flops"] > 0 and exact["layers"][0]["text_tokens"] == 32
    assert causal["prefill_flops"] < exact["prefill_flops"]
    assert vision["prefill_flops"] == exact["prefill_flops"] + vision["vision_flops"]


def test_human_table_groups_layers_and_states_the_ratio() -> None:
    result = vidcost("--model", "llava-onevision-7b", "--schedule", "0:1.0,2:0.3,10:0.1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "0-1" in out and "2-9" in out and "10-27" in out
    assert "vanilla: 40.77 TFLOPs" in out and "HieraVid Eq. 12" in out and "KV cache" in out


def test_flops_does_not_import_torch() -> None:
    code = ("import sys; from vidcost.cli import main; "
            "code = main(['flops', '--method', 'fastv', '--budget', '0.3', '--json']); "
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
            "print(code, heavy, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip() == "0 []", result.stderr


def test_count_prints_both_counters_beside_the_analytic_number() -> None:
    result = vidcost("--model", "tiny", "--count", "--include-vision", "--convention", "exact",
                     "--schedule", "0:1.0,3:0.5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "FlopCounterMode" in out and "2 FLOPs per multiply-add" in out
    assert "fvcore" in out and "1 per multiply-add" in out and "vision_tower" in out
    difference = re.search(r"([+-]\d+\.\d+)% vs counted", out)
    assert difference is not None and abs(float(difference.group(1))) < 1.0, out


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_unknown_preset_lists_the_valid_names() -> None:
    assert_one_line_error(vidcost("--model", "llava-9b"), "'llava-9b'", "llava-onevision-7b", "tiny")


def test_config_missing_a_key_names_it(tmp_path: Path) -> None:
    config = {"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
              "vocab_size": 100}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert_one_line_error(vidcost("--model", str(tmp_path)), "'intermediate_size'")
    # A key that is there but unusable (once a ZeroDivisionError traceback) is named too.
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 128, "num_attention_heads": 0}))
    assert_one_line_error(vidcost("--model", str(tmp_path)), "'num_attention_heads'", "positive integer", "got 0")


@pytest.mark.parametrize("args, fragments", [
    (["--schedule", "0:1.0,2:x"], ["'2:x'", "LAYER:FRACTION"]),
    (["--schedule", "0:1.0,3"], ["'3'"]),
    (["--frames", "0"], ["frames", "0"]),
    (["--schedule", "0:1.5"], ["1.5", "[0, 1]"]),
    (["--schedule", "0:1.0,99:0.3"], ["99", "0..5"]),
    (["--method", "fastv", "--budget", "1.5"], ["1.5", "(0, 1]"]),
    (["--method", "fastv", "--keep", "0.3", "--layer", "40"], ["layer=40"]),
    (["--method", "nosuch", "--budget", "0.3"], ["'nosuch'", "fastv"]),
    (["--method", "fastv", "--budget", "0.3", "--param", "layer"], ["'layer'", "NAME=VALUE"]),
    (["--method", "fastv", "--budget", "0.3", "--param", "ratio=2"], ["ratio"]),
    (["--method", "fastv"], ["--budget"]),
    (["--method", "nosuch"], ["'nosuch'", "fastv"]),  # the unknown method, not its missing budget
    (["--method", "fastv", "--budget", "nan"], ["argument --budget", "'nan' is not a finite number"]),
    (["--frames", "abc"], ["argument --frames", "'abc'", "see vidcost flops --help"]),
    (["--include-vision"], ["paper convention"]),
    (["--schedule", "0:1.0,3:0", "--text-tokens", "0", "--count"], ["layer 3 on", "--text-tokens"]),
])
def test_bad_input_is_a_one_line_error(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(vidcost(*args), *fragments)


def test_a_budget_given_to_vanilla_is_a_warning_and_ignored() -> None:
    result = vidcost("--method", "vanilla", "--budget", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ("vidcost flops: warning: vanilla keeps every visual token: budget 0.5 is "
                                     "ignored (vanilla runs at 1.0)")
    payload = json.loads(result.stdout)
    assert payload["budget"] == 1.0 and payload["flops_ratio"] == 1.0


def test_unknown_model_type_names_the_key_and_the_families(tmp_path: Path) -> None:
    config = {"model_type": "qwen2_5_vl_foo", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
              "num_hidden_layers": 2, "vocab_size": 100}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert_one_line_error(vidcost("--model", str(tmp_path)), "key 'model_type' is 'qwen2_5_vl_foo'",
                          "llava_onevision", "qwen2_vl", "llama")
    result = vidcost("--model", str(tmp_path))
    assert len(result.stderr) < 400  # the families vidcost reads, not transformers' hundreds of names
