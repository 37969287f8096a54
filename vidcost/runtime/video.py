"""Video frames: a seeded synthetic clip, a decoded file (PyAV), and the vision tower's preprocessing.

The synthetic clip is procedural so that the redundancy pruning methods exploit is real: each scene has
a static textured background and a few objects moving across it, and scene cuts switch to a new
background and new objects. Frames are uint8 arrays [T, H, W, 3]; `preprocess` turns them into the
normalised pixel tensor [T, 3, H, W] the vision tower takes. A frame size is a side in pixels (square) or
(height, width).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidcost.errors import ConfigError, ProfilingError

if TYPE_CHECKING:
    import numpy as np
    import torch

# SigLIP's image processor normalisation (LLaVA-OneVision): mean = std = 0.5 per channel.
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
FRAMES_PER_SCENE = 6  # a scene cut about every 6 sampled frames


def frame_shape(size: "int | tuple[int, int]") -> tuple[int, int]:
    """(height, width) of a frame size given as a side or as (height, width)."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@dataclass(frozen=True)
class Normalisation:
    """Per-channel pixel normalisation: (x / 255 - mean) / std."""

    mean: tuple[float, float, float] = SIGLIP_MEAN
    std: tuple[float, float, float] = SIGLIP_STD

    def __str__(self) -> str:
        return f"Normalisation(mean={self.mean}, std={self.std})"


def synthetic_video(frames: int, size: "int | tuple[int, int]", seed: int = 0) -> "np.ndarray":
    """A procedural clip: static backgrounds, moving objects, scene cuts.

    Args:
        frames: T, at least 1.
        size: frame side in pixels, or (height, width).
        seed: same seed, same clip.

    Returns:
        uint8 array [T, H, W, 3].
    """
    import numpy as np

    _check_frames(frames)
    height, width = frame_shape(size)
    side = max(height, width)  # objects are drawn on a square canvas, then cropped to the frame
    rng = np.random.default_rng(seed)
    scenes = max(1, round(frames / FRAMES_PER_SCENE))
    # Cut points: scene s covers frames [cuts[s], cuts[s+1]).
    cuts = np.linspace(0, frames, scenes + 1).round().astype(int)
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    for scene in range(scenes):
        background = _background(rng, yy, xx)
        objects = _objects(rng, side)
        for t in range(cuts[scene], cuts[scene + 1]):
            frame = background.copy()
            for obj in objects:
                _draw(frame, obj, t - cuts[scene], side)
            video[t] = frame[:height, :width]
    return video


