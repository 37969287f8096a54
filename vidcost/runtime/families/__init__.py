"""Model families: what differs between Video-LLM families in the staged runtime, one module per family.

The staged prefill (`vidcost.runtime.prefill.StagedRuntime`) is one loop for every family. What differs
sits behind `Family`, found by its name — the transformers `model_type`, which is also
`ModelSpec.architecture`: `get_family("qwen2_5_vl")`.

A family says how to build its transformers model (`hf_config`, `model_class`), how its prompt wraps the
video (`template`, `separator_tokens`), how decoded frames become the pixels its vision tower takes
(`video_pixels`), the position ids of the full, unpruned sequence (`layout_positions`: 1-D RoPE, or
M-RoPE's (t, h, w) rows), how pixels become `[T', P, D]` features (`encode_video`), and what the stock
`model(...)` forward takes (`stock_inputs`). The decoder layers, the KV cache, the method calls and the
decode steps are the runtime's, the same for all.

Each module `vidcost.runtime.families.<module>` lists its families in `FAMILIES`; they are discovered
here, so adding a family touches only its module (and its presets in `vidcost.spec`).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from vidcost.errors import ConfigError
from vidcost.runtime.video import Normalisation

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vidcost.runtime.inputs import PromptInputs
    from vidcost.spec import ModelSpec


@dataclass(frozen=True)
class PromptTemplate:
    """The chat template around the video: prefix, video, question head, question, question tail."""

    prefix: str
    question_head: str
    question_tail: str


@dataclass(frozen=True)
class VideoPixels:
    """What a family's vision tower takes for one video.

    Attributes:
        pixel_values: the tensor the tower runs on (LLaVA-OV: [T, 3, S, S] frames; Qwen-VL: one row per
            2×14×14 patch, [T'·h·w, 3·2·14·14]).
        grid_thw: (temporal patches, patch rows, patch columns), for families that need it; else None.
        vision_kwargs: tensors the tower derives from the grid alone (window index, sequence
            boundaries, rotary positions), computed once here so that the timed encode never waits on
            the host for them.
    """

    pixel_values: "torch.Tensor"
    grid_thw: tuple[int, int, int] | None = None
    vision_kwargs: dict[str, Any] = field(default_factory=dict, compare=False)


class Family:
    """The family-specific half of the staged runtime. Subclasses set the class attributes and override
    the methods; instances hold no state (one per family, shared).

    Attributes:
        name: the transformers `model_type` (= `ModelSpec.architecture`).
        mrope: position ids are M-RoPE's [3, 1, N] (time, height, width) rather than RoPE's [1, N].
        separator_tokens: rows the video adds after its visual tokens that are never pruned
            (LLaVA-OV's `image_newline`); they count as text tokens.
        template: the chat template around the video, used when the model has a tokenizer.
        normalisation: the image processor's default mean / std.
    """

    name: ClassVar[str] = ""
    mrope: ClassVar[bool] = False
    separator_tokens: ClassVar[int] = 0
    template: ClassVar[PromptTemplate]
    normalisation: ClassVar[Normalisation] = Normalisation()

    def hf_config(self, spec: "ModelSpec") -> Any:
        """The transformers config of a spec: its own config.json when it came from one, else built from dims."""
        raise NotImplementedError

    def model_class(self) -> type:
        """The transformers `...ForConditionalGeneration` class."""
        raise NotImplementedError

    def fit_to_video(self, spec: "ModelSpec", path: str) -> "ModelSpec":
        """The spec at the frame size this family's processor gives the video file at `path`; the spec
        itself for a family of fixed frame size (its frames are resized to it)."""
        return spec

    def decoder(self, model: Any) -> Any:
        """The text decoder (`embed_tokens`, `layers`, `norm`, `rotary_emb`) of a loaded model."""
        return model.model.language_model

    def video_pixels(self, model: Any, frames: "np.ndarray", spec: "ModelSpec", normalisation: Normalisation,
                     device: str) -> VideoPixels:
        """uint8 frames [T, H, W, 3] → what the vision tower takes (see `VideoPixels`)."""
        raise NotImplementedError

    def random_video(self, model: Any, spec: "ModelSpec", device: str) -> VideoPixels:
        """Random pixels of the spec's video shape on any device (the meta device included), for counting
        FLOPs on the real model."""
        raise NotImplementedError

    def layout_positions(self, model: Any, input_ids: "torch.Tensor", video: VideoPixels) -> "torch.Tensor":
        """Position ids of the full prompt `input_ids` [1, N], as the stock forward computes them:
        [1, N] for RoPE, [3, 1, N] for M-RoPE."""
        raise NotImplementedError

    def encode_video(self, model: Any, pixel_values: "torch.Tensor", timer: Any,
                     video: "PromptInputs | VideoPixels | None") -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """Pixels → visual features [T', P, D] and the separator embedding [D] (or None), in the timed
        windows `vision` and `projector`; `video` gives the grid-derived tensors (`grid_thw`,
        `vision_kwargs`) where the family needs them."""
        raise NotImplementedError

    def stock_inputs(self, inputs: "PromptInputs") -> dict[str, Any]:
        """Keyword arguments of the stock `model(...)` forward on the same prompt and video."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


@lru_cache(maxsize=1)
def _registry() -> dict[str, Family]:
    """Every family of every module in this package, by name."""
    families: dict[str, Family] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for family_class in getattr(module, "FAMILIES", ()):
            families[family_class.name] = family_class()
    return families


def family_names() -> list[str]:
    """The families the runtime can run, sorted."""
    return sorted(_registry())


def get_family(name: str) -> Family:
    """The family called `name` (a transformers `model_type`, e.g. a spec's `architecture`).

    Raises:
        ConfigError: a family the runtime does not run; the message lists those it does.
    """
    family = _registry().get(name)
    if family is None:
        raise ConfigError(f"the runtime does not run '{name}' models; supported families: {family_names()} "
                          "(pass --model with one of their presets or config.json files)")
    return family


__all__ = ["Family", "PromptTemplate", "VideoPixels", "family_names", "get_family"]
