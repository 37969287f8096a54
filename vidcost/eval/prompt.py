"""A request's video and question → the staged runtime's `PromptInputs`, through the model's own processor.

The frames are sampled as lmms-eval's own LLaVA-OneVision backends sample them (`llava_hf.load_video`:
`np.linspace(0, total − 1, frames, dtype=int)` over the decoded frames, at the file's own size), with decord
where it is installed (what those backends read with) and PyAV otherwise. The chat text is the model
directory's chat template on one user message — the video, then the request's context — and the
processor (tokenizer, image and video processors) turns text and frames into `input_ids` and pixels
exactly as for `model.generate`. `prompt_inputs` then cuts those ids at the video's placeholder run into
the runtime's prefix / video / question layout, and takes the position ids the stock forward would use
(Qwen-VL: `get_rope_index` with the processor's `second_per_grid_ts`), so that vanilla answers equal the
stock `generate` on the same inputs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from vidcost.errors import ProfilingError

if TYPE_CHECKING:
    import numpy as np

    from vidcost.runtime.inputs import PromptInputs
    from vidcost.runtime.model import LoadedModel


def sample_frames(path: str, frames: int) -> "np.ndarray":
    """`frames` frames of the video at `path`, uniformly spaced from the first to the last, uint8 [T, H, W, 3].

    Raises:
        ProfilingError: the file is missing or cannot be decoded.
    """
    import numpy as np

    try:
        from decord import VideoReader, cpu
    except ImportError:
        return _sample_with_pyav(path, frames)
    try:
        reader = VideoReader(path, ctx=cpu(0))
        indices = np.linspace(0, len(reader) - 1, frames, dtype=int).tolist()
        return reader.get_batch(indices).asnumpy()
    except Exception as err:  # decord raises its own DECORDError, RuntimeError, or IndexError on short files
        raise ProfilingError(f"cannot decode video '{path}': {err}") from err


def _sample_with_pyav(path: str, frames: int) -> "np.ndarray":
    import av
    import numpy as np

    try:
        with av.open(path) as container:
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise ProfilingError(f"cannot decode video '{path}': {err}") from err
    if not decoded:
        raise ProfilingError(f"video '{path}' has no decodable frames")
    indices = np.linspace(0, len(decoded) - 1, frames, dtype=int)
    return np.stack([decoded[i] for i in indices])


def chat_text(processor: Any, context: str) -> str:
    """The prompt text: the model's chat template on one user turn (the video, then the context)."""
    message = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": context}]}]
    return processor.apply_chat_template(message, tokenize=False, add_generation_prompt=True)


def process(processor: Any, context: str, frames: "np.ndarray") -> dict[str, Any]:
    """The processor's tensors for the chat text and frames (what `model.generate(**processed)` takes)."""
    return dict(processor(text=chat_text(processor, context), videos=[frames], return_tensors="pt"))


def prompt_inputs(loaded: "LoadedModel", processed: dict[str, Any], question_ids: list[int]) -> "PromptInputs":
    """The runtime's inputs for one processed request.

    Args:
        loaded: the model.
        processed: `process` output.
        question_ids: the request's context tokenised alone, to find the instruction's rows for
            query-dependent methods (the whole text after the video when it is not found verbatim).

    Raises:
        ProfilingError: the ids hold no video placeholder run, or one the model does not encode to.
    """
    import torch

    from vidcost.runtime.families import VideoPixels, get_family
    from vidcost.runtime.inputs import PromptInputs

    family = get_family(loaded.spec.architecture)
    config, device = loaded.model.config, loaded.device
    ids = processed["input_ids"][0].to(device)
    video_token = int(config.video_token_id)
    where = (ids == video_token).nonzero().flatten().tolist()
    if not where or where[-1] - where[0] + 1 != len(where):
        raise ProfilingError("the processed prompt holds no contiguous run of video tokens; the model directory's "
                             "chat template must place the video in the user turn")
    first, last = where[0], where[-1]
    pixels = processed["pixel_values_videos"]
    dtype = next(loaded.model.parameters()).dtype
    grid_thw = None
    if family.mrope:
        grid_thw = tuple(int(v) for v in processed["video_grid_thw"][0])
        frames = grid_thw[0] * loaded.spec.temporal_patch_size
        patch = loaded.spec.patch_size
        spec = loaded.spec.with_resolution(grid_thw[1] * patch, grid_thw[2] * patch).with_overrides(frames=frames)
        video = VideoPixels(pixels.to(device, dtype), grid_thw,
                            _qwen_vision_kwargs(loaded.model, grid_thw, device))
    else:
        spec = loaded.spec.with_overrides(frames=int(pixels.shape[1]))
        video = VideoPixels(pixels[0].to(device, dtype))  # [T, 3, S, S]
    prefix, after = ids[:first], ids[last + 1:]
    separators = family.separator_tokens
    if len(where) != spec.num_visual_tokens + separators:
        raise ProfilingError(f"the processor laid out {len(where)} video tokens but the model encodes "
                             f"{spec.num_visual_tokens} (+{separators}); is the model directory's processor "
                             "the one of these weights?")
    spec = spec.with_overrides(text_tokens=int(prefix.numel()) + separators + int(after.numel()))
    inputs = PromptInputs(pixel_values=video.pixel_values, prefix_ids=prefix, question_ids=after, spec=spec,
                          video_token_id=video_token, question_rows=_question_rows(after.tolist(), question_ids),
                          separator_tokens=separators, grid_thw=grid_thw, vision_kwargs=video.vision_kwargs)
    with torch.inference_mode():
        positions = _positions(loaded.model, family, processed, ids[None], video)
    return dataclasses.replace(inputs, position_ids=positions, next_position=int(positions.max()) + 1)


def _positions(model: Any, family: Any, processed: dict[str, Any], input_ids: Any, video: Any) -> Any:
    """The stock forward's position ids of the full prompt (Qwen-VL: with the processor's time spacing)."""
    if not family.mrope:
        return family.layout_positions(model, input_ids, video)
    device = input_ids.device
    extra = {k: processed[k].to(device) for k in ("second_per_grid_ts", "mm_token_type_ids") if k in processed}
    if "second_per_grid_ts" in processed and not hasattr(processed["second_per_grid_ts"], "to"):
        extra["second_per_grid_ts"] = processed["second_per_grid_ts"]
    if "mm_token_type_ids" not in extra:
        return family.layout_positions(model, input_ids, video)
    positions, _ = model.model.get_rope_index(input_ids, video_grid_thw=processed["video_grid_thw"].to(device),
                                              **extra)
    return positions


def _qwen_vision_kwargs(model: Any, grid_thw: tuple[int, int, int], device: str) -> dict[str, Any]:
    from vidcost.runtime.families.qwen_vl import _vision_kwargs

    return _vision_kwargs(model.model.visual, grid_thw, device)


def _question_rows(after: list[int], question: list[int]) -> tuple[int, int]:
    """Where the question's own tokens sit in the ids after the video (all of them when not found)."""
    n = len(question)
    for start in range(len(after) - n + 1 if n else 0):
        if after[start:start + n] == question:
            return start, start + n
    return 0, len(after)
