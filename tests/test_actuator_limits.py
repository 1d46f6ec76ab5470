"""Controllers and `reacher inspect` on what MuJoCo itself does to an actuator's force:
bodies whose weight the simulator carries (`gravcomp`), and force limits set on the
joint (`actuatorfrcrange`) rather than on the actuator."""

from __future__ import annotations

import numpy as np
import pytest
from test_collision import ARM

from reacher.task.env import ReachEnv
from reacher.tools.inspection import format_report, inspect_arm


def _variant(tmp_path, name: str, old: str, new: str, count: int = -1) -> str:
    assert old in ARM
    path = tmp_path / f"{name}.xml"
    path.write_text(ARM.replace(old, new, count))
    return str(path)


@pytest.fixture(params=["passive", "actuated"])
def gravcomp_arm(tmp_path, request) -> str:
    """The over-floor servo arm with its links' weight carried by MuJoCo (`gravcomp`),
    as a passive force or, with `actuatorgravcomp`, through the actuators."""
    xml = ARM.replace('<body name="upper">', '<body name="upper" gravcomp="1">')
    xml = xml.replace('<body name="fore" pos="0 0 0.3">', '<body name="fore" pos="0 0 0.3" gravcomp="1">')
    if request.param == "actuated":
        xml = xml.replace('damping="1"/>', 'damping="1" actuatorgravcomp="true"/>')
    path = tmp_path / f"gravcomp_{request.param}.xml"
    path.write_text(xml)
    return str(path)


def _hold_drift(env: ReachEnv, q_hold: np.ndarray, seconds: float) -> float:
    """Set the arm still at `q_hold`, give zero actions for `seconds`: the largest joint drift."""
    env.reset(seed=0)
    env.data.qpos[env.arm.qpos_adr] = q_hold
    env.data.qvel[:] = 0
    env.physics.forward()
    for _ in range(round(seconds / env.dt)):
        env.step(np.zeros(env.action_space.shape))
    return float(np.abs(env.data.qpos[env.arm.qpos_adr] - q_hold).max())


@pytest.mark.parametrize("control", ["joint_delta", "ee"])
def test_gravity_is_not_compensated_twice_on_gravcomp_bodies(gravcomp_arm, control):
    env = ReachEnv(gravcomp_arm, "tip", control=control, episode_s=None)
    assert env.model.body_gravcomp.any()
    # Forearm out level: gravity's torque on shoulder and elbow is at its largest.
    assert _hold_drift(env, np.array([0.3, 1.2, 0.3]), 2.0) < 0.01


def test_inspect_reads_force_limits_on_joints(tmp_path):
    """A shoulder limited to 1 N·m by the joint's actuatorfrcrange (the servo itself has
    no forcerange) cannot hold the arm: inspect says so, and shows the limit."""
    path = _variant(tmp_path, "joint_limited", 'range="-2.5 2.5" damping="1"/>',
                    'range="-2.5 2.5" damping="1" actuatorfrcrange="-1 1"/>')
    report = inspect_arm(path, "tip")
    shoulder = next(a for a in report.actuators if a["joint"] == "shoulder")
    assert shoulder["joint_forcerange"] == [-1.0, 1.0]
    assert any("joint 'shoulder'" in w.problem and "at most 1 N·m" in w.problem
               for w in report.warnings)
    line = next(l for l in format_report(report).splitlines() if "on shoulder" in l)
    assert "force unlimited" not in line and "joint force [-1, 1]" in line


def test_inspect_does_not_count_gravity_mujoco_carries(tmp_path):
    """Weak servos (forcerange ±0.5) on links whose weight MuJoCo carries (gravcomp):
    no gravity warning, where the same arm without gravcomp gets one per lifting joint."""
    weak = ARM.replace('kp="50"', 'kp="50" forcerange="-0.5 0.5"')
    plain = tmp_path / "weak.xml"
    plain.write_text(weak)
    carried = tmp_path / "weak_gravcomp.xml"
    carried.write_text(weak.replace('<body name="upper">', '<body name="upper" gravcomp="1">')
                       .replace('<body name="fore" pos="0 0 0.3">', '<body name="fore" pos="0 0 0.3" gravcomp="1">'))
    def gravity(path):
        return [w for w in inspect_arm(path, "tip").warnings if "gravity pulls" in w.problem]
    assert len(gravity(plain)) == 2
    assert gravity(carried) == []


def test_inspect_blames_gravity_for_servos_that_sag_and_suggests_no_longer_episode(tmp_path):
    """Servos too weak to lift the arm (forcerange ±2 N·m; gravity needs up to 5.6 at the
    shoulder) never settle on poses that need lifting: the warning names gravity as the
    cause (the same moves settle with gravity off) and suggests stronger servos or
    gravcomp, not a longer episode."""
    path = tmp_path / "sagging.xml"
    path.write_text(ARM.replace('kp="50"', 'kp="50" forcerange="-2 2"').replace('damping="1"', 'damping="0.1"'))
    report = inspect_arm(path, "tip")
    (warning,) = [w for w in report.warnings if w.problem.startswith("an episode lasts")]
    assert "gravity:" in warning.problem and "contacts" not in warning.problem
    assert "--episode-s" not in warning.fix and "gravcomp" in warning.fix
