"""reacher.tools.video: what the written MP4 and GIF files contain, and the errors before rendering.

Videos are tiny and short (a few dozen frames) because rendering is software OpenGL on
CI machines; one MP4 is rendered once per module and inspected by several tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types

import gymnasium as gym
import imageio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from reacher.task.env import ReachEnv
from reacher.tools import video
from reacher.tools.video import render_run, render_video

SIZE = (160, 120)  # width, height: not square, so a swapped axis shows
STEPS = 6
HOLD_S = 0.1  # 5 frames at 50 fps
HOLD_FRAMES = 5
EPISODES = 2
CAPTION = (slice(0, 60), slice(0, 100))  # rows, columns the caption box stays within
SCENE = (slice(70, 120), slice(110, 160))  # bottom-right corner, clear of the caption


def arm_env(**kwargs) -> ReachEnv:
    env = ReachEnv("two_link", **kwargs)
    # Software OpenGL spends half of each frame on the arm's 4096² shadow map.
    env.model.vis.quality.shadowsize = 512
    return env


def zeros(obs: np.ndarray) -> np.ndarray:
    return np.zeros(2)


def spin(obs: np.ndarray) -> np.ndarray:
    return np.array([1.0, -1.0])


def read_mp4(path) -> np.ndarray:
    return imageio.v3.imread(path, plugin="FFMPEG").astype(np.int16)


def gif_durations_ms(path) -> list[int]:
    with Image.open(path) as gif:
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
    return durations


def files_in(directory) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture(scope="module")
def still_video(tmp_path_factory):
    """The arm at rest (zero torque, no gravity): frames differ only in the caption."""
    env = arm_env(max_episode_steps=STEPS)
    path = tmp_path_factory.mktemp("video") / "nested" / "still.mp4"
    info = render_video(zeros, env, path, episodes=EPISODES, seed=7, size=SIZE, hold_s=HOLD_S)
    return info, read_mp4(path), env


@pytest.fixture
def no_rendering(monkeypatch):
    """Fail any test that gets as far as creating a renderer."""
    def refuse(*args, **kwargs):
        raise AssertionError("rendering started before the arguments were checked")
    monkeypatch.setattr(video, "make_renderer", refuse)


# --- the MP4 -------------------------------------------------------------------------------

def test_mp4_has_every_step_and_the_held_frames(still_video):
    info, frames, _ = still_video
    expected = EPISODES * (1 + STEPS + HOLD_FRAMES)
    assert info.frames == expected == len(frames)
    assert frames.shape[1:] == (SIZE[1], SIZE[0], 3)
    assert info.fps == 50.0 and info.duration_s == pytest.approx(expected / 50)
    assert info.episodes == EPISODES and info.path.name == "still.mp4"
    assert len(info.final_distance_m) == len(info.success) == EPISODES
    assert all(frame.std() > 10 for frame in frames), "a blank frame"


def test_mp4_is_h264_in_yuv420p_at_the_env_rate(still_video):
    info, _, _ = still_video
    with imageio.v2.get_reader(info.path, format="FFMPEG") as reader:
        meta = reader.get_meta_data()
    assert meta["codec"] == "h264"
    assert meta["fps"] == 50.0
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(info.path)],
                           capture_output=True, text=True)
    assert re.search(r"Video: h264 .*yuv420p", probe.stderr), probe.stderr


def test_caption_is_drawn_over_the_scene(still_video):
    _, frames, env = still_video
    plain = arm_env(render_mode="rgb_array", width=SIZE[0], height=SIZE[1])
    plain.reset(seed=7)
    scene = plain.render().astype(np.int16)
    plain.close()
    diff = np.abs(frames[0] - scene).mean(axis=2)
    assert diff[SCENE].mean() < 6, "the video's scene is not the env's own view"
    assert diff[CAPTION].mean() > 30, "no caption box in the corner"


def test_caption_counts_steps(still_video):
    _, frames, _ = still_video
    changed = np.abs(frames[1] - frames[2]).max(axis=2) > 60  # step 1 → step 2
    assert changed[CAPTION].sum() > 5
    assert changed.sum() == changed[CAPTION].sum(), "pixels changed outside the caption"


def green_pixels(frame: np.ndarray) -> int:
    rgb = frame[CAPTION]
    return int(((rgb[..., 1] > 150) & (rgb[..., 0] < 120) & (rgb[..., 2] < 140)).sum())


def test_success_is_marked_green(tmp_path, still_video):
    env = arm_env(max_episode_steps=1, success_radius=10.0)
    info = render_video(zeros, env, tmp_path / "success.mp4", episodes=1, size=SIZE, hold_s=0)
    assert info.success == (True,)
    assert green_pixels(read_mp4(info.path)[-1]) > 50
    info, frames, _ = still_video
    assert info.success == (False,) * EPISODES
    assert max(green_pixels(frame) for frame in frames) == 0


def test_trail_draws_the_fingertip_path(tmp_path):
    last = {}
    for trail_length in (40, 0):
        env = arm_env(max_episode_steps=20)
        path = tmp_path / f"trail{trail_length}.gif"  # GIF: half the frames to render
        render_video(spin, env, path, episodes=1, seed=1, camera="top", size=(160, 160),
                     hold_s=0, trail_length=trail_length)
        last[trail_length] = imageio.v3.imread(path, index=None)[-1, ..., :3].astype(np.int16)
    changed = np.abs(last[40] - last[0]).max(axis=2) > 60
    changed[CAPTION] = False
    assert changed.sum() > 50, "the trail left no visible mark"
    red, green, blue = last[40][changed].mean(axis=0)
    assert red > green > blue, "the trail is not amber"


@pytest.mark.parametrize("frame_skip, kept, fps", [(1, 2, 50.0), (3, 1, 100 / 3)])
def test_mp4_above_60_hz_keeps_every_kth_step_and_plays_in_real_time(tmp_path, frame_skip,
                                                                      kept, fps):
    """100 Hz control → every 2nd step at 50 fps; 33.3 Hz → every step. Either way one
    video second is one simulated second."""
    steps = 12
    env = arm_env(frame_skip=frame_skip, max_episode_steps=steps)
    assert env.metadata["render_fps"] == pytest.approx(100 / frame_skip)
    info = render_video(spin, env, tmp_path / "clip.mp4", episodes=1, size=SIZE, hold_s=0)
    assert info.fps == pytest.approx(fps) and info.fps <= video.MP4_MAX_FPS
    assert info.frames == 1 + steps // kept
    assert (info.frames - 1) / info.fps == pytest.approx(steps * env.dt)
    assert len(read_mp4(info.path)) == info.frames


@pytest.mark.parametrize("rate, fps", [(50, 50), (60, 60), (100, 50), (250, 50), (500, 500 / 9),
                                       (1000, 1000 / 17)])
def test_default_mp4_rate_is_the_control_rate_over_k_at_most_60(tmp_path, rate, fps):
    assert video._frame_rate(tmp_path / "a.mp4", 1 / rate, None) == pytest.approx(fps)


@pytest.mark.parametrize("frame_skip, steps", [(2, 40), (1, 80)])
def test_default_trail_covers_the_same_time_at_any_control_rate(tmp_path, monkeypatch,
                                                                frame_skip, steps):
    seen = []
    painter = video._Painter
    monkeypatch.setattr(video, "_Painter", lambda r, c, n, *a: seen.append(n) or painter(r, c, n, *a))
    env = arm_env(frame_skip=frame_skip, max_episode_steps=2)
    render_video(zeros, env, tmp_path / "clip.mp4", episodes=1, size=SIZE, hold_s=0)
    assert seen == [steps]


def test_an_explicit_fps_is_kept(tmp_path):
    assert video._frame_rate(tmp_path / "a.mp4", 1 / 500, 120.0) == 120.0


# --- GIF -----------------------------------------------------------------------------------

def test_gif_plays_in_real_time_at_25_fps(tmp_path):
    env = arm_env(max_episode_steps=STEPS)
    path = tmp_path / "clip.gif"
    info = render_video(spin, env, path, episodes=EPISODES, size=SIZE, hold_s=HOLD_S)
    hold = 3  # 0.1 s at 25 fps, rounded
    assert info.fps == 25.0
    assert info.frames == EPISODES * (1 + STEPS // 2 + hold)
    # Pillow merges identical frames into longer ones, so count time, not frames.
    durations = gif_durations_ms(path)
    assert sum(durations) == info.frames * 40
    assert max(durations) == 40 * (1 + hold)  # the last frame of an episode, held
    frames = imageio.v3.imread(path, index=None)
    assert frames.shape[1:3] == (SIZE[1], SIZE[0]) and len(frames) == len(durations)
    assert files_in(tmp_path) == ["clip.gif"]


# --- errors, all raised before rendering and leaving no file behind ------------------------

@pytest.mark.parametrize("name", ["clip.avi", "clip", "clip.mp4.part"])
def test_unknown_extension_is_refused(tmp_path, no_rendering, name):
    path = tmp_path / name
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*mp4, .gif"):
        render_video(zeros, arm_env(), path)
    assert files_in(tmp_path) == []


def test_unknown_camera_lists_the_cameras(tmp_path, no_rendering):
    with pytest.raises(ValueError, match="'side'.*top, angled"):
        render_video(zeros, arm_env(), tmp_path / "clip.mp4", camera="side")
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("size", [(161, 120), (160, 119), (0, 120)])
def test_odd_or_empty_size_is_refused(tmp_path, no_rendering, size):
    with pytest.raises(ValueError, match=f"{size[0]}x{size[1]}"):
        render_video(zeros, arm_env(), tmp_path / "clip.mp4", size=size)
    assert files_in(tmp_path) == []


def test_a_gif_too_large_for_memory_is_refused_before_rendering(tmp_path, no_rendering):
    # A GIF keeps every frame until it is written: a million 1-s episodes at 480x480
    # would be some 17 TB. Refused with the episodes and size named, nothing written.
    with pytest.raises(ValueError, match=r"GIF keeps its frames in memory: 1,000,000 episodes at 480x480"):
        render_video(zeros, arm_env(), tmp_path / "clip.gif", episodes=1_000_000)
    assert files_in(tmp_path) == []


def test_other_envs_are_refused(tmp_path, no_rendering):
    with pytest.raises(ValueError, match="render needs a reacher arm env"):
        render_video(zeros, gym.make("Pendulum-v1"), tmp_path / "clip.mp4")


def test_directory_that_is_a_file(tmp_path, no_rendering):
    (tmp_path / "taken").write_text("not a directory")
    path = tmp_path / "taken" / "clip.mp4"
    with pytest.raises(OSError, match=re.escape(str(path))):
        render_video(zeros, arm_env(), path)
    assert files_in(tmp_path) == ["taken"]


def test_path_that_is_a_directory(tmp_path, no_rendering):
    (tmp_path / "clip.mp4").mkdir()
    with pytest.raises(OSError, match="is a directory"):
        render_video(zeros, arm_env(), tmp_path / "clip.mp4")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0,
                    reason="needs a user that file permissions apply to")
def test_read_only_directory(tmp_path, no_rendering):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(PermissionError, match=re.escape(str(locked / "clip.mp4"))):
            render_video(zeros, arm_env(), locked / "clip.mp4")
        assert files_in(locked) == []
    finally:
        locked.chmod(0o700)


def test_failure_midway_keeps_the_old_video(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"the previous video")
    steps = []

    def breaks(obs):
        steps.append(obs)
        if len(steps) > 3:
            raise RuntimeError("policy broke")
        return np.zeros(2)

    with pytest.raises(RuntimeError, match="policy broke"):
        render_video(breaks, arm_env(), path, size=SIZE)
    assert path.read_bytes() == b"the previous video"
    assert files_in(tmp_path) == ["clip.mp4"]


# --- render_run ----------------------------------------------------------------------------

def test_render_run_uses_the_runs_policy_and_env(tmp_path, monkeypatch):
    """A stand-in for reacher.run.policy, so the test needs neither torch nor a checkpoint."""
    envs = []

    class FakePolicy:
        def __call__(self, obs):
            return np.zeros(2)

        def make_env(self, render_mode=None, **kwargs):
            envs.append(arm_env(max_episode_steps=2))
            return envs[-1]

    loaded = []
    fake = types.ModuleType("reacher.run.policy")
    fake.load_policy = lambda run: loaded.append(run) or FakePolicy()
    monkeypatch.setitem(sys.modules, "reacher.run.policy", fake)

    info = render_run(tmp_path / "run", tmp_path / "run.mp4", episodes=1, size=SIZE, hold_s=0)
    assert loaded == [tmp_path / "run"] and len(envs) == 1
    assert info.frames == 3 and len(read_mp4(info.path)) == 3


# --- the temporary file ----------------------------------------------------------------------

def test_a_symlink_planted_at_a_guessable_temporary_name_is_never_written_through(tmp_path):
    """The temporary file once was `.NAME.<pid>.tmp.EXT`: anyone who could write to the
    output directory could plant a symlink there and have the video overwrite its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    for pid in {os.getpid(), os.getppid()}:
        for name in (f".clip.{pid}.tmp.gif", f".clip.{pid}.tmp"):
            (out / name).symlink_to(victim)
    planted = files_in(out)
    info = render_video(zeros, arm_env(max_episode_steps=2), out / "clip.gif", episodes=1, size=SIZE,
                        hold_s=0)
    assert victim.read_text() == "precious"
    assert info.path.stat().st_size > 0 and not info.path.is_symlink()
    assert files_in(out) == sorted(planted + ["clip.gif"])  # the planted links only, no temp file
    assert oct(info.path.stat().st_mode & 0o777) == oct(0o644)
