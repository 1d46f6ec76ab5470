"""`reacher inspect`: what it reports about an arm, the warnings it gives (each with a fix),
and its one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import write_arm
from test_arm import chain_xml
from test_cli import assert_one_error_line, in_process, ok, reacher

from reacher.tools.inspection import inspect_arm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"


def arm_xml(*, gear: float = 10, shoulder_range: str = 'range="-1.4 1.4"', ctrl: str = 'ctrlrange="-1 1"',
            elbow_actuator: bool = True, timestep: float = 0.01) -> str:
    """A spatial 3-DOF arm under gravity: a turntable, then shoulder and elbow pitch."""
    elbow = f'<motor joint="elbow" gear="{gear}" {ctrl}/>' if elbow_actuator else ""
    return f"""<mujoco model="probe">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}"/>
  <default><joint damping="1" armature="0.1"/><geom type="capsule" size="0.02" density="1000"/></default>
  <worldbody>
    <body name="turntable" pos="0 0 0.3">
      <joint name="yaw" axis="0 0 1"/>
      <geom type="sphere" size="0.03"/>
      <body name="upper">
        <joint name="shoulder" axis="0 1 0" {shoulder_range}/>
        <geom fromto="0 0 0 0.2 0 0"/>
        <body name="fore" pos="0.2 0 0">
          <joint name="elbow" axis="0 1 0" range="-2.6 2.6"/>
          <geom fromto="0 0 0 0.2 0 0"/>
          <site name="tip" pos="0.2 0 0"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="yaw" gear="{gear}" {ctrl}/>
    <motor joint="shoulder" gear="{gear}" {ctrl}/>
    {elbow}
  </actuator>
</mujoco>
"""


def problems(report) -> str:
    return "\n".join(w.problem for w in report.warnings)


def test_a_sound_arm_has_no_warnings(tmp_path):
    report = inspect_arm(write_arm(tmp_path, "sound", arm_xml()), "tip")
    assert report.warnings == []
    assert [j["type"] for j in report.joints] == ["hinge"] * 3
    assert report.joints[0]["range"] is None and report.joints[1]["range"] == [-1.4, 1.4]
    assert [a["kind"] for a in report.actuators] == ["motor"] * 3
    assert (report.frame_skip, report.episode_steps) == (2, 50)
    assert report.workspace_radius_m == pytest.approx(0.4, rel=0.01)
    assert not report.planar and report.gravity == [0, 0, -9.81]


def test_menagerie_panda_is_reported_as_position_servos_at_its_own_timestep():
    report = inspect_arm(EXAMPLES / "panda.xml", "attachment_site")
    assert len(report.joints) == 7 and all(j["range"] for j in report.joints)
    assert {a["kind"] for a in report.actuators} == {"position"}
    first = report.actuators[0]
    assert (first["kp"], first["kv"], first["forcerange"]) == (4500, 450, [-87, 87])
    assert (report.timestep_s, report.frame_skip, report.control_period_s) == (0.002, 10, 0.02)
    assert any("hidden groups" in a for a in report.added)
    # Franka's servos hold the arm against gravity, and settle within the 2-s episode
    # training gives servo-driven arms; a 1-s episode would be too short.
    assert report.episode_s == 2.0 and report.warnings == []
    short = inspect_arm(EXAMPLES / "panda.xml", "attachment_site", episode_s=1.0)
    assert [w.problem.split(",")[0] for w in short.warnings] == ["an episode lasts 1 s"]
    assert 0.5 < report.servo_settle_s < 3 and report.servo_settled_share >= 0.9


@pytest.mark.slow
def test_episode_too_short_for_the_servos_is_a_warning_until_it_is_long_enough():
    """The xArm7 reaches through ee: its controller needs more than 1 s for most moves
    (the same moves the episode rule times), and the suggested length is enough."""
    short = inspect_arm(EXAMPLES / "xarm7.xml", "attachment_site", episode_s=1.0)
    (warning,) = [w for w in short.warnings if w.problem.startswith("an episode lasts 1 s")]
    assert "ee control" in warning.problem
    fix_s = int(warning.fix.split("--episode-s ")[1].split()[0])
    assert fix_s >= 2
    long = inspect_arm(EXAMPLES / "xarm7.xml", "attachment_site", episode_s=fix_s)
    assert not any(w.problem.startswith("an episode") for w in long.warnings)
    motors = inspect_arm("two_link")
    assert motors.servo_settle_s is None and motors.servo_settled_share is None


def test_weak_actuator_against_gravity_is_named_with_its_fix(tmp_path):
    report = inspect_arm(write_arm(tmp_path, "weak", arm_xml(gear=0.5)), "tip")
    text = problems(report)
    assert "joint 'shoulder'" in text and "gravity" in text
    assert "joint 'yaw'" not in text  # a vertical axis carries no weight
    assert any("gear" in w.fix for w in report.warnings)


def test_unlimited_hinge_on_a_spatial_arm_but_not_the_base_turntable(tmp_path):
    report = inspect_arm(write_arm(tmp_path, "free", arm_xml(shoulder_range="")), "tip")
    assert "hinge 'shoulder' has no range" in problems(report)
    assert "'yaw'" not in problems(report)
    assert any('range="lo hi"' in w.fix for w in report.warnings)


def test_unactuated_joint_and_missing_ctrlrange(tmp_path):
    report = inspect_arm(write_arm(tmp_path, "loose", arm_xml(elbow_actuator=False, ctrl="")),
                         "tip")
    text = problems(report)
    assert "joint 'elbow' has no actuator" in text
    assert text.count("has no ctrlrange") == 2


def test_rounded_control_period_is_a_warning(tmp_path):
    report = inspect_arm(write_arm(tmp_path, "sound", arm_xml()), "tip", control_period_s=0.025)
    assert "not a whole number" in problems(report) and report.frame_skip in (2, 3)


# --- the command -------------------------------------------------------------------------------

def test_inspect_prints_the_report(tmp_path, monkeypatch, capsys):
    path = write_arm(tmp_path, "weak", arm_xml(gear=0.5))
    out = ok(in_process(["inspect", path, "--end-effector", "tip"], tmp_path, monkeypatch, capsys)).stdout
    for part in ("joints (3)", "shoulder  hinge  [-1.4, 1.4] rad", "motor, gear 0.5",
                 "timestep 0.01 s", "every 0.02 s = 2 timesteps (50 Hz)", "episode 1 s = 50 steps",
                 "radius 0.4 m", "reacher adds", "warnings (", "fix: "):
        assert part in out, part


def test_inspect_json(tmp_path):
    result = ok(reacher("inspect", EXAMPLES / "gen3.xml", "--end-effector", "pinch_site", "--json",
                        cwd=tmp_path))
    data = json.loads(result.stdout)
    assert data["end_effector"] == "pinch_site" and len(data["actuators"]) == 7
    assert data["actuators"][0]["kind"] == "position" and data["timestep_s"] == 0.002
    assert isinstance(data["warnings"], list)


@pytest.mark.parametrize("args, message", [
    (["no_such_arm.xml"], "no_such_arm.xml: no such file"),
    (["two_link", "--end-effector", "hand"], "no site or body named 'hand'"),
])
def test_inspect_errors_are_one_line(tmp_path, monkeypatch, capsys, args, message):
    line = assert_one_error_line(in_process(["inspect", *args], tmp_path, monkeypatch, capsys))
    assert message in line


def test_slide_without_range_is_refused_with_its_fix(tmp_path, monkeypatch, capsys):
    xml = arm_xml().replace('<joint name="elbow" axis="0 1 0" range="-2.6 2.6"/>',
                            '<joint name="elbow" type="slide" axis="1 0 0"/>')
    path = write_arm(tmp_path, "slider", xml)
    line = assert_one_error_line(in_process(["inspect", path, "--end-effector", "tip"], tmp_path,
                                            monkeypatch, capsys))
    assert "slide joint 'elbow' has no range" in line and 'range="lo hi"' in line



def test_servo_without_ctrlrange_needs_no_warning():
    """Menagerie's Gen3 leaves its continuous joints' servos unlimited; reacher maps their
    actions onto the joint's whole turn, so there is nothing for the user to fix."""
    report = inspect_arm(EXAMPLES / "gen3.xml", "pinch_site")
    assert not any("ctrlrange" in w.problem for w in report.warnings), problems(report)
    assert report.episode_s == 2.0  # servo-driven: training's default episode


