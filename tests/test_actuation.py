"""Actuation: position servos map actions to joint targets, absolute or relative."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_collision import ARM

from reacher.sim.arm import load_arm, position_servos
from reacher.task.env import ReachEnv

# Position servos without ctrlrange on continuous joints, as Kinova's Gen3 has them,
# beside a motor and a velocity servo (which are not position servos).
MIXED = """<mujoco model="mixed">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002"/>
  <default><joint armature="0.01" damping="0.1"/></default>
  <worldbody>
    <body name="a" pos="0 0 0.1">
      <joint name="spin" axis="0 0 1"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02" contype="0" conaffinity="0"/>
      <body name="b" pos="0.2 0 0">
        <joint name="bend" axis="0 0 1" range="-2 2"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02" contype="0" conaffinity="0"/>
        <body name="c" pos="0.2 0 0">
          <joint name="roll" axis="1 0 0"/>
          <geom type="capsule" fromto="0 0 0 0.1 0 0" size="0.02" contype="0" conaffinity="0"/>
          <site name="tip" pos="0.1 0 0"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <position joint="spin" kp="100"/>
    <general joint="bend" gainprm="50" biasprm="0 -50 -5" biastype="affine" ctrlrange="-2 2"/>
    <velocity joint="roll" kv="5" ctrlrange="-3 3"/>
  </actuator>
</mujoco>
"""


@pytest.fixture
def mixed(tmp_path):
    path = tmp_path / "mixed.xml"
    path.write_text(MIXED)
    return path


def test_position_servos_are_recognised(mixed):
    arm = load_arm(mixed, "tip")
    np.testing.assert_array_equal(position_servos(arm.model), [0, 1])


def test_a_servo_without_ctrlrange_spans_its_joint(mixed):
    arm = load_arm(mixed, "tip")
    # The continuous joint's targets come from [-π, π]: so does its servo's control.
    np.testing.assert_allclose([arm.ctrl_low[0], arm.ctrl_high[0]], [-math.pi, math.pi])
    np.testing.assert_allclose([arm.ctrl_low[1:], arm.ctrl_high[1:]], [[-2, -3], [2, 3]])
    env = ReachEnv(arm)
    env.reset(seed=0)
    env.step(np.array([1.0, -1.0, 0.5], np.float32))
    np.testing.assert_allclose(env.data.ctrl, [math.pi, -2.0, 1.5])


def test_servo_targets_move_from_the_current_joint_position(tmp_path):
    path = tmp_path / "over_floor.xml"
    path.write_text(ARM)
    env = ReachEnv(path, "tip", servo_speed=2.0)
    env.reset(seed=0)
    q = env.data.qpos[env.arm.qpos_adr].copy()
    action = np.array([1.0, -0.5, 0.25], np.float32)
    env.step(action)
    expected = np.clip(q + 2.0 * env.dt * action, env.arm.ctrl_low, env.arm.ctrl_high)
    np.testing.assert_allclose(env.data.ctrl, expected)


def test_absolute_servo_targets_by_default(tmp_path):
    path = tmp_path / "over_floor.xml"
    path.write_text(ARM)
    env = ReachEnv(path, "tip")
    env.reset(seed=0)
    env.step(np.array([1.0, -1.0, 0.0], np.float32))
    np.testing.assert_allclose(env.data.ctrl, [3.14, -2.5, 0.0])
