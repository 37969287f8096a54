"""FlopCount: the FLOPs of the real transformers model of a spec, counted by PyTorch and by fvcore.

The model is built on PyTorch's meta device — shapes only, no memory, no weights — so a 7B model counts
in well under a second. Its forward runs *staged*: the real decoder layers are called one by one on the
tokens the schedule lets into each (visual tokens first, then text; dropped tokens keep nothing, kept
tokens keep their original RoPE positions), then the final norm and the LM head on the last position.
Staging is what lets a pruned schedule be counted, and it also sidesteps the attention-mask builder of
transformers, which reads tensor values (impossible on meta). Attention is eager (explicit QKᵀ and P·V
matmuls over all n×n pairs, no mask), which is what the analytic "exact" convention with causal=False
prices.

Two counters, two conventions:

* `torch.utils.flop_counter.FlopCounterMode` — 2 FLOPs per multiply-add, matmuls and convolutions only
  (it does not count CPU SDPA or elementwise ops). Comparable to `vidcost.cost` "exact".
* fvcore `FlopCountAnalysis` — 1 per multiply-add (so about half), traced with `torch.jit`, SDPA not
  counted; it gives the per-module table.

torch is imported at module level here (transformers in `build_model`): this module is loaded only on `--count`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from vidcost.cost import estimate_cost, format_flops
from vidcost.errors import ConfigError
from vidcost.schedule import Schedule
from vidcost.spec import ModelSpec

FLOP_COUNTER_CONVENTION = "FlopCounterMode: 2 FLOPs per multiply-add, matmuls + convolutions, eager n×n attention"
FVCORE_CONVENTION = "fvcore: 1 per multiply-add (≈ half), traced matmuls, no SDPA"


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one real forward, counted.

    Attributes:
        flop_counter_flops: FlopCounterMode total (LLM + LM head + vision when counted), 2 per MAC.
        llm_flops: FlopCounterMode FLOPs of the staged decoder, final norm and LM head.
        vision_flops: FlopCounterMode FLOPs of the vision tower, projector and pooling (0 if not run).
        by_operator: FlopCounterMode total per aten operator.
        analytic_flops: `vidcost.cost` "exact" (non-causal) prefill FLOPs of the same schedule.
        fvcore_flops: fvcore total (1 per MAC) of the staged decoder, or None when it could not trace.
        fvcore_table: fvcore's per-module table (empty when unavailable).
        fvcore_note: why fvcore is missing, or what it covered.
        count_seconds: wall time to build the meta model and run the FlopCounterMode forwards (imports
            excluded).
        fvcore_seconds: wall time of fvcore's traces.
        device: where the model was built ("meta" unless asked otherwise).
    """

    flop_counter_flops: int
    llm_flops: int
    vision_flops: int
    by_operator: dict[str, int]
    analytic_flops: int
    fvcore_flops: int | None = None
    fvcore_table: str = ""
    fvcore_note: str = ""
    count_seconds: float = 0.0
    fvcore_seconds: float = 0.0
    device: str = "meta"
    conventions: dict[str, str] = field(default_factory=lambda: {
        "flop_counter": FLOP_COUNTER_CONVENTION, "fvcore": FVCORE_CONVENTION})

    @property
    def relative_difference(self) -> float:
        """(analytic − counted) / counted."""
        return (self.analytic_flops - self.flop_counter_flops) / self.flop_counter_flops

    def to_dict(self) -> dict[str, Any]:
        return {"flop_counter_flops": self.flop_counter_flops, "llm_flops": self.llm_flops,
                "vision_flops": self.vision_flops, "by_operator": dict(self.by_operator),
                "analytic_exact_flops": self.analytic_flops, "relative_difference": self.relative_difference,
                "fvcore_flops": self.fvcore_flops, "fvcore_note": self.fvcore_note,
                "count_seconds": self.count_seconds, "fvcore_seconds": self.fvcore_seconds,
                "device": self.device, "conventions": dict(self.conventions)}

    def __str__(self) -> str:
        return (f"FlopCount(counted {format_flops(self.flop_counter_flops)}, analytic exact "
                f"{format_flops(self.analytic_flops)}, {self.relative_difference:+.3%})")


