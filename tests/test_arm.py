"""reacher.sim.arm: loading, checking and completing arm files."""

from __future__ import annotations

import math
import time

import mujoco
import numpy as np
import pytest
from conftest import ARM_CASES, write_arm

from reacher.errors import ArmFileError
from reacher.sim.arm import BUILTIN_ARMS, builtin_path, load_arm

BUILTIN_JOINTS = {"two_link": ("shoulder", "elbow"), "three_link": ("shoulder", "elbow", "wrist")}


def _id(model: mujoco.MjModel, objtype: mujoco.mjtObj, name: str) -> int:
    return mujoco.mj_name2id(model, objtype, name)


def _target_body(arm) -> str:
    """Name of the mocap body the arm uses as its target."""
    return arm.model.body(int(np.flatnonzero(arm.model.body_mocapid == arm.target_mocap)[0])).name


def chain_xml(n_joints: int, link_m: float = 0.05) -> str:
    """A spatial chain of `n_joints` hinges, alternately about z and y, each link
    `link_m` long with the fingertip one link past the last joint: its reach from the
    first joint is n_joints · link_m (every joint but the first is limited to ±1.5 rad,
    and straight is within the limits)."""
    body = f'<site name="fingertip" pos="{link_m} 0 0"/>'
    for i in reversed(range(n_joints)):
        axis = "0 0 1" if i % 2 == 0 else "0 1 0"
        limits = ' range="-1.5 1.5"' if i else ""
        pos = f"{link_m} 0 0" if i else "0 0 0.5"
        body = (f'<body name="b{i}" pos="{pos}"><joint name="j{i}" axis="{axis}"{limits}/>'
                f'<geom type="capsule" fromto="0 0 0 {link_m} 0 0" size="0.01"/>{body}</body>')
    motors = "".join(f'<motor joint="j{i}" ctrlrange="-1 1"/>' for i in range(n_joints))
    return ('<mujoco><compiler angle="radian" autolimits="true"/><default><joint damping="0.1"/>'
            f'</default><worldbody>{body}</worldbody><actuator>{motors}</actuator></mujoco>')


# --- loading --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTIN_ARMS)
def test_builtin_by_name_and_by_path_agree(name):
    by_name = load_arm(name)
    by_path = load_arm(builtin_path(name))
    assert by_name.name == by_path.name == name
    assert by_name.joint_names == by_path.joint_names == BUILTIN_JOINTS[name]
    assert by_name.actuator_names == BUILTIN_JOINTS[name]
    assert by_name.planar and by_path.planar
    assert by_name.model.nq == by_path.model.nq == len(BUILTIN_JOINTS[name])
    np.testing.assert_allclose(by_name.reach_m, by_path.reach_m)


def test_builtin_reuses_the_files_own_target_cameras_and_sensors():
    arm = load_arm("two_link")
    model = arm.model
    assert arm.cameras == ("top", "angled")
    assert model.ncam == 2  # nothing added when the file has both cameras
    assert _target_body(arm) == "target"
    # the file's jointpos sensors are read, not duplicates of them
    assert [model.sensor_adr[_id(model, mujoco.mjtObj.mjOBJ_SENSOR, n)] for n in
            ("shoulder_pos", "elbow_pos")] == arm.joint_pos_adr.tolist()


def test_user_arm_discovers_joints_actuators_and_end_effector(four_link_path):
    arm = load_arm(four_link_path, end_effector="tip")
    assert arm.name == "four_link"
    assert arm.source == str(four_link_path)
    assert arm.joint_names == ("j1", "j2", "j3", "j4")
    assert arm.actuator_names == ("m1", "m2", "m3", "m4")
    assert arm.hinge.tolist() == [True] * 4
    assert arm.end_effector == "tip"
    np.testing.assert_array_equal(arm.ctrl_low, -1.0)
    np.testing.assert_array_equal(arm.ctrl_high, 1.0)
    # j1 has no range: sampled over a full turn; the others within their limits
    np.testing.assert_allclose(arm.joint_low, [-math.pi, -2.5, -2.5, -2.5])
    np.testing.assert_allclose(arm.joint_high, [math.pi, 2.5, 2.5, 2.5])


def test_planar_flag(arm_case):
    case, path = arm_case
    arm = load_arm(path, case.end_effector)
    assert arm.planar is case.planar
    np.testing.assert_allclose(arm.base_pos, case.base_pos, atol=1e-12)
    # reach_m is the furthest fingertip distance found: never beyond the true reach, and
    # (refined from the best samples) equal to it
    assert case.reach_m - 1e-6 <= arm.reach_m <= case.reach_m + 1e-9


