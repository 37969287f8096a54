"""The `vidcost` lmms-eval backend and `vidcost eval`, run by the real lmms-eval package on the local task.

Needs the eval extra (README); skipped without lmms-eval, or failed with VIDCOST_REQUIRE_EVAL=1 (CI sets it:
an eval test that skips proves nothing). The local task is `tests/data/vidcost_task` (four generated clips,
multiple choice answered by generation); its dataset path is relative to the repository root, so every test
here runs from there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRE_EVAL = "VIDCOST_REQUIRE_EVAL"
ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "tests" / "data" / "vidcost_task"
VIDEOS = TASKS / "videos"

try:
    import lmms_eval  # noqa: F401
    import torchvision  # noqa: F401
except ImportError as missing:
    if os.environ.get(REQUIRE_EVAL, "") not in ("", "0"):
        raise RuntimeError(f"{REQUIRE_EVAL}=1 but the eval extra is not importable ({missing}); install it as "
                           "the README says") from missing
    pytest.skip(f"needs the eval extra ({missing}); set {REQUIRE_EVAL}=1 to fail instead", allow_module_level=True)


@pytest.fixture(autouse=True)
def _offline_from_the_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """tiny and tiny-qwen2.5-vl as Hugging Face directories, weights drawn wide enough that the answers
    depend on the video and the question (the default init answers one token whatever it is shown)."""
    from vidcost.checkpoint import save_model
    from vidcost.spec import load_spec

    root = tmp_path_factory.mktemp("models")
    return {name: save_model(load_spec(name), root / name, seed=0, init_std=0.2)
            for name in ("tiny", "tiny-qwen2.5-vl")}


def _lmms_eval(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lmms_eval", "--include_path", str(TASKS), "--tasks", "vidcost_clips",
               "--batch_size", "1", "--log_samples", "--verbosity", "WARNING", *args]
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


def _vidcost(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidcost", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=600)


def _answers(output: Path) -> dict[int, str]:
    (samples,) = output.rglob("*_samples_vidcost_clips.jsonl")
    return {row["doc_id"]: row["filtered_resps"] for row in map(json.loads, samples.read_text().splitlines())}


def test_vidcost_eval_runs_lmms_eval_per_method_and_stores_each_requests_cost(tmp_path):
    """vanilla and FastV through lmms-eval's own evaluator; lmms-eval's files read back by `vidcost ingest`,
    the accuracy joined to the cost of the same requests; a rerun skips the complete runs."""
    from vidcost.report import store_rows
    from vidcost.store import read_records

    out, store = tmp_path / "out", tmp_path / "eval.jsonl"
    command = ("eval", "--tasks", "vidcost_clips", "--include-path", str(TASKS), "--methods", "vanilla,fastv",
               "--budgets", "0.25", "--frames", "8", "--limit", "3", "--output-path", str(out), "--store",
               str(store), "--json")
    done = _vidcost(*command)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads(done.stdout)["runs"]
    assert [(row["method"], row["budget"], row["requests"]) for row in table] == [("vanilla", 1.0, 3),
                                                                                  ("fastv", 0.25, 3)]
    assert all(row["speedup"] is not None for row in table)
    for folder in ("vanilla", "fastv_0.25"):  # lmms-eval's own layout: <output>/<model>/<date>_results.json
        assert len(list((out / folder).glob("*/*_results.json"))) == 1
        assert len(list((out / folder).glob("*/*_samples_vidcost_clips.jsonl"))) == 1

    requests = read_records(store, kind="request")
    assert sorted((r["method"], r["doc_id"]) for r in requests) == sorted(
        (m, d) for m in ("vanilla", "fastv") for d in range(3))
    fastv = [r for r in requests if r["method"] == "fastv"]
    assert all(r["status"] == "ok" and r["frames"] == 8 and r["budget"] == 0.25 for r in fastv)
    assert all(r["visual_tokens_after"] < r["visual_tokens_before"] and r["ttft_ms"] > r["llm_prefill_ms"] > 0
               and r["stages_ms"]["selection"] > 0 and 1 <= r["tokens_generated"] <= 8 for r in fastv)
    # each request's answer is the one lmms-eval scored
    assert {r["doc_id"]: r["answer"] for r in fastv} == _answers(out / "fastv_0.25")

    ingested = _vidcost("ingest", "lmms-eval", str(out), "--store", str(store))
    assert ingested.returncode == 0, ingested.stderr
    joined = store_rows(store, benchmark="vidcost_clips")
    pairs = {(row["method"], row["budget"]): row for row in joined.rows if row.get("benchmark") == "vidcost_clips"}
    assert set(pairs) == {("vanilla", 1.0), ("fastv", 0.25)}
    assert all(row["provenance"] == "evaluated accuracy, measured cost" and row["requests"] == 3
               and row["model"] == "tiny" and row["frames"] == 8 for row in pairs.values())

    again = _vidcost(*command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("skipped") == 2
    assert len(read_records(store, kind="request")) == 6  # nothing answered twice


def test_vanilla_answers_equal_lmms_evals_own_llava_hf_backend(tmp_path, saved_models):
    """The same saved model directory, task and frames through `llava_hf` (lmms-eval's HF LLaVA-OneVision
    backend, its simple form: the chat form passes `images=[]`, which transformers 5 refuses) and through
    `vidcost`, greedy: the same answer request by request. llava_hf does not apply `until`, so its answers
    are cut at the task's stop string before comparing."""
    directory = str(saved_models["tiny"])
    hf = _lmms_eval("--model", "llava_hf", "--force_simple", "--model_args",
                    f"pretrained={directory},max_frames_num=8,device=cpu,dtype=float32,device_map=cpu",
                    "--output_path", str(tmp_path / "hf"))
    assert hf.returncode == 0, hf.stderr[-3000:]
    ours = _lmms_eval("--model", "vidcost", "--model_args", f"model_path={directory},frames=8,store={tmp_path / 's.jsonl'}",
                      "--output_path", str(tmp_path / "vidcost"))
    assert ours.returncode == 0, ours.stderr[-3000:]
    theirs = {doc: text.split("\n\n")[0] for doc, text in _answers(tmp_path / "hf").items()}
    answered = _answers(tmp_path / "vidcost")
    assert answered == theirs
    assert len(set(answered.values())) == len(answered) == 4  # the answers depend on the clip: a real check