def build_model(spec: ModelSpec, *, device: str = "meta", include_vision: bool = False) -> torch.nn.Module:
    """The transformers model of `spec` with eager attention, built on `device` (random init).

    A LLaVA-OneVision spec read from a config.json, or any LLaVA-OneVision spec with `include_vision`, gives
    `LlavaOnevisionForConditionalGeneration` (from that config.json when there is one); a Qwen-VL spec its
    family's model (`Qwen2_5_VLForConditionalGeneration`, `Qwen2VLForConditionalGeneration`); any other spec
    a `Qwen2ForCausalLM` of the LLM dimensions.
    For presets the SigLIP pooling head is left out (`vidcost.hfconfig.vision_config`), as in the released
    LLaVA-OneVision checkpoints.

    Raises:
        ConfigError: `include_vision` for a spec whose vision tower is not one of the runtime's families.
    """
    LlavaOnevisionForConditionalGeneration, Qwen2ForCausalLM = _model_classes()
    from vidcost.cost import QWEN_VL_FAMILIES
    from vidcost.hfconfig import llava_onevision_config, text_config

    with warnings.catch_warnings(), torch.device(device):
        warnings.simplefilter("ignore")
        if spec.architecture in QWEN_VL_FAMILIES:
            from vidcost.runtime.families import get_family

            family = get_family(spec.architecture)
            return family.model_class()._from_config(family.hf_config(spec), attn_implementation="eager")
        if spec.architecture == "llava_onevision" and (include_vision or spec.config_path):
            return LlavaOnevisionForConditionalGeneration._from_config(llava_onevision_config(spec),
                                                                       attn_implementation="eager")
        if include_vision:
            raise ConfigError(
                f"counting the vision tower of a '{spec.architecture}' model is not supported; drop "
                "--include-vision or use a llava-onevision or Qwen-VL model")
        return Qwen2ForCausalLM._from_config(text_config(spec), attn_implementation="eager")


def _model_classes() -> tuple[type, type]:
    # transformers resolves these lazily; the first access imports their modeling code (seconds).
    from transformers import LlavaOnevisionForConditionalGeneration, Qwen2ForCausalLM

    return LlavaOnevisionForConditionalGeneration, Qwen2ForCausalLM


class StagedDecoder(torch.nn.Module):
    """The real decoder layers run on the tokens a Schedule lets into each layer.

    Input: [1, v₀ + t, d] embeddings, visual tokens first. Before layer i the visual part is cut to
    `visual_tokens[i]` (which tokens is irrelevant to cost); text is never cut. Output: [1, 1, vocab]
    logits of the last position.
    """

    def __init__(self, model: torch.nn.Module, schedule: Schedule) -> None:
        super().__init__()
        decoder = model.model.language_model if hasattr(model.model, "language_model") else model.model
        self.layers, self.rotary, self.norm = decoder.layers, decoder.rotary_emb, decoder.norm
        self.lm_head = model.lm_head
        self.visual_tokens = schedule.visual_tokens

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        visual = self.visual_tokens[0]
        positions = torch.arange(hidden.shape[1], device=hidden.device)[None]  # [1, n] original positions
        for layer, keep in zip(self.layers, self.visual_tokens):
            if keep < visual:
                index = torch.cat([torch.arange(keep, device=hidden.device),
                                   torch.arange(visual, hidden.shape[1], device=hidden.device)])
                hidden, positions, visual = hidden[:, index], positions[:, index], keep
            rope = self.rotary(hidden, positions)  # (cos, sin) [1, n, head_dim] each
            hidden = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=rope)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return self.lm_head(self.norm(hidden)[:, -1:])  # LM head on the last position only


