"""The example arms in examples/arms/: each loads with its end effector and steps stably,
the MuJoCo Menagerie robots with their own timestep, servos and limits."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from reacher.sim.arm import load_arm
from reacher.task.env import ReachEnv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"
# file → (end effector, joints, reach in metres ± 5 %)
ARMS = {
    "four_link.xml": ("tip", 4, None),
    "spatial_arm.xml": ("fingertip", 3, None),
    "long_arm.xml": ("hand", 2, 2.0),
    "tiny_arm.xml": ("tip_link", 3, 0.0875),
    "servo_arm.xml": ("tool", 4, None),
    "panda.xml": ("attachment_site", 7, 0.86),
    "gen3.xml": ("pinch_site", 7, 1.03),
    "xarm7.xml": ("attachment_site", 7, 0.77),
    "iiwa14.xml": ("attachment_site", 7, 1.15),
    "ur5e.xml": ("wrist_3_link", 6, 0.95),
    "iiwa14_torque.xml": ("attachment_site", 7, 1.15),
}
MENAGERIE = ("panda.xml", "gen3.xml", "xarm7.xml", "iiwa14.xml", "ur5e.xml")
# Menagerie gives these servos no force limit (the iiwa's are limited by its gains only).
UNLIMITED_FORCE = ("iiwa14.xml",)


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.xml")) == sorted(ARMS)


@pytest.mark.parametrize("name", sorted(ARMS))
def test_example_loads_and_steps_stably(name):
    end_effector, joints, reach = ARMS[name]
    env = ReachEnv(EXAMPLES / name, end_effector)
    assert env.arm.n_joints == env.arm.n_actuators == joints
    if reach is not None:
        assert env.arm.reach_m == pytest.approx(reach, rel=0.05)
    rng = np.random.default_rng(0)
    for episode in range(2):
        env.reset(seed=episode)
        for _ in range(env.timing.episode_steps):
            _, reward, _, truncated, info = env.step(rng.uniform(-1, 1, joints))
            assert np.isfinite(reward) and "physics_error" not in info
        assert truncated
    env.close()


@pytest.mark.parametrize("name", MENAGERIE)
def test_menagerie_robot_keeps_its_physics(name):
    """MuJoCo's default timestep and gravity, position servos with a force limit, limits on
    every joint that has them, and the home keyframe free of contacts."""
    path = EXAMPLES / name
    model = mujoco.MjModel.from_xml_path(str(path))
    assert model.opt.timestep == 0.002
    np.testing.assert_allclose(model.opt.gravity, [0, 0, -9.81])
    assert (model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE).all()  # servos
    assert model.actuator_forcelimited.all() != (name in UNLIMITED_FORCE)
    assert (model.body_mass[model.jnt_bodyid] > 0).all()
    assert model.nmesh == 0  # the meshes are left out (see examples/arms/README.md)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    assert data.ncon == 0
    # The servo holds its home pose against gravity: after 1 s the joints are still near it.
    home = data.qpos.copy()
    for _ in range(500):
        mujoco.mj_step(model, data)
    assert np.abs(data.qpos - home).max() < 0.05
    assert load_arm(path, ARMS[name][0]).n_joints == ARMS[name][1]


def test_the_torque_driven_iiwa_is_the_servo_one_with_motors():
    """Same bodies, joints and inertials as iiwa14.xml; only the actuation differs."""
    servo = mujoco.MjModel.from_xml_path(str(EXAMPLES / "iiwa14.xml"))
    torque = mujoco.MjModel.from_xml_path(str(EXAMPLES / "iiwa14_torque.xml"))
    for attr in ("body_pos", "body_quat", "body_mass", "body_inertia", "jnt_range", "geom_size"):
        np.testing.assert_array_equal(getattr(servo, attr), getattr(torque, attr))
    assert (torque.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE).all()  # motors
    np.testing.assert_array_equal(torque.actuator_gear[:, 0], [320, 320, 176, 176, 110, 40, 40])
