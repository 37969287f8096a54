"""A new user's first session, replayed: every bad input of issue #12 item 5 is exactly one line on stderr and
exit code 2, found before any work, with nothing written — in a fresh folder, as a user would type it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPO_CONFIG = {"model_type": "llava_onevisoin",  # a typo of llava_onevision
               "text_config": {"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
                               "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                               "vocab_size": 1000},
               "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                                 "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 56,
                                 "patch_size": 14}}

# (what the user typed, a fragment the one error line must hold)
SESSION = [
    ("vidcost profile --store /proc/x.jsonl", "cannot append to store '/proc/x.jsonl'"),
    ("vidcost profile --model ./typo", "key 'model_type' is 'llava_onevisoin'"),
    ("vidcost flops --model ./typo", "known: video LLMs llava_onevision, qwen2_5_vl, qwen2_vl; plain decoders"),
    ("vidcost profile --model ./decoder", "the runtime does not run 'llm' models; supported families"),
    ("vidcost flops --method mmg", "Unknown pruning method 'mmg'; choose one of"),  # not "needs a budget"
    ("vidcost flops --method fastv", "method 'fastv' needs a budget"),
    ("vidcost flops --method fastv --budget nan", "argument --budget: 'nan' is not a finite number"),
    ("vidcost profile --budget 1.5", "budget 1.5 is outside (0, 1]"),
    ("vidcost profile --frames abc", "argument --frames: 'abc' is not a whole number; see vidcost profile --help"),
    ("vidcost profile --repeats 0", "argument --repeats: 0 is below 1"),
    ("vidcost pareto --published --max-drop nan", "argument --max-drop: 'nan' is not a finite number"),
    ("vidcost pareto --published --max-drop 1 --min-speedup inf", "argument --min-speedup: 'inf'"),
    ("vidcost report --out rep --max-drop -1", "argument --max-drop: '-1' must be 0 or more"),
    ("vidcost ingest lmms-eval results.json --resamples 10", "argument --resamples: 10 is below 100"),
    ("vidcost ingest lmms-eval nowhere/", "'nowhere' does not exist"),
    ("vidcost export --out runs.xlsx", "end it in .csv or .parquet"),
    ("vidcost pareto", "one of the arguments FILE.csv --store --published is required; see vidcost pareto --help"),
    ("analysis/bench_selection.py --methods fastv,nope", "argument --methods: Unknown pruning method 'nope'"),
    ("analysis/bench_selection.py --budget 0.1,2", "argument --budget: budget 2.0 is outside (0, 1]"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A fresh folder with what the user brought: a config.json with a typo in it, and a plain decoder's."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "typo").mkdir()
    (folder / "typo" / "config.json").write_text(json.dumps(TYPO_CONFIG))
    (folder / "decoder").mkdir()  # a plain decoder: priced by `vidcost flops`, not run by `vidcost profile`
    (folder / "decoder" / "config.json").write_text(json.dumps(TYPO_CONFIG["text_config"]))
    return folder


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    words = line.split()
    if words[0] == "vidcost":
        argv = [sys.executable, "-m", "vidcost", *words[1:]]
    else:
        argv = [sys.executable, str(ROOT / words[0]), *words[1:]]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=180)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("line, fragment", SESSION, ids=[line for line, _ in SESSION])
def test_each_bad_input_is_one_line_exit_2_and_writes_nothing(home, line, fragment):
    before = _snapshot(home)
    done = _run(line, home)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (line, done.stderr)
    assert len(lines) == 1 and "Traceback" not in done.stderr, (line, done.stderr)
    assert fragment in lines[0], (line, lines[0])
    assert done.stdout == ""
    assert _snapshot(home) == before, f"{line} wrote into the folder"  # no store, no report, no table


def test_a_budget_given_to_vanilla_is_a_warning_not_an_error(home):
    done = _run("vidcost flops --method vanilla --budget 0.5", home)
    assert done.returncode == 0
    assert done.stderr.strip().splitlines() == [
        "vidcost flops: warning: vanilla keeps every visual token: budget 0.5 is ignored (vanilla runs at 1.0)"]
