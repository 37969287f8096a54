"""PromptInputs: the token layout of one video question, and the pixels that go with it.

Layout of the LLM sequence, whatever the family:

    [prefix text p] [video: visual tokens, then the family's separator rows] [question q]

The separator rows (LLaVA-OneVision's `image_newline`; none for Qwen-VL) belong to the video but are not
visual tokens: they are never pruned and count as text tokens, so p + separators + q = `spec.text_tokens`
and the sequence length is exactly what a Schedule prices. The question follows the video, so the last
token (FastV) and the question rows (PruneVid) attend to it. Each family lays out its own template and
position ids (`vidcost.runtime.families`); the full, unpruned layout's ids are kept here, and a pruned
sequence takes its tokens' columns from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError
from vidcost.runtime.families import get_family
from vidcost.runtime.video import decode_video, load_normalisation, synthetic_video

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vidcost.runtime.families import Family, PromptTemplate
    from vidcost.runtime.model import LoadedModel
    from vidcost.spec import ModelSpec

DEFAULT_QUESTION = "What happens in this video, and in what order?"


@dataclass(frozen=True)
class PromptInputs:
    """One video question, ready for the staged runtime and for the stock forward.

    Attributes:
        pixel_values: what the vision tower takes (LLaVA-OV: [T, 3, S, S] frames; Qwen-VL: patch rows).
        prefix_ids: [p] token ids before the video.
        question_ids: [q] token ids after the video (template head, question, template tail).
        spec: the model spec with `frames` and `text_tokens` (= p + separators + q) of these inputs.
        video_token_id: the placeholder id of a video token in `input_ids()`.
        question_rows: (start, stop) of the user's question itself within `question_ids`, without the
            chat template around it: what query-dependent methods read as the instruction.
        position_ids: the full layout's position ids, [1, N] (RoPE) or [3, 1, N] (M-RoPE); None means
            0 … N−1.
        next_position: the position of the first generated token (after the largest of the layout's).
        separator_tokens: the video's rows after its visual tokens that are not visual tokens.
        grid_thw: (temporal patches, patch rows, patch columns) for Qwen-VL; None otherwise.
        vision_kwargs: the vision tower's grid-derived tensors (see `families.VideoPixels`).
    """

    pixel_values: "torch.Tensor"
    prefix_ids: "torch.Tensor"
    question_ids: "torch.Tensor"
    spec: "ModelSpec"
    video_token_id: int
    question_rows: tuple[int, int] = (0, 0)
    position_ids: "torch.Tensor | None" = None
    next_position: int = 0
    separator_tokens: int = 1
    grid_thw: tuple[int, int, int] | None = None
    vision_kwargs: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def num_frames(self) -> int:
        return int(self.spec.frames)

    def input_ids(self) -> "torch.Tensor":
        """[1, p + T·P + separators + q] ids with a video placeholder per video row, as the stock forward expects."""
        import torch

        placeholders = self.spec.num_visual_tokens + self.separator_tokens
        video = torch.full((placeholders,), self.video_token_id, dtype=torch.long, device=self.prefix_ids.device)
        return torch.cat([self.prefix_ids, video, self.question_ids])[None]

    def layout_positions(self) -> "torch.Tensor":
        """`position_ids`, or 0 … N−1 when none were laid out."""
        import torch

        if self.position_ids is not None:
            return self.position_ids
        return torch.arange(self.input_ids().shape[1], device=self.prefix_ids.device)[None]

    def __str__(self) -> str:
        return (f"PromptInputs({self.num_frames} frames, {self.prefix_ids.numel()} prefix + "
                f"{self.separator_tokens} separator + {self.question_ids.numel()} question tokens)")


def build_inputs(loaded: "LoadedModel", *, frames: int | None = None, video: "str | np.ndarray | None" = None,
                 question: str | None = None, seed: int = 0, model_path: str | None = None) -> PromptInputs:
    """Pixels (synthetic or decoded) and token ids for one question, laid out as the model's family does.

    Args:
        loaded: the model (its spec gives the frame size, frames and text tokens; its tokenizer, if
            any, tokenises `question`).
        frames: override the spec's frame count.
        video: a video file to decode with PyAV, frames already decoded by `decode_video` (uint8
            [T, H, W, 3]), or None for the seeded synthetic clip.
        question: question text (tokenised only when the model has a tokenizer).
        seed: seeds the synthetic clip and the random token ids.
        model_path: a model directory whose preprocessor_config.json gives the normalisation.

    Raises:
        ConfigError: frames < 1, or fewer than 2 text tokens (a separator or prefix and one question token).
        ProfilingError: an undecodable video.
    """
    import torch

    family = get_family(loaded.spec.architecture)
    spec = loaded.spec.with_overrides(frames=frames)
    size = spec.frame_shape
    if video is None:
        raw = synthetic_video(spec.frames, size, seed)
    elif isinstance(video, str):
        raw = decode_video(video, spec.frames, size)
    else:
        raw = video
    pixels = family.video_pixels(loaded.model, raw, spec, load_normalisation(model_path, family.normalisation),
                                 loaded.device)
    config = loaded.model.config
    if loaded.tokenizer is not None:
        prefix, after, rows = _tokenise(loaded.tokenizer, question or DEFAULT_QUESTION, family.template)
    else:
        prefix, after = _random_ids(spec, config, seed, family.separator_tokens)
        rows = (0, len(after))  # seeded ids have no template: all of them stand for the question
    spec = spec.with_overrides(text_tokens=len(prefix) + family.separator_tokens + len(after))
    as_tensor = lambda ids: torch.tensor(ids, dtype=torch.long, device=loaded.device)  # noqa: E731
    inputs = PromptInputs(pixel_values=pixels.pixel_values, prefix_ids=as_tensor(prefix),
                          question_ids=as_tensor(after), spec=spec, video_token_id=int(config.video_token_id),
                          question_rows=rows, separator_tokens=family.separator_tokens, grid_thw=pixels.grid_thw,
                          vision_kwargs=pixels.vision_kwargs)
    return _with_layout(inputs, family, loaded.model, pixels)


def _with_layout(inputs: PromptInputs, family: "Family", model: Any, pixels: Any) -> PromptInputs:
    """The inputs with their full layout's position ids and the first generated token's position.

    Computed once, here: the positions depend only on the layout, and reading their maximum is a
    host read that must not happen inside a timed prefill.
    """
    import torch

    with torch.inference_mode():
        positions = family.layout_positions(model, inputs.input_ids(), pixels)
    return dataclasses.replace(inputs, position_ids=positions, next_position=int(positions.max()) + 1)


def _tokenise(tokenizer: Any, question: str, template: "PromptTemplate") -> tuple[list[int], list[int], tuple[int, int]]:
    """Prefix ids, the ids after the video, and where the question itself lies among the latter.

    The three parts after the video are tokenised apart so that the question's rows are known exactly.
    """
    encode = lambda text: list(tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
    head, body, tail = encode(template.question_head), encode(question), encode(template.question_tail)
    return encode(template.prefix), head + body + tail, (len(head), len(head) + len(body))


def check_text_tokens(text_tokens: int) -> None:
    """Seeded prompts need room for the video's separator (or a prefix token) and one question token.

    Raises:
        ConfigError: fewer than 2 text tokens.
    """
    if text_tokens < 2:
        raise ConfigError(
            f"text tokens {text_tokens} leave no question after the video's newline token; "
            "pass --text-tokens 2 or more")


def _random_ids(spec: "ModelSpec", config: Any, seed: int, separators: int = 1) -> tuple[list[int], list[int]]:
    """Seeded ids: a quarter of the text tokens before the video, the rest (minus the separators) after it."""
    import torch

    check_text_tokens(spec.text_tokens)
    prefix_len = spec.text_tokens // 4
    question_len = spec.text_tokens - prefix_len - separators
    # Stay below the special ids (image / video placeholders, vision start / end sit at the top).
    special = [int(getattr(config, name)) for name in ("image_token_id", "video_token_id", "vision_start_token_id",
                                                        "vision_end_token_id") if getattr(config, name, None) is not None]
    high = min(*special, spec.vocab_size)
    generator = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, high, (prefix_len + question_len,), generator=generator).tolist()
    return ids[:prefix_len], ids[prefix_len:]
