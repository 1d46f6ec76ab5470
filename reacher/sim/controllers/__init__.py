"""What an action means: the controllers that turn a policy's action into actuator controls.

Every controller takes an action in [-1, 1] per dimension (the environment has
already checked and clipped it) and writes every actuator's control once per control
period; one law per module:

  joint        (joint.py) one value per actuator, scaled onto its ctrlrange: a motor's
               torque, a position servo's absolute joint target (or, with ``servo_speed``
               > 0, an offset from where the joint is), a velocity servo's velocity.
  joint_delta  (joint_delta.py) one value per actuator: move that joint's target by at
               most ``joint_rate × control period`` from where the joint is.
  ee           (end_effector.py) three values: move the end effector by at most
               ``ee_speed × control period`` along x, y and z (world frame, m), whatever
               the number of joints: differential IK for position servos (ik.py),
               operational-space control for motors (osc.py); where that local step
               stalls at a joint limit, a joint-space move to another posture at the
               same end-effector position (replan.py).

``joint_delta`` and ``ee`` compensate gravity, so a zero action holds the arm still:
a position servo (force kp·(ctrl − q) − kv·q̇, no integral term) sags under load
unless its target is offset by the gravity torque over kp, and a motor needs the
gravity torque itself (base.py's `Actuation`, shared by both). Everything goes through
the actuators, so their ctrlrange and forcerange still bound what a controller can do.
The laws follow the field's standard ones (see docs/benchmarks.md, "Controllers").
"""

from __future__ import annotations

from reacher.errors import ControlError
from reacher.sim.controllers.base import Controller, check_positive
from reacher.sim.controllers.end_effector import EE_SPEED_M_S, EndEffectorControl
from reacher.sim.controllers.joint import JointControl
from reacher.sim.controllers.joint_delta import JOINT_RATE_RAD_S, JointDeltaControl
from reacher.sim.physics import Physics

CONTROLS = ("auto", "joint", "joint_delta", "ee")

__all__ = ["CONTROLS", "EE_SPEED_M_S", "JOINT_RATE_RAD_S", "Controller",
           "EndEffectorControl", "JointControl", "JointDeltaControl", "make_controller"]


def make_controller(name: str, physics: Physics, *, servo_speed: float = 0.0,
                    ee_speed: float = EE_SPEED_M_S, joint_rate: float = JOINT_RATE_RAD_S) -> Controller:
    """The controller called `name` (joint, joint_delta or ee) for this running arm;
    `ControlError` naming the setting for an unknown name, a bad speed or rate, or an
    arm the controller cannot drive."""
    if name == "joint":
        return JointControl(physics, servo_speed)
    if name == "joint_delta":
        check_positive("joint_rate", joint_rate)
        return JointDeltaControl(physics, joint_rate)
    if name == "ee":
        check_positive("ee_speed", ee_speed)
        return EndEffectorControl(physics, ee_speed)
    raise ControlError(f"control must be one of {', '.join(CONTROLS)}, not {name!r}")
