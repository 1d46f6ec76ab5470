"""What suits an arm: the controller and the episode length it gets when none is given.

Both are read from the compiled model (its actuators, and for the episode a few
simulated moves of its controller), never from the file's name, so a user's own arm
gets them too. `ReachEnv` uses them for an argument left unset and
`reacher.run.settings` for a Config field left at "auto", so the two always agree.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from reacher.errors import ControlError
from reacher.sim.arm import Arm, position_servos
from reacher.sim.controllers import EE_SPEED_M_S, EndEffectorControl
from reacher.sim.physics import Physics
from reacher.sim.probes import ee_reach_times
from reacher.sim.timing import CONTROL_PERIOD_S, EPISODE_S

# Episode length: 1 s suits torque-driven arms that learn their torques, which can be
# pushed as hard as their motors allow. An arm that reaches through `ee` gets the time
# its controller needs: MOVE_SHARE of sampled moves (the scripted proportional policy
# between collision-free poses, reacher.sim.probes.ee_reach_times) made, rounded up to
# EPISODE_STEP_S, at least SERVO_EPISODE_S for servo arms (they move only as fast as
# they settle: Panda, Gen3 and xArm7 reach 75 %, 75 % and 25 % of targets after 1 s,
# 95 %, 90 % and 80 % after 2 s) or EPISODE_S for torque arms, at most MAX_FIT_S.
# UR5e's big joints turn at most 0.75 rad/s (200 N·m·s/rad of joint damping against a
# 150 N·m force limit): scripted ee reaches 32 % of targets in 2 s, 50-52 % in 4 s and
# about 60 % in the 5.5 s this rule gave it (65 % in 6 s since the IK damps near a
# singularity), no more in 8 s (docs/benchmarks.md,
# "Controllers"); the rest are the local controller's misses, not time.
SERVO_EPISODE_S = 2.0
MOVE_SHARE = 0.9
EPISODE_STEP_S = 0.5
MAX_FIT_S = 10.0
MIN_MOVES = 5  # timed moves below which the rule is not trusted (see probes.REACH_BUDGET)
# Torque-driven arms with at least this many actuators reach through `ee` (see control_for).
EE_FROM_ACTUATORS = 4


def episode_seconds(arm: Arm) -> float:
    """The default episode length for this arm (see SERVO_EPISODE_S)."""
    return episode_fit(arm)[0]


def episode_fit(arm: Arm) -> tuple[float, str]:
    """The default episode length for this arm, and why, in words (cached per model)."""
    key = _fingerprint(arm)
    if key not in _EPISODES:
        _EPISODES[key] = _episode_fit(arm)
    return _EPISODES[key]


_EPISODES: dict[str, tuple[float, str]] = {}
_MOVES: dict[str, object] = {}


def ee_move_times(arm: Arm) -> np.ndarray | None:
    """For an arm that reaches through ``ee`` by default: the seconds its controller takes
    for each of the sampled moves the episode rule timed (inf: not made within MAX_FIT_S;
    reacher.sim.probes.ee_reach_times); None for other arms. Cached per model."""
    key = _fingerprint(arm)
    if key not in _MOVES:
        _MOVES[key] = (ee_reach_times(arm, EE_SPEED_M_S, CONTROL_PERIOD_S, max_s=MAX_FIT_S)
                       if control_for(arm)[0] == "ee" else None)
    return _MOVES[key]


def _episode_fit(arm: Arm) -> tuple[float, str]:
    servo_driven = len(position_servos(arm.model)) * 2 > arm.n_actuators
    floor = SERVO_EPISODE_S if servo_driven else EPISODE_S
    if control_for(arm)[0] != "ee":
        if servo_driven:  # servos driven by joint control still move only as fast as they settle
            return floor, (f"{floor:g} s: mostly position servos, driven by joint control, "
                           "which move only as fast as they settle")
        return EPISODE_S, (f"{EPISODE_S:g} s: the policy learns joint torques, which the motors "
                           "can push as hard as they allow")
    times = ee_move_times(arm)
    made = times[np.isfinite(times)]
    if len(times) < MIN_MOVES:
        return floor, (f"{floor:g} s ({'servo' if servo_driven else 'torque'} arms): too many "
                       "joints to time enough sample moves at load")
    if not len(made):
        return floor, (f"{floor:g} s: none of {len(times)} sampled moves settled within "
                       f"{MAX_FIT_S:g} s under ee control (see the warnings)")
    needed = float(np.percentile(made, 100 * MOVE_SHARE, method="inverted_cdf"))
    seconds = min(MAX_FIT_S, max(floor, EPISODE_STEP_S * math.ceil(needed / EPISODE_STEP_S)))
    return seconds, (f"{seconds:g} s: ee control makes {100 * MOVE_SHARE:.0f} % of the sampled moves "
                     f"it makes at all ({len(made)} of {len(times)}) within {needed:.2g} s"
                     + (f" (at least {floor:g} s for {'servo' if servo_driven else 'torque'} arms)"
                        if seconds == floor else ""))


def _fingerprint(arm: Arm) -> str:
    """What the episode rule reads of a compiled model, hashed: the same arm loaded twice
    (every env of a run) is measured once, a changed one again."""
    m = arm.model
    digest = hashlib.sha1(arm.end_effector.encode())
    for values in (m.opt.timestep, m.opt.gravity, m.body_mass, m.body_pos, m.body_quat,
                   m.body_inertia, m.body_gravcomp, m.jnt_range, m.dof_damping, m.dof_armature,
                   m.dof_frictionloss, m.actuator_gainprm, m.actuator_biasprm, m.actuator_gear,
                   m.actuator_ctrlrange, m.actuator_forcerange, m.actuator_forcelimited,
                   m.jnt_actfrcrange, m.jnt_actfrclimited, m.geom_size, m.geom_pos, m.key_qpos,
                   arm.joint_low, arm.joint_high):
        digest.update(np.ascontiguousarray(values, np.float64).tobytes())
    return digest.hexdigest()


def control_for(arm: Arm) -> tuple[str, str]:
    """The controller ``control="auto"`` picks for this arm, and why, in words.

    Measured across arms (docs/benchmarks.md, "Controllers" and "Learning on 7-DOF
    arms"): learning joint control stalls on position-servo arms (Panda, Gen3 0 %;
    servo_arm 82 % at its cap), where a scripted policy through the end-effector
    controller already reaches 73-100 %. On torque-driven arms it depends on how many
    actuators the policy would drive. With more than the end effector's three, learning
    through ``ee`` is far ahead in the same 5 minutes (four_link 94 % against 61 %; the
    7-DOF iiwa14_torque 71 % against 0 %): three actions instead of one per joint, and
    the controller coordinates the rest. With three or fewer the action is no smaller
    and a local controller cannot choose the arm's configuration (spatial_arm: scripted
    ee 63 %, stopped at joint limits), so two_link, three_link and spatial_arm learn
    their torques. So: servo arms, and torque arms with more than EE_FROM_ACTUATORS - 1
    actuators, reach through the end effector; small torque arms learn joint torques."""
    servos = len(position_servos(arm.model))
    n = arm.n_actuators
    if servos == 0 and n < EE_FROM_ACTUATORS:
        return "joint", (f"{n} torque actuator{'s' if n > 1 else ''}, no more than the end effector's "
                         "3 dimensions: the policy learns the torques directly")
    if 0 < servos < n:
        return "joint", (f"{n - servos} of {n} actuators are not position servos: the policy "
                         "learns every actuator's control directly")
    try:
        EndEffectorControl(Physics(arm, 1), speed=1.0)
    except ControlError as err:
        return "joint", f"{'position servos' if servos else f'{n} torque actuators'}, but {err}"
    if servos:
        return "ee", ("driven by position servos: the policy moves the end effector and "
                      "damped-least-squares IK sets the servo targets")
    return "ee", (f"{n} torque actuators, more than the end effector's 3 dimensions: the policy "
                  "moves the end effector and operational-space control sets the torques")
