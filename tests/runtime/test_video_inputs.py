"""Synthetic and decoded video, preprocessing, and the prompt's token layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcost.errors import ConfigError, ProfilingError
from vidcost.runtime import build_inputs, build_model
from vidcost.runtime.video import (FRAMES_PER_SCENE, Normalisation, decode_video, load_normalisation, preprocess,
                                   synthetic_video)
from vidcost.spec import load_spec


def test_synthetic_video_is_seeded():
    a, b = synthetic_video(6, 32, seed=1), synthetic_video(6, 32, seed=1)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, synthetic_video(6, 32, seed=2))


def test_synthetic_video_has_motion_inside_scenes_and_cuts_between_them():
    frames = 2 * FRAMES_PER_SCENE
    video = synthetic_video(frames, 64, seed=0).astype(np.float32)
    change = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))  # mean change between consecutive frames
    cut = FRAMES_PER_SCENE - 1  # frame 5 → 6 crosses the only cut
    inside = np.delete(change, cut)
    assert (inside > 0).all(), "objects move inside a scene"
    assert change[cut] > 3 * inside.max(), "a scene cut changes the background"
    # The background is static: most pixels do not change inside a scene.
    assert (np.abs(video[1] - video[0]).sum(-1) == 0).mean() > 0.5


@pytest.fixture()
def clip(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    frames = synthetic_video(12, 64, seed=3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path, frames


def test_decode_samples_frames_uniformly(clip):
    path, original = clip
    decoded = decode_video(str(path), 4, 32)
    assert decoded.shape == (4, 32, 32, 3) and decoded.dtype == np.uint8
    # Frames 1, 4, 7, 10 (span centres) of the original, resized: compare against a resize of those.
    wanted = torch.from_numpy(original[[1, 4, 7, 10]]).permute(0, 3, 1, 2).float()
    resized = torch.nn.functional.interpolate(wanted, size=(32, 32), mode="bilinear").permute(0, 2, 3, 1).numpy()
    errors = [np.abs(decoded[i].astype(float) - resized[j]).mean() for i in range(4) for j in range(4)]
    grid = np.array(errors).reshape(4, 4)
    assert (grid.argmin(axis=1) == np.arange(4)).all() or np.diag(grid).max() < 25


@pytest.mark.parametrize("content", [b"not a video at all", b""])
def test_undecodable_video_is_a_profiling_error(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(ProfilingError, match="bad.mp4"):
        decode_video(str(bad), 4, 32)
    with pytest.raises(ProfilingError, match="does not exist"):
        decode_video(str(tmp_path / "missing.mp4"), 4, 32)


def test_frames_below_one_is_rejected():
    with pytest.raises(ConfigError, match="frames must be at least 1, got 0"):
        synthetic_video(0, 32)


def test_preprocess_normalises_and_resizes():
    frames = np.zeros((2, 10, 10, 3), dtype=np.uint8)
    frames[1] = 255
    pixels = preprocess(frames, 20)
    assert pixels.shape == (2, 3, 20, 20)
    torch.testing.assert_close(pixels[0], torch.full((3, 20, 20), -1.0))  # (0 - 0.5) / 0.5
    torch.testing.assert_close(pixels[1], torch.full((3, 20, 20), 1.0))
    custom = preprocess(frames, 10, Normalisation((0.0, 0.0, 0.0), (0.25, 0.5, 1.0)))
    torch.testing.assert_close(custom[1, :, 0, 0], torch.tensor([4.0, 2.0, 1.0]))


def test_normalisation_from_preprocessor_config(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text('{"image_mean": [0.1, 0.2, 0.3], "image_std": [1, 1, 1]}')
    assert load_normalisation(str(tmp_path)).mean == (0.1, 0.2, 0.3)
    assert load_normalisation(None) == Normalisation()


@pytest.fixture(scope="module")
def loaded():
    return build_model(load_spec("tiny", frames=2), seed=0)


def test_prompt_layout_counts_the_newline_as_text(loaded):
    inputs = build_inputs(loaded, seed=9)
    spec = inputs.spec
    p, q = inputs.prefix_ids.numel(), inputs.question_ids.numel()
    assert p + 1 + q == spec.text_tokens == 32
    ids = inputs.input_ids()
    assert ids.shape == (1, spec.num_visual_tokens + spec.text_tokens)
    video = ids[0] == loaded.model.config.video_token_id
    assert int(video.sum()) == spec.num_visual_tokens + 1  # T·P video tokens + the image_newline
    assert bool(video[p:p + spec.num_visual_tokens + 1].all())
    text = torch.cat([inputs.prefix_ids, inputs.question_ids])
    assert int(text.max()) < loaded.model.config.image_token_id
    again = build_inputs(loaded, seed=9)
    assert torch.equal(text, torch.cat([again.prefix_ids, again.question_ids]))


def test_inputs_frames_override_and_too_few_text_tokens(loaded):
    assert build_inputs(loaded, frames=3).pixel_values.shape == (3, 3, 224, 224)
    short = build_model(load_spec("tiny", frames=1, text_tokens=1), seed=0)
    with pytest.raises(ConfigError, match="--text-tokens 2"):
        build_inputs(short)


class _CharTokenizer:
    """A stand-in tokenizer: one id per character."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) % 1000 for c in text]


def test_question_is_tokenised_when_the_model_has_a_tokenizer(loaded):
    import dataclasses

    with_tokenizer = dataclasses.replace(loaded, tokenizer=_CharTokenizer())
    inputs = build_inputs(with_tokenizer, question="Why?")
    assert inputs.prefix_ids.tolist() == [ord(c) % 1000 for c in "<|im_start|>user\n"]
    assert "Why?" in "".join(chr(i) for i in inputs.question_ids.tolist())
    assert inputs.spec.text_tokens == inputs.prefix_ids.numel() + 1 + inputs.question_ids.numel()
