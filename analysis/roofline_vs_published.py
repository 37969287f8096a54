"""How far below published measurements do the device models land? Predicted vs papers' latency numbers.

Each row below is a latency (or a speedup) a paper measured for a stated setup — model, frames, tokens,
GPU, method and budget. The script prices the same setup with `vidcost.predict.predict` on the table
device (`vidcost.devices.DEVICES`: vendor peak FLOP/s and bandwidth; SMs and the kernel-level efficiencies
published for that GPU, none of them set from these rows) with the per-operator model, and at datasheet
peak (`--roofline peak`), and prints
measured, predicted and the error (predicted / measured − 1), and, where a paper gives the vanilla and the
pruned number of one setup, the measured beside the predicted speedup.

What it shows: a roofline at peak is a lower bound on latency, so the errors are negative — the papers'
kernels reach a fraction of peak, smaller the fewer tokens a GEMM has (pruned rows miss by more than
vanilla rows, and predicted speedups exceed measured ones). LLM-Viewer, the roofline tool of Yuan et al.,
"LLM Inference Unveiled: Survey and Roofline Model Insights" (arXiv:2402.16363), reports the same
direction for LLaMA-7B prefill on an A100: −57 % at 128 tokens, −16 % at 2048. A roofline prices no
selection step (a method's own scoring, clustering or merging) and no framework overhead, so a pruned
row's measured time holds work the prediction does not; `--device-spec local` or a fitted latency model
closes part of the gap.

Sources (values transcribed as printed; where a source is secondary or a value derived, the row says so):

* FastV — Chen et al., "An Image is Worth 1/2 Tokens After Layer 2" (ECCV 2024, arXiv:2403.06764): the
  official repository's README (pkunlp-icler/FastV), "Latency Experiment Reproduction", A-OKVQA, "latency /
  first output token (A100 80G)": LLaVA-1.5-7B vanilla 0.138 s; LLaVA-1.5-13B vanilla 0.203 s, FastV K=2
  R=25 % / 50 % / 75 % 0.181 / 0.155 / 0.124 s. 576 visual tokens (one 336 px image); the prompt length is
  not stated (64 text tokens assumed). LLaVA-1.5 has no vidcost preset: its Vicuna (LLaMA) decoder is
  priced from a plain config.json the script writes (dimensions of the Vicuna-v1.5 / Llama-2 configs); the
  CLIP ViT-L/336 tower is not priced (≈0.35 TFLOP, about 1 ms at the A100's peak).
* FastVID — Shen et al., "FastVID: Dynamic Density Pruning for Fast Video LLMs" (NeurIPS 2025,
  arXiv:2503.11187), the efficiency comparison ("Efficiency Comparison", p. 8 per the authors' README), read
  through a paper note (the stored arXiv page is cut before it): LLaVA-OneVision-7B, 32 frames (6,272 visual
  tokens), prefilling time vanilla 476.3 ms, PruneVID* at 10.1 % of the tokens 101.5 ms, FastVID at 9.7 %
  67.2 ms (the abstract's 7.1×). The GPU is not named in what was read: priced on the A100 and marked
  "assumed"; absolute errors of such rows are left out of the summary, their speedups kept. FastVID is not
  a vidcost method and PruneVID* is the authors' variant, so both are priced as their kept token count
  (a constant schedule before the LLM).
* EarlyTom — Wang et al., "EarlyTom: Early Token Compression Completes Fast Video Understanding" (CVPR
  2026, arXiv:2605.30010), Figure 3 (TTFT profile), single NVIDIA A100, LLaVA-OneVision-7B vanilla: vision
  encoding 323 ms = 36.3 % of TTFT (so TTFT ≈ 890 ms, derived), as quoted by two paper digests. 32 frames
  assumed (LLaVA-OneVision's evaluation default; the figure's frame count was not read).
* SimpleCluster — Zhang, Zeng, Jin, Liu, Qian & Kan, "Rethinking Visual Token Compression for Video Large
  Language Models: A Simple yet Strong Baseline" (code github.com/xiaozhang79/SimpleCluster; read in a
  full-text conversion of the paper, its arXiv id not in what was read), §4.5 and Table 6: "All experiments
  are conducted on a single NVIDIA A800 GPU using fixed video-prompt pairs ... TTFT averaged over 10 runs";
  LLaVA-OneVision-7B (32 frames × 196 tokens, App. D.2) at 10 % retention: TTFT 943.3 ms vanilla, AOT
  696.5 ms, SimpleCluster 514.1 ms. Both methods' own clustering is not in vidcost: priced as their kept
  token count, so the rows miss their selection time.
* InfoMerge — Liu, Gan et al., "InfoMerge: Information-aware Token Compression for Efficient Video Large
  Language Models" (a full-text conversion; arXiv id not read), §4.1 "All experiments are conducted on one
  NVIDIA V100 GPU", 32 frames for LLaVA-OneVision-7B; Table 3 "LLM-side latency comparison. Prefill time
  measures LLM decoder latency until the first generated token": 1505.7 ms vanilla, 355.4 / 225.6 / 121.1 ms at
  retention 15 / 10 / 5 %. Priced in float16 (a V100 has no BF16) on the SXM2 entry (the form factor is not
  stated).
* MMG-Vid — Ma et al., arXiv:2508.21044, abstract: LLaVA-OneVision-7B, 75 % of the visual tokens removed,
  prefilling stage 3.9× faster. Frames and GPU not in the abstract: 32 frames on an A100 assumed; a
  speedup only.

Excluded, and why:

* HoliTom (arXiv:2505.21334): TTFT 2.28× and decoding throughput 1.32× on LLaVA-OneVision-7B (abstract,
  project-page figure) — the token budget of the timed run and the GPU are not in what could be read.
* EarlyTom Figure 3, HoliTom and VisionZip bars (vision encoding 55.8 % / 68.4 % of TTFT) — their
  retention ratios are not stated with the figure; EarlyTom's own 2.65× is TTFT with compression inside the
  vision tower, which vidcost does not price.
* PruneVid (arXiv:2412.16117, "up to 1.55× speedup"), DyCoke (arXiv:2411.15024, "1.5× inference speedup"),
  FrameFusion (arXiv:2501.01986, "3.4–4.4× LLM speedups, 1.6–1.9× end-to-end"): abstract claims over
  several models or including decoding, with no single setup to price.
* FastV README 4-bit rows (quantised weights; vidcost prices 16-bit); SwiftVLM (LLaVA-1.5-7B, FastV /
  SparseVLM prefill 67.3 → 34.7 / 32.8 ms at 192 / 128 tokens, its Table 2) — no GPU named; HieraVid
  (arXiv:2604.01881) names its GPU (A800-PCIe-80GB) but reports FLOPs only.

    python analysis/roofline_vs_published.py [--device-spec NAME] [--json]
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TOKENS = "tokens"  # a paper's kept-token count, priced as a constant schedule (its method is not in vidcost)
VANILLA = "vanilla"

FASTV = "FastV (Chen et al., arXiv:2403.06764)"
FASTVID = "FastVID (Shen et al., arXiv:2503.11187)"
EARLYTOM = "EarlyTom (Wang et al., arXiv:2605.30010)"
MMGVID = "MMG-Vid (Ma et al., arXiv:2508.21044)"
SIMPLECLUSTER = "SimpleCluster (Zhang et al.)"
INFOMERGE = "InfoMerge (Liu et al.)"

# Decoders without a vidcost preset, priced as plain LLMs (Hugging Face config.json fields; the Llama-2 /
# Vicuna-v1.5 configs LLaVA-1.5 builds on).
PLAIN_LLMS: dict[str, dict[str, Any]] = {
    "llava-1.5-7b": dict(model_type="llama", hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=32, vocab_size=32000, hidden_act="silu"),
    "llava-1.5-13b": dict(model_type="llama", hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                          num_attention_heads=40, num_key_value_heads=40, vocab_size=32000, hidden_act="silu"),
}


@dataclass(frozen=True)
class PublishedLatency:
    """One latency or speedup a paper measured, with the setup that prices it.

    Attributes:
        source: the paper, with its arXiv id.
        where: table, figure or section the value comes from.
        gpu: vidcost device-spec name of the GPU measured on.
        gpu_stated: False when the source read does not name the GPU (`gpu` is then an assumption).
        model: vidcost preset, or a key of `PLAIN_LLMS`.
        frames: frames per video (1 for an image).
        tokens_per_frame: visual tokens per frame, None for the preset's.
        text_tokens: text tokens, None for the preset's.
        label: the method as the paper names it.
        method: vidcost method name, `TOKENS` for a kept-token count, or "vanilla".
        budget: kept fraction of the visual tokens (1.0 for vanilla).
        metric: what was measured — "llm_prefill_ms", "ttft_ms", "vision_ms" (milliseconds), or
            "llm_prefill_speedup" (×, against the paper's vanilla).
        measured: the value, in the metric's unit.
        group: rows of one setup share it; the group's vanilla row gives the measured speedup of the others.
        dtype: weights and activations, as the paper ran them.
        params: method parameters (name, value).
        note: provenance and assumptions.
        attention: the attention implementation the paper's code ran ("eager" where it reads attention weights
            through `output_attentions`, as FastV's does).
        vision_attention: the vision tower's ("eager" for LLaVA-NeXT's own SigLIP, whose `SigLipAttention` in
            llava/model/multimodal_encoder/siglip_encoder.py is matmul, softmax in float32, matmul).
    """

    source: str
    where: str
    gpu: str
    gpu_stated: bool
    model: str
    frames: int
    tokens_per_frame: int | None
    text_tokens: int | None
    label: str
    method: str
    budget: float
    metric: str
    measured: float
    group: str
    dtype: str = "bfloat16"
    params: tuple[tuple[str, Any], ...] = ()
    note: str = ""
    attention: str = "sdpa"
    vision_attention: str = "sdpa"

    def __str__(self) -> str:
        return f"{self.source} {self.where}: {self.model} {self.label} @ {self.budget:g} {self.metric} {self.measured:g}"


def _fastv_readme(label: str, model: str, budget: float, seconds: float, group: str) -> PublishedLatency:
    method = VANILLA if budget == 1.0 else "fastv"
    return PublishedLatency(
        FASTV, "README, latency table (A-OKVQA)", "a100", True, model, 1, 576, 64, label, method, budget,
        "ttft_ms", seconds * 1000, group, dtype="float16", params=(("layer", 2),) if method == "fastv" else (),
        note="latency / first output token; prompt length not stated (64 text tokens assumed); CLIP not priced",
        attention="eager")  # the repository's LlamaAttention: matmul, softmax, matmul (modeling_llama.py)


def _fastvid(label: str, method: str, budget: float, ms: float) -> PublishedLatency:
    return PublishedLatency(
        FASTVID, "Efficiency Comparison (p. 8)", "a100", False, "llava-onevision-7b", 32, None, None, label, method,
        budget, "llm_prefill_ms", ms, "fastvid-ov7b",
        note="read via a paper note; GPU not named there; 'prefilling time' (selection time inside it unknown)")


def _simplecluster(label: str, method: str, budget: float, ms: float) -> PublishedLatency:
    return PublishedLatency(
        SIMPLECLUSTER, "§4.5, Table 6", "a800", True, "llava-onevision-7b", 32, None, None, label, method, budget,
        "ttft_ms", ms, "simplecluster-ov7b", vision_attention="eager",
        note="single A800, fixed video-prompt pairs, TTFT averaged over 10 runs; 32 frames x 196 tokens; "
             "10 % retention before the LLM; the methods' own clustering not priced; dtype not stated; "
             "LMMs-Eval's llava_onevision runs LLaVA-NeXT's code (its SigLIP eager)")


def _infomerge(label: str, method: str, budget: float, ms: float) -> PublishedLatency:
    return PublishedLatency(
        INFOMERGE, "Table 3 (LLM-side latency)", "v100-sxm", True, "llava-onevision-7b", 32, None, None, label,
        method, budget, "llm_prefill_ms", ms, "infomerge-ov7b", dtype="float16",
        note="one V100 (form factor not stated: SXM2 priced; no BF16 on V100: float16); 'LLM decoder latency "
             "until the first generated token', vision encoder excluded; retention r before the LLM")


ROWS: tuple[PublishedLatency, ...] = (
    _fastv_readme("vanilla", "llava-1.5-7b", 1.0, 0.138, "fastv-7b"),
    _fastv_readme("vanilla", "llava-1.5-13b", 1.0, 0.203, "fastv-13b"),
    _fastv_readme("FastV K=2 R=25%", "llava-1.5-13b", 0.75, 0.181, "fastv-13b"),
    _fastv_readme("FastV K=2 R=50%", "llava-1.5-13b", 0.50, 0.155, "fastv-13b"),
    _fastv_readme("FastV K=2 R=75%", "llava-1.5-13b", 0.25, 0.124, "fastv-13b"),
    _fastvid("vanilla", VANILLA, 1.0, 476.3),
    _fastvid("PruneVID*", TOKENS, 0.101, 101.5),
    _fastvid("FastVID", TOKENS, 0.097, 67.2),
    PublishedLatency(
        EARLYTOM, "Figure 3 (TTFT profile)", "a100", True, "llava-onevision-7b", 32, None, None, "vanilla", VANILLA,
        1.0, "vision_ms", 323.0, "earlytom-ov7b", vision_attention="eager",
        note="via paper digests; vision encoding stage; 32 frames assumed; LLaVA-NeXT's SigLIP (eager)"),
    PublishedLatency(
        EARLYTOM, "Figure 3 (TTFT profile)", "a100", True, "llava-onevision-7b", 32, None, None, "vanilla", VANILLA,
        1.0, "ttft_ms", 323.0 / 0.363, "earlytom-ov7b", vision_attention="eager",
        note="derived: vision encoding 323 ms is 36.3 % of TTFT; 32 frames assumed; LLaVA-NeXT's SigLIP (eager)"),
    _simplecluster("vanilla", VANILLA, 1.0, 943.3),
    _simplecluster("SimpleCluster 10%", TOKENS, 0.10, 514.1),
    _simplecluster("AOT 10%", TOKENS, 0.10, 696.5),
    _infomerge("vanilla", VANILLA, 1.0, 1505.7),
    _infomerge("InfoMerge r=15%", TOKENS, 0.15, 355.4),
    _infomerge("InfoMerge r=10%", TOKENS, 0.10, 225.6),
    _infomerge("InfoMerge r=5%", TOKENS, 0.05, 121.1),
    PublishedLatency(
        MMGVID, "Abstract", "a100", False, "llava-onevision-7b", 32, None, None, "MMG-Vid", "mmgvid", 0.25,
        "llm_prefill_speedup", 3.9, "mmgvid-ov7b",
        note="speedup only; frames and GPU not in the abstract (32 frames, A100 assumed)"),
)

MS_METRICS = ("llm_prefill_ms", "ttft_ms", "vision_ms")
# The two device models, each priced for every row: the per-operator model and the datasheet roofline.
MODELS = {"per-operator model": None, "roofline at datasheet peak": "peak"}
SPEEDUP_METRICS = ("llm_prefill_speedup",)


def main(argv: list[str] | None = None) -> int:
    from vidcost.cli.args import ArgumentParser

    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device-spec", help="price every row on this device instead of the paper's GPU "
                                              "(a table name, a device JSON, or 'local')")
    from vidcost.operators import ATTENTION_IMPLEMENTATIONS

    parser.add_argument("--attention", choices=ATTENTION_IMPLEMENTATIONS,
                        help="price every row with this attention implementation (default: each row's)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row and model on stdout")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="vidcost-plain-llm-") as folder:
        configs = _write_plain_configs(Path(folder))
        by_model = {name: [_compare(row, configs, args.device_spec, roofline, args.attention) for row in ROWS]
                    for name, roofline in MODELS.items()}
    for results in by_model.values():
        _attach_measured_speedups(results)
    if args.json:
        for name, results in by_model.items():
            for result in results:
                print(json.dumps({"model_kind": name, **result}))
    else:
        for name, results in by_model.items():
            print(f"\n== {name} ==")
            _print_table(results)
    return 0


def _write_plain_configs(folder: Path) -> dict[str, str]:
    """config.json files for `PLAIN_LLMS`, one folder each (the folder names the spec)."""
    paths = {}
    for name, config in PLAIN_LLMS.items():
        (folder / name).mkdir()
        path = folder / name / "config.json"
        path.write_text(json.dumps(config))
        paths[name] = str(path)
    return paths


def _compare(row: PublishedLatency, configs: dict[str, str], device_spec: str | None, roofline: str | None,
             attention: str | None) -> dict[str, Any]:
    """The row, its prediction in the row's metric, and the error."""
    prediction = _predict(row, configs.get(row.model, row.model), device_spec or row.gpu, roofline,
                          attention or row.attention, row.vision_attention)
    predicted = _metric(prediction, row.metric)
    result = asdict(row)
    result.update(
        device=device_spec or row.gpu, predicted=predicted, error=predicted / row.measured - 1,
        predicted_llm_prefill_speedup=float(prediction.llm_prefill_speedup),
        predicted_ttft_speedup=float(prediction.speedup),
        measured_speedup=row.measured if row.metric in SPEEDUP_METRICS else None,
    )
    return result


