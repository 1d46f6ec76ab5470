"""The settings that follow the arm (reacher.sim.fit), read from the compiled model, never
from the file's name: the controller and the episode length."""

from __future__ import annotations

from pathlib import Path

import pytest

from reacher.config import Config
from reacher.run import settings
from reacher.sim import fit
from reacher.sim.arm import load_arm
from reacher.tools.inspection import format_report, inspect_arm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"
UR5E = EXAMPLES / "ur5e.xml"


def test_torque_arms_that_learn_joint_torques_keep_one_second():
    for name in ("two_link", "three_link"):
        assert fit.episode_seconds(load_arm(name, "fingertip")) == 1.0


def test_a_slow_arm_gets_the_episode_its_controller_needs():
    """UR5e's big joints turn at most 0.75 rad/s: 2 s is far too short for its moves."""
    slow = fit.episode_fit(load_arm(UR5E, "wrist_3_link"))
    assert 4.0 <= slow[0] <= fit.MAX_FIT_S and "sampled moves" in slow[1]
    assert fit.episode_seconds(load_arm(EXAMPLES / "panda.xml", "attachment_site")) == fit.SERVO_EPISODE_S


def test_the_episode_rule_reads_the_model_not_the_name(tmp_path):
    """A copy of the UR5e (same file name) whose big servos may push ten times harder
    turns faster and gets a shorter episode."""
    text = UR5E.read_text().replace('forcerange="-150 150"', 'forcerange="-1500 1500"')
    assert text != UR5E.read_text()
    fast = tmp_path / "ur5e.xml"
    fast.write_text(text)
    assert fit.episode_seconds(load_arm(fast, "wrist_3_link")) < fit.episode_seconds(load_arm(UR5E, "wrist_3_link"))


def test_the_resolved_episode_is_recorded_and_shown_with_its_reason():
    arm = load_arm(UR5E, "wrist_3_link")
    resolved = settings.for_arm(Config(arm=str(UR5E), end_effector="wrist_3_link"), arm)
    assert resolved.episode_s == fit.episode_seconds(arm) > 2.0
    assert settings.for_arm(Config(arm=str(UR5E), end_effector="wrist_3_link", episode_s=3.0),
                            arm).episode_s == 3.0  # the user's value wins
    report = inspect_arm(UR5E, "wrist_3_link")
    assert report.episode_s == resolved.episode_s and "sampled moves" in report.episode_reason
    assert report.episode_reason in format_report(report)
    assert inspect_arm(UR5E, "wrist_3_link", episode_s=3.0).episode_reason == "as given"


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_episode_length_is_refused_naming_it(bad):
    from reacher.config import ConfigError
    with pytest.raises(ConfigError, match="episode_s"):
        Config(episode_s=bad)


def test_an_arm_of_mostly_servos_on_joint_control_keeps_the_servo_episode(tmp_path):
    from test_actuation import MIXED
    path = tmp_path / "mixed.xml"
    path.write_text(MIXED)
    arm = load_arm(path, "tip")
    assert fit.control_for(arm)[0] == "joint"
    assert fit.episode_seconds(arm) == fit.SERVO_EPISODE_S