def test_missing_target_cameras_and_sensors_are_added(four_link_path):
    arm = load_arm(four_link_path, end_effector="tip")
    model = arm.model
    target = _id(model, mujoco.mjtObj.mjOBJ_BODY, "target")
    assert target >= 0 and model.body_mocapid[target] == arm.target_mocap >= 0
    for camera in ("top", "angled"):
        assert _id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) >= 0
    assert arm.cameras == ("top", "angled")

    # The sensors read what they should: joint positions and velocities, the `tip`
    # site and the target body, compared with MjData's own fields.
    data = mujoco.MjData(model)
    rng = np.random.default_rng(1)
    data.qpos[arm.qpos_adr] = arm.random_configuration(rng)
    data.qvel[arm.qvel_adr] = rng.normal(size=arm.n_joints)
    data.mocap_pos[arm.target_mocap] = [0.05, -0.07, 0.02]
    mujoco.mj_forward(model, data)
    sd = data.sensordata
    np.testing.assert_allclose(sd[arm.joint_pos_adr], data.qpos[arm.qpos_adr])
    np.testing.assert_allclose(sd[arm.joint_vel_adr], data.qvel[arm.qvel_adr])
    np.testing.assert_allclose(sd[arm.end_effector_adr], data.site("tip").xpos)
    np.testing.assert_allclose(sd[arm.target_adr], [0.05, -0.07, 0.02])


def test_body_as_end_effector(body_hand_path):
    arm = load_arm(body_hand_path, end_effector="hand")
    data = mujoco.MjData(arm.model)
    tip = arm.fingertip_at(data, np.array([0.4, -1.1]))
    np.testing.assert_allclose(tip, data.body("hand").xpos)
    expected = [0.08 * math.cos(0.4) + 0.07 * math.cos(0.4 - 1.1),
                0.08 * math.sin(0.4) + 0.07 * math.sin(0.4 - 1.1), 0.05]
    np.testing.assert_allclose(tip, expected, atol=1e-12)


def test_spatial_arm_is_not_planar_and_leaves_the_plane(spatial_path):
    arm = load_arm(spatial_path)
    data = mujoco.MjData(arm.model)
    level = arm.fingertip_at(data, np.array([0.0, 0.0, 0.0]))
    raised = arm.fingertip_at(data, np.array([0.0, -1.0, 0.0]))  # about +y: -angle lifts x
    np.testing.assert_allclose(level, [0.19, 0.0, 0.3], atol=1e-12)
    assert raised[2] > level[2] + 0.1


def test_long_chain_reach_is_exact_and_loading_is_quick(tmp_path):
    """A 40-joint chain: the reach refined from samples is the straight arm's, and loading
    took seconds before the refinement used MuJoCo's Jacobian (issue 16). CPU time, which
    other processes on a shared machine do not inflate."""
    path = write_arm(tmp_path, "chain40", chain_xml(40))
    start = time.process_time()
    arm = load_arm(path)
    assert time.process_time() - start < 2.0
    assert arm.reach_m == pytest.approx(40 * 0.05, abs=1e-6)


def _load_seconds(path) -> float:
    """CPU seconds of the faster of two loads (the machine is shared: CPU time, not wall
    time, is what other processes do not inflate)."""
    times = []
    for _ in range(2):
        start = time.process_time()
        load_arm(path)
        times.append(time.process_time() - start)
    return min(times)


def test_loading_time_grows_about_linearly_with_joints(tmp_path):
    """Four times the joints, well under sixteen times the time (naming the added
    sensors was quadratic before)."""
    short = _load_seconds(write_arm(tmp_path, "chain20", chain_xml(20)))
    long = _load_seconds(write_arm(tmp_path, "chain80", chain_xml(80)))
    assert long < 8 * short


def test_user_file_is_not_modified(arm_dir):
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in arm_dir.iterdir()}
    for case in ARM_CASES.values():
        load_arm(arm_dir / f"{case.name}.xml", case.end_effector)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in arm_dir.iterdir()}
    assert after == before  # same bytes, untouched, and no file written beside them


