"""PromptInputs: the token layout of one video question, and the pixels that go with it.

Layout of the LLM sequence (the stock LLaVA-OneVision video layout):

    [prefix text p] [video T·P] [image_newline 1] [question q]

The stock HF video path appends one `image_newline` embedding after all T·P video tokens. vidcost keeps
it and does not treat it as a visual token: it is never pruned and it counts as one of the spec's text
tokens, so p + 1 + q = `spec.text_tokens` and the sequence length is exactly what a Schedule prices.
The question follows the video, so the last token (FastV) and the question rows (PruneVid) attend to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError
from vidcost.runtime.video import decode_video, load_normalisation, preprocess, synthetic_video

if TYPE_CHECKING:
    import numpy as np
    import torch

    from vidcost.runtime.model import LoadedModel
    from vidcost.spec import ModelSpec

DEFAULT_QUESTION = "What happens in this video, and in what order?"
PREFIX_TEMPLATE = "<|im_start|>user\n"
# The text after the video: QUESTION_HEAD, the user's question, QUESTION_TAIL (Qwen2 chat template).
QUESTION_HEAD = "\n"
QUESTION_TAIL = "<|im_end|>\n<|im_start|>assistant\n"


@dataclass(frozen=True)
class PromptInputs:
    """One video question, ready for the staged runtime and for the stock forward.

    Attributes:
        pixel_values: [T, 3, S, S] normalised frames.
        prefix_ids: [p] token ids before the video.
        question_ids: [q] token ids after the video's newline token (template head, question, template tail).
        spec: the model spec with `frames` and `text_tokens` (= p + 1 + q) of these inputs.
        video_token_id: the placeholder id of a video token in `input_ids()`.
        question_rows: (start, stop) of the user's question itself within `question_ids`, without the
            chat template around it: what query-dependent methods read as the instruction.
    """

    pixel_values: "torch.Tensor"
    prefix_ids: "torch.Tensor"
    question_ids: "torch.Tensor"
    spec: "ModelSpec"
    video_token_id: int
    question_rows: tuple[int, int] = (0, 0)

    @property
    def num_frames(self) -> int:
        return int(self.pixel_values.shape[0])

    def input_ids(self) -> "torch.Tensor":
        """[1, p + T·P + 1 + q] ids with T·P + 1 video placeholders, as the stock forward expects."""
        import torch

        placeholders = self.spec.num_visual_tokens + 1  # + the image_newline token
        video = torch.full((placeholders,), self.video_token_id, dtype=torch.long, device=self.prefix_ids.device)
        return torch.cat([self.prefix_ids, video, self.question_ids])[None]

    def __str__(self) -> str:
        return (f"PromptInputs({self.num_frames} frames, {self.prefix_ids.numel()} prefix + 1 newline + "
                f"{self.question_ids.numel()} question tokens)")


def build_inputs(loaded: "LoadedModel", *, frames: int | None = None, video: "str | np.ndarray | None" = None,
                 question: str | None = None, seed: int = 0, model_path: str | None = None) -> PromptInputs:
    """Pixels (synthetic or decoded) and token ids for one question.

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
        ConfigError: frames < 1, or fewer than 2 text tokens (a newline and one question token).
        ProfilingError: an undecodable video.
    """
    import torch

    spec = loaded.spec.with_overrides(frames=frames)
    size = spec.image_size
    if video is None:
        raw = synthetic_video(spec.frames, size, seed)
    elif isinstance(video, str):
        raw = decode_video(video, spec.frames, size)
    else:
        raw = video
    dtype = next(loaded.model.parameters()).dtype
    pixels = preprocess(raw, size, load_normalisation(model_path), device=loaded.device, dtype=dtype)
    config = loaded.model.config
    if loaded.tokenizer is not None:
        prefix, after, rows = _tokenise(loaded.tokenizer, question or DEFAULT_QUESTION)
    else:
        prefix, after = _random_ids(spec, config, seed)
        rows = (0, len(after))  # seeded ids have no template: all of them stand for the question
    spec = spec.with_overrides(text_tokens=len(prefix) + 1 + len(after))
    as_tensor = lambda ids: torch.tensor(ids, dtype=torch.long, device=loaded.device)  # noqa: E731
    return PromptInputs(pixel_values=pixels, prefix_ids=as_tensor(prefix), question_ids=as_tensor(after),
                        spec=spec, video_token_id=int(config.video_token_id), question_rows=rows)


def _tokenise(tokenizer: Any, question: str) -> tuple[list[int], list[int], tuple[int, int]]:
    """Prefix ids, the ids after the video, and where the question itself lies among the latter.

    The three parts after the video are tokenised apart so that the question's rows are known exactly.
    """
    encode = lambda text: list(tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
    head, body, tail = encode(QUESTION_HEAD), encode(question), encode(QUESTION_TAIL)
    return encode(PREFIX_TEMPLATE), head + body + tail, (len(head), len(head) + len(body))


def check_text_tokens(text_tokens: int) -> None:
    """Seeded prompts need the video's newline token and at least one question token after it.

    Raises:
        ConfigError: fewer than 2 text tokens.
    """
    if text_tokens < 2:
        raise ConfigError(
            f"text tokens {text_tokens} leave no question after the video's newline token; "
            "pass --text-tokens 2 or more")


def _random_ids(spec: "ModelSpec", config: Any, seed: int) -> tuple[list[int], list[int]]:
    """Seeded ids: a quarter of the text tokens before the video, the rest (minus the newline) after it."""
    import torch

    check_text_tokens(spec.text_tokens)
    prefix_len = spec.text_tokens // 4
    question_len = spec.text_tokens - prefix_len - 1
    # Stay below the special ids (image / video placeholders sit at the top of the vocabulary).
    high = min(int(config.image_token_id), int(config.video_token_id), spec.vocab_size)
    generator = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, high, (prefix_len + question_len,), generator=generator).tolist()
    return ids[:prefix_len], ids[prefix_len:]
