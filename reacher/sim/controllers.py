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
    dq = Jᵀ(JJᵀ + λI)⁻¹·Δx + (I − J⁺J)·(k₀·(q₀ − q) − push(q))·T, joint targets q + dq
    within the joint ranges, q₀ the rest posture (the file's "home" keyframe, else its
    first keyframe, else the middle of the joint ranges), push a joint-limit avoidance
    that is zero mid-range and grows steeply near a limit;
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

from reacher.sim.arm import Arm, position_servos
from reacher.sim.physics import Physics

CONTROLS = ("auto", "joint", "joint_delta", "ee")
EE_SPEED_M_S = 1.25  # panda-gym and Fetch: at most 5 cm per 0.04-s action
JOINT_RATE_RAD_S = 1.25  # panda-gym's joint mode: at most 0.05 rad per 0.04-s action
IK_DAMPING = 1e-4  # λ of the damped least squares (m²), as mjctrl's diffik
# 1/s: how fast the nullspace pulls towards the rest posture. Measured on scripted reaches
# (docs/benchmarks.md): 0, 0.25 and 1 give Panda 88/88/94 %, Gen3 100/96/74 %, xArm7
# 84/80/80 %; a gentle pull keeps a redundant arm off its limits over long runs.
POSTURE_RATE = 0.25
# Joint-limit avoidance in the nullspace: each limited joint is pushed back towards the
# middle of its range at LIMIT_RATE × half-range × u⁹ rad/s, at most LIMIT_SPEED, u its
# position in the range scaled to [-1, 1]: nothing in the middle (0.2 % of full strength
# at u = 0.5), strong in the last tenth. A local IK otherwise walks a joint onto its limit
# on the way and stalls there where the target needs that joint. The cap keeps the push
# from shaking the end effector off its course: uncapped, a Panda start at u = −0.99 moved
# the end effector 3 commanded steps the wrong way (docs/benchmarks.md, Controllers).
LIMIT_RATE, LIMIT_SPEED = 16.0, 2.0  # 1/s, rad/s
_NULLSPACE_EPS = 1e-6
OSC_POSTURE_KP, OSC_POSTURE_KD = 10.0, 2 * math.sqrt(10.0)  # robosuite's nullspace gains
_LAMBDA_EPS = 1e-6  # regularises Λ's inverse where the arm cannot move the end effector


class ControlError(ValueError):
    """A control setting that cannot work for this arm; the message names the setting."""


class Controller:
    """Base: `action_space` and `act(clipped)`, which writes the controls."""

    name = ""
    # Whether the observation must add the end effector's velocity (see reacher.task.reach).
    observes_end_effector_velocity = False

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


class _Actuation:
    """Per actuator, how a joint torque becomes a control: a position servo's target
    offset or a motor's torque (joint_delta and ee accept arms driven by these)."""

    def __init__(self, physics: Physics, setting: str):
        model, arm = physics.model, physics.arm
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

    def prepare(self, period: float, nv: int) -> None:
        """Constants of `servo_controls` for this control period, and the joints' indices
        as slices where they are contiguous (numpy's slices are views: no copies)."""
        # gear·target + (torque + damping·(target − q)/T) / (kp·gear), as a·target − c·q + b·torque.
        self._c = self.servo_damping / (self.torque_per_ctrl * period)
        self._a = self.gear + self._c
        self._b = 1.0 / self.torque_per_ctrl
        self.qpos_index = _as_slice(self.qpos)
        self.dof_index = slice(None) if np.array_equal(self.dof, np.arange(nv)) else _as_slice(self.dof)

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


