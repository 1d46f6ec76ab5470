"""What every controller shares: the base class, and the actuation that turns a joint torque
into a position servo's target or a motor's control.

A controller reads the arm's state through `Physics`'s named accessors (positions,
velocities, bias forces, the end effector's Jacobian, the mass matrix) for the joints
its actuators drive, once per control period, and writes every actuator's control.
"""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np

from reacher.errors import ControlError
from reacher.sim.arm import position_servos
from reacher.sim.physics import Physics


class Controller:
    """Base: `action_space` and `act(clipped)`, which writes the controls."""

    name = ""
    # Whether the observation must add the end effector's velocity (see reacher.task.reach).
    observes_end_effector_velocity = False

    def __init__(self, physics: Physics, n_action: int):
        self.physics = physics
        self.period = physics.control_period_s
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_action,), np.float32)

    def act(self, action: list[float]) -> None:
        """Write the controls for an action already clipped to [-1, 1] (a list)."""
        raise NotImplementedError

    def action_names(self) -> tuple[str, ...]:
        return self.physics.arm.actuator_names


class Actuation:
    """Per actuator, how a joint torque becomes a control: a position servo's target
    offset or a motor's torque (joint_delta and ee accept arms driven by these). It
    also reads the driven joints' state, in actuator order, through `Physics`."""

    def __init__(self, physics: Physics, setting: str):
        model, arm = physics.model, physics.arm
        self.physics = physics
        on_joint = model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT
        servo = np.zeros(model.nu, bool)
        servo[position_servos(model)] = True
        motor = (on_joint & (model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED)
                 & (model.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE)
                 & (model.actuator_gainprm[:, 0] > 0))
        for a in range(model.nu):
            if not (servo[a] or motor[a]):
                raise ControlError(f"control '{setting}': actuator '{arm.actuator_names[a]}' is "
                                   "neither a position servo nor a motor on a joint; use "
                                   "--control joint")
        joints = model.actuator_trnid[:, 0]
        if len(set(joints.tolist())) < model.nu:
            raise ControlError(f"control '{setting}': a joint of {arm.name} has more than one "
                               "actuator; use --control joint")
        self.servo = servo
        self.servos_only = bool(servo.all())
        self.qpos = model.jnt_qposadr[joints]
        self.dof = model.jnt_dofadr[joints]
        # Joint torque per unit of control: gain × gear (a servo's kp × gear).
        self.torque_per_ctrl = model.actuator_gainprm[:, 0] * model.actuator_gear[:, 0]
        gear = model.actuator_gear[:, 0]
        self.gear = gear
        # A servo's joint-space damping (its kv, and the joint's own): the force its
        # target must lead by for the joint to keep moving at a given speed.
        self.servo_damping = gear * gear * -model.actuator_biasprm[:, 2] + model.dof_damping[self.dof]
        # A servo without a ctrlrange of its own is not bound to the [-π, π] that joint
        # control maps actions onto: a continuous joint may turn past it.
        free = servo & ~model.actuator_ctrllimited.astype(bool)
        self.ctrl_low = np.where(free, -np.inf, arm.ctrl_low)
        self.ctrl_high = np.where(free, np.inf, arm.ctrl_high)
        limited = model.jnt_limited[joints].astype(bool)
        self.q_low = np.where(limited, model.jnt_range[joints, 0], -np.inf)
        self.q_high = np.where(limited, model.jnt_range[joints, 1], np.inf)
        # servo_controls' constants: gear·target + (torque + damping·(target − q)/T) / (kp·gear)
        # is a·target − c·q + b·torque.
        self._c = self.servo_damping / (self.torque_per_ctrl * physics.control_period_s)
        self._a = self.gear + self._c
        self._b = 1.0 / self.torque_per_ctrl
        # The joints' indices as slices where they are contiguous (numpy's slices are
        # views: no copies), and the mass matrix's block of them.
        self.qpos_index = _as_slice(self.qpos)
        self.dof_index = (slice(None) if np.array_equal(self.dof, np.arange(model.nv))
                          else _as_slice(self.dof))
        self.mass_block = np.ix_(self.dof, self.dof)

    # --- the driven joints' state, read through Physics ---------------------------------------

    def positions(self) -> np.ndarray:
        return self.physics.joint_positions(self.qpos_index)

    def velocities(self) -> np.ndarray:
        return self.physics.joint_velocities(self.dof)

    def bias_forces(self) -> np.ndarray:
        return self.physics.bias_forces(self.dof_index)

    def jacobian(self) -> np.ndarray:
        return self.physics.end_effector_jacobian(self.dof_index)

    def mass_matrix(self) -> np.ndarray:
        return self.physics.mass_matrix(self.mass_block)

    # --- joint torques to controls ------------------------------------------------------------

    def servo_controls(self, q_target: np.ndarray, q: np.ndarray, torque: np.ndarray) -> np.ndarray:
        """`controls` for arms driven by servos alone, moving at (q_target − q)/period: the
        hot path of joint_delta and ee, in as few numpy calls as the maths allows."""
        # No clipping here: MuJoCo clamps ctrl to a limited actuator's ctrlrange itself.
        return self._a * q_target - self._c * q + self._b * torque

    def controls(self, q_target: np.ndarray, speed: np.ndarray, torque: np.ndarray) -> np.ndarray:
        """Servos: the joint target, led so that the servo also exerts `torque` (gravity)
        and overcomes its damping at the joint `speed` wanted (a servo covers a step only
        slowly otherwise: Panda's kv/kp is 0.1 s, five control periods). Motors: `torque`."""
        servo = self.gear * q_target + (torque + self.servo_damping * speed) / self.torque_per_ctrl
        ctrl = np.where(self.servo, servo, torque / self.torque_per_ctrl)
        return np.clip(ctrl, self.ctrl_low, self.ctrl_high)