def test_vanilla_qwen_answers_equal_transformers_generate(saved_models):
    """Qwen2.5-VL against transformers' own `generate` on the same frames and chat prompt. Not against
    lmms-eval's `qwen2_5_vl` backend: it samples frames by time (qwen_vl_utils at 2 fps, then resized to its
    min_pixels) and adds a system prompt, so its inputs differ from any uniform `frames` sampling by design."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vidcost.eval.answer import Answerer
    from vidcost.eval.config import EvalConfig
    from vidcost.eval.prompt import sample_frames

    directory = str(saved_models["tiny-qwen2.5-vl"])
    answerer = Answerer(EvalConfig(model_path=directory, frames=4))
    model = AutoModelForImageTextToText.from_pretrained(directory).eval()
    processor = AutoProcessor.from_pretrained(directory)
    answers = set()
    for clip, question in (("red", "Which colour?"), ("blue", "Which colour?"), ("blue", "Where does it go?")):
        video = str(VIDEOS / f"{clip}.mp4")
        text, record = answerer.answer(context=question, video=video, gen_kwargs={"max_new_tokens": 6},
                                       task="t", doc_id=0)
        message = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        prompt = processor.apply_chat_template(message, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=prompt, videos=[sample_frames(video, 4)], return_tensors="pt")
        with torch.inference_mode():
            generated = model.generate(**inputs, max_new_tokens=6, do_sample=False)[0, inputs["input_ids"].shape[1]:]
        ids = generated.tolist()
        eos = processor.tokenizer.eos_token_id
        expected = processor.tokenizer.decode(ids[:ids.index(eos)] if eos in ids else ids, skip_special_tokens=True)
        assert text == expected
        assert record.status == "ok" and record.tokens_generated == len(ids) and record.frames == 4
        answers.add(text)
    assert len(answers) == 3


def _request(arguments: tuple) -> "object":
    """A generate_until request as lmms-eval's evaluator builds it (lmms_eval.api.instance.Instance)."""
    from lmms_eval.api.instance import Instance

    return Instance("generate_until", arguments, idx=0,
                    metadata={"task": arguments[4], "doc_id": arguments[3], "repeats": 1})


def test_an_undecodable_video_is_a_failed_request_and_the_run_goes_on(tmp_path):
    """Through the backend's generate_until with lmms-eval's own Instance: a broken file is answered "" with a
    failed record naming why, and the next request is answered."""
    from vidcost.eval.backend import VidcostLMM
    from vidcost.store import read_records

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    store = tmp_path / "eval.jsonl"
    lm = VidcostLMM(model="tiny", frames=2, store=str(store))
    docs = [{"video": str(broken)}, {"video": str(VIDEOS / "red.mp4")}]
    lm.task_dict = {"t": {"test": docs}}
    requests = [_request(("Which colour?", {"max_new_tokens": 2}, lambda doc: [doc["video"]], doc_id, "t", "test"))
                for doc_id in (0, 1)]
    answers = lm.generate_until(requests)
    records = read_records(store, kind="request")
    assert answers[0] == "" and [r["status"] for r in records] == ["failed", "ok"]
    assert "cannot decode video" in records[0]["error"] and str(broken) in records[0]["error"]
    assert lm.failed_requests == 1

    # a new backend on the same store answers nothing twice: a killed evaluation resumes from the store
    resumed = VidcostLMM(model="tiny", frames=2, store=str(store))
    resumed.task_dict = lm.task_dict
    assert resumed.generate_until(requests)[1] == answers[1] and resumed.resumed_requests == 1
    assert len(read_records(store, kind="request")) == 3  # only the failed request was tried again


