"""What an action means: the controllers that turn a policy's action into actuator controls.

Every controller takes an action in [-1, 1] per dimension (the environment has
already checked and clipped it) and writes ``MjData.ctrl`` once per control period:

  joint        one value per actuator, scaled onto its ctrlrange: a motor's torque, a
               position servo's absolute joint target (or, with ``servo_speed`` > 0,
               an offset from where the joint is), a velocity servo's velocity.
  joint_delta  one value per actuator: move that joint's target by at most
               ``joint_rate × control period`` from where the joint is.
  ee           three values: move the end effector by at most ``ee_speed × control
               period`` along x, y and z (world frame, m), whatever the number of joints.

``joint_delta`` and ``ee`` compensate gravity, so a zero action holds the arm still:
a position servo (force kp·(ctrl − q) − kv·q̇, no integral term) sags under load
unless its target is offset by the gravity torque over kp, and a motor needs the
gravity torque itself. Everything goes through the actuators, so their ctrlrange and
forcerange still bound what a controller can do.

The ``ee`` law follows the field's standard ones (see docs/benchmarks.md):
  * position servos: damped-least-squares differential IK (mjctrl's ``diffik``),
    dq = Jᵀ(JJᵀ + λI)⁻¹·Δx + (I − J⁺J)·k₀·(q₀ − q)·T, joint targets q + dq within the
    joint ranges, q₀ the rest posture (the file's "home" keyframe, else its first
    keyframe, else the middle of the joint ranges);
  * motors: operational-space control (robosuite's OSC), τ = Jᵀ·Λ·(kp·Δx − kd·ẋ) +
    gravity + Nᵀ·M·(k₀(q₀ − q) − d₀q̇), Λ = (J M⁻¹ Jᵀ)⁻¹.
Both are computed from the measured state every control period, so the loop is
closed on the measured end-effector position.
"""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np

from reacher.arm import Arm, position_servos
from reacher.physics import Physics

CONTROLS = ("joint",)
EE_SPEED_M_S = 1.25  # panda-gym and Fetch: at most 5 cm per 0.04-s action
JOINT_RATE_RAD_S = 1.25  # panda-gym's joint mode: at most 0.05 rad per 0.04-s action
IK_DAMPING = 1e-4  # λ of the damped least squares (m²), as mjctrl's diffik
POSTURE_RATE = 1.0  # 1/s: how fast the nullspace pulls towards the rest posture
OSC_POSTURE_KP, OSC_POSTURE_KD = 10.0, 2 * math.sqrt(10.0)  # robosuite's nullspace gains
_LAMBDA_EPS = 1e-6  # regularises Λ's inverse where the arm cannot move the end effector


class ControlError(ValueError):
    """A control setting that cannot work for this arm; the message names the setting."""


class Controller:
    """Base: `action_space` and `act(clipped)`, which writes the controls."""

    name = ""

    def __init__(self, physics: Physics, n_action: int):
        self.physics = physics
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_action,), np.float32)

    def act(self, action: list[float]) -> None:
        """Write ``data.ctrl`` for an action already clipped to [-1, 1] (a list)."""
        raise NotImplementedError

    def action_names(self) -> tuple[str, ...]:
        return self.physics.arm.actuator_names


class JointControl(Controller):
    """One action per actuator, scaled onto its ctrlrange (reacher's original mapping)."""

    name = "joint"

    def __init__(self, physics: Physics, servo_speed: float = 0.0):
        arm = physics.arm
        super().__init__(physics, arm.n_actuators)
        self._mid = (arm.ctrl_high + arm.ctrl_low) / 2
        self._half = (arm.ctrl_high - arm.ctrl_low) / 2
        # [-1, 1] ctrlranges take the action as it is: a list copy, no numpy maths.
        self._ctrl_is_action = bool(np.all(self._mid == 0) and np.all(self._half == 1))
        # Position servos driven relative to where their joint is now (servo_speed > 0).
        servos = position_servos(physics.model) if servo_speed > 0 else np.zeros(0, np.intp)
        self._servo_act = servos
        self._servo_qpos = physics.model.jnt_qposadr[physics.model.actuator_trnid[servos, 0]]
        self._servo_step = float(servo_speed) * physics.model.opt.timestep * physics.frame_skip
        if len(servos):
            self._ctrl_is_action = False

    def act(self, action: list[float]) -> None:
        d = self.physics.data
        d.ctrl[:] = action if self._ctrl_is_action else self._mid + self._half * np.array(action)
        if len(self._servo_act):
            s, arm = self._servo_act, self.physics.arm
            d.ctrl[s] = np.clip(d.qpos[self._servo_qpos] + self._servo_step * np.asarray(action)[s],
                                arm.ctrl_low[s], arm.ctrl_high[s])

    def action_for(self, ctrl: np.ndarray) -> np.ndarray:
        """The action whose controls are `ctrl` (clipped to the ctrlranges): e.g. the
        servo targets of a pose, as `reacher inspect` times moves."""
        return np.clip((np.asarray(ctrl, np.float64) - self._mid) / self._half, -1.0, 1.0)


def make_controller(name: str, physics: Physics, *, servo_speed: float = 0.0,
                    ee_speed: float = EE_SPEED_M_S, joint_rate: float = JOINT_RATE_RAD_S) -> Controller:
    """The controller called `name` (joint, joint_delta or ee) for this running arm;
    `ControlError` naming the setting for an unknown name, a bad speed or rate, or an
    arm the controller cannot drive."""
    if name == "joint":
        return JointControl(physics, servo_speed)
    raise ControlError(f"control must be one of {', '.join(CONTROLS)}, not {name!r}")
