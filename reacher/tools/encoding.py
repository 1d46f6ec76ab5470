"""Encoding a video's frames into a file: H.264 MP4 through ffmpeg, or a GIF through Pillow.

`reacher.tools.video` renders the frames; this module writes them to the temporary file
it is given and makes sure that file is whole before the video module renames it into
place: ffmpeg's exit status and the MP4's boxes are checked, and a failure is one
`CannotWrite` naming the output.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from reacher.files import CannotWrite

MP4_QUALITY = 6  # imageio's 0-10 scale; 6 is x264's crf 20, visually clean and small
SUCCESS_RGB = (70, 200, 90)
CAPTION_RGB = (240, 240, 240)

Write = Callable[[np.ndarray, int], None]  # write(frame, times): append a frame `times` times


@contextmanager
def open_writer(tmp: Path, out: Path, fps: float, size: tuple[int, int]) -> Iterator[Write]:
    if out.suffix.lower() == ".gif":
        frames: list[np.ndarray] = []
        yield lambda frame, times: frames.extend([frame] * times)
        _save_gif(tmp, frames, fps)
        return
    with _ffmpeg(tmp, out, fps, size) as write:
        yield write


# x264's crf for imageio's quality scale (0-10), as imageio computes it.
_CRF = int((1 - MP4_QUALITY / 10.0) * 51)


@contextmanager
def _ffmpeg(tmp: Path, out: Path, fps: float, size: tuple[int, int]) -> Iterator[Write]:
    """Raw RGB frames piped to ffmpeg (H.264, yuv420p, moov atom first). Run here rather
    than through imageio's writer, which ignores ffmpeg's exit status and lets its
    messages through to the terminal: a full disk gave "wrote …" over a file that does
    not play. ffmpeg's stderr is kept, and its last words name the failure."""
    import imageio_ffmpeg

    rate = Fraction(fps).limit_denominator()
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo",
           "-s", f"{size[0]}x{size[1]}", "-pix_fmt", "rgb24", "-r", str(rate), "-i", "-", "-an",
           "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", str(_CRF), "-v", "error",
           "-f", "mp4", "-movflags", "+faststart", str(tmp)]
    with tempfile.TemporaryFile() as log:
        # Its own session: a Ctrl-C meant for reacher does not cut ffmpeg short mid-file.
        process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                                   start_new_session=True)
        try:
            def write(frame: np.ndarray, times: int) -> None:
                data = np.ascontiguousarray(frame, dtype=np.uint8).tobytes()
                for _ in range(times):
                    try:
                        process.stdin.write(data)
                    except BrokenPipeError:  # ffmpeg gave up: its log says why
                        process.wait()
                        raise _ffmpeg_failed(out, log) from None

            yield write
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
            if process.wait() != 0:
                raise _ffmpeg_failed(out, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    _check_mp4(tmp, out)


def _ffmpeg_failed(out: Path, log) -> CannotWrite:
    log.seek(0)
    lines = [line.strip() for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EIO):
        if any(os.strerror(code) in line for line in lines):
            return CannotWrite(out, OSError(code, os.strerror(code)))
    last = lines[-1] if lines else "no message"
    return CannotWrite(out, OSError(errno.EIO, f"ffmpeg failed ({last[:200]})"))


def _check_mp4(tmp: Path, out: Path) -> None:
    """The file ffmpeg wrote is whole: top-level boxes that end where the file ends, with
    the movie's index (moov) and its media data (mdat) among them."""
    kinds, offset = set(), 0
    with open(tmp, "rb") as f:
        end = os.fstat(f.fileno()).st_size
        while offset < end:
            f.seek(offset)
            head = f.read(16)
            if len(head) < 8:
                break
            size = int.from_bytes(head[:4], "big")
            if size == 1 and len(head) == 16:
                size = int.from_bytes(head[8:16], "big")
            if size < 8:
                break
            kinds.add(head[4:8])
            offset += size
    if offset != end or not {b"moov", b"mdat"} <= kinds:
        raise CannotWrite(out, OSError(errno.EIO, "ffmpeg left an incomplete MP4"))


def _save_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """One palette for the whole GIF and no dithering, so pixels that do not change
    between frames keep their colour index and GIF stores them almost for free: a
    fifth of the size of Pillow's default per-frame palettes. Identical consecutive
    frames (the held ones) are merged by Pillow into one longer frame."""
    every = max(1, len(frames) // 16)
    swatch = np.zeros((2, frames[0].shape[1], 3), dtype=np.uint8)  # caption colours, which
    swatch[:, :4] = [SUCCESS_RGB, CAPTION_RGB, (255, 255, 255), (0, 0, 0)]  # samples may miss
    sample = Image.fromarray(np.concatenate([*frames[::every], swatch]))
    palette = sample.quantize(255, method=Image.Quantize.FASTOCTREE)  # keeps small saturated parts
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=1000.0 / fps, loop=0)
