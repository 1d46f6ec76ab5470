"""Watch a policy reach: render its episodes to an H.264 MP4 or a GIF.

Every frame shows the arm, the red target, a fading trail of the fingertip's last
positions and a caption with the episode, the step and the fingertip-to-target
distance, marked green once within the success radius. Episodes play one after
another in one file, each from ``env.reset(seed=seed + i)`` (the evaluation seeds
by default, so the video shows the episodes `reacher.run.evaluation` scores), and the
last frame of each is held for ``hold_s`` so the result can be seen.

Video plays in simulated real time: an MP4 shows every control step (50 fps for the
default 0.02 s control period), or every k-th one when the control rate is above
60 Hz, so that it plays at rate/k ≤ 60 fps; a GIF, to stay small, shows at most
25 frames a second, since GIF frame durations are whole hundredths of a second. A GIF's frames are kept
in memory until the end (one palette is chosen for all of them), so GIFs suit short
clips; MP4 frames stream to ffmpeg.

The file appears only when complete: frames go to a hidden temporary file beside
``out_path`` (`reacher.files.replacing`) that replaces it at the end and is removed on
any error. ffmpeg's exit status is checked, and the MP4's boxes, before the rename: a
disk that fills while ffmpeg writes is one `CannotWrite` naming ``out_path``, never a
"wrote" over a file that does not play. Temporary files a killed render left for the
same output are removed by the next render to it.
"""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import gymnasium as gym
import mujoco
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reacher.files import remove_temporaries, replacing
from reacher.limits import MAX_GIF_FRAME_BYTES
from reacher.run.evaluation import EVAL_SEED
from reacher.sim.rendering import make_renderer
from reacher.task.env import ReachEnv
from reacher.tools.encoding import CAPTION_RGB, SUCCESS_RGB, Write, open_writer

VIDEO_FORMATS = (".mp4", ".gif")
GIF_MAX_FPS = 25.0
TRAIL_S = 0.8  # how far back the fingertip trail reaches by default (40 steps at 50 Hz)
MP4_MAX_FPS = 60.0  # players and browsers drop frames above this; more adds nothing to see
TRAIL_RGBA = np.array([1.0, 0.75, 0.1, 0.9], dtype=np.float32)  # the fingertip's amber

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class VideoInfo:
    """What `render_video` wrote.

    Each episode contributes one frame for its start, one per ``1/fps`` of simulated
    time after that, and the held final frames.
    """

    path: Path
    frames: int
    fps: float
    episodes: int
    final_distance_m: tuple[float, ...]  # fingertip to target at each episode's last step
    success: tuple[bool, ...]  # whether each episode ended within the success radius

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


def render_video(policy: Policy, env: gym.Env, out_path: str | Path, episodes: int = 3,
                 seed: int = EVAL_SEED, camera: str | None = None,
                 size: tuple[int, int] = (480, 480), fps: float | None = None, *,
                 trail_length: int | None = None, hold_s: float = 0.5) -> VideoInfo:
    """Roll out ``policy`` (observation → action) in ``env`` and write the video.

    ``out_path`` ends in ``.mp4`` (H.264, yuv420p, plays in browsers) or ``.gif``;
    its directory is created if needed. ``size`` is (width, height) in pixels, both
    even, as yuv420p needs. ``camera`` is one of the arm's cameras (``top`` and
    ``angled`` on the built-in arms), or None for the env's default. ``fps`` defaults
    to one frame per control step for MP4 (every k-th step above 60 Hz, so at most
    60 fps) and at most 25 for GIF; either way frames are
    spaced in simulated time, so playback is real time. ``trail_length`` is how many
    env steps back the fingertip trail reaches (default: the last 0.8 s of motion, 40
    steps at 50 Hz, whatever the control rate; 0: no trail); ``hold_s`` how long each
    episode's last frame stays on screen.

    Raises ValueError for a bad size, extension, camera or env and OSError for an
    output path that cannot be written, all before anything is rendered.
    """
    width, height = _check_size(size)
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if trail_length is None:  # the last TRAIL_S of motion, whatever the control rate
        trail_length = max(1, round(TRAIL_S / _reach_env(env).dt))
    if trail_length < 0 or hold_s < 0:
        raise ValueError(f"trail_length and hold_s must be ≥ 0, got {trail_length}, {hold_s}")
    reach = _reach_env(env)
    camera = _check_camera(reach, camera)
    path = _check_out_path(out_path)
    fps = _frame_rate(path, reach.dt, fps)
    hold = int(hold_s * fps + 0.5)
    _check_gif_memory(path, episodes, reach, fps, width, height)

    frames, distances, successes = 0, [], []
    _remove_stale_temporaries(path)
    with replacing(path) as tmp:  # created now: an unwritable folder fails before rendering
        renderer = make_renderer(reach.model, height, width)
        try:
            painter = _Painter(renderer, camera, trail_length, episodes, reach.max_episode_steps)
            with open_writer(tmp, path, fps, (width, height)) as write:
                for i in range(episodes):
                    n, info = _record_episode(policy, env, reach, painter, write, seed + i,
                                              f"episode {i + 1}/{episodes}", fps, hold)
                    frames += n
                    distances.append(float(info["distance"]))
                    successes.append(bool(info["is_success"]))
        finally:
            renderer.close()
    return VideoInfo(path, frames, fps, episodes, tuple(distances), tuple(successes))


