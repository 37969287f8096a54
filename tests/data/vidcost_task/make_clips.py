"""Writes the local task's clips: a coloured square moving across a grey background, one clip per colour.

Run from anywhere (`python tests/data/vidcost_task/make_clips.py`); the clips are committed, this script
says how they were made. 24 frames of 96×128 px at 8 fps, H.264 through PyAV.
"""

from pathlib import Path

import av
import numpy as np

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 230), "yellow": (230, 220, 40)}
FRAMES, HEIGHT, WIDTH, SIDE = 24, 96, 128, 28


def write_clip(path: Path, rgb: tuple[int, int, int]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for t in range(FRAMES):
            frame = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
            x = int(t * (WIDTH - SIDE) / (FRAMES - 1))
            frame[34:34 + SIDE, x:x + SIDE] = rgb
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


if __name__ == "__main__":
    folder = Path(__file__).parent / "videos"
    folder.mkdir(exist_ok=True)
    for name, rgb in COLOURS.items():
        write_clip(folder / f"{name}.mp4", rgb)
