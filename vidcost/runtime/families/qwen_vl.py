"""Qwen2.5-VL and Qwen2-VL in the staged runtime: a ViT over 2-frame temporal patches, a 2×2 patch merger, M-RoPE.

Layout of the LLM sequence (the stock video layout, no separator token):

    [prefix text p, ending in <|vision_start|>] [video T'·P] [<|vision_end|>, question q]

Frames are grouped by the temporal patch (2): T frames give T' = ⌈T/2⌉ sets of P = (H/28)·(W/28) merged
tokens; a last patch that is not full repeats the last frame, as `Qwen2VLVideoProcessor.patchify` pads
it. The methods see `[T', P, D]`. Positions are M-RoPE's three rows (time, height, width) from the stock
`get_rope_index` over the full layout: a kept visual token keeps its (t, h, w), text after the video
keeps its full-layout position, and decode continues after the largest one, as the stock forward
numbers it (its `rope_deltas`). The rotary embedding composes the three sections into one cos/sin
[1, N, head_dim] per token, so the decoder layers and `query_attention` apply them as 1-D RoPE.

Qwen2.5-VL's tower attends within 112 px windows except in its full-attention layers
(`fullatt_block_indexes`); Qwen2-VL's attends over the whole frame in every layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError, ProfilingError
from vidcost.runtime.families import Family, PromptTemplate, VideoPixels
from vidcost.runtime.video import Normalisation, preprocess

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vidcost.runtime.inputs import PromptInputs
    from vidcost.spec import ModelSpec

# Qwen2VLVideoProcessor's default pixel bounds per frame: 128 to 768 merged tokens of 28 × 28 px.
VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS = 128 * 28 * 28, 768 * 28 * 28
# OpenAI CLIP's normalisation: the Qwen-VL image and video processors' default mean / std.
CLIP_NORMALISATION = Normalisation(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711))
QWEN_TEMPLATE = PromptTemplate(prefix="<|im_start|>user\n<|vision_start|>", question_head="<|vision_end|>",
                               question_tail="<|im_end|>\n<|im_start|>assistant\n")
ROPE_THETA = 1_000_000.0
TOKENS_PER_SECOND = 2  # Qwen2.5-VL's temporal M-RoPE step per second of video (published configs)
# The published configs' special ids (vocabulary ≥ 151657); small presets use the top of their vocabulary.
QWEN_SPECIAL_IDS = dict(vision_start_token_id=151652, vision_end_token_id=151653, image_token_id=151655,
                        video_token_id=151656)
VIDEO_TOKEN_TYPE = 2  # mm_token_type_ids: text 0, image 1, video 2


class QwenVL(Family):
    """Shared by Qwen2.5-VL and Qwen2-VL; the subclasses name the transformers classes and the tower config."""

    mrope = True
    separator_tokens = 0
    template = QWEN_TEMPLATE
    normalisation = CLIP_NORMALISATION
    config_class_name = ""
    model_class_name = ""

    def hf_config(self, spec: "ModelSpec") -> Any:
        import transformers

        config_class = getattr(transformers, self.config_class_name)
        if spec.config_path:
            from vidcost.spec import read_config_json

            return config_class(**read_config_json(Path(spec.config_path)))
        special = dict(QWEN_SPECIAL_IDS)
        if spec.vocab_size <= max(special.values()):
            top = spec.vocab_size
            special = dict(vision_start_token_id=top - 4, vision_end_token_id=top - 3, image_token_id=top - 2,
                           video_token_id=top - 1)
        return config_class(text_config=_text_config(spec), vision_config=self.vision_config(spec),
                            tie_word_embeddings=spec.tie_word_embeddings, **special)

    def vision_config(self, spec: "ModelSpec") -> dict[str, Any]:
        """The tower's config keys for a spec built from dimensions."""
        raise NotImplementedError

    def model_class(self) -> type:
        import transformers

        return getattr(transformers, self.model_class_name)

    def fit_to_video(self, spec: "ModelSpec", path: str) -> "ModelSpec":
        """The video's own size, resized as the processor does (transformers' `smart_resize`: multiples of
        28 px, aspect ratio kept, pixels within the video processor's default bounds)."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        from vidcost.runtime.video import video_size

        height, width = video_size(path)
        grid = spec.patch_size * spec.pool_stride
        return spec.with_resolution(*smart_resize(height, width, factor=grid, min_pixels=VIDEO_MIN_PIXELS,
                                                  max_pixels=VIDEO_MAX_PIXELS))

    def video_pixels(self, model: Any, frames: "np.ndarray", spec: "ModelSpec", normalisation: Normalisation,
                     device: str) -> VideoPixels:
        """Frames → one row per 2×14×14 patch, in the merger's block order, and the grid-derived tensors.

        Mirrors `Qwen2VLVideoProcessor.patchify` (pad to a whole temporal patch by repeating the last
        frame, then the 10-axis permute to [T'·h·w, C·2·14·14]) on vidcost's own resize and normalisation.
        """
        import torch

        visual = model.model.visual.config
        patch, merge, temporal = visual.patch_size, visual.spatial_merge_size, visual.temporal_patch_size
        height, width = spec.frame_shape
        grid = patch * merge
        if height % grid or width % grid:
            raise ConfigError(f"frames of {height}x{width} px are not a multiple of the {grid} px patch grid of "
                              f"'{spec.name}'; pass --resolution with multiples of {grid}")
        pixels = preprocess(frames, (height, width), normalisation, device=device)  # [T, 3, H, W] float32
        if pad := -pixels.shape[0] % temporal:
            pixels = torch.cat([pixels, pixels[-1:].expand(pad, -1, -1, -1)])
        grid_t, grid_h, grid_w = pixels.shape[0] // temporal, height // patch, width // patch
        patches = pixels.view(grid_t, temporal, 3, grid_h // merge, merge, patch, grid_w // merge, merge, patch)
        patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [t, bh, bw, mh, mw, C, tp, ph, pw]
        rows = patches.reshape(grid_t * grid_h * grid_w, 3 * temporal * patch * patch)
        dtype = next(model.parameters()).dtype
        grid_thw = (grid_t, grid_h, grid_w)
        return VideoPixels(rows.to(dtype), grid_thw, _vision_kwargs(model.model.visual, grid_thw, device))

    def random_video(self, model: Any, spec: "ModelSpec", device: str) -> VideoPixels:
        import torch

        visual = model.model.visual.config
        patch, temporal = visual.patch_size, visual.temporal_patch_size
        height, width = spec.frame_shape
        grid_thw = (spec.temporal_patches, height // patch, width // patch)
        rows = torch.randn(grid_thw[0] * grid_thw[1] * grid_thw[2], 3 * temporal * patch * patch, device=device)
        return VideoPixels(rows, grid_thw, _vision_kwargs(model.model.visual, grid_thw, device))

    def layout_positions(self, model: Any, input_ids: "torch.Tensor", video: VideoPixels) -> "torch.Tensor":
        """The stock `get_rope_index` on the full prompt: [3, 1, N] (time, height, width) ids.

        The video is taken at one second per temporal patch (the Qwen-VL default of 2 sampled frames per
        second), as the stock forward does when it is given no `second_per_grid_ts`.
        """
        import torch

        grid = torch.tensor([video.grid_thw], device=input_ids.device)
        positions, _ = model.model.get_rope_index(input_ids, mm_token_type_ids=_token_types(input_ids, model),
                                                  video_grid_thw=grid)
        return positions

    def encode_video(self, model: Any, pixel_values: "torch.Tensor", timer: Any,
                     video: "PromptInputs | VideoPixels | None") -> tuple["torch.Tensor", None]:
        """Patch rows → merged visual features [T', P, D]; no separator.

        The stock `Qwen2_5_VisionTransformerPretrainedModel.forward` (and Qwen2-VL's, without windows),
        split so that the patch merger is the `projector` window: patch embedding, window permutation,
        rotary embedding, the blocks (full or windowed sequences), then the merger and the inverse
        permutation. The grid-derived tensors come precomputed from `video_pixels`.
        """
        import torch

        if video is None or video.grid_thw is None:
            raise ProfilingError(f"encoding a {self.name} video needs its grid; pass inputs= (from build_inputs)")
        visual, grid_t = model.model.visual, video.grid_thw[0]
        extra = video.vision_kwargs
        windowed = "window_index" in extra
        with torch.inference_mode():
            with timer.window("vision"):
                hidden = visual.patch_embed(pixel_values.type(visual.dtype))  # [S, Dv]
                rope = visual.rotary_pos_emb(hidden, extra["position_ids"])
                if windowed:  # tokens of one window become contiguous
                    hidden, rope = _by_window(visual, extra, hidden), tuple(_by_window(visual, extra, r) for r in rope)
                for index, block in enumerate(visual.blocks):
                    full = not windowed or index in visual.fullatt_block_indexes
                    key = "" if full else "window_"
                    hidden = block(hidden, cu_seqlens=extra[f"cu_{key}seqlens"], max_seqlen=extra[f"max_{key}seqlen"],
                                   position_embeddings=rope)
            with timer.window("projector"):
                merged = visual.merger(hidden)  # [T'·P, D]
                if windowed:
                    merged = merged[extra["reverse_index"]]
        return merged.view(grid_t, -1, merged.shape[-1]), None

    def stock_inputs(self, inputs: "PromptInputs") -> dict[str, Any]:
        import torch

        ids = inputs.input_ids()
        return dict(input_ids=ids, pixel_values_videos=inputs.pixel_values,
                    video_grid_thw=torch.tensor([inputs.grid_thw], device=ids.device),
                    mm_token_type_ids=(ids == inputs.video_token_id).int() * VIDEO_TOKEN_TYPE)


class Qwen2_5_VL(QwenVL):
    """`Qwen2_5_VLForConditionalGeneration`: windowed-attention ViT with SwiGLU MLPs."""

    name = "qwen2_5_vl"
    config_class_name = "Qwen2_5_VLConfig"
    model_class_name = "Qwen2_5_VLForConditionalGeneration"

    def vision_config(self, spec: "ModelSpec") -> dict[str, Any]:
        return dict(depth=spec.vision_layers, hidden_size=spec.vision_hidden_size,
                    intermediate_size=spec.vision_intermediate_size, num_heads=spec.vision_heads,
                    out_hidden_size=spec.hidden_size, patch_size=spec.patch_size, spatial_merge_size=spec.pool_stride,
                    temporal_patch_size=spec.temporal_patch_size, window_size=spec.vision_window_size,
                    fullatt_block_indexes=list(spec.vision_full_attention_layers), tokens_per_second=TOKENS_PER_SECOND,
                    hidden_act="silu")


class Qwen2_VL(QwenVL):
    """`Qwen2VLForConditionalGeneration`: full-attention ViT with a two-matrix QuickGELU MLP."""

    name = "qwen2_vl"
    config_class_name = "Qwen2VLConfig"
    model_class_name = "Qwen2VLForConditionalGeneration"

    def vision_config(self, spec: "ModelSpec") -> dict[str, Any]:
        ratio, remainder = divmod(spec.vision_intermediate_size, spec.vision_hidden_size)
        if remainder:
            raise ConfigError(f"Qwen2-VL's vision MLP is an integer multiple (mlp_ratio) of its width; "
                              f"{spec.vision_intermediate_size} / {spec.vision_hidden_size} is not")
        return dict(depth=spec.vision_layers, embed_dim=spec.vision_hidden_size, mlp_ratio=ratio,
                    num_heads=spec.vision_heads, hidden_size=spec.hidden_size, patch_size=spec.patch_size,
                    spatial_merge_size=spec.pool_stride, temporal_patch_size=spec.temporal_patch_size)


def _text_config(spec: "ModelSpec") -> dict[str, Any]:
    """The Qwen2 decoder of a spec with M-RoPE: the head's rotary half split 2:3:3 into (t, h, w)
    sections, as the published [16, 24, 24] of a 128-wide head."""
    half = spec.head_dim // 2
    section = [half // 4, 3 * half // 8]
    section.append(half - sum(section))
    small_vocab = spec.vocab_size <= max(QWEN_SPECIAL_IDS.values())
    return dict(hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
                num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
                num_key_value_heads=spec.num_kv_heads, vocab_size=spec.vocab_size, hidden_act="silu",
                rms_norm_eps=1e-6, max_position_embeddings=max(32768, 2 * (spec.num_visual_tokens + spec.text_tokens)),
                rope_parameters=dict(rope_type="default", rope_theta=ROPE_THETA, mrope_section=section),
                tie_word_embeddings=spec.tie_word_embeddings,
                **(dict(bos_token_id=None, eos_token_id=None) if small_vocab else {}))


def _vision_kwargs(visual: Any, grid_thw: tuple[int, int, int], device: str) -> dict[str, Any]:
    """What the tower computes from the grid alone (transformers.vision_utils), computed once per video.

    The sequence boundaries stay on the CPU unless the tower runs flash attention: its other attention
    paths split by them on the host, which from a device tensor would synchronise inside every layer.
    """
    import torch
    from transformers import vision_utils
    from transformers.utils.generic import get_max_seqlen, is_flash_attention_requested

    config = visual.config
    grid = torch.tensor([grid_thw])  # [1, 3] on the CPU
    boundaries_device = device if is_flash_attention_requested(config) else "cpu"
    cu_seqlens, max_seqlen = vision_utils.get_vision_attention_seqlens(grid, config)
    extra: dict[str, Any] = dict(
        position_ids=vision_utils.get_vision_position_ids(grid, config.spatial_merge_size).to(device),
        cu_seqlens=cu_seqlens.to(boundaries_device), max_seqlen=max_seqlen)
    if getattr(config, "fullatt_block_indexes", None) is not None and getattr(config, "window_size", 0):
        window_index, cu_window = vision_utils.get_vision_window_index(
            grid, spatial_merge_size=config.spatial_merge_size, window_size=config.window_size,
            patch_size=config.patch_size)
        extra.update(window_index=window_index.to(device), reverse_index=torch.argsort(window_index).to(device),
                     cu_window_seqlens=cu_window.to(boundaries_device),
                     max_window_seqlen=get_max_seqlen(cu_window, config))
    return extra


def _by_window(visual: Any, extra: dict[str, Any], rows: "torch.Tensor") -> "torch.Tensor":
    """Reorder patch rows [S, ·] so that each window's merge blocks are contiguous (the stock
    `permute_input_for_window_attn`)."""
    return visual.permute_input_for_window_attn(rows, extra["window_index"], seq_len=rows.shape[0])


def _token_types(input_ids: "torch.Tensor", model: Any) -> "torch.Tensor":
    """mm_token_type_ids of a prompt: 2 on the video placeholders, 0 on text."""
    return (input_ids == model.config.video_token_id).int() * VIDEO_TOKEN_TYPE


FAMILIES = (Qwen2_5_VL, Qwen2_VL)
