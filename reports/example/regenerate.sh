#!/bin/bash
# Regenerate this example report: real CPU measurements of the `tiny` preset (shape-only random weights, no
# download) into runs.jsonl beside this script, then the report from them and the published CSVs.
# Run from the repository root on a quiet machine:  bash reports/example/regenerate.sh
set -euo pipefail
STORE=reports/example/runs.jsonl
rm -f "$STORE"
for cfg in "mmgvid 0.25 16" "fastv 0.3 16" "divprune 0.25 16" "framefusion 0.3 16" "mmgvid 0.25 8" "mmgvid 0.25 32"; do
  set -- $cfg
  python -m vidcost profile --model tiny --method "$1" --budget "$2" --frames "$3" --repeats 5 --store "$STORE"
done
# One realistic model too: LLaVA-OneVision-0.5B shape (Qwen2-0.5B + SigLIP-so400m), 8 frames.
python -m vidcost profile --model llava-onevision-0.5b --method mmgvid --budget 0.25 --frames 8 --repeats 3 --store "$STORE"
python -m vidcost report --out reports/example/ --store "$STORE" --title "vidcost example report (shape-only tiny and llava-onevision-0.5b on CPU)"