def test_image_and_text_only_requests_are_failed_requests(tmp_path):
    from PIL import Image

    from vidcost.eval.backend import VidcostLMM
    from vidcost.store import read_records

    store = tmp_path / "eval.jsonl"
    lm = VidcostLMM(model="tiny", frames=2, store=str(store))
    lm.task_dict = {"t": {"test": [{}, {}]}}
    visuals = {0: [Image.new("RGB", (8, 8))], 1: []}
    requests = [_request(("Q?", {}, lambda doc, i=i: visuals[i], i, "t", "test")) for i in (0, 1)]
    assert lm.generate_until(requests) == ["", ""]
    errors = [r["error"] for r in read_records(store, kind="request")]
    assert "an image task?" in errors[0] and "text-only request" in errors[1]


@pytest.mark.parametrize("args, fragment", [
    (("--tasks", "no_such_task"), "unknown lmms-eval task 'no_such_task'"),
    (("--tasks", "vidcost_clips_choice"), "asks for loglikelihood requests"),
    (("--tasks", "vidcost_clips", "--batch-size", "2"), "batch_size 2"),
    (("--tasks", "vidcost_clips", "--methods", "fastv", "--budgets", "1.5"), "1.5"),
    (("--tasks", "vidcost_clips", "--methods", "nope"), "nope"),
    (("--tasks", "vidcost_clips", "--model-path", "/no/such/model"), "is not a model directory"),
    (("--tasks", "vidcost_clips", "--store", "/proc/no/eval.jsonl"), "cannot append to store"),
    (("--tasks", "vidcost_clips", "--output-path", "/proc/no/out"), "--output-path '/proc/no/out' is not a writable"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_model(tmp_path, args, fragment, capsys, monkeypatch):
    import vidcost.runtime
    from vidcost.cli import main
    from vidcost.runtime import model as runtime_model

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the input was checked")

    monkeypatch.setattr(runtime_model, "build_model", no_model)
    monkeypatch.setattr(vidcost.runtime, "build_model", no_model)
    defaults = ("--include-path", str(TASKS), "--output-path", str(tmp_path / "out"), "--store",
                str(tmp_path / "eval.jsonl"))
    code = main(["eval", *defaults, *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_lmms_eval_refuses_a_batch_size_above_one_before_building_a_model(tmp_path):
    """lmms-eval's own command line logs the backend's one-line error (and exits 0: its CLI catches it)."""
    done = _lmms_eval("--model", "vidcost", "--model_args", "model=tiny,frames=2", "--batch_size", "2",
                      "--limit", "1", "--output_path", str(tmp_path / "out"))
    assert "batch_size 2: the vidcost backend answers one request at a time" in done.stdout + done.stderr
    assert not list(tmp_path.rglob("*_results.json"))


def test_save_model_writes_what_transformers_loads(tmp_path):
    """`vidcost save-model` output loads with AutoProcessor / AutoModelForImageTextToText and generates."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    done = _vidcost("save-model", "--model", "tiny", "--out", str(tmp_path / "tiny"), "--json")
    assert done.returncode == 0, done.stderr
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= set(
        json.loads(done.stdout)["files"])
    processor = AutoProcessor.from_pretrained(tmp_path / "tiny")
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "tiny")
    assert type(model).__name__ == "LlavaOnevisionForConditionalGeneration"
    assert "<video>" in processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q"}]}], tokenize=False)
    again = _vidcost("save-model", "--model", "tiny", "--out", str(tmp_path / "tiny"))
    assert again.returncode == 2 and "already holds a model" in again.stderr


def test_a_plugin_method_with_a_parameter_answers_through_the_backend(tmp_path):
    """`method=my_norm.py:NormPrune,param.power=3` — the README's plug-in, its parameter passed through."""
    import re

    from vidcost.eval.backend import VidcostLMM
    from vidcost.store import read_records

    section = (ROOT / "README.md").read_text().split("## Your own pruning method", 1)[1]
    plugin = tmp_path / "my_norm.py"
    plugin.write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    store = tmp_path / "eval.jsonl"
    lm = VidcostLMM(model="tiny", method=f"{plugin}:NormPrune", budget=0.5, frames=2, store=str(store),
                    **{"param.power": 3})
    lm.task_dict = {"t": {"test": [{}]}}
    lm.generate_until([_request(("Which colour?", {"max_new_tokens": 2}, lambda doc: [str(VIDEOS / "red.mp4")],
                                 0, "t", "test"))])
    (record,) = read_records(store, kind="request")
    assert record["status"] == "ok" and record["method"] == "normprune" and record["params"] == {"power": 3.0}
    assert record["visual_tokens_after"] == record["visual_tokens_before"] // 2