def _background(rng: Any, yy: "np.ndarray", xx: "np.ndarray") -> "np.ndarray":
    import numpy as np

    base = rng.uniform(30, 220, size=3)
    slope = rng.uniform(-60, 60, size=(2, 3))
    freq = rng.uniform(4, 16)
    texture = 12 * np.sin(freq * np.pi * xx) * np.cos(freq * np.pi * yy)
    image = base + yy[..., None] * slope[0] + xx[..., None] * slope[1] + texture[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def _objects(rng: Any, size: int) -> list[dict[str, Any]]:
    count = int(rng.integers(2, 5))
    return [dict(colour=rng.integers(0, 256, size=3).astype("uint8"),
                 half=int(rng.integers(size // 16 + 1, size // 6 + 2)),
                 start=rng.uniform(0.15, 0.85, size=2) * size,
                 velocity=rng.uniform(-0.06, 0.06, size=2) * size)
            for _ in range(count)]


def _draw(frame: "np.ndarray", obj: dict[str, Any], step: int, size: int) -> None:
    # Objects bounce off the borders: the position folds back into [0, size).
    centre = (obj["start"] + step * obj["velocity"]) % (2 * size)
    centre = [int(c if c < size else 2 * size - c - 1) for c in centre]
    half = obj["half"]
    y0, y1 = max(0, centre[0] - half), min(size, centre[0] + half)
    x0, x1 = max(0, centre[1] - half), min(size, centre[1] + half)
    frame[y0:y1, x0:x1] = obj["colour"]


def decode_video(path: str, frames: int, size: "int | tuple[int, int]") -> "np.ndarray":
    """Decode a video file with PyAV, `frames` frames sampled uniformly, each resized to `size`
    (a side, or (height, width)).

    Raises:
        ProfilingError: the file is missing, is not a video, or has no decodable frames.
    """
    import av
    import numpy as np

    _check_frames(frames)
    height, width = frame_shape(size)
    if not Path(path).is_file():
        raise ProfilingError(f"video '{path}' does not exist; pass a readable video file to --video")
    try:
        total = _count_frames(path)
        if total == 0:
            raise ProfilingError(f"video '{path}' has no decodable frames; pass another file to --video")
        # Uniform sampling: the centre of each of `frames` equal spans (repeats when the file is short).
        wanted = [min(total - 1, int((i + 0.5) * total / frames)) for i in range(frames)]
        picked: dict[int, np.ndarray] = {}
        with av.open(path) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index in wanted:
                    picked[index] = frame.to_ndarray(format="rgb24", width=width, height=height)
                if index >= wanted[-1]:
                    break
    except (av.error.FFmpegError, ValueError, IndexError, StopIteration) as err:
        raise ProfilingError(f"cannot decode video '{path}': {err}; pass a video file PyAV can read") from err
    if len(picked) < len(set(wanted)):
        raise ProfilingError(f"video '{path}' ended early ({len(picked)} of {len(set(wanted))} frames decoded)")
    return np.stack([picked[i] for i in wanted])


def video_size(path: str) -> tuple[int, int]:
    """(height, width) of a video file's frames, from its stream header.

    Raises:
        ProfilingError: the file is missing, is not a video, or has no video stream.
    """
    import av

    if not Path(path).is_file():
        raise ProfilingError(f"video '{path}' does not exist; pass a readable video file to --video")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ProfilingError(f"'{path}' has no video stream; pass a video file to --video")
            context = container.streams.video[0].codec_context
            return int(context.height), int(context.width)
    except (av.error.FFmpegError, ValueError) as err:
        raise ProfilingError(f"cannot read video '{path}': {err}; pass a video file PyAV can read") from err


def _count_frames(path: str) -> int:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ProfilingError(f"'{path}' has no video stream; pass a video file to --video")
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(video=0))


def load_normalisation(model_path: str | None, default: Normalisation = Normalisation()) -> Normalisation:
    """The image processor's mean/std from a model directory's preprocessor_config.json, else `default`
    (SigLIP's unless the family says otherwise)."""
    if model_path is None:
        return default
    config = Path(model_path) / "preprocessor_config.json"
    if not config.is_file():
        return default
    try:
        data = json.loads(config.read_text())
        return Normalisation(tuple(data.get("image_mean", default.mean)), tuple(data.get("image_std", default.std)))
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"cannot read '{config}': {err}; fix or remove it") from err


def preprocess(frames: "np.ndarray", size: "int | tuple[int, int]", normalisation: Normalisation = Normalisation(),
               *, device: str = "cpu", dtype: "torch.dtype | None" = None) -> "torch.Tensor":
    """uint8 frames [T, H, W, 3] → normalised pixels [T, 3, height, width] of `size` (a side, or
    (height, width)); bilinear resize when needed."""
    import torch

    shape = frame_shape(size)
    pixels = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255.0  # [T, 3, H, W]
    if tuple(pixels.shape[-2:]) != shape:
        pixels = torch.nn.functional.interpolate(pixels, size=shape, mode="bilinear", align_corners=False)
    mean = torch.tensor(normalisation.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(normalisation.std, device=device).view(1, 3, 1, 1)
    pixels = (pixels - mean) / std
    return pixels.to(dtype) if dtype is not None else pixels


def _check_frames(frames: int) -> None:
    if not isinstance(frames, int) or frames < 1:
        raise ConfigError(f"frames must be at least 1, got {frames!r}; pass --frames 1 or more")
