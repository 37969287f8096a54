"""StagedRuntime: a LLaVA-OneVision prefill run stage by stage, so a pruning method can act between stages.

vision tower → projector → LLaVA-OV video pooling → the method's pre-LLM selection → decoder layers one at
a time (before a layer where the plan drops visual tokens, the method's in-LLM stage keeps or merges
them) → final norm → LM head on the last position → first token.

Kept tokens keep their original RoPE positions (a gap where tokens were dropped); the causal mask
follows the sequence order, which is ascending in position. Text tokens (and the video's
`image_newline` token, see `vidcost.runtime.inputs`) are never dropped. With `vanilla`, or any method
whose plan keeps everything, the logits equal the stock `model(...)` forward.

Each stage runs inside `timer.window(name)`; the names are `STAGES`, `ttft` around them all
(+ `layer_NN` on request).
`selection` covers every method call — the pre-LLM `select_visual` and each in-LLM stage, including
the query-attention rows the runtime computes for it — so the pruning step's own cost is visible.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError, ProfilingError
from vidcost.methods.base import LayerContext, Method, SelectionResult
from vidcost.profiling.record import STAGES, TTFT
from vidcost.runtime.attention import query_attention
from vidcost.schedule import Schedule

if TYPE_CHECKING:
    import torch

    from vidcost.runtime.inputs import PromptInputs
    from vidcost.runtime.model import LoadedModel



@dataclass(frozen=True)
class PrefillResult:
    """What one staged prefill produced.

    Attributes:
        logits: [V] float32 logits of the last position.
        first_token: argmax of `logits` (greedy first generated token).
        planned: the method's planned schedule.
        executed: visual tokens that actually entered each layer.
        segments: the pre-LLM selection's segments, if it reported any.
    """

    logits: "torch.Tensor"
    first_token: int
    planned: Schedule
    executed: Schedule
    segments: tuple[tuple[int, int], ...] = ()

    def __str__(self) -> str:
        return f"PrefillResult(first token {self.first_token}, executed {self.executed})"


@dataclass
class _Sequence:
    """The LLM sequence during the decoder loop: [prefix | visual | newline + question]."""

    hidden: "torch.Tensor"  # [1, N, D]
    position_ids: "torch.Tensor"  # [1, N] original RoPE positions
    visual_positions: "torch.Tensor"  # [Nv] original flat index in T·P of each visual token
    prefix_len: int
    rope: tuple["torch.Tensor", "torch.Tensor"] | None = None  # (cos, sin) [1, N, hd], cached
    question_rows: tuple[int, int] = (0, 0)  # the question itself among the rows after the newline
    segments: tuple[tuple[int, int], ...] = ()  # from the pre-LLM selection, for the in-LLM stages
    groups: "torch.Tensor | None" = None  # [Nv] group id of each visual token (SelectionResult.groups)

    @property
    def num_visual(self) -> int:
        return int(self.visual_positions.numel())

    @property
    def visual_slice(self) -> slice:
        return slice(self.prefix_len, self.prefix_len + self.num_visual)


class StagedRuntime:
    """Runs prefill of a loaded LLaVA-OneVision model with a pruning method plugged in.

    Args:
        loaded: the model (see `vidcost.runtime.model.build_model`).
    """

    def __init__(self, loaded: "LoadedModel") -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.llava = loaded.model.model  # LlavaOnevisionModel
        self.lm = self.llava.language_model  # Qwen2Model
        self.config = loaded.model.config

    def encode_video(self, pixel_values: "torch.Tensor", timer: Any = None) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Pixels [T, 3, S, S] → pooled visual features [T, P, D] and the newline embedding [D].

        The same computation as the stock `get_video_features`, split into two timed windows.
        """
        import torch

        timer = timer or _NullTimer()
        with torch.inference_mode():
            with timer.window("vision"):
                out = self.llava.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
                layer = self.config.vision_feature_layer
                if isinstance(layer, int):
                    selected = out.hidden_states[layer]  # [T, patches, Dv]
                else:
                    selected = torch.cat([out.hidden_states[i] for i in layer], dim=-1)
                if self.config.vision_feature_select_strategy == "default":
                    selected = selected[:, 1:]
            with timer.window("projector"):
                projected = self.llava.multi_modal_projector(selected)  # [T, patches, D]
                features = self.llava.apply_pooling(projected)  # [T, P, D]: 2×2 bilinear (LLaVA-OV)
        return features, self.llava.image_newline

    def prefill(self, inputs: "PromptInputs", method: Method, budget: float, *, seed: int = 0,
                timer: Any = None, per_layer: bool = False,
                encoded: tuple["torch.Tensor", "torch.Tensor"] | None = None) -> PrefillResult:
        """One staged prefill with `method` at `budget`.

        Args:
            inputs: pixels and token ids.
            method: the pruning method (driven only through the `Method` interface).
            budget: kept fraction of visual tokens.
            seed: passed to the method's selections.
            timer: anything with `window(name)` (a `StageTimer`); None measures nothing.
            per_layer: also time every decoder layer as `layer_NN`.
            encoded: `encode_video` output to reuse (skips the vision and projector stages), for
                measuring the LLM side alone when the vision tower is the same for every run.

        Raises:
            ConfigError: the model's pooled tokens per frame differ from the spec's.
            ProfilingError: the method's plan or its selections do not fit the model (a method bug).
        """
        import torch

        timer = timer or _NullTimer()
        spec = inputs.spec
        planned = method.plan(spec, budget)
        _check_plan(planned, spec, method.name)
        with torch.inference_mode(), timer.window(TTFT):
            features, newline = encoded if encoded is not None else self.encode_video(inputs.pixel_values, timer)
            if features.shape[1] != spec.tokens_per_frame:
                raise ConfigError(
                    f"the model pools each frame to {features.shape[1]} tokens but the spec says "
                    f"{spec.tokens_per_frame}; drop --tokens-per-frame")
            with timer.window("llm_prefill"):
                embed = self.lm.embed_tokens
                prefix, question = embed(inputs.prefix_ids), embed(inputs.question_ids)  # [p, D], [q, D]
            start, stop = inputs.question_rows
            tokens, positions, selection = self._select(method, features, question[start:stop], budget, planned,
                                                        seed, timer)
            with timer.window("llm_prefill"):
                seq = self._assemble(prefix, tokens, positions, newline, question, spec.num_visual_tokens)
                seq.question_rows = (start, stop)
                seq.segments, seq.groups = selection.segments, selection.groups
            executed, seq = self._decode(seq, method, planned, spec, seed, timer, per_layer)
            with timer.window("first_token"):
                last = self.lm.norm(seq.hidden[:, -1:])  # [1, 1, D]
                logits = self.model.lm_head(last)[0, -1].float()  # [V]
                first_token = int(torch.argmax(logits))
        executed_schedule = Schedule(tuple(executed), planned.text_tokens, planned.initial_visual_tokens)
        return PrefillResult(logits=logits, first_token=first_token, planned=planned,
                             executed=executed_schedule, segments=tuple(seq.segments))

    def _select(self, method: Method, features: "torch.Tensor", question: "torch.Tensor", budget: float,
                planned: Schedule, seed: int, timer: Any) -> tuple[Any, Any, SelectionResult]:
        """Pre-LLM selection when the plan drops tokens at layer 0 or the method selects before the LLM.

        `question` is [Q, D]: the embeddings of the question's own tokens (no chat template).
        """
        import torch

        frames, per_frame, dim = features.shape
        total = frames * per_frame
        overrides = method.selects_before_llm()
        if planned.visual_tokens[0] >= total and not overrides:
            everything = torch.arange(total, device=features.device)
            return features.reshape(total, dim), everything, SelectionResult(features.reshape(total, dim), everything)
        if not overrides:
            raise ProfilingError(
                f"method '{method.name}' plans {planned.visual_tokens[0]} of {total} tokens at layer 0 but has "
                "no pre-LLM selection (select_visual); fix its plan")
        with timer.window("selection"):
            result = method.select_visual(features, budget, query=question, seed=seed)
        tokens, positions = result.tokens, result.positions.to(features.device).long()
        kept = int(positions.numel())
        if kept != planned.visual_tokens[0] or tokens.shape != (kept, dim):
            raise ProfilingError(
                f"method '{method.name}' selected {kept} tokens shaped {tuple(tokens.shape)} before the LLM; "
                f"its plan says {planned.visual_tokens[0]} × {dim}")
        _check_indices(positions, total, method.name, "positions")
        if result.groups is not None and result.groups.shape != (kept,):
            raise ProfilingError(f"method '{method.name}' returned groups shaped {tuple(result.groups.shape)} "
                                 f"for {kept} tokens")
        return tokens.to(features.dtype), positions, result

    def _assemble(self, prefix: "torch.Tensor", tokens: "torch.Tensor", positions: "torch.Tensor",
                  newline: "torch.Tensor", question: "torch.Tensor", num_visual: int) -> _Sequence:
        import torch

        p = prefix.shape[0]
        hidden = torch.cat([prefix, tokens, newline[None].to(tokens.dtype), question])[None]  # [1, N, D]
        device = hidden.device
        # Original RoPE positions: text around the video keeps the positions of the full layout.
        position_ids = torch.cat([
            torch.arange(p, device=device), p + positions,
            p + num_visual + torch.arange(1 + question.shape[0], device=device)])[None]
        return _Sequence(hidden=hidden, position_ids=position_ids, visual_positions=positions, prefix_len=p)

    def _decode(self, seq: _Sequence, method: Method, planned: Schedule, spec: Any, seed: int, timer: Any,
                per_layer: bool) -> tuple[list[int], _Sequence]:
        """The decoder layers one at a time, applying the method's in-LLM stage where the plan drops."""
        executed: list[int] = []
        previous: tuple[Any, Any] | None = None  # (layer, its input) for the attention of the next drop
        for index, layer in enumerate(self.lm.layers):
            target = planned.visual_tokens[index]
            if target < seq.num_visual:
                with timer.window("selection"):
                    # "current": the dropping layer's own q/k on the states entering it (PyramidDrop).
                    source = (layer, seq.hidden) if method.attention_source == "current" else previous
                    seq = self._reduce(seq, method, index, target, source, spec, seed)
            executed.append(seq.num_visual)
            layer_window = timer.window(f"layer_{index:02d}") if per_layer else contextlib.nullcontext()
            with timer.window("llm_prefill"), layer_window:
                if seq.rope is None:
                    seq.rope = self.lm.rotary_emb(seq.hidden, seq.position_ids)
                previous = (layer, seq.hidden)
                seq.hidden = layer(seq.hidden, attention_mask=self._mask(seq), position_ids=seq.position_ids,
                                   position_embeddings=seq.rope)
        return executed, seq

    def _reduce(self, seq: _Sequence, method: Method, index: int, target: int, previous: Any, spec: Any,
                seed: int) -> _Sequence:
        """Build the LayerContext, run the method's in-LLM stage, and rebuild the sequence."""
        import torch

        attention = None
        if method.attention_need != "none":
            if previous is None:
                raise ProfilingError(
                    f"method '{method.name}' drops tokens at layer 0 using attention; there is no earlier layer")
            if seq.rope is None:  # a "current"-source drop before layer 0 runs
                seq.rope = self.lm.rotary_emb(seq.hidden, seq.position_ids)
            n = seq.hidden.shape[1]
            question_start = seq.visual_slice.stop + 1  # after the newline token
            first, last = seq.question_rows
            rows = (torch.arange(question_start + first, question_start + last, device=seq.hidden.device)
                    if method.attention_need == "question" else torch.tensor([n - 1], device=seq.hidden.device))
            attention = query_attention(previous[0], previous[1], seq.rope, rows, seq.visual_slice)
        visual = seq.hidden[0, seq.visual_slice]  # [Nv, D]
        context = LayerContext(layer=index, hidden=visual, positions=seq.visual_positions, attention=attention,
                               num_frames=spec.frames, tokens_per_frame=spec.tokens_per_frame, seed=seed,
                               segments=seq.segments, groups=seq.groups)
        reduction = method.reduce_in_llm(context, keep=target)
        keep = reduction.keep.to(visual.device).long()
        if keep.numel() != target:
            raise ProfilingError(
                f"method '{method.name}' kept {keep.numel()} tokens before layer {index}; its plan says {target}")
        _check_indices(keep, seq.num_visual, method.name, f"keep indices before layer {index}")
        kept = visual[keep] if reduction.hidden is None else reduction.hidden.to(visual.dtype)
        if kept.shape != (target, visual.shape[1]):
            raise ProfilingError(f"method '{method.name}' returned merged states shaped {tuple(kept.shape)}")
        s = seq.visual_slice
        hidden = torch.cat([seq.hidden[:, :s.start], kept[None], seq.hidden[:, s.stop:]], dim=1)
        position_ids = torch.cat([seq.position_ids[:, :s.start], seq.position_ids[:, s][:, keep],
                                  seq.position_ids[:, s.stop:]], dim=1)
        return _Sequence(hidden=hidden, position_ids=position_ids, visual_positions=seq.visual_positions[keep],
                         prefix_len=seq.prefix_len, question_rows=seq.question_rows, segments=seq.segments,
                         groups=None if seq.groups is None else seq.groups[keep])

    def _mask(self, seq: _Sequence) -> "torch.Tensor | None":
        """None lets SDPA apply its causal kernel; eager attention needs an explicit additive mask."""
        import torch

        if self.config.text_config._attn_implementation == "sdpa":
            return None
        n = seq.hidden.shape[1]
        mask = torch.full((n, n), torch.finfo(seq.hidden.dtype).min, dtype=seq.hidden.dtype, device=seq.hidden.device)
        return torch.triu(mask, diagonal=1)[None, None]  # [1, 1, N, N], 0 on and below the diagonal


def _check_plan(planned: Schedule, spec: Any, name: str) -> None:
    if planned.num_layers != spec.num_layers or planned.initial_visual_tokens != spec.num_visual_tokens:
        raise ProfilingError(
            f"method '{name}' planned {planned.num_layers} layers × {planned.initial_visual_tokens} visual tokens; "
            f"the model has {spec.num_layers} layers × {spec.num_visual_tokens}")


def _check_indices(indices: "torch.Tensor", size: int, name: str, what: str) -> None:
    import torch

    if indices.dim() != 1 or (indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= size)):
        raise ProfilingError(f"method '{name}' returned {what} outside [0, {size})")
    if indices.numel() > 1 and not bool(torch.all(indices[1:] > indices[:-1])):
        raise ProfilingError(f"method '{name}' returned {what} that are not unique and ascending")


class _NullTimer:
    """A timer that measures nothing (the runtime used outside a profile)."""

    def window(self, name: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()