def max_joint_torques(model: mujoco.MjModel, ctrl_low: np.ndarray, ctrl_high: np.ndarray) -> np.ndarray:
    """Per actuator, the most torque (or force) it can put on its joint, wherever MuJoCo
    takes the limit from: the actuator's `forcerange` (times its gear), a motor's
    ctrlrange (`ctrl_low`/`ctrl_high`, reacher's [-1, 1] where the file has none) times
    its gain, and the joint's own `actuatorfrcrange`, which bounds all of that joint's
    actuators together. inf where nothing bounds it."""
    gear = np.abs(model.actuator_gear[:, 0])
    limit = np.full(model.nu, np.inf)
    forced = model.actuator_forcelimited.astype(bool)
    limit[forced] = np.abs(model.actuator_forcerange[forced]).max(axis=1)
    motor = ((model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED)
             & (model.actuator_biastype == mujoco.mjtBias.mjBIAS_NONE))
    ctrl = np.maximum(np.abs(ctrl_low), np.abs(ctrl_high)) * np.abs(model.actuator_gainprm[:, 0])
    limit = np.where(motor, np.minimum(limit, ctrl), limit) * gear
    on_joint = model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT
    for a in np.flatnonzero(on_joint):
        j = model.actuator_trnid[a, 0]
        if model.jnt_actfrclimited[j]:
            limit[a] = min(limit[a], float(np.abs(model.jnt_actfrcrange[j]).max()))
    return limit


def solve3(a: list, damping: float, v) -> list[float]:
    """(a + damping·I)⁻¹·v for a symmetric positive semi-definite 3×3 `a` (nested lists),
    by the adjugate in plain floats: at this size numpy's inverse costs ten times the
    arithmetic (scripts/bench_env.py times the controllers)."""
    (a00, a01, a02), (_, a11, a12), (_, _, a22) = a
    a00 += damping
    a11 += damping
    a22 += damping
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    c11, c12, c22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
    det = a00 * c00 + a01 * c01 + a02 * c02
    x, y, z = v
    return [(c00 * x + c01 * y + c02 * z) / det, (c01 * x + c11 * y + c12 * z) / det,
            (c02 * x + c12 * y + c22 * z) / det]


def extreme_eigenvalues(a: list) -> tuple[float, float]:
    """The smallest and largest eigenvalue of a symmetric 3×3 `a` (nested lists), in
    closed form (Smith's trigonometric solution of the characteristic cubic), plain
    floats for the same reason as `solve3`."""
    (a00, a01, a02), (_, a11, a12), (_, _, a22) = a
    off = a01 * a01 + a02 * a02 + a12 * a12
    mean = (a00 + a11 + a22) / 3
    b00, b11, b22 = a00 - mean, a11 - mean, a22 - mean
    p2 = (b00 * b00 + b11 * b11 + b22 * b22 + 2 * off) / 6
    if p2 <= 1e-30 * (mean * mean + 1e-300):  # a multiple of the identity
        return mean, mean
    p = math.sqrt(p2)
    # det(B)/(2p³) with B = A − mean·I, clamped against rounding.
    det = (b00 * (b11 * b22 - a12 * a12) - a01 * (a01 * b22 - a12 * a02)
           + a02 * (a01 * a12 - b11 * a02))
    r = max(-1.0, min(1.0, det / (2 * p2 * p)))
    phi = math.acos(r) / 3
    largest = mean + 2 * p * math.cos(phi)
    smallest = mean + 2 * p * math.cos(phi + 2 * math.pi / 3)
    return smallest, largest


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """`index` as a slice if it is a contiguous run, else as it is."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


def check_positive(name: str, value: float) -> None:
    """`ControlError` naming `name` unless `value` is a finite positive number."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ControlError(f"{name} must be a positive number, got {value!r}")
