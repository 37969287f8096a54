"""Constructed videos with known structure, shared by the method tests."""

from __future__ import annotations

import pytest
import torch


def make_scenes_video(scenes: int = 3, frames_per_scene: int = 4, per_frame: int = 16, dim: int = 32,
                      noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """[scenes·F, P, D]: every frame of a scene is the scene's token grid plus small noise."""
    generator = torch.Generator().manual_seed(seed)
    grids = torch.randn(scenes, 1, per_frame, dim, generator=generator)
    video = grids.expand(-1, frames_per_scene, -1, -1) + noise * torch.randn(
        scenes, frames_per_scene, per_frame, dim, generator=generator)
    return video.reshape(scenes * frames_per_scene, per_frame, dim)


@pytest.fixture
def scenes_video():
    """The `make_scenes_video` factory."""
    return make_scenes_video