def _solve3(a: list, damping: float, v) -> list[float]:
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


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """`index` as a slice if it is a contiguous run, else as it is."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return index


def rest_posture(model: mujoco.MjModel, arm: Arm, qpos_adr: np.ndarray) -> np.ndarray:
    """The file's "home" keyframe, else its first keyframe, else the middle of the joint
    ranges: where the nullspace of a redundant arm is pulled."""
    if model.nkey:
        key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
        return model.key_qpos[max(key, 0)][qpos_adr].copy()
    middle = np.zeros(model.nq)
    middle[arm.qpos_adr] = (arm.joint_low + arm.joint_high) / 2
    return middle[qpos_adr]


class JointDeltaControl(Controller):
    """One action per actuator: its joint's target moves by at most rate × period from
    where the joint is. Servos get the target (plus gravity offset); motors track it by
    PD in joint acceleration, τ = M·((Δq/T − q̇)/T) + gravity: the joint velocity that
    covers Δq in one period, reached within one period."""

    name = "joint_delta"

    def __init__(self, physics: Physics, rate: float):
        super().__init__(physics, physics.arm.n_actuators)
        self.drive = _Actuation(physics, self.name)
        self.period = physics.model.opt.timestep * physics.frame_skip
        self.max_step = float(rate) * self.period
        self._motors = not self.drive.servo.all()
        self.drive.prepare(self.period, physics.model.nv)

    def act(self, action: list[float]) -> None:
        p, drive = self.physics, self.drive
        d = p.data
        q = d.qpos[drive.qpos_index]
        target = q + self.max_step * np.array(action)
        np.clip(target, drive.q_low, drive.q_high, out=target)
        if not self._motors:
            d.ctrl[:] = drive.servo_controls(target, q, d.qfrc_bias[drive.dof_index])
            return
        torque = d.qfrc_bias[drive.dof].copy()
        if self._motors:
            T = self.period
            acc = np.zeros(p.model.nv)
            acc[drive.dof] = ((target - q) / T - d.qvel[drive.dof]) / T
            torque = np.where(drive.servo, torque, (p.mass_matrix() @ acc)[drive.dof] + torque)
        d.ctrl[:] = drive.controls(target, (target - q) / self.period, torque)


class EndEffectorControl(Controller):
    """Three actions: move the end effector by at most speed × period along x, y, z."""

    name = "ee"
    observes_end_effector_velocity = True

    def __init__(self, physics: Physics, speed: float):
        super().__init__(physics, 3)
        self.drive = drive = _Actuation(physics, self.name)
        model, arm = physics.model, physics.arm
        if drive.servo.any() and not drive.servo.all():
            raise ControlError(f"control 'ee': {arm.name} mixes position servos and motors; "
                               "use --control joint or joint_delta")
        self.period = model.opt.timestep * physics.frame_skip
        self.max_step = float(speed) * self.period
        self.servo = bool(drive.servo.all())
        if not _moves_end_effector(model, arm, drive.dof):
            raise ControlError(f"control 'ee': no actuated joint of {arm.name} moves its end "
                               f"effector '{arm.end_effector}'; use --control joint")
        self.rest = rest_posture(model, arm, drive.qpos)
        drive.prepare(self.period, model.nv)
        self._eye3 = np.eye(3)
        self._eye_n = np.eye(len(drive.dof))
        self._posture_gain = POSTURE_RATE * self.period
        # Per joint, for the nullspace pull: rest angle, 2 / range and middle × that (u in
        # [-1, 1] across the range), the limit push's gain, and whether it has no limits.
        limited = np.isfinite(drive.q_low) & np.isfinite(drive.q_high)
        low, high = np.where(limited, drive.q_low, -1.0), np.where(limited, drive.q_high, 1.0)
        inv_half = np.where(limited, 2 / (high - low), 0.0)
        self._joints = list(zip(self.rest.tolist(), inv_half.tolist(),
                                ((low + high) / 2 * inv_half).tolist(),
                                np.where(limited, LIMIT_RATE * self.period * (high - low) / 2, 0.0).tolist(),
                                (~limited).tolist()))
        self._limit_step = LIMIT_SPEED * self.period

    def action_names(self) -> tuple[str, ...]:
        return ("x", "y", "z")

    def _nullspace_pull(self, q: np.ndarray) -> np.ndarray:
        """The joint motion wanted this period besides the task: towards the rest posture,
        and away from the joint limits (see LIMIT_RATE). Plain floats: over seven joints
        this is half the time of the dozen numpy calls it would take (scripts/bench_env.py)."""
        cap, gain = self._limit_step, self._posture_gain
        pull = []
        for x, (rest, inv_half, middle, limit_gain, continuous) in zip(q.tolist(), self._joints):
            error = rest - x
            if continuous:  # the short way round to its rest angle
                error = math.remainder(error, 2 * math.pi)
            u = x * inv_half - middle
            u2 = u * u
            u4 = u2 * u2
            push = min(cap, max(-cap, limit_gain * u4 * u4 * u))  # u⁹
            pull.append(gain * error - push)
        return np.array(pull)

    def _ik_target(self, J: np.ndarray, dx: list[float], q: np.ndarray) -> np.ndarray:
        """Joint targets q + dq: damped least squares for `dx`, plus the nullspace pull
        projected into J's nullspace; joints that would pass a limit hand the step over."""
        # The nullspace with far less damping than the step's: the step's own damping
        # would leak the posture pull into the end effector's motion (measured: Gen3
        # 74 % instead of 96 % of scripted reaches). J⁺J's eigenvalues σ²/(σ² + ε) stay
        # within [0, 1], so the projector stays bounded at singularities.
        drive = self.drive
        pull = self._nullspace_pull(q)
        JJt = (J @ J.T).tolist()
        y = _solve3(JJt, IK_DAMPING, dx)
        z = _solve3(JJt, _NULLSPACE_EPS, (J @ pull).tolist())
        # J⁺dx + (I − J⁺J)·pull = Jᵀ(y − z) + pull, without forming an n×n matrix.
        target = J.T @ np.array([y[0] - z[0], y[1] - z[1], y[2] - z[2]])
        target += pull
        target += q
        blocked = (target < drive.q_low) | (target > drive.q_high)
        if not blocked.any():
            return target
        # The free joints take the step over from those at a limit. The pull stays in the
        # whole arm's nullspace: the blocked joints' share of it (back from their limits)
        # is compensated by the others instead of moving the end effector (measured: the
        # limit push of a blocked iiwa14 joint, projected with its column dropped, threw
        # the end effector 13 cm off in one period).
        free = J * ~blocked
        y = _solve3((free @ free.T).tolist(), IK_DAMPING, dx)
        target = free.T @ np.array(y) - J.T @ np.array(z)
        target += pull
        target += q
        return np.clip(target, drive.q_low, drive.q_high, out=target)

    def act(self, action: list[float]) -> None:
        p, drive = self.physics, self.drive
        d = p.data
        step = self.max_step
        dx = [step * action[0], step * action[1], step * action[2]]
        J = p.end_effector_jacobian()[:, drive.dof_index]
        q = d.qpos[drive.qpos_index]
        gravity = d.qfrc_bias[drive.dof_index]
        if self.servo:
            d.ctrl[:] = drive.servo_controls(self._ik_target(J, dx, q), q, gravity)
            return
        T = self.period
        M = p.mass_matrix()[np.ix_(drive.dof, drive.dof)]
        M_inv = np.linalg.inv(M)
        qd = d.qvel[drive.dof]
        Lam = np.linalg.inv(J @ M_inv @ J.T + _LAMBDA_EPS * self._eye3)
        # The end-effector velocity that covers dx in one period, reached within one.
        force = Lam @ ((np.array(dx) / T - J @ qd) / T)
        J_bar = M_inv @ J.T @ Lam
        null = self._eye_n - J_bar @ J
        posture = M @ (OSC_POSTURE_KP * (self.rest - q) - OSC_POSTURE_KD * qd)
        torque = J.T @ force + null.T @ posture + gravity
        d.ctrl[:] = drive.controls(q, qd, torque)  # motors only: the torque


