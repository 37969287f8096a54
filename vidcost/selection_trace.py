"""A pre-LLM selection priced kernel by kernel: the method's own `select_visual`, traced (issue #19).

A selection's kernels are not a fixed list: DivPrune's greedy pass launches a few kernels per kept token,
MMG-Vid's loops over segments, PruneVid's clustering over its groups. So instead of a hand-written list,
`selection_operators` runs the registered method's real `select_visual` on the CPU, on random features of the
configuration's shape ([T', P, D]: its frames, tokens per frame and the LLM width) at the kept count its plan
gives, records every op it dispatches (a `TorchDispatchMode`, as tests/latency/test_operators.py records the
decoder layers), and hands back the kernels (`vidcost.kernels`) with their shapes and bytes for
`OperatorModel` to price on any device.

Two things keep it cheap and honest:

* the width: the trace runs at `PROXY_WIDTH` features per token (a prime no token count or frame count of a
  video shares), and every tensor dimension of that size is counted at the real width D — the bytes of
  each kernel, a GEMM's shape — so the selection's control flow is the one at the real token counts while
  its arithmetic costs what it costs at the real width;
* host synchronisations: an op that hands a value back to Python (`.item()`, `nonzero`, a boolean mask's
  count) stops the host from running ahead of the GPU, so the trace is cut there into segments, each priced
  as the longer of its device and host time (`OperatorModel.layered_seconds`).

A trace costs what the method costs on this CPU (HieraVid's DPP at 64 frames: ~20 s), so each is kept on disk
(`cache_folder`: $VIDCOST_CACHE, else ~/.cache/vidcost) under a key of its inputs, the method's source file,
vidcost's and torch's versions: the next prediction of that configuration reads it back. A cache file that
cannot be read is reported in one warning and traced again.

What it does not know: a data-dependent method (MMG-Vid's segments, PruneVid's clusters, FrameFusion's
threshold) runs the path that random features take, not a real video's; the method's default parameters
stand in for the ones profiled (a `Configuration` does not carry them). In-LLM stages (FastV, PyramidDrop,
FrameFusion's merges, DyCoke's decode stage) are not traced: they need a layer's attention, and are priced as
none. Torch is imported only here, only when a pre-LLM selection is priced.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from vidcost.kernels import GEMM, MEMORY, Kernel, OperatorList

CACHE_ENV = "VIDCOST_CACHE"
TRACE_VERSION = 1  # bump when what a trace records changes
SLOW_TRACE_SECONDS = 2.0

PROXY_WIDTH = 61
# Ops that change a tensor's metadata only (no kernel): dispatched, a host cost, no device time.
VIEW_OPS = frozenset({"view", "t", "transpose", "unsqueeze", "slice", "expand", "_unsafe_view", "select",
                      "as_strided", "permute", "squeeze", "alias", "detach", "split", "unbind", "reshape",
                      "_reshape_alias", "lift_fresh", "split_with_sizes", "chunk", "narrow", "unfold"})
# Ops whose result the host reads (a device-to-host copy): the host waits for the device there.
SYNC_OPS = frozenset({"_local_scalar_dense", "nonzero", "masked_select", "equal", "is_nonzero",
                      "unique_consecutive", "_unique2", "unique_dim", "repeat_interleave"})
GEMM_OPS = frozenset({"mm", "addmm", "bmm", "baddbmm"})


def selection_operators(config: Any) -> tuple[OperatorList, ...]:
    """The pre-LLM selection of `config` (a `vidcost.latency.Configuration`) as segments of kernels between host
    synchronisations; () when it has none to price (vanilla, a schedule, an in-LLM method, a plan that keeps
    every token before the LLM, a name vidcost does not know)."""
    from vidcost.methods import method_class, method_names

    spec, schedule = config.spec, config.schedule
    view = spec.method_view()
    total = view.frames * view.tokens_per_frame
    kept = schedule.visual_tokens[0] if schedule.visual_tokens else total
    if config.method not in method_names() or kept >= total:
        return ()
    if not method_class(config.method).selects_before_llm():
        return ()
    return traced_selection(config.method, view.frames, view.tokens_per_frame, spec.hidden_size, kept,
                            max(1, spec.text_tokens), config.dtype)


def prices_selection(config: Any) -> bool:
    """Whether `selection_operators` prices something for `config`."""
    return bool(selection_operators(config))


@functools.lru_cache(maxsize=256)
def traced_selection(method: str, frames: int, per_frame: int, width: int, kept: int, query_tokens: int,
                     dtype: str) -> tuple[OperatorList, ...]:
    """`method`'s `select_visual` on random [frames, per_frame, PROXY_WIDTH] features (a seeded generator) at
    the budget kept / frames·per_frame, its kernels counted at `width` (see the module docstring); read from
    the disk cache when this configuration was traced before."""
    from importlib.metadata import version

    key = _cache_key(method, frames, per_frame, width, kept, query_tokens, dtype, version("torch"))
    path = cache_folder() / "selection-traces" / f"{key}.json"
    if path.is_file():
        try:
            return _segments_from(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(f"selection trace cache {path} cannot be read ({err}); tracing {method} again",
                          stacklevel=2)
    import torch

    started = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(frames, per_frame, PROXY_WIDTH, generator=generator).to(getattr(torch, dtype))
    query = torch.randn(query_tokens, PROXY_WIDTH, generator=generator).to(features.dtype)
    segments = record_selection(method, features, query, kept / (frames * per_frame), width)
    took = time.perf_counter() - started
    if took > SLOW_TRACE_SECONDS:  # say why this prediction was slow, and that the next one will not be
        print(f"vidcost: traced {method}'s selection of {kept} of {frames}×{per_frame} tokens in {took:.0f} s "
              f"(kept in {path.parent} for the next prediction)", file=sys.stderr)
    try:
        from vidcost.store import write_json_atomic

        write_json_atomic(path, _segments_to(segments))
    except OSError as err:  # an unwritable cache costs the next run a trace, nothing else
        warnings.warn(f"selection trace cache {path.parent} is not writable ({err}); set {CACHE_ENV}",
                      stacklevel=2)
    return segments


def cache_folder() -> Path:
    """Where vidcost keeps what it can recompute: $VIDCOST_CACHE, else ~/.cache/vidcost."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "vidcost")