class VideoFeatures(torch.nn.Module):
    """The real vision path of LLaVA-OneVision: [1, T, 3, H, W] frames → vision tower → projector → 2×2
    pooling → [1, T·P' + 1, d] features (with the image-newline token)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model.model
        self.feature_layer = model.config.vision_feature_layer
        self.select_strategy = model.config.vision_feature_select_strategy

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.get_video_features(
            pixel_values_videos=frames, vision_feature_layer=self.feature_layer,
            vision_feature_select_strategy=self.select_strategy).pooler_output


class QwenVideoFeatures(torch.nn.Module):
    """The real vision path of Qwen-VL as the runtime stages it: patch rows → ViT (windowed and full
    layers) → patch merger → [T', P, d] features (`vidcost.runtime.families.qwen_vl`)."""

    def __init__(self, model: torch.nn.Module, video: Any) -> None:
        super().__init__()
        from vidcost.runtime.families import get_family

        self.model, self.video = model, video
        self.family = get_family(model.config.model_type)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        import contextlib

        class _NoTimer:
            def window(self, name: str) -> contextlib.AbstractContextManager:
                return contextlib.nullcontext()

        return self.family.encode_video(self.model, rows, _NoTimer(), self.video)[0]


def _vision_part(model: torch.nn.Module, spec: ModelSpec, device: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """The vision path of the model and a random video input of the spec's shape."""
    from vidcost.cost import QWEN_VL_FAMILIES

    if spec.architecture in QWEN_VL_FAMILIES:
        from vidcost.runtime.families import get_family

        video = get_family(spec.architecture).random_video(model, spec, device)
        return QwenVideoFeatures(model, video), video.pixel_values  # [T'·h·w, 3·2·14·14]
    size = model.config.vision_config.image_size
    return VideoFeatures(model), torch.randn(1, spec.frames, 3, size, size, device=device)  # [1, T, 3, H, W]


def count_flops(spec: ModelSpec, schedule: Schedule, *, include_vision: bool = False, device: str = "meta",
                with_fvcore: bool = True, fvcore_depth: int = 2) -> FlopCount:
    """Count the FLOPs of the real model of `spec` running `schedule` (eager attention, no mask).

    Args:
        spec: the model.
        schedule: tokens entering each layer (text tokens included as they are).
        include_vision: also run the vision tower, projector and pooling (Qwen-VL: the patch merger) on
            `spec.frames` frames.
        device: "meta" (default: no memory) or "cpu" (real random tensors; small models only).
        with_fvcore: also trace with fvcore for the per-module table.
        fvcore_depth: module depth of the fvcore table.

    Raises:
        ConfigError: a layer that no token enters (a real forward cannot run on an empty sequence).
    """
    if schedule.visual_tokens[-1] + schedule.text_tokens == 0:
        raise ConfigError(
            f"layer {schedule.visual_tokens.index(0)} on gets no visual and no text tokens; a real forward "
            "cannot be counted on an empty sequence — keep some visual tokens or pass --text-tokens 1 or more")
    _model_classes()  # import outside the timed window
    start = time.perf_counter()
    model = build_model(spec, device=device, include_vision=include_vision).eval()
    decoder = StagedDecoder(model, schedule)
    embeds = torch.randn(1, schedule.visual_tokens[0] + schedule.text_tokens, spec.hidden_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        decoder(embeds)
    by_operator = _global_counts(counter)
    llm = counter.get_total_flops()
    vision, fvcore_parts = 0, [(decoder, embeds, "LLM decoder + LM head")]
    if include_vision:
        features, frames = _vision_part(model, spec, device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            features(frames)
        vision = counter.get_total_flops()
        for name, value in _global_counts(counter).items():
            by_operator[name] = by_operator.get(name, 0) + value
        fvcore_parts.append((features, frames, "vision tower + projector + pooling"))
    count_seconds = time.perf_counter() - start
    fvcore_flops, table, note = _fvcore(fvcore_parts, fvcore_depth) if with_fvcore else (None, "", "not run")
    analytic = estimate_cost(spec, schedule, convention="exact", include_vision=include_vision).prefill_flops
    return FlopCount(llm + vision, llm, vision, by_operator, analytic, fvcore_flops, table, note,
                     count_seconds, time.perf_counter() - start - count_seconds, device)


def _global_counts(counter: FlopCounterMode) -> dict[str, int]:
    counts = counter.get_flop_counts().get("Global", {})
    return {str(op).removeprefix("aten."): int(value) for op, value in counts.items()}


def _fvcore(parts: list[tuple[torch.nn.Module, torch.Tensor, str]], depth: int) -> tuple[int | None, str, str]:
    """fvcore total and per-module tables of (module, input, label) parts, or why it is unavailable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fvcore scripts helpers with the deprecated torch.jit.script
            from fvcore.nn import FlopCountAnalysis, flop_count_table
    except ImportError as err:
        return None, "", f"fvcore is not installed ({err})"
    total, tables = 0, []
    for module, inputs, label in parts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                analysis = FlopCountAnalysis(module, (inputs,))
                analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                total += int(analysis.total())
                tables.append(f"fvcore — {label}:\n{flop_count_table(analysis, max_depth=depth)}")
        except Exception as err:  # noqa: BLE001 — fvcore's jit trace fails in many ways; report, don't crash
            return None, "", (f"fvcore could not trace the {label} on {inputs.device.type}: "
                              f"{type(err).__name__}: {err}")
    return total, "\n".join(tables), " + ".join(label for _, _, label in parts)