def test_existing_names_do_not_clash(clashing_path):
    arm = load_arm(clashing_path)
    model = arm.model
    # the file's own elements keep their names and kinds
    geom = model.geom("target")
    assert geom.type[0] == mujoco.mjtGeom.mjGEOM_BOX and geom.bodyid[0] == 0
    assert _id(model, mujoco.mjtObj.mjOBJ_SITE, "target_pos") >= 0
    assert model.sensor("shoulder_pos").type[0] == mujoco.mjtSensor.mjSENS_FRAMEPOS
    # the added target is a mocap body under another name
    assert _target_body(arm) not in ("", "target")
    assert model.nmocap == 1
    # the joint sensors read joints (not the file's frame sensor called shoulder_pos),
    # and the file's own jointvel sensor on the elbow is reused
    assert model.sensor_type[model.sensor_adr.tolist().index(arm.joint_pos_adr[0])] == \
        mujoco.mjtSensor.mjSENS_JOINTPOS
    assert arm.joint_vel_adr[1] == model.sensor("elbow_speed").adr[0]
    data = mujoco.MjData(model)
    data.qpos[:] = [0.3, -0.9]
    data.qvel[:] = [1.5, -2.0]
    data.mocap_pos[arm.target_mocap] = [0.1, 0.1, 0.02]
    mujoco.mj_forward(model, data)
    np.testing.assert_allclose(data.sensordata[arm.joint_pos_adr], [0.3, -0.9])
    np.testing.assert_allclose(data.sensordata[arm.joint_vel_adr], [1.5, -2.0])
    np.testing.assert_allclose(data.sensordata[arm.target_adr], [0.1, 0.1, 0.02])
    np.testing.assert_allclose(data.sensordata[arm.end_effector_adr], data.site("fingertip").xpos)


# --- errors ---------------------------------------------------------------------------------------

_ONE_JOINT_BODY = ('<body name="link"><joint name="j"/><geom size=".01"/>'
                   '<site name="fingertip"/></body>')
_ONE_MOTOR = '<actuator><motor joint="j"/></actuator>'