def _moves_end_effector(model: mujoco.MjModel, arm: Arm, dofs: np.ndarray) -> bool:
    """Whether any of `dofs` lies on the end effector's chain to the world."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, arm.end_effector)
    body = model.site_bodyid[site] if site >= 0 else model.body(arm.end_effector).id
    chain = set()
    while body > 0:
        chain.add(int(body))
        body = model.body_parentid[body]
    return any(int(model.dof_bodyid[v]) in chain for v in dofs)


def make_controller(name: str, physics: Physics, *, servo_speed: float = 0.0,
                    ee_speed: float = EE_SPEED_M_S, joint_rate: float = JOINT_RATE_RAD_S) -> Controller:
    """The controller called `name` (joint, joint_delta or ee) for this running arm;
    `ControlError` naming the setting for an unknown name, a bad speed or rate, or an
    arm the controller cannot drive."""
    if name == "joint":
        return JointControl(physics, servo_speed)
    if name == "joint_delta":
        _check_positive("joint_rate", joint_rate)
        return JointDeltaControl(physics, joint_rate)
    if name == "ee":
        _check_positive("ee_speed", ee_speed)
        return EndEffectorControl(physics, ee_speed)
    raise ControlError(f"control must be one of {', '.join(CONTROLS)}, not {name!r}")


def supports(name: str, physics: Physics) -> bool:
    """Whether controller `name` can drive this arm."""
    try:
        make_controller(name, physics)
    except ControlError:
        return False
    return True


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ControlError(f"{name} must be a positive number, got {value!r}")