def _predict(row: PublishedLatency, model: str, device_spec: str, roofline: str | None, attention: str,
             vision_attention: str = "sdpa") -> Any:
    """`vidcost.predict.predict` on the device for the row's setup (the per-operator model, or the roofline at
    peak)."""
    from vidcost.predict import predict

    kwargs: dict[str, Any] = dict(frames=row.frames, device_spec=device_spec, dtype=row.dtype, roofline=roofline,
                                  attention=attention, vision_attention=vision_attention)
    if row.tokens_per_frame is not None:
        kwargs["tokens_per_frame"] = row.tokens_per_frame
    if row.text_tokens is not None:
        kwargs["text_tokens"] = row.text_tokens
    if row.method == TOKENS:
        kwargs["schedule"] = _kept_tokens_schedule(row, model)
    else:
        kwargs.update(method=row.method, budget=row.budget)
        if row.params:
            kwargs["params"] = dict(row.params)
    return predict(model, **kwargs)


def _kept_tokens_schedule(row: PublishedLatency, model: str) -> Any:
    """A paper's kept-token count before the LLM as a schedule: the same count at every layer."""
    from vidcost.schedule import Schedule
    from vidcost.spec import load_spec

    spec = load_spec(model, frames=row.frames, tokens_per_frame=row.tokens_per_frame, text_tokens=row.text_tokens)
    kept = round(row.budget * spec.num_visual_tokens)
    return Schedule.constant(spec.num_layers, kept, spec.text_tokens, initial_visual_tokens=spec.num_visual_tokens)