def _cache_key(method: str, *inputs: Any) -> str:
    """A digest of the trace's inputs, the method's source file and the versions that shape what it records."""
    import inspect

    from vidcost import __version__
    from vidcost.methods import method_class

    source = inspect.getsourcefile(method_class(method)) or ""
    code = Path(source).read_bytes() if source and Path(source).is_file() else b""
    text = json.dumps([TRACE_VERSION, __version__, method, PROXY_WIDTH, *inputs])
    return hashlib.sha256(text.encode() + hashlib.sha256(code).digest()).hexdigest()[:32]


def _segments_to(segments: tuple[OperatorList, ...]) -> dict[str, Any]:
    """The cache form: each segment's distinct kernels with their counts (a price does not depend on order)."""
    from collections import Counter

    def counted(segment: OperatorList) -> list[list[Any]]:
        counts = Counter((k.name, k.kind, k.flops, k.bytes, k.shape, k.batch) for k in segment.kernels)
        return [[count, name, kind, flops, moved, list(shape), batch]
                for (name, kind, flops, moved, shape, batch), count in counts.items()]

    return {"version": TRACE_VERSION,
            "segments": [{"host_ops": segment.host_ops, "kernels": counted(segment)} for segment in segments]}


def _segments_from(data: dict[str, Any]) -> tuple[OperatorList, ...]:
    if data.get("version") != TRACE_VERSION:
        raise ValueError(f"trace version {data.get('version')!r}, not {TRACE_VERSION}")
    segments = []
    for segment in data["segments"]:
        kernels: list[Kernel] = []
        for count, name, kind, flops, moved, shape, batch in segment["kernels"]:
            kernel = Kernel(str(name), str(kind), float(flops), float(moved), tuple(int(d) for d in shape),
                            int(batch))
            kernels += [kernel] * int(count)
        segments.append(OperatorList(tuple(kernels), int(segment["host_ops"])))
    return tuple(segments)


def record_selection(method: str, features: Any, query: Any, budget: float, width: int
                     ) -> tuple[OperatorList, ...]:
    """The kernels `method`'s `select_visual(features, budget, query)` dispatches, each dimension of
    `features`' width counted as `width` (the identity when they are equal), cut into segments after every
    host synchronisation."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from vidcost.methods import get_method

    traced_width = int(features.shape[-1])
    scale = width / traced_width
    segments: list[OperatorList] = []
    current: list[Kernel] = []
    views = 0

    def elements(tensor: Any) -> float:
        count = float(tensor.numel())
        return count * scale if traced_width in tensor.shape else count

    def tensors_in(values: Any) -> list[Any]:
        found = []
        for value in values:
            if isinstance(value, torch.Tensor):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                found += [v for v in value if isinstance(v, torch.Tensor)]
        return found

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            nonlocal current, views
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            if name in VIEW_OPS:
                views += 1
                return out
            touched = tensors_in(args) + tensors_in(out if isinstance(out, (list, tuple)) else (out,))
            moved = sum(elements(t) * t.element_size() for t in touched)
            if name in GEMM_OPS:
                a, b = tensors_in(args)[-2:]
                dims = (a.shape[-2], b.shape[-1], a.shape[-1])
                m, n, k = (width if d == traced_width else int(d) for d in dims)
                batch = int(a.shape[0]) if a.dim() == 3 else 1
                current.append(Kernel(name, GEMM, 2.0 * batch * m * n * k, moved, (m, n, k), batch))
            else:
                current.append(Kernel(name, MEMORY, 0.0, moved))
            if name in SYNC_OPS:
                segments.append(OperatorList(tuple(current), views))
                current, views = [], 0
            return out

    chosen = get_method(method)
    with torch.no_grad(), Recorder():
        chosen.select_visual(features, budget, query=query, seed=0)
    if current or views:
        segments.append(OperatorList(tuple(current), views))
    return tuple(segments)
