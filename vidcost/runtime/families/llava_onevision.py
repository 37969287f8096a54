"""LLaVA-OneVision in the staged runtime: SigLIP per frame, a two-layer projector, 2×2 bilinear pooling.

Layout of the LLM sequence (the stock video layout):

    [prefix text p] [video T·P] [image_newline 1] [question q]

The stock HF video path appends one `image_newline` embedding after all T·P video tokens. vidcost keeps
it and does not treat it as a visual token: it is never pruned and it counts as one of the spec's text
tokens (`separator_tokens`), so p + 1 + q = `spec.text_tokens` and the sequence length is exactly what a
Schedule prices. Positions are 1-D RoPE: 0 … N−1 over the full layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidcost.runtime.families import Family, PromptTemplate, VideoPixels
from vidcost.runtime.video import Normalisation, preprocess

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vidcost.runtime.inputs import PromptInputs
    from vidcost.spec import ModelSpec


class LlavaOnevision(Family):
    """`LlavaOnevisionForConditionalGeneration`: SigLIP frames, projector, 2×2 pooling, one newline token."""

    name = "llava_onevision"
    separator_tokens = 1  # the image_newline embedding after the video
    # Qwen2 chat template (the LLaVA-OneVision LLMs are Qwen2).
    template = PromptTemplate(prefix="<|im_start|>user\n", question_head="\n",
                              question_tail="<|im_end|>\n<|im_start|>assistant\n")
    normalisation = Normalisation()  # SigLIP's: mean = std = 0.5

    def hf_config(self, spec: "ModelSpec") -> Any:
        from vidcost.hfconfig import llava_onevision_config

        return llava_onevision_config(spec)

    def model_class(self) -> type:
        from transformers import LlavaOnevisionForConditionalGeneration

        return LlavaOnevisionForConditionalGeneration

    def video_pixels(self, model: Any, frames: "np.ndarray", spec: "ModelSpec", normalisation: Normalisation,
                     device: str) -> VideoPixels:
        dtype = next(model.parameters()).dtype
        return VideoPixels(preprocess(frames, spec.image_size, normalisation, device=device, dtype=dtype))

    def random_video(self, model: Any, spec: "ModelSpec", device: str) -> VideoPixels:
        import torch

        size = model.config.vision_config.image_size
        return VideoPixels(torch.randn(spec.frames, 3, size, size, device=device))  # [T, 3, S, S]

    def layout_positions(self, model: Any, input_ids: "torch.Tensor", video: VideoPixels) -> "torch.Tensor":
        import torch

        return torch.arange(input_ids.shape[1], device=input_ids.device)[None]  # [1, N]

    def encode_video(self, model: Any, pixel_values: "torch.Tensor", timer: Any,
                     video: "PromptInputs | VideoPixels | None") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Pixels [T, 3, S, S] → pooled visual features [T, P, D] and the newline embedding [D].

        The same computation as the stock `LlavaOnevisionModel.get_video_features`, split into two timed
        windows.
        """
        import torch

        llava, config = model.model, model.config
        with torch.inference_mode():
            with timer.window("vision"):
                out = llava.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
                layer = config.vision_feature_layer
                if isinstance(layer, int):
                    selected = out.hidden_states[layer]  # [T, patches, Dv]
                else:
                    selected = torch.cat([out.hidden_states[i] for i in layer], dim=-1)
                if config.vision_feature_select_strategy == "default":
                    selected = selected[:, 1:]
            with timer.window("projector"):
                projected = llava.multi_modal_projector(selected)  # [T, patches, D]
                features = llava.apply_pooling(projected)  # [T, P, D]: 2×2 bilinear (LLaVA-OV)
        return features, llava.image_newline

    def stock_inputs(self, inputs: "PromptInputs") -> dict[str, Any]:
        return dict(input_ids=inputs.input_ids(), pixel_values_videos=inputs.pixel_values[None])


FAMILIES = (LlavaOnevision,)
