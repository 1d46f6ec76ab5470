"""Settings that adapt to the arm, so a user's own arm learns without tuning.

A Config field left at its "auto" value (0, or an empty ``hidden_sizes``) is resolved
here from what the environment is: how many action dimensions drive it and, for the
budgets, how large its workspace is in success radii. The rules were chosen
by measuring across arms (docs/benchmarks.md, "Any arm"), never for one file. The
resolved values are what a run records in config.toml, so a resumed or re-evaluated
run uses exactly them.
"""

from __future__ import annotations

from reacher.arm import Arm, position_servos
from reacher.config import Config
from reacher.timing import EPISODE_S

# Budgets: the cap on a success-gated run and the horizon of the noise decay, per action
# dimension, for an arm whose workspace spans REFERENCE_REACH success radii (two_link's,
# three_link's and four_link's 0.21 m over 2 cm), scaled linearly with that span; see
# `budget_scale`. Measured with the default 2-cm radius (docs/benchmarks.md section 4),
# runs stopped on success after, per action dimension:
#   two_link     R 10.5  2 dims  5-7k    (10-14k steps, 5 seeds)
#   three_link   R 10.5  3 dims  7-11k   (22-32k, 3 seeds)
#   four_link    R 10.5  4 dims  11k     (44k)
#   tiny_arm     R  4.4  3 dims  2.7k    (8k): less than half the span, a third the steps
# and at the old flat cap of 25k per actuator the larger workspaces stalled below the bar
# with their curves still improving: long_arm (R 100, 2 dims) 34 % and 3.6 cm at 50k,
# servo_arm (R 32, ee: 3 dims) 82 % at 100k. Steps grow with the span (tiny_arm to
# three_link: 2.4x the span, 3.4x the steps), so the cap does too: the three R 10.5 arms
# keep about 25k per dimension (2-5x what they use); long_arm gets 476k, servo_arm 229k.
# The law is linear for want of more points: the two stalled arms were not rerun to
# success, so their caps are the rule's extrapolation, not a measurement.
MAX_STEPS_PER_ACTION_DIM = 25_000
NOISE_DECAY_STEPS_PER_ACTION_DIM = 8_000
REFERENCE_REACH = 10.5  # workspace radius / success radius of the reference arms
# Below half the reference span a run's fixed costs (warm-up, the first evaluations and
# the confirmation of the success gate) dominate, so the budgets stop shrinking there.
MIN_BUDGET_SCALE = 0.5
# Kept for older callers: the budgets per dimension at the reference span.
MAX_STEPS_PER_ACTUATOR = MAX_STEPS_PER_ACTION_DIM
NOISE_DECAY_STEPS_PER_ACTUATOR = NOISE_DECAY_STEPS_PER_ACTION_DIM
# Two hidden layers; wider once there are more joints to coordinate.
NARROW, WIDE = 128, 256
WIDE_FROM_ACTUATORS = 3
# Episode length: 1 s suits torque-driven arms, which can be pushed as hard as their
# motors allow. An arm driven by position servos moves only as fast as its servos
# settle: holding the exact target configuration, Menagerie's Panda, Gen3 and xArm7
# reach 75 %, 75 % and 25 % of targets within 2 cm after 1 s, but 95 %, 90 % and 80 %
# after 2 s (docs/benchmarks.md). Torque-driven arms keep reacher.timing.EPISODE_S.
SERVO_EPISODE_S = 2.0
# Torque-driven arms with at least this many actuators reach through `ee` (see control_for).
EE_FROM_ACTUATORS = 4


def episode_seconds(arm: Arm) -> float:
    """The default episode length for this arm (see SERVO_EPISODE_S)."""
    servo_driven = len(position_servos(arm.model)) * 2 > arm.n_actuators
    return SERVO_EPISODE_S if servo_driven else EPISODE_S


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
    from reacher.controllers import ControlError, EndEffectorControl
    from reacher.physics import Physics

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


def budget_scale(reach_m: float | None, success_radius: float) -> float:
    """How much larger than the reference arms' the task's workspace is, in success radii
    (1 when the reach is unknown: a Gymnasium env that is not an arm)."""
    if not reach_m or success_radius <= 0:
        return 1.0
    return max(MIN_BUDGET_SCALE, reach_m / success_radius / REFERENCE_REACH)


def resolve(config: Config, n_actuators: int, episode_s: float | None = None,
            control: str | None = None, reach_m: float | None = None) -> Config:
    """The config with every auto field replaced by its value for this many action
    dimensions ``n_actuators`` (an ``ee`` controller has 3 whatever the arm's joints),
    ``reach_m`` (the arm's workspace radius, see `budget_scale`), ``episode_s`` (the
    length the environment chose, see `episode_seconds`) and ``control`` (the controller
    it chose, see `control_for`)."""
    changes = {}
    if config.control == "auto" and control:
        changes["control"] = control
    if not config.episode_s and episode_s:
        changes["episode_s"] = float(episode_s)
    if not config.hidden_sizes:
        width = WIDE if n_actuators >= WIDE_FROM_ACTUATORS else NARROW
        changes["hidden_sizes"] = (width, width)
    scale = budget_scale(reach_m, config.success_radius)
    if not config.max_steps:
        changes["max_steps"] = int(round(MAX_STEPS_PER_ACTION_DIM * n_actuators * scale, -3))
    if not config.noise_decay_steps:
        changes["noise_decay_steps"] = config.steps or int(
            round(NOISE_DECAY_STEPS_PER_ACTION_DIM * n_actuators * scale, -3))
    return config.replace(**changes) if changes else config
