"""StagedRuntime: a Video-LLM prefill run stage by stage, so a pruning method can act between stages.

vision tower → projector (LLaVA-OV pooling, Qwen-VL patch merger) → the method's pre-LLM selection →
decoder layers one at a time (before a layer where the plan drops visual tokens, the method's in-LLM
stage keeps or merges them) → final norm → LM head on the last position → first token → greedy decode
steps on the cache. One loop for every family; what differs (building, encoding the video to
`[T', P, D]`, the sequence layout and its position ids) is the family's (`vidcost.runtime.families`).

The prefill fills a transformers `DynamicCache`, as a deployment keeps it: each layer caches the keys and
values of the tokens that entered it (fewer after a prune; merged states for a merging method), and a
method whose plan trims earlier layers' caches (`Schedule.cached_visual_tokens`) has them trimmed at
its prune. Decode steps attend over that cache. How the kept tokens are numbered is the method's
declaration (`Method.position_rule`, following its official code): their original columns of the full
layout's RoPE ids, or M-RoPE's (t, h, w) rows (a gap where tokens were dropped), or — "compact", a pre-LLM
selection whose official code feeds a shorter sequence — 0…n′−1 with decoding from n′, or — "renumber"
(PyramidDrop) — 0…n_s−1 again after every in-LLM stage, each layer decoding after its own stage's length;
the causal mask follows the sequence order. Text tokens (and the video's separator rows, LLaVA-OV's
`image_newline`, see `vidcost.runtime.inputs`) are never dropped. Methods see the spec's `method_view()`:
T' "frames" (temporal patches for Qwen-VL) of P tokens.
With `vanilla`, or any method whose plan keeps everything, the logits equal the stock `model(...)`
forward, and decode steps equal the stock forward on its own cache.

Each stage runs inside `timer.window(name)`: the names are `STAGES`, `ttft` around them all, `decode`
per decode step, and `layer_NN` on request. A stage opens a window per contiguous piece of work, never
one per layer (unless asked): `llm_prefill` is split only where an in-LLM selection interrupts it.
`selection` covers every method call — the pre-LLM `select_visual` and each in-LLM stage, including the
query-attention rows the runtime computes for it and the trimming of caches — so the pruning step's own
cost is visible. Inside the timed windows the runtime never reads a device value on the host (its
checks of a method's indices run after the `ttft` window), so CUDA timing needs no synchronisation.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from vidcost.errors import ConfigError, ProfilingError
from vidcost.methods.base import DecodeContext, LayerContext, Method, SelectionResult
from vidcost.profiling.record import DECODE, STAGES, TTFT
from vidcost.runtime.attention import decode_attention, query_attention
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.runtime.inputs import PromptInputs
    from vidcost.runtime.model import LoadedModel

__all__ = ["DECODE", "STAGES", "TTFT", "PrefillResult", "StagedRuntime"]


@dataclass(frozen=True)
class PrefillResult:
    """What one staged prefill (and its decode steps) produced.

    Attributes:
        logits: [V] float32 logits of the last prompt position.
        first_token: argmax of `logits` (greedy first generated token).
        planned: the method's planned schedule.
        executed: visual tokens that actually entered each layer, and those each layer's cache holds
            after the prefill (`cached_visual_tokens`, when fewer).
        segments: the pre-LLM selection's segments, if it reported any.
        kv_cache_bytes: bytes of the keys and values the cache object held after the prefill.
        generated: the greedy tokens of the decode steps (the first token, then one per step).
        position_ids: the position ids of the sequence the last layer ran on — [1, N'] RoPE or
            [3, 1, N'] M-RoPE (t, h, w) — each token's column of the full layout's.
    """

    logits: "torch.Tensor"
    first_token: int
    planned: Schedule
    executed: Schedule
    segments: tuple[tuple[int, int], ...] = ()
    kv_cache_bytes: int = 0
    generated: tuple[int, ...] = ()
    position_ids: "torch.Tensor | None" = None

    def __str__(self) -> str:
        return f"PrefillResult(first token {self.first_token}, executed {self.executed})"


@dataclass
class _Sequence:
    """The LLM sequence during the decoder loop: [prefix | visual | separators + question]."""

    hidden: "torch.Tensor"  # [1, N, D]
    position_ids: "torch.Tensor"  # [1, N] RoPE positions, or [3, 1, N] M-RoPE (t, h, w)
    visual_positions: "torch.Tensor"  # [Nv] original flat index in T·P of each visual token
    prefix_len: int
    decode_start: int | None = None  # the first generated token's position (None: after the full layout)
    separator_rows: int = 1  # the video's rows after the visual tokens (LLaVA-OV's newline)
    rope: tuple["torch.Tensor", "torch.Tensor"] | None = None  # (cos, sin) [1, N, hd], cached
    question_rows: tuple[int, int] = (0, 0)  # the question itself among the rows after the separators
    segments: tuple[tuple[int, int], ...] = ()  # from the pre-LLM selection, for the in-LLM stages
    groups: "torch.Tensor | None" = None  # [Nv] group id of each visual token (SelectionResult.groups)
    state: Any = None  # the method's per-run state (data_dependent_counts methods)
    finished: bool = False  # the method said its in-LLM stages are over for this run

    @property
    def num_visual(self) -> int:
        return int(self.visual_positions.numel())

    @property
    def visual_slice(self) -> slice:
        return slice(self.prefix_len, self.prefix_len + self.num_visual)


@dataclass
class _Run:
    """Book-keeping of one prefill: the cache, what each layer cached, and checks deferred past the timing."""

    cache: Any
    on_gpu: bool
    entered: list["torch.Tensor"] = field(default_factory=list)  # visual positions each layer cached
    decode_starts: list[int | None] = field(default_factory=list)  # each layer's first decode position
    checks: list[Callable[[], None]] = field(default_factory=list)

    def check(self, check: Callable[[], None]) -> None:
        """Run a check of a method's indices: at once on the CPU, after the timed windows on a GPU.

        The check reads device values on the host; on a GPU that would synchronise inside the
        prefill. There, an index out of range shows first as torch's device-side assertion.
        """
        if self.on_gpu:
            self.checks.append(check)
        else:
            check()


class StagedRuntime:
    """Runs prefill (and decode) of a loaded Video-LLM with a pruning method plugged in.

    Args:
        loaded: the model (see `vidcost.runtime.model.build_model`); its spec's `architecture` names
            its family.
    """

    def __init__(self, loaded: "LoadedModel") -> None:
        from vidcost.runtime.families import get_family

        self.loaded = loaded
        self.model = loaded.model
        self.family = get_family(loaded.spec.architecture)
        self.lm = self.family.decoder(loaded.model)  # the Qwen2 text decoder of every family here
        self.config = loaded.model.config
        self._cache_keyword = _cache_keyword(self.lm.layers[0])

    def encode_video(self, pixel_values: "torch.Tensor", timer: Any = None, *,
                     inputs: "PromptInputs | None" = None) -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """Pixels → visual features [T', P, D] and the separator embedding [D] (None without one).

        The family's encoder, in the timed windows `vision` and `projector`. `inputs` carries what a
        family derives from the video's grid (Qwen-VL needs it; LLaVA-OV does not).
        """
        return self.family.encode_video(self.model, pixel_values, timer or _NullTimer(), inputs)

    def prefill(self, inputs: "PromptInputs", method: Method, budget: float, *, seed: int = 0,
                timer: Any = None, per_layer: bool = False, decode_tokens: int = 0,
                encoded: tuple["torch.Tensor", "torch.Tensor"] | None = None,
                stop_when: Callable[[int], bool] | None = None) -> PrefillResult:
        """One staged prefill with `method` at `budget`, then `decode_tokens` greedy decode steps.

        Args:
            inputs: pixels and token ids.
            method: the pruning method (driven only through the `Method` interface).
            budget: kept fraction of visual tokens.
            seed: passed to the method's selections.
            timer: anything with `window(name)` (a `StageTimer`, a memory probe); None measures nothing.
            per_layer: also time every decoder layer as `layer_NN`.
            decode_tokens: greedy decode steps on the prefill's cache, each in a `decode` window.
            encoded: `encode_video` output to reuse (skips the vision and projector stages), for
                measuring the LLM side alone when the vision tower is the same for every run.
            stop_when: called with each generated token (the first one included) after its step's window;
                True ends the decoding there (an end-of-sequence token, a stop string). Reading the
                token is a host read, outside every timed window, as `generate` does between steps.

        Raises:
            ConfigError: the model's pooled tokens per frame differ from the spec's.
            ProfilingError: the method's plan or its selections do not fit the model (a method bug).
        """
        import torch
        from transformers import DynamicCache

        timer = timer or _NullTimer()
        spec = inputs.spec.method_view()  # T' frames of P tokens, as the method and its features see them
        planned = method.plan(spec, budget)
        _check_plan(planned, spec, method.name)
        run = _Run(cache=DynamicCache(config=self.lm.config), on_gpu=str(self.loaded.device).startswith("cuda"))
        with torch.inference_mode():
            with timer.window(TTFT):
                features, separator = (encoded if encoded is not None
                                       else self.encode_video(inputs.pixel_values, timer, inputs=inputs))
                if tuple(features.shape[:2]) != (spec.frames, spec.tokens_per_frame):
                    raise ConfigError(
                        f"the model encodes the video to {features.shape[0]} × {features.shape[1]} tokens but the "
                        f"spec says {spec.frames} × {spec.tokens_per_frame}; drop --tokens-per-frame")
                with timer.window("llm_prefill"):
                    embed = self.lm.embed_tokens
                    prefix, question = embed(inputs.prefix_ids), embed(inputs.question_ids)  # [p, D], [q, D]
                start, stop = inputs.question_rows
                tokens, positions, selection = self._select(method, features, question[start:stop], budget,
                                                            planned, seed, timer, run)
                seq = self._assemble(prefix, tokens, positions, separator, question, inputs, method.position_rule)
                seq.question_rows, seq.segments, seq.groups = (start, stop), selection.segments, selection.groups
                seq.state = selection.state
                executed, seq = self._decoder_layers(seq, method, planned, spec, seed, timer, per_layer, run)
                with timer.window("first_token"):
                    token, logits = self._next_token(seq.hidden[:, -1:])
            # Shapes and sizes are host metadata: reading them costs no synchronisation.
            cached = tuple(int(layer.keys.shape[-2]) - planned.text_tokens for layer in run.cache.layers)
            cache_bytes = sum(layer.keys.nbytes + layer.values.nbytes for layer in run.cache.layers)
            starts = [inputs.next_position if start is None else start for start in run.decode_starts]
            visual_rows = (seq.prefix_len, cached)  # where each layer's cache holds the visual tokens
            generated = self._decode_steps(run.cache, token, starts, decode_tokens, timer, stop_when,
                                           method=method, visual_rows=visual_rows)
        for check in run.checks:  # after the timed windows: these read device values on the host
            check()
        executed_schedule = Schedule(tuple(executed), planned.text_tokens, planned.initial_visual_tokens, cached)
        return PrefillResult(logits=logits, first_token=int(generated[0]), planned=planned,
                             executed=executed_schedule, segments=tuple(seq.segments), kv_cache_bytes=cache_bytes,
                             generated=tuple(int(t) for t in generated), position_ids=seq.position_ids)

    def _select(self, method: Method, features: "torch.Tensor", question: "torch.Tensor", budget: float,
                planned: Schedule, seed: int, timer: Any, run: _Run) -> tuple[Any, Any, SelectionResult]:
        """Pre-LLM selection when the plan drops tokens at layer 0 or the method selects before the LLM.

        `question` is [Q, D]: the embeddings of the question's own tokens (no chat template).
        """
        import torch

        frames, per_frame, dim = features.shape
        total = frames * per_frame
        overrides = method.selects_before_llm()
        if planned.visual_tokens[0] >= total and not overrides:
            everything = torch.arange(total, device=features.device)
            flat = features.reshape(total, dim)
            return flat, everything, SelectionResult(flat, everything)
        if not overrides:
            raise ProfilingError(
                f"method '{method.name}' plans {planned.visual_tokens[0]} of {total} tokens at layer 0 but has "
                "no pre-LLM selection (select_visual); fix its plan")
        with timer.window("selection"):
            result = method.select_visual(features, budget, query=question, seed=seed)
        tokens, positions = result.tokens, result.positions.to(features.device).long()
        kept = int(positions.numel())
        # A data-dependent method's plan is an estimate: its selection decides the count.
        expected = kept if method.data_dependent_counts and 1 <= kept <= total else planned.visual_tokens[0]
        if kept != expected or tokens.shape != (kept, dim):
            raise ProfilingError(
                f"method '{method.name}' selected {kept} tokens shaped {tuple(tokens.shape)} before the LLM; "
                f"its plan says {planned.visual_tokens[0]} × {dim}")
        run.check(lambda: _check_indices(positions, total, method.name, "positions",
                                         ascending=method.sequence_order == "position"))
        if result.groups is not None and result.groups.shape != (kept,):
            raise ProfilingError(f"method '{method.name}' returned groups shaped {tuple(result.groups.shape)} "
                                 f"for {kept} tokens")
        return tokens.to(features.dtype), positions, result

    def _assemble(self, prefix: "torch.Tensor", tokens: "torch.Tensor", positions: "torch.Tensor",
                  separator: "torch.Tensor | None", question: "torch.Tensor", inputs: "PromptInputs",
                  rule: str = "original") -> _Sequence:
        """[prefix | kept visual | separator | question] and their position ids under the method's rule
        (`vidcost.methods.base.PositionRule`): the full layout's columns ("original"), or 0…n′−1 with
        decoding from n′ ("compact" and "renumber", 1-D RoPE; M-RoPE keeps the kept patches' (t, h, w) ids)."""
        import torch

        p, rows = prefix.shape[0], inputs.separator_tokens
        parts = [prefix, tokens] + ([separator[None].to(tokens.dtype)] if separator is not None else []) + [question]
        hidden = torch.cat(parts)[None]  # [1, N, D]
        if rule in ("compact", "renumber") and not self.family.mrope:
            length = hidden.shape[1]  # host metadata: no synchronisation
            position_ids = torch.arange(length, device=hidden.device)[None]
            return _Sequence(hidden=hidden, position_ids=position_ids, visual_positions=positions, prefix_len=p,
                             separator_rows=rows, decode_start=length)
        # Original positions: a kept token keeps its column (RoPE id or M-RoPE (t, h, w)); text around the
        # video keeps the positions of the full layout.
        layout = inputs.layout_positions()  # [..., N_full]
        after = p + inputs.spec.num_visual_tokens
        position_ids = torch.cat([layout[..., :p], layout[..., p + positions], layout[..., after:]], dim=-1)
        return _Sequence(hidden=hidden, position_ids=position_ids, visual_positions=positions, prefix_len=p,
                         separator_rows=rows)

    def _decoder_layers(self, seq: _Sequence, method: Method, planned: Schedule, spec: Any, seed: int,
                        timer: Any, per_layer: bool, run: _Run) -> tuple[list[int], _Sequence]:
        """The decoder layers one at a time, applying the method's in-LLM stage where the plan drops.

        `llm_prefill` is one window from the sequence's assembly to the last layer, interrupted only by
        the in-LLM selections (each in its own `selection` window).
        """
        executed: list[int] = []
        previous: tuple[Any, Any] | None = None  # (layer, its input) for the attention of the next drop
        inside = method.in_llm_stage_at == "after_attention"  # FrameFusion: inside the layer before the drop
        prefill_window = contextlib.ExitStack()
        prefill_window.enter_context(timer.window("llm_prefill"))

        def reduce(index: int, source: Any) -> None:
            nonlocal seq, prefill_window
            prefill_window.close()
            with timer.window("selection"):
                seq = self._reduce(seq, method, index, planned.visual_tokens[index], source, spec, seed, run)
                self._trim_caches(run, seq, planned)
            prefill_window = contextlib.ExitStack()
            prefill_window.enter_context(timer.window("llm_prefill"))

        for index, layer in enumerate(self.lm.layers):
            if not inside and self._drops_before(seq, method, planned, index):
                # "current": the dropping layer's own q/k on the states entering it (PyramidDrop).
                reduce(index, (layer, seq.hidden) if method.attention_source == "current" else previous)
            executed.append(seq.num_visual)
            run.entered.append(seq.visual_positions)
            run.decode_starts.append(seq.decode_start)
            layer_window = timer.window(f"layer_{index:02d}") if per_layer else contextlib.nullcontext()
            with layer_window:
                if seq.rope is None:
                    seq.rope = self.lm.rotary_emb(seq.hidden, seq.position_ids)
                previous = (layer, seq.hidden)
                if inside and index + 1 < len(self.lm.layers) and self._drops_before(seq, method, planned, index + 1):
                    # The drop planned before layer index + 1 runs inside this layer, after its attention and
                    # residual: this layer's cache holds every token that entered it, its MLP only the kept.
                    seq.hidden = self._attention_half(layer, seq, run)
                    reduce(index + 1, previous)
                    seq.hidden = self._mlp_half(layer, seq.hidden)
                else:
                    seq.hidden = layer(seq.hidden, attention_mask=self._mask(seq),
                                       position_ids=self._layer_positions(seq.position_ids),
                                       position_embeddings=seq.rope, use_cache=True,
                                       **{self._cache_keyword: run.cache})
        prefill_window.close()
        return executed, seq

    @staticmethod
    def _drops_before(seq: _Sequence, method: Method, planned: Schedule, index: int) -> bool:
        """Whether the method's in-LLM stage runs before layer `index`: the plan drops there, or (a
        data-dependent method) it decides at every layer after the first."""
        return not seq.finished and (planned.visual_tokens[index] < seq.num_visual
                                     or (method.data_dependent_counts and index > 0))

    def _attention_half(self, layer: Any, seq: _Sequence, run: _Run) -> "torch.Tensor":
        """A decoder layer up to its attention and residual (its `forward`'s first half, as it is written in
        transformers' Qwen2 / Qwen2-VL / Qwen2.5-VL decoder layers), caching every token's keys and values."""
        hidden = layer.input_layernorm(seq.hidden)
        hidden, _ = layer.self_attn(hidden_states=hidden, attention_mask=self._mask(seq),
                                    position_ids=self._layer_positions(seq.position_ids),
                                    position_embeddings=seq.rope, use_cache=True, **{self._cache_keyword: run.cache})
        return seq.hidden + hidden

    @staticmethod
    def _mlp_half(layer: Any, hidden: "torch.Tensor") -> "torch.Tensor":
        """The layer's second half: post-attention norm, MLP and residual."""
        return hidden + layer.mlp(layer.post_attention_layernorm(hidden))

    def _reduce(self, seq: _Sequence, method: Method, index: int, target: int, source: Any, spec: Any,
                seed: int, run: _Run) -> _Sequence:
        """Build the LayerContext, run the method's in-LLM stage, and rebuild the sequence."""
        import torch

        attention = None
        if method.attention_need != "none":
            if source is None:
                raise ProfilingError(
                    f"method '{method.name}' drops tokens at layer 0 using attention; there is no earlier layer")
            if seq.rope is None:  # a "current"-source drop before layer 0 runs
                seq.rope = self.lm.rotary_emb(seq.hidden, seq.position_ids)
            n = seq.hidden.shape[1]
            question_start = seq.visual_slice.stop + seq.separator_rows
            first, last = seq.question_rows
            device = seq.hidden.device
            if method.attention_need == "question":
                rows = torch.arange(question_start + first, question_start + last, device=device)
            elif method.attention_need == "after_video":  # every row after the visual tokens
                rows = torch.arange(seq.visual_slice.stop, n, device=device)
            else:
                rows = torch.arange(n - 1, n, device=device)  # the last row, with no host-to-device copy
            attention = query_attention(source[0], source[1], seq.rope, rows, seq.visual_slice,
                                        form=method.attention_form, precision=method.attention_precision)
        visual = seq.hidden[0, seq.visual_slice]  # [Nv, D]
        context = LayerContext(layer=index, hidden=visual, positions=seq.visual_positions, attention=attention,
                               num_frames=spec.frames, tokens_per_frame=spec.tokens_per_frame, seed=seed,
                               segments=seq.segments, groups=seq.groups, state=seq.state,
                               num_layers=spec.num_layers)
        reduction = method.reduce_in_llm(context, keep=min(target, seq.num_visual))
        keep = reduction.keep.to(visual.device).long()
        if method.data_dependent_counts and 1 <= keep.numel() <= seq.num_visual:
            target = int(keep.numel())
            if target == seq.num_visual and reduction.hidden is None:  # nothing happened at this layer
                seq.state, seq.finished = reduction.state, reduction.finished
                return seq
        if keep.numel() != target:
            raise ProfilingError(
                f"method '{method.name}' kept {keep.numel()} tokens before layer {index}; its plan says {target}")
        size = seq.num_visual
        run.check(lambda: _check_indices(keep, size, method.name, f"keep indices before layer {index}"))
        kept = visual[keep] if reduction.hidden is None else reduction.hidden.to(visual.dtype)
        if kept.shape != (target, visual.shape[1]):
            raise ProfilingError(f"method '{method.name}' returned merged states shaped {tuple(kept.shape)}")
        s = seq.visual_slice
        hidden = torch.cat([seq.hidden[:, :s.start], kept[None], seq.hidden[:, s.stop:]], dim=1)
        decode_start = seq.decode_start
        if method.position_rule == "renumber" and not self.family.mrope:  # 0…n_s−1 after every stage
            decode_start = int(hidden.shape[1])  # host metadata: no synchronisation
            position_ids = torch.arange(decode_start, device=hidden.device)[None]
        else:  # the kept tokens keep the columns they had
            position_ids = torch.cat([seq.position_ids[..., :s.start], seq.position_ids[..., s][..., keep],
                                      seq.position_ids[..., s.stop:]], dim=-1)
        return _Sequence(hidden=hidden, position_ids=position_ids, visual_positions=seq.visual_positions[keep],
                         prefix_len=seq.prefix_len, separator_rows=seq.separator_rows, question_rows=seq.question_rows,
                         segments=seq.segments, groups=None if seq.groups is None else seq.groups[keep],
                         state=reduction.state, finished=reduction.finished, decode_start=decode_start)

    def _trim_caches(self, run: _Run, seq: _Sequence, planned: Schedule) -> None:
        """Trim earlier layers' caches to the visual tokens still present, where the plan says so.

        Layer i's cache rows are [prefix | the visual tokens that entered it | separators + question]; its
        visual rows whose token did not survive this prune are dropped (`Schedule.cached_visual_tokens`).
        """
        import torch

        for layer, entered in enumerate(run.entered):
            if planned.kv_visual_tokens[layer] >= planned.visual_tokens[layer]:
                continue
            cached = run.cache.layers[layer]
            rows_entered = cached.keys.shape[-2]
            present = torch.isin(entered, seq.visual_positions)  # [n_i] bool
            # The survivors are a subset of what entered, so `present` holds exactly seq.num_visual Trues — a
            # count known on the host: a stable sort puts their indices first, in order, with no
            # synchronisation (a boolean index or nonzero would wait for the device to say how many).
            survivors = torch.sort((~present).to(torch.uint8), stable=True).indices[:seq.num_visual]
            run.check(lambda present=present, layer=layer: _check_survivors(present, seq.num_visual, layer))
            device = present.device
            after = seq.prefix_len + entered.numel()
            rows = torch.cat([torch.arange(seq.prefix_len, device=device), seq.prefix_len + survivors,
                              torch.arange(after, rows_entered, device=device)])
            cached.keys, cached.values = cached.keys[:, :, rows], cached.values[:, :, rows]
            run.entered[layer] = entered[survivors]

    def _next_token(self, last_hidden: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Final norm and LM head on one position [1, 1, D] → (greedy token, a 0-dim tensor; logits [V])."""
        import torch

        logits = self.model.lm_head(self.lm.norm(last_hidden))[0, -1].float()  # [V]
        return torch.argmax(logits), logits

    def _decode_steps(self, cache: Any, token: "torch.Tensor", starts: list[int], steps: int,
                      timer: Any, stop_when: Callable[[int], bool] | None = None, *, method: Method | None = None,
                      visual_rows: tuple[int, tuple[int, ...]] = (0, ())) -> list["torch.Tensor"]:
        """Greedy decode on the prefill's cache, one `decode` window per step; the token never leaves the device.

        `starts[i]` is the first generated token's position at layer i: after the full (unpruned) prompt
        layout, as the stock forward numbers it (after its largest M-RoPE id: the stock `rope_deltas`); after
        the compacted sequence ("compact"); after the sequence of that layer's stage ("renumber"). Each
        distinct position's rotary embedding is computed once per step; each layer attends over whatever its
        cache holds — unless the method has a decode-time stage (`Method.decode_layer`, DyCoke): then at
        every step the layers from that one on attend to the visual cache rows it keeps (the cache itself
        keeps them all), chosen from the attention the token pays them at the layer before.
        """
        import torch

        generated = [token]
        if steps == 0 or (stop_when is not None and stop_when(int(token))):
            return generated
        device = token.device
        first = None if method is None else method.decode_layer(len(self.lm.layers))
        prefix, visual = visual_rows
        if first is not None and (not 1 <= first < len(self.lm.layers) or len(set(visual[first - 1:])) != 1):
            raise ProfilingError(f"method '{getattr(method, 'name', method)}' restricts decoding from layer {first}: "
                                 f"it must be in [1, {len(self.lm.layers) - 1}] and the layers from {first - 1} on "
                                 "must cache the same visual tokens")
        state = None
        # [1, steps] per distinct start (M-RoPE expands each to 3 rows)
        positions = {start: torch.arange(start, start + steps, device=device)[None] for start in set(starts)}
        for step in range(steps):
            with timer.window(DECODE):
                hidden = self.lm.embed_tokens(token.view(1, 1))  # [1, 1, D]
                ids = {start: run_ids[:, step:step + 1] for start, run_ids in positions.items()}
                ropes = {start: self.lm.rotary_emb(hidden, position_ids) for start, position_ids in ids.items()}
                keep, entering = None, hidden
                for index, (layer, start) in enumerate(zip(self.lm.layers, starts)):
                    if index == first:
                        before = index - 1
                        attention = decode_attention(self.lm.layers[before], entering, ropes[starts[before]],
                                                     cache.layers[before].keys, precision=method.attention_precision)
                        attention = attention[:, prefix:prefix + visual[before]]
                        reduction = method.reduce_in_decode(DecodeContext(step=step, attention=attention, state=state))
                        keep, state = reduction.keep, reduction.state
                    entering = hidden
                    kwargs = dict(attention_mask=None, position_ids=self._layer_positions(ids[start]),
                                  position_embeddings=ropes[start], use_cache=True)
                    if keep is None or first is None or index < first:
                        hidden = layer(hidden, **kwargs, **{self._cache_keyword: cache})
                    else:
                        hidden = self._layer_on_rows(layer, hidden, kwargs, cache, index, prefix, visual[index],
                                                     keep)
                token, _ = self._next_token(hidden)
            generated.append(token)
            if stop_when is not None and stop_when(int(token)):
                break
        return generated

    def _layer_on_rows(self, layer: Any, hidden: "torch.Tensor", kwargs: dict[str, Any], cache: Any, index: int,
                       prefix: int, visual: int, keep: "torch.Tensor") -> "torch.Tensor":
        """One decode step of a layer attending to the text rows, the kept visual rows and the generated
        tokens of its cache; the cache keeps every row (the new token's keys and values appended)."""
        import torch

        cached = cache.layers[index]
        keys, values = cached.keys, cached.values
        length, device = keys.shape[-2], keys.device  # host metadata: no synchronisation
        rows = torch.cat([torch.arange(prefix, device=device), prefix + keep.to(device),
                          torch.arange(prefix + visual, length, device=device)])
        cached.keys, cached.values = keys.index_select(2, rows), values.index_select(2, rows)
        try:
            hidden = layer(hidden, **kwargs, **{self._cache_keyword: cache})
            new_keys, new_values = cached.keys[:, :, -1:], cached.values[:, :, -1:]
        except BaseException:
            cached.keys, cached.values = keys, values
            raise
        cached.keys, cached.values = torch.cat([keys, new_keys], dim=2), torch.cat([values, new_values], dim=2)
        return hidden

    def _layer_positions(self, position_ids: "torch.Tensor") -> "torch.Tensor | None":
        """The ids a decoder layer is given beside its rotary embedding, as the stock text model does:
        RoPE's ids; none for M-RoPE (the stock Qwen-VL text model passes its layers no text ids)."""
        return None if self.family.mrope else position_ids

    def _mask(self, seq: _Sequence) -> "torch.Tensor | None":
        """None lets SDPA apply its causal kernel; eager attention needs an explicit additive mask."""
        import torch

        if self.config.text_config._attn_implementation == "sdpa":
            return None
        n = seq.hidden.shape[1]
        mask = torch.full((n, n), torch.finfo(seq.hidden.dtype).min, dtype=seq.hidden.dtype, device=seq.hidden.device)
        return torch.triu(mask, diagonal=1)[None, None]  # [1, 1, N, N], 0 on and below the diagonal


def _cache_keyword(layer: Any) -> str:
    """The decoder layer's keyword for the KV cache: `cache` (transformers ≥ 5.24) or `past_key_values`."""
    parameters = inspect.signature(layer.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _check_plan(planned: Schedule, spec: Any, name: str) -> None:
    if planned.num_layers != spec.num_layers or planned.initial_visual_tokens != spec.num_visual_tokens:
        raise ProfilingError(
            f"method '{name}' planned {planned.num_layers} layers × {planned.initial_visual_tokens} visual tokens; "
            f"the model has {spec.num_layers} layers × {spec.num_visual_tokens}")


def _check_indices(indices: "torch.Tensor", size: int, name: str, what: str, ascending: bool = True) -> None:
    import torch

    if indices.dim() != 1 or (indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= size)):
        raise ProfilingError(f"method '{name}' returned {what} outside [0, {size})")
    if ascending and indices.numel() > 1 and not bool(torch.all(indices[1:] > indices[:-1])):
        raise ProfilingError(f"method '{name}' returned {what} that are not unique and ascending")
    if not ascending and torch.unique(indices).numel() != indices.numel():
        raise ProfilingError(f"method '{name}' returned {what} that are not unique")


def _check_survivors(present: "torch.Tensor", expected: int, layer: int) -> None:
    if int(present.sum()) != expected:
        raise ProfilingError(f"{int(present.sum())} of the {expected} visual tokens still in the sequence are among "
                             f"those layer {layer} cached; a method's positions must be a subset of its input's")


class _NullTimer:
    """A timer that measures nothing (the runtime used outside a profile)."""

    def window(self, name: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()