def render_run(run: str | Path, out_path: str | Path, episodes: int = 3,
               camera: str | None = None, size: tuple[int, int] = (480, 480),
               seed: int = EVAL_SEED, **options) -> VideoInfo:
    """Render a trained run (run directory or checkpoint) on the env it was trained on;
    ``options`` go to `render_video` (``fps``, ``trail_length``, ``hold_s``)."""
    from reacher.run.policy import (
        load_policy,  # torch loads only when a run is rendered
    )

    policy = load_policy(run)
    env = policy.make_env()
    try:
        return render_video(policy, env, out_path, episodes, seed, camera, size, **options)
    finally:
        env.close()


# --- checks, all before rendering ----------------------------------------------------------

def _check_size(size) -> tuple[int, int]:
    width, height = (int(v) for v in size)
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be positive and even (H.264 in yuv420p), "
                         f"got {width}x{height}")
    return width, height


def _reach_env(env: gym.Env) -> ReachEnv:
    reach = env.unwrapped
    if not isinstance(reach, ReachEnv):
        raise ValueError(f"render needs a reacher arm env (ReachEnv), got {type(reach).__name__}")
    return reach


def _check_camera(reach: ReachEnv, camera: str | None) -> str | int:
    if camera is None:
        return reach.camera
    if camera not in reach.arm.cameras:
        raise ValueError(f"unknown camera {camera!r}; arm '{reach.arm.name}' has "
                         f"{', '.join(reach.arm.cameras) or 'no named cameras'}")
    return camera


