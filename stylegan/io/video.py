"""Frames -> a video file, written whole or not at all."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .files import atomic_output, ensure_writable_dir, sweep_stale_temps
from .._memory import check_held
from ..provenance import Provenance, mark_pixels, video_comment


def ensure_parent(path: Path) -> None:
    """Create the video's folder and check it takes files, before any frame is rendered.

    An encoder that cannot open its output reports it in its own words (ffmpeg's text and a
    FileNotFoundError); saying it here, first, names the real problem."""
    ensure_writable_dir(Path(path).parent)


def check_video_memory(path: str | os.PathLike, num_frames: int, frame_shape: tuple[int, ...]) -> None:
    """An MP4 streams its frames to the encoder; a GIF's writer keeps them all until it closes: size
    that before the first frame is made (one line past the memory budget)."""
    if Path(path).suffix.lower() == ".gif":
        check_held(num_frames * int(np.prod(frame_shape)), f"a GIF of {num_frames} frames",
                   "write an .mp4 (streamed) or fewer frames")


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, fps: int = 30, *,
                provenance: Provenance) -> int:
    """Write uint8 [H, W, C] frames to .mp4 (libx264 via imageio-ffmpeg) or .gif; returns the frame count.
    The file carries `provenance` as its comment, each frame its watermark (see video_writer).

    Encodes into a temporary file beside the target and renames at the end, so an interrupted
    render never leaves a truncated video under the final name."""
    n = 0
    with video_writer(path, fps, provenance=provenance) as append:
        for frame in frames:
            append(frame)
            n += 1
    return n


@contextmanager
def video_writer(path: str | os.PathLike, fps: int = 30, *,
                 provenance: Provenance) -> Iterator[Callable[[np.ndarray], None]]:
    """write_video for frames that arrive one by one (from a callback): yields `append(frame)`;
    the file appears under its name when the block ends without error, and not at all otherwise.

    Provenance: the container's comment holds the facts (an MP4 `comment` tag, a GIF comment
    extension) and every frame the watermark, so a frame taken out of the video still carries it."""
    import imageio.v2 as imageio
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".mp4":
        # ffmpeg stays quiet: a failure it meets (a full disk) surfaces as ours, in one line; a short
        # file it leaves without saying so is caught by atomic_output's check.
        kwargs = dict(fps=fps, codec="libx264", quality=8, macro_block_size=1, ffmpeg_log_level="quiet",
                      output_params=["-metadata", f"comment={video_comment(provenance)}"])
    elif ext == ".gif":
        kwargs = dict(duration=1000 / fps, loop=0, comment=video_comment(provenance))
    else:
        raise ValueError(f"{path}: unsupported video format {ext!r}: expected .mp4 or .gif")
    ensure_parent(path)
    sweep_stale_temps(path.parent)
    with atomic_output(path) as tmp:
        writer = imageio.get_writer(tmp, **kwargs)
        try:
            yield lambda frame: writer.append_data(mark_pixels(frame, provenance)[0])
        finally:
            # imageio's own `with` closes only on success: on an error ffmpeg would live on until
            # garbage collection and could (re)create the temporary after it was removed.
            writer.close()