def _metric(prediction: Any, metric: str) -> float:
    """The prediction's value in a row's metric."""
    if metric == "vision_ms":
        return float(prediction.stages_ms["vision"])
    if metric in ("llm_prefill_ms", "ttft_ms", "llm_prefill_speedup"):
        return float(getattr(prediction, metric))
    raise ValueError(f"row metric '{metric}' is not one of {MS_METRICS + SPEEDUP_METRICS}")  # a bug in ROWS


def _attach_measured_speedups(results: list[dict[str, Any]]) -> None:
    """A pruned row whose group holds the vanilla row of its metric gets the measured speedup over it."""
    vanilla = {(r["group"], r["metric"]): r["measured"] for r in results
               if r["method"] == VANILLA and r["metric"] in MS_METRICS}
    for result in results:
        base = vanilla.get((result["group"], result["metric"]))
        if result["method"] != VANILLA and base is not None:
            result["measured_speedup"] = base / result["measured"]


def _predicted_speedup(result: dict[str, Any]) -> float:
    return result["predicted_ttft_speedup"] if result["metric"] == "ttft_ms" else result["predicted_llm_prefill_speedup"]


def _print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'paper':<10} {'where':<30} {'GPU':<14} {'model':<19} {'frm':>4} {'method@budget':<22} "
              f"{'metric':<20} {'measured':>9} {'predicted':>9} {'error':>7}  speedup meas/pred")
    print(header)
    print("-" * len(header))
    for r in results:
        gpu = r["device"] + ("" if r["gpu_stated"] else " (assumed)")
        speedup = ""
        if r["measured_speedup"] is not None:
            speedup = f"{r['measured_speedup']:.2f}x / {_predicted_speedup(r):.2f}x"
        unit = "x" if r["metric"] in SPEEDUP_METRICS else ""
        print(f"{r['source'].split(' (')[0]:<10} {r['where'][:30]:<30} {gpu:<14} {r['model']:<19} {r['frames']:>4} "
              f"{(r['label'] + ' @ ' + format(r['budget'], 'g'))[:22]:<22} {r['metric']:<20} "
              f"{r['measured']:>8.1f}{unit or ' '}{r['predicted']:>8.1f}{unit or ' '} {r['error']:>+7.0%}  {speedup}")
    _print_summary(results)


