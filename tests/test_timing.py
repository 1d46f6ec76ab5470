"""Control timing in seconds: frame_skip and episode length follow the arm's timestep."""

from __future__ import annotations

import re

import pytest

from reacher.sim.timing import control_timing
from reacher.task.env import ReachEnv


@pytest.mark.parametrize("timestep, frame_skip", [(0.001, 20), (0.002, 10), (0.005, 4),
                                                  (0.01, 2), (0.02, 1)])
def test_same_seconds_for_every_timestep(timestep, frame_skip):
    timing = control_timing(timestep, 0.02, 1.0)
    assert timing.frame_skip == frame_skip
    assert timing.control_period_s == pytest.approx(0.02)
    assert timing.episode_steps == 50 and timing.episode_s == pytest.approx(1.0)
    assert timing.note is None


def test_a_period_between_timesteps_is_rounded_and_said_so():
    timing = control_timing(0.01, 0.025, 1.0)
    assert timing.frame_skip in (2, 3)
    assert timing.note is not None and "0.025 s" in timing.note and "not a whole number" in timing.note
    assert timing.episode_steps == round(1.0 / timing.control_period_s)


def test_a_period_shorter_than_the_timestep_is_refused():
    with pytest.raises(ValueError, match=re.escape("control_period_s 0.001 s is shorter than the "
                                                   "arm's timestep 0.01 s")):
        control_timing(0.01, 0.001, 1.0)


def test_step_counts_override_seconds():
    timing = control_timing(0.002, 0.02, 1.0, frame_skip=3, episode_steps=7)
    assert (timing.frame_skip, timing.episode_steps, timing.note) == (3, 7, None)
    assert timing.control_period_s == pytest.approx(0.006)


def test_env_at_default_mujoco_timestep_lasts_one_second(tmp_path):
    xml = (ReachEnv("two_link").arm.source)
    text = open(xml).read().replace('timestep="0.01"', 'timestep="0.002"')
    assert 'timestep="0.002"' in text
    path = tmp_path / "fine_two_link.xml"
    path.write_text(text)
    env = ReachEnv(path)
    assert env.frame_skip == 10 and env.dt == pytest.approx(0.02)
    assert env.metadata["render_fps"] == pytest.approx(50)
    env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        truncated = env.step(env.action_space.sample())[3]
        steps += 1
    assert steps == 50 and env.data.time == pytest.approx(1.0)


def test_a_control_period_the_arm_cannot_honour_names_the_arm_file():
    from reacher.errors import ArmFileError

    with pytest.raises(ArmFileError, match=r"arm file .*two_link\.xml: control_period_s 0\.001"):
        ReachEnv("two_link", control_period_s=0.001)
