#!/usr/bin/env bash
# vidcost GPU self-check — run it once on a machine with one CUDA GPU, after the README's install:
#
#     bash analysis/gpu_check.sh [SUMMARY.json]        (default: $OUT/gpu_check.json, else ./gpu_check.json)
#
# What it proves, on this GPU:
#   1. The `gpu` tests pass with VIDCOST_REQUIRE_GPU=1 (so none of them can skip): CUDA-event windows agree
#      with a synchronised wall clock over >= 50 ms of work (within 10 %), NVML finds the torch device by
#      its UUID, the energy counter moves over a block, the CUDA allocator probe sees allocations,
#      and a full profile runs on CUDA.
#   2. vidcost profiles real pruning on a 7B-class model end to end: mmgvid, fastv and prunevid at a 25 %
#      budget on shape-only llava-onevision-7b (random weights: cost does not depend on them), 32 frames,
#      bfloat16, 16 greedy decode steps, each beside vanilla in the same run — TTFT, LLM-prefill and
#      decode speedups, the FLOPs speedup, KV-cache bytes, allocator peaks, energy per prefill.
# The summary JSON holds the test counts and, per method, the measured figures; the records go to
# $OUT/gpu_check_runs.jsonl. The script stops itself within 8 minutes (GNU timeout on each step).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-.}"
SUMMARY="${1:-$OUT_DIR/gpu_check.json}"
STORE="$OUT_DIR/gpu_check_runs.jsonl"
JUNIT="$OUT_DIR/gpu_check_tests.xml"
DEADLINE=$((SECONDS + 470))
mkdir -p "$(dirname "$SUMMARY")" "$OUT_DIR"
rm -f "$STORE"

echo "gpu_check: 1/2 gpu tests (VIDCOST_REQUIRE_GPU=1)" >&2
VIDCOST_REQUIRE_GPU=1 timeout 180 python -m pytest -q -m gpu -p no:cacheprovider --junitxml="$JUNIT" tests >&2
TESTS_STATUS=$?

echo "gpu_check: 2/2 profiles on shape-only llava-onevision-7b, 32 frames, bf16" >&2
LEFT=$((DEADLINE - SECONDS))
timeout "$LEFT" python - "$STORE" "$SUMMARY" "$JUNIT" "$TESTS_STATUS" <<'PY'
import json
import sys
import time
import xml.etree.ElementTree as ElementTree

store, summary_path, junit, tests_status = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
summary = {"tests": {"exit_status": tests_status}, "profiles": {}, "errors": []}
try:
    suite = ElementTree.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    summary["tests"].update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
except (OSError, ElementTree.ParseError, AttributeError) as err:
    summary["errors"].append(f"no test report: {err}")


def write() -> None:
    with open(summary_path, "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)


try:
    from vidcost.profiling import ProfileSession
    from vidcost.spec import load_spec

    start = time.perf_counter()
    session = ProfileSession(load_spec("llava-onevision-7b", frames=32), device="cuda", dtype="bfloat16",
                             progress=lambda m: print(f"gpu_check: {m}", file=sys.stderr, flush=True))
    summary["build_s"] = round(time.perf_counter() - start, 1)
    summary["environment"] = session.environment
    for method in ("mmgvid", "fastv", "prunevid"):
        started = time.perf_counter()
        comparison = session.measure(method, 0.25, repeats=5, warmup=2, decode_tokens=16, energy_blocks=2,
                                     store=store)
        row = comparison.to_dict()
        keep = ("ttft_ms", "vanilla_ttft_ms", "speedup", "llm_prefill_ms", "vanilla_llm_prefill_ms",
                "llm_prefill_speedup", "flops_speedup", "ttft_flops_speedup", "decode_ms_per_token",
                "vanilla_decode_ms_per_token", "decode_speedup", "kv_cache_bytes", "vanilla_kv_cache_bytes",
                "peak_increase_bytes", "vanilla_peak_increase_bytes", "energy_j", "vanilla_energy_j", "power_w",
                "power_source", "stages_ms", "vanilla_stages_ms", "achieved_tflops", "vanilla_achieved_tflops")
        summary["profiles"][method] = {k: row.get(k) for k in keep}
        summary["profiles"][method]["executed_visual_tokens"] = row["executed_schedule"]["visual_tokens"]
        summary["profiles"][method]["wall_s"] = round(time.perf_counter() - started, 1)
        write()  # a later failure keeps what was measured
except Exception as err:  # noqa: BLE001 - the summary must say what failed, whatever it was
    summary["errors"].append(f"{type(err).__name__}: {err}")
write()
print(json.dumps(summary, indent=2, sort_keys=True))
sys.exit(1 if summary["errors"] or tests_status else 0)
PY
STATUS=$?
if [ "$STATUS" -eq 124 ]; then echo "gpu_check: stopped at the 8-minute limit; see $SUMMARY" >&2; fi
echo "gpu_check: summary in $SUMMARY" >&2
exit "$STATUS"