BAD_FILES = {
    "empty": ("", ["is empty"]),
    "whitespace": ("  \n\t\n", ["is empty"]),
    "plain_text": ("my arm has two links", ["not XML"]),
    "json": ('{"mujoco": {"worldbody": []}}', ["not XML"]),
    "unclosed_tag": ("<mujoco><worldbody><body></worldbody></mujoco>", ["malformed XML"]),
    "wrong_root": ("<robot name='r'/>", ["<robot>", "<mujoco>"]),
    "missing_mesh": ('<mujoco><asset><mesh name="m" file="nope.stl"/></asset><worldbody>'
                     '<body><joint name="j"/><geom type="mesh" mesh="m"/>'
                     f'<site name="fingertip"/></body></worldbody>{_ONE_MOTOR}</mujoco>',
                     ["nope.stl"]),
    "bad_keyword": ('<mujoco><worldbody><body><joint name="j" type="spiral"/>'
                    '<geom size=".01"/></body></worldbody></mujoco>', ["spiral"]),
    "no_actuators": (f"<mujoco><worldbody>{_ONE_JOINT_BODY}</worldbody></mujoco>",
                     ["no actuators", "<motor>"]),
    "no_joints": ('<mujoco><worldbody><body><geom size=".01"/><site name="fingertip"/></body>'
                  '</worldbody></mujoco>', ["no joints"]),
    "free_joint": ('<mujoco><worldbody><body><freejoint name="float"/><geom size=".01"/>'
                   f'{_ONE_JOINT_BODY}</body></worldbody>{_ONE_MOTOR}</mujoco>',
                   ["'float'", "free joint", "hinge and slide"]),
    "ball_joint": ('<mujoco><worldbody><body><joint name="wrist" type="ball"/><geom size=".01"/>'
                   f'{_ONE_JOINT_BODY}</body></worldbody>{_ONE_MOTOR}</mujoco>',
                   ["'wrist'", "ball joint", "hinge and slide"]),
    "slide_without_range": ('<mujoco><worldbody><body><joint name="j" type="slide"/>'
                            f'<geom size=".01"/><site name="fingertip"/></body></worldbody>'
                            f'{_ONE_MOTOR}</mujoco>', ["slide joint 'j'", "range"]),
    "unknown_actuator_joint": (f'<mujoco><worldbody>{_ONE_JOINT_BODY}</worldbody>'
                               '<actuator><motor joint="elbow"/></actuator></mujoco>',
                               ["does not compile", "elbow"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_arm_file_names_path_and_problem(tmp_path, case):
    xml, words = BAD_FILES[case]
    path = write_arm(tmp_path, case, xml)
    with pytest.raises(ArmFileError) as excinfo:
        load_arm(path)
    message = str(excinfo.value)
    assert str(path) in message
    for word in words:
        assert word in message
    assert excinfo.value.source == str(path)
    assert isinstance(excinfo.value, ValueError)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.xml"
    with pytest.raises(ArmFileError, match="no such file") as excinfo:
        load_arm(path)
    assert str(path) in str(excinfo.value)


def test_misspelt_builtin_lists_the_builtins():
    with pytest.raises(ArmFileError, match="no such file") as excinfo:
        load_arm("two_links")
    assert "two_link, three_link" in str(excinfo.value)


def test_directory_and_binary_file(tmp_path):
    with pytest.raises(ArmFileError, match="directory") as excinfo:
        load_arm(tmp_path)
    assert str(tmp_path) in str(excinfo.value)
    binary = tmp_path / "arm.xml"
    binary.write_bytes(b"\xff\xfe\x00\x01\x89PNG")
    with pytest.raises(ArmFileError, match="not a text file") as excinfo:
        load_arm(binary)
    assert str(binary) in str(excinfo.value)


def test_unknown_end_effector_lists_sites_and_bodies(four_link_path, body_hand_path):
    with pytest.raises(ArmFileError) as excinfo:
        load_arm(four_link_path, end_effector="fingertip")
    message = str(excinfo.value)
    assert str(four_link_path) in message and "'fingertip'" in message
    assert "sites: tip;" in message
    assert "bodies: link1, link2, link3, link4" in message

    with pytest.raises(ArmFileError) as excinfo:
        load_arm(body_hand_path)
    assert "sites: none;" in str(excinfo.value)
    assert "hand" in str(excinfo.value)


# --- numbers no working arm has (issue 16: these loaded, and training ran on one-step
# episodes as the physics blew up) -------------------------------------------------------

# (text in two_link.xml, its replacement, words the error must contain)
NON_PHYSICAL = {
    "gear_nan": ('<motor ctrlrange="-1 1" gear="10"/>', '<motor ctrlrange="-1 1" gear="nan"/>',
                 ["<motor> in <default>", 'gear="nan"', "finite"]),
    "named_gear_inf": ('<motor name="elbow" joint="elbow"/>',
                       '<motor name="elbow" joint="elbow" gear="inf"/>', ["motor 'elbow'", 'gear="inf"']),
    "gear_huge": ('<motor name="elbow" joint="elbow"/>', '<motor name="elbow" joint="elbow" gear="1e300"/>',
                  ["actuator 'elbow'", "gear 1e+300"]),
    "damping_nan": ('damping="1"', 'damping="NaN"', ["<joint> in <default>", 'damping="NaN"']),
    "damping_negative": ('damping="1"', 'damping="-1"', ["joint 'shoulder'", "damping -1", "negative"]),
    "mass_nan": ('material="joint" mass="0"', 'material="joint" mass="nan"',
                 ["geom 'shoulder_cap'", 'mass="nan"']),
    "timestep_nan": ('timestep="0.01"', 'timestep="nan"', ["<option>", 'timestep="nan"']),
    "timestep_zero": ('timestep="0.01"', 'timestep="0"', ["timestep 0 s", "at least"]),
    "timestep_tiny": ('timestep="0.01"', 'timestep="1e-300"', ["timestep 1e-300 s"]),
    "range_inf": ('range="-2.9 2.9"', 'range="-inf inf"', ["joint 'elbow'", 'range="-inf inf"']),
    "range_reversed": ('range="-2.9 2.9"', 'range="2.9 -2.9"', ["joint 'elbow'", "range 2.9 -2.9", "low end"]),
    "pos_huge": ('<body name="link2" pos="0.1 0 0">', '<body name="link2" pos="1e30 0 0">',
                 ["body 'link2'", "pos 1e+30"]),
    "gravity_nan": ('integrator="implicitfast"', 'integrator="implicitfast" gravity="0 0 nan"',
                    ["<option>", 'gravity="0 0 nan"']),
}


@pytest.mark.parametrize("case", sorted(NON_PHYSICAL))
def test_non_physical_numbers_are_refused_naming_element_and_attribute(tmp_path, case):
    old, new, words = NON_PHYSICAL[case]
    text = builtin_path("two_link").read_text()
    assert old in text
    path = write_arm(tmp_path, case, text.replace(old, new))
    with pytest.raises(ArmFileError) as excinfo:
        load_arm(path)
    message = str(excinfo.value)
    assert message.startswith(f"arm file {path}: ") and "\n" not in message
    for word in words:
        assert word in message


def test_a_body_may_be_called_nan(tmp_path):
    """Names are words, not numbers: only numeric attributes are checked."""
    text = builtin_path("two_link").read_text().replace('name="link2"', 'name="nan"', 1)
    assert load_arm(write_arm(tmp_path, "named_nan", text)).n_joints == 2


def test_a_refused_arm_leaves_no_mujoco_warning_behind(tmp_path):
    """Negative armature makes MuJoCo warn of a singular inertia while compiling; the
    refusal is the one line said, not a Python warning besides it."""
    import warnings

    text = builtin_path("two_link").read_text().replace('armature="0.1"', 'armature="-1"')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ArmFileError, match="armature -1: must not be negative"):
            load_arm(write_arm(tmp_path, "negative_armature", text))
    assert [str(w.message) for w in caught] == []