def _print_summary(results: list[dict[str, Any]]) -> None:
    absolute = [r for r in results if r["metric"] in MS_METRICS and r["gpu_stated"]]
    ratios = [_predicted_speedup(r) / r["measured_speedup"] for r in results if r["measured_speedup"]]
    if absolute:
        errors = [r["error"] for r in absolute]
        print(f"\nabsolute latency, GPU stated ({len(absolute)} rows): median error {statistics.median(errors):+.0%}, "
              f"range {min(errors):+.0%} … {max(errors):+.0%}  (negative: below the paper's measurement)")
    if ratios:
        print(f"speedups ({len(ratios)} rows): predicted / measured median {statistics.median(ratios):.2f} "
              f"(range {min(ratios):.2f} … {max(ratios):.2f})")
    print("Notes: a roofline at datasheet peak is a lower bound; it prices no selection step (scoring, clustering,\n"
          "merging) and no framework overhead, so pruned rows miss by more. LLM-Viewer (arXiv:2402.16363) reports\n"
          "−57 % at 128 tokens and −16 % at 2048 for LLaMA-7B prefill on an A100. Rows marked 'assumed' name a GPU\n"
          "the source does not; their absolute errors are left out of the summary. Sources: see the docstring.")


if __name__ == "__main__":
    from vidcost.cli.args import run_script

    run_script(main)