# --- hostile arms (issue 16) --------------------------------------------------------------------

def test_physics_blow_up_is_a_warning_naming_the_arm(tmp_path):
    """A gear of 1e6 loads (it is finite) but blows up within a few control steps under
    random actions: inspect steps the model and says so before any training."""
    path = write_arm(tmp_path, "explosive", arm_xml(gear=1e6))
    report = inspect_arm(path, "tip")
    (warning,) = [w for w in report.warnings if "blew up" in w.problem]
    assert str(path) in warning.problem and "gear" in warning.fix


def test_non_finite_gear_is_refused_not_inspected(tmp_path, monkeypatch, capsys):
    path = write_arm(tmp_path, "nan_gear", arm_xml().replace('gear="10"', 'gear="nan"', 1))
    line = assert_one_error_line(in_process(["inspect", path, "--end-effector", "tip"], tmp_path,
                                            monkeypatch, capsys))
    assert f"arm file {path}: <motor> on joint 'yaw'" in line and 'gear="nan"' in line


def test_timing_the_arms_timestep_cannot_honour_names_the_arm_file(tmp_path, monkeypatch, capsys):
    path = write_arm(tmp_path, "coarse", arm_xml(timestep=0.05))
    line = assert_one_error_line(in_process(["inspect", path, "--end-effector", "tip"], tmp_path,
                                            monkeypatch, capsys))
    assert f"arm file {path}: " in line and "timestep 0.05 s" in line


def test_a_40_joint_chain_is_inspected_within_2_seconds(tmp_path):
    """Issue 16's goal, in CPU seconds (it took 13 s)."""
    path = write_arm(tmp_path, "chain40", chain_xml(40))
    start = time.process_time()
    report = inspect_arm(path)
    assert time.process_time() - start < 2.0
    assert len(report.joints) == 40 and report.workspace_radius_m == pytest.approx(2.0, abs=1e-6)


def test_an_ee_arm_is_judged_by_what_its_controller_does():
    """iiwa14 reaches through ee, whose servo targets lead by gravity: the 30 % of direct
    servo commands that sag short of their pose are not its episode's problem, and in its
    default episode the ee controller makes its sampled moves, so no episode warning."""
    report = inspect_arm(EXAMPLES / "iiwa14.xml", "attachment_site")
    assert report.control == "ee" and report.servo_settled_share < 0.9
    assert not [w for w in report.warnings if w.problem.startswith("an episode lasts")]
