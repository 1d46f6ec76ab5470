"""What stepping an arm shows before any training: whether its physics blows up, the most
gravity pulls on each joint, and how long its position servos take to make a move.

`reacher inspect` reports these; they are simulations of a few seconds, bounded in
physics steps so that a long chain is probed over fewer steps, not for minutes.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import mujoco
import numpy as np

from reacher.sim.arm import Arm, position_servos
from reacher.sim.collision import CollisionCheck
from reacher.sim.controllers import EndEffectorControl, JointControl
from reacher.sim.physics import Physics

# What a probe may spend, in dof-steps: a step of a long chain costs about its dof count
# squared, so an 80-joint arm is probed over fewer steps.
DOF_STEPS = 40_000
GRAVITY_SAMPLES = 256
SERVO_MOVES = 20  # sampled moves timed for the servo settling estimate
SERVO_MAX_S = 5.0
SETTLE_RADIUS_M = 0.02  # the default success radius
REACH_BUDGET = 4_000_000  # ee_reach_times' physics steps × nv², in all
_STABILITY_STARTS = 2  # random poses, followed by _STABILITY_S of random actions in all
_STABILITY_S = 2.0
_STABILITY_MAX_STEPS = 20_000  # physics steps in all: cheap even at the shortest timestep
# MuJoCo's warnings for NaN/inf or huge values; on them it resets the state itself.
_BLOW_UPS = {int(mujoco.mjtWarning.mjWARN_BADQPOS): "positions",
             int(mujoco.mjtWarning.mjWARN_BADQVEL): "velocities",
             int(mujoco.mjtWarning.mjWARN_BADQACC): "accelerations"}


def first_blow_up(arm: Arm, frame_skip: int) -> tuple[float | None, str]:
    """Under random actions, each held for a control period of `frame_skip` timesteps
    from random poses: simulated seconds until the first blow-up (None if none), and
    what blew up. MuJoCo's own warning is silenced: the caller says it once."""
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: None)
    try:
        return _first_blow_up(arm, frame_skip)
    finally:
        mujoco.set_mju_user_warning(previous)


def _first_blow_up(arm: Arm, frame_skip: int) -> tuple[float | None, str]:
    model, data = arm.model, mujoco.MjData(arm.model)
    rng = np.random.default_rng(0)
    steps = min(_STABILITY_S / model.opt.timestep, _STABILITY_MAX_STEPS, DOF_STEPS / model.nv)
    controls = math.ceil(steps / _STABILITY_STARTS / frame_skip)
    period = frame_skip * model.opt.timestep
    mid, half = (arm.ctrl_high + arm.ctrl_low) / 2, (arm.ctrl_high - arm.ctrl_low) / 2
    for _ in range(_STABILITY_STARTS):
        mujoco.mj_resetData(model, data)
        data.qpos[arm.qpos_adr] = arm.random_configuration(rng)
        for step in range(1, controls + 1):
            data.ctrl[:] = mid + half * rng.uniform(-1, 1, model.nu)
            mujoco.mj_step(model, data, nstep=frame_skip)
            bad = [what for i, what in _BLOW_UPS.items() if data.warning[i].number]
            if bad or not (np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all()):
                return step * period, " and ".join(bad) or "values"
    return None, ""