def _check_out_path(out_path: str | Path) -> Path:
    path = Path(out_path).expanduser()
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise ValueError(f"cannot write video {path}: extension must be one of "
                         f"{', '.join(VIDEO_FORMATS)}")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write video {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise type(err)(f"cannot write video {path}: cannot create its directory "
                        f"({err.strerror})") from None
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """What a render to `path` killed before it finished left: its temporary files, and
    those of earlier versions (``.STEM.XXXX.tmp.mp4``, which the ``.tmp`` rule missed);
    one that a live render still holds locked stays."""
    remove_temporaries(path.parent, of=path.name)
    legacy = (f".{path.stem}.", f".tmp{path.suffix}")
    for entry in os.scandir(path.parent):
        if entry.name.startswith(legacy[0]) and entry.name.endswith(legacy[1]) \
                and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


def _check_gif_memory(path: Path, episodes: int, reach: ReachEnv, fps: float, width: int, height: int) -> None:
    """ValueError before anything is rendered if a GIF's frames would not fit in memory
    (they are all kept until it is written); an MP4 streams its frames and has no such bound."""
    if path.suffix.lower() != ".gif":
        return
    per_episode = math.floor(reach.max_episode_steps * reach.dt * fps + 1e-6) + 1
    needed = episodes * per_episode * width * height * 3
    if needed > MAX_GIF_FRAME_BYTES:
        raise ValueError(f"a GIF keeps its frames in memory: {episodes:,} episodes at {width}x{height} "
                         f"would take {needed / 2**30:,.1f} GiB (at most {MAX_GIF_FRAME_BYTES / 2**30:g}); "
                         "render fewer episodes, a smaller size, or an .mp4")


def _frame_rate(path: Path, dt: float, fps: float | None) -> float:
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    wanted = fps if fps is not None else 1.0 / dt
    if path.suffix.lower() == ".gif":
        # GIF stores durations in hundredths of a second; browsers slow down 0.01 s frames.
        wanted = min(wanted, GIF_MAX_FPS) if fps is None else wanted
        return 100.0 / max(2, round(100.0 / wanted))
    if fps is None and wanted > MP4_MAX_FPS + 1e-9:
        # Every k-th control step, so frames stay evenly spaced in simulated time and the
        # video still plays in real time (a 500 Hz arm gives 500/9 ≈ 55.6 fps).
        wanted /= math.ceil(wanted / MP4_MAX_FPS - 1e-9)
    return float(wanted)


# --- rolling out ---------------------------------------------------------------------------

def _record_episode(policy: Policy, env: gym.Env, reach: ReachEnv, painter: _Painter,
                    write: Write, seed: int, title: str, fps: float, hold: int) -> tuple[int, dict]:
    """Run one episode, writing a frame whenever simulated time reaches the next
    ``k / fps``; returns the frames written and the last step's info."""
    obs, info = env.reset(seed=seed)
    painter.trail.clear()
    painter.trail.append(_fingertip(reach))
    write(painter.frame(reach, title, 0, info), 1)
    frames, step, done = 1, 0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        step += 1
        done = terminated or truncated
        painter.trail.append(_fingertip(reach))
        due = math.floor(step * reach.dt * fps + 1e-6) + 1 - frames
        if due > 0 or done:
            frame = painter.frame(reach, title, step, info)
            write(frame, due)
            frames += due
    write(frame, hold)
    return frames + hold, info


def _fingertip(reach: ReachEnv) -> np.ndarray:
    return reach.data.sensordata[reach.arm.end_effector_adr].copy()


# --- drawing -----------------------------------------------------------------------------

class _Painter:
    """Turns the simulation state into a finished frame: scene, trail and caption."""

    def __init__(self, renderer: mujoco.Renderer, camera: str | int, trail_length: int,
                 episodes: int, max_steps: int):
        self.renderer = renderer
        self.camera = camera
        self.trail: deque[np.ndarray] = deque(maxlen=trail_length + 1)  # +1: segments
        self.trail_px = max(2.0, renderer.height / 120)
        self.font = _font(max(11, round(renderer.height / 30)))
        self.max_steps = max_steps
        # The caption box is sized for its widest text once, so it does not jitter.
        widest = (f"episode {episodes}/{episodes}", f"step {max_steps}/{max_steps}",
                  "distance 000.0 cm")
        self.text_w = max(int(self.font.getlength(line)) for line in widest)

    def frame(self, reach: ReachEnv, title: str, step: int, info: dict) -> np.ndarray:
        self.renderer.update_scene(reach.data, camera=self.camera)
        _draw_trail(self.renderer.scene, list(self.trail), self.trail_px)
        image = self.renderer.render()
        lines = [title, f"step {step}/{self.max_steps}",
                 f"distance {100 * info['distance']:.1f} cm"]
        return _caption(image, lines, self.font, self.text_w, bool(info["is_success"]))


def _draw_trail(scene: mujoco.MjvScene, points: list[np.ndarray], width_px: float) -> None:
    """Lines between successive fingertip positions, fainter with age. Lines rather than
    capsules: translucent capsules darken where they overlap, and cast shadows."""
    n = len(points) - 1
    for i in range(n):
        if scene.ngeom >= scene.maxgeom:
            return
        age = (i + 1) / n  # 1 for the newest segment
        rgba = TRAIL_RGBA * np.array([1, 1, 1, age], dtype=np.float32)
        geom = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(geom, mujoco.mjtGeom.mjGEOM_LINE, np.zeros(3), np.zeros(3),
                            np.eye(3).flatten(), rgba)
        mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_LINE, width_px, points[i], points[i + 1])
        geom.emission = 0.8  # lines are lit like surfaces; this keeps them bright
        scene.ngeom += 1


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1, or built without FreeType
        return ImageFont.load_default()


def _caption(image: np.ndarray, lines: list[str], font, text_w: int,
             success: bool) -> np.ndarray:
    """Lines of text in the top-left corner on a translucent dark box; a green check
    and border once the fingertip is within the success radius."""
    line_h = int(font.getbbox("Hg")[3] * 1.25)
    pad = line_h // 3
    x0 = y0 = pad
    x1 = min(image.shape[1], x0 + 3 * pad + text_w + line_h)  # line_h: room for the check
    y1 = min(image.shape[0], y0 + 2 * pad + line_h * len(lines))
    out = image.copy()
    out[y0:y1, x0:x1] = (out[y0:y1, x0:x1] * 0.4).astype(np.uint8)  # 60 % black
    pil = Image.fromarray(out)
    draw = ImageDraw.Draw(pil)
    for i, line in enumerate(lines):
        draw.text((x0 + pad, y0 + pad + i * line_h), line, font=font, fill=CAPTION_RGB)
    if success:
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=SUCCESS_RGB, width=max(2, pad // 2))
        r = 0.4 * line_h
        cx, cy = x1 - pad - r, y1 - pad - line_h / 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=SUCCESS_RGB)
        draw.line([(cx - r * 0.5, cy), (cx - r * 0.12, cy + r * 0.4), (cx + r * 0.5, cy - r * 0.4)],
                  fill=(255, 255, 255), width=max(2, round(r / 3.5)))
    return np.asarray(pil)
