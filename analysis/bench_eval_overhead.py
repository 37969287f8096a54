"""How much of a request's time does the `vidcost` lmms-eval backend spend outside the model?

Goal: ≤ 2 % of the request time on the tiny model. The backend's own work per request is everything a
plain "prefill + greedy decode" would not do: the stop checks (decoding the tokens so far against `until`),
building the cost record, appending it to the store, looking the request up among the stored answers,
lmms-eval's cache hook and the progress bar. Measured in one run, with lmms-eval's own `Instance` requests
going through `VidcostLMM.generate_until` as the evaluator sends them:

    overhead = wall time of generate_until − Σ request_ms + Σ bookkeeping_ms

where `request_ms` is each request from its video's decode to its answer (as stored) and `bookkeeping_ms`
the backend's work inside it. One request is answered first (and left out) so that the model's one-off
warm-up is not counted. Exits 1 when the goal is missed.

    python analysis/bench_eval_overhead.py [--requests 12] [--frames 8] [--method fastv --budget 0.25]

Needs the eval extra (README).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

GOAL = 0.02
VIDEOS = Path(__file__).resolve().parents[1] / "tests" / "data" / "vidcost_task" / "videos"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12, help="requests timed (default 12)")
    parser.add_argument("--frames", type=int, default=8, help="frames per video (default 8)")
    parser.add_argument("--method", default="fastv", help="pruning method (default fastv)")
    parser.add_argument("--budget", type=float, default=0.25, help="kept fraction (default 0.25)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="tokens per answer (default 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.requests < 1:
        parser.error(f"--requests {args.requests} must be at least 1")
    try:
        from lmms_eval.api.instance import Instance
    except ImportError as err:
        print(f"bench_eval_overhead: needs the eval extra ({err}); see the README", file=sys.stderr)
        return 2
    import torch

    from vidcost.eval.backend import VidcostLMM
    from vidcost.store import read_records

    torch.set_num_threads(args.threads)
    videos = sorted(str(p) for p in VIDEOS.glob("*.mp4"))
    docs = [{"video": videos[i % len(videos)]} for i in range(args.requests + 1)]
    gen_kwargs = {"max_new_tokens": args.max_new_tokens, "until": ["\n\n"]}

    def request(doc_id: int) -> Instance:
        arguments = ("What colour is the moving square?\nA. red\nB. green\nC. blue\nD. yellow", dict(gen_kwargs),
                     lambda doc: [doc["video"]], doc_id, "bench", "test")
        return Instance("generate_until", arguments, idx=0, metadata={"task": "bench", "doc_id": doc_id, "repeats": 1})

    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "eval.jsonl"
        lm = VidcostLMM(model="tiny", method=args.method, budget=args.budget, frames=args.frames, store=str(store))
        lm.task_dict = {"bench": {"test": docs}}
        lm.generate_until([request(0)])  # the warm-up request, left out
        started = time.perf_counter()
        lm.generate_until([request(i) for i in range(1, args.requests + 1)])
        wall_ms = (time.perf_counter() - started) * 1000.0
        records = [r for r in read_records(store, kind="request") if r["doc_id"] >= 1]
    if len(records) != args.requests or any(r["status"] != "ok" for r in records):
        print("bench_eval_overhead: a request failed: " + "; ".join(str(r.get("error")) for r in records),
              file=sys.stderr)
        return 1
    inside = sum(r["bookkeeping_ms"] for r in records)
    outside = wall_ms - sum(r["request_ms"] for r in records)
    overhead = inside + outside
    print(f"{args.requests} requests, tiny, {args.method} @ {args.budget:g}, {args.frames} frames, "
          f"{args.max_new_tokens} new tokens at most, {args.threads} torch thread(s)")
    print(f"  request time (median)          {statistics.median(r['request_ms'] for r in records):9.2f} ms")
    print(f"  TTFT (median)                  {statistics.median(r['ttft_ms'] for r in records):9.2f} ms")
    print(f"  backend inside a request       {inside / args.requests:9.3f} ms per request (stop checks, record)")
    print(f"  backend between requests       {outside / args.requests:9.3f} ms per request (store append, loop)")
    ratio = overhead / wall_ms
    print(f"  overhead / request time        {100 * ratio:9.3f} %   (goal ≤ {100 * GOAL:g} %)")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