def worst_gravity(arm: Arm) -> np.ndarray:
    """Per dof, the most torque (or force) the actuators must add to hold gravity: MuJoCo's
    bias force at zero velocity less what it compensates itself (bodies' `gravcomp`), at
    the worst of a few hundred configurations drawn as targets are."""
    model = arm.model
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    worst = np.zeros(model.nv)
    for _ in range(min(GRAVITY_SAMPLES, max(32, DOF_STEPS // model.nv))):
        data.qpos[arm.qpos_adr] = arm.random_configuration(rng)
        data.qvel[:] = 0
        mujoco.mj_forward(model, data)
        worst = np.maximum(worst, np.abs(data.qfrc_bias - data.qfrc_gravcomp))
    return worst


def without(arm: Arm, gravity: bool = True, force_limits: bool = True) -> Arm:
    """A copy of the arm with gravity or the force limits (actuators' and joints') taken
    out of its model: timing the same moves without each tells what stops them."""
    model = copy.copy(arm.model)
    if not gravity:
        model.opt.gravity[:] = 0
    if not force_limits:
        model.actuator_forcelimited[:] = 0
        model.jnt_actfrclimited[:] = 0
    return dataclasses.replace(arm, model=model)


def servo_move_times(arm: Arm, gravity: bool = True, force_limits: bool = True) -> np.ndarray | None:
    """For an arm driven by one position servo per joint: how long a move between two
    random collision-free poses takes (the env's starts and targets, `CollisionCheck`),
    commanding the servos straight to the goal pose (the best a policy can do), until
    the end effector stays within 2 cm of the goal; seconds, inf for a move that never
    settles within SERVO_MAX_S. With ``gravity`` or ``force_limits`` False the same moves
    without gravity or without the actuators' and joints' force limits, which tells
    what stops a move that never settles. None for other arms, whose torques have no such
    obvious best command."""
    model = without(arm, gravity, force_limits).model
    servos = position_servos(model)
    joint_of = {model.joint(int(model.actuator_trnid[a, 0])).name: int(a) for a in servos}
    if len(servos) != model.nu or len(joint_of) != model.nu or set(joint_of) != set(arm.joint_names):
        return None
    order = [joint_of[name] for name in arm.joint_names]
    control = JointControl(Physics(dataclasses.replace(arm, model=model), frame_skip=1))
    data = control.physics.data  # actions mapped as the env maps them
    collision = CollisionCheck.for_arm(model, arm)
    rng = np.random.default_rng(0)
    n_steps = int(SERVO_MAX_S / model.opt.timestep)
    times = []
    for _ in range(SERVO_MOVES):
        goal_q = collision.free_configuration(data, lambda: arm.random_configuration(rng))
        goal = arm.fingertip_at(data, goal_q)
        start = collision.free_configuration(data, lambda: arm.random_configuration(rng))
        mujoco.mj_resetData(model, data)
        data.qpos[arm.qpos_adr] = start
        ctrl = np.empty(model.nu)
        ctrl[order] = goal_q
        control.act(control.action_for(ctrl).tolist())
        settled = math.inf
        for step in range(1, n_steps + 1):
            mujoco.mj_step(model, data)
            near = np.linalg.norm(data.sensordata[arm.end_effector_adr] - goal) <= SETTLE_RADIUS_M
            if near and settled == math.inf:
                settled = step * model.opt.timestep
            elif not near:
                settled = math.inf
        times.append(settled)
    return np.array(times)


def p90(times: np.ndarray) -> float:
    """The time by which at least 90 % of the moves have settled (inf if fewer ever do)."""
    return float(np.percentile(times, 90, method="inverted_cdf"))


def ee_reach_times(arm: Arm, ee_speed: float, control_period_s: float, moves: int = SERVO_MOVES,
                   max_s: float = 10.0) -> np.ndarray:
    """How long the ``ee`` controller takes to bring the end effector within 2 cm of a
    target for good, driven straight at it (the scripted proportional policy), between
    collision-free poses drawn as the env draws starts and targets: seconds per move, inf
    for one that does not settle within `max_s`. A move counts as settled after staying
    within 2 cm for a second. Only the moves that fit in REACH_BUDGET are made (a step
    costs about nv² per physics step): all of them on a 7-joint arm, fewer on a long chain."""
    model = arm.model
    frame_skip = max(1, round(control_period_s / model.opt.timestep))
    physics = Physics(arm, frame_skip)
    control = EndEffectorControl(physics, ee_speed)
    data, period, step = physics.data, physics.control_period_s, control.max_step
    collision = CollisionCheck.for_arm(model, arm)
    rng = np.random.default_rng(0)
    steps, stay = round(max_s / period), max(1, round(1.0 / period))
    times, cost, budget = [], frame_skip * model.nv ** 2, REACH_BUDGET
    for _ in range(moves):
        if budget < cost * steps:
            break
        target = arm.fingertip_at(data, collision.free_configuration(
            data, lambda: arm.random_configuration(rng)))
        start = collision.free_configuration(data, lambda: arm.random_configuration(rng))
        physics.reset()
        data.qpos[arm.qpos_adr] = start
        physics.forward()
        settled, near_for = math.inf, 0
        for k in range(1, steps + 1):
            budget -= cost
            x = physics.end_effector_pos()
            control.act(np.clip((target - x) / step, -1.0, 1.0).tolist())
            physics.advance()
            if np.linalg.norm(physics.end_effector_pos() - target) <= SETTLE_RADIUS_M:
                near_for += 1
                if near_for == 1:
                    settled = k * period
                if near_for >= stay:
                    break
            else:
                settled, near_for = math.inf, 0
        times.append(settled)
    return np.array(times)
