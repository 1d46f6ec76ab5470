"""Settings that adapt to the arm, so a user's own arm learns without tuning.

A Config field left at its "auto" value (0, or an empty ``hidden_sizes``) is resolved
here from what the environment is: how many actuators drive it. The rules were chosen
by measuring across arms (docs/benchmarks.md, "Any arm"), never for one file. The
resolved values are what a run records in config.toml, so a resumed or re-evaluated
run uses exactly them.
"""

from __future__ import annotations

from reacher.arm import Arm, position_servos
from reacher.config import Config
from reacher.timing import EPISODE_S

# Per actuator: the cap on a success-gated run, and the horizon of the noise decay.
MAX_STEPS_PER_ACTUATOR = 25_000
NOISE_DECAY_STEPS_PER_ACTUATOR = 8_000
# Two hidden layers; wider once there are more joints to coordinate.
NARROW, WIDE = 128, 256
WIDE_FROM_ACTUATORS = 3
# Episode length: 1 s suits torque-driven arms, which can be pushed as hard as their
# motors allow. An arm driven by position servos moves only as fast as its servos
# settle: holding the exact target configuration, Menagerie's Panda, Gen3 and xArm7
# reach 75 %, 75 % and 25 % of targets within 2 cm after 1 s, but 95 %, 90 % and 80 %
# after 2 s (docs/benchmarks.md). Torque-driven arms keep reacher.timing.EPISODE_S.
SERVO_EPISODE_S = 2.0


def episode_seconds(arm: Arm) -> float:
    """The default episode length for this arm (see SERVO_EPISODE_S)."""
    servo_driven = len(position_servos(arm.model)) * 2 > arm.n_actuators
    return SERVO_EPISODE_S if servo_driven else EPISODE_S


def control_for(arm: Arm) -> tuple[str, str]:
    """The controller ``control="auto"`` picks for this arm, and why, in words.

    Measured across arms (docs/benchmarks.md, "Controllers"): learning joint control
    reaches 92-100 % on the torque-driven arms (two_link, three_link, four_link,
    spatial_arm, tiny_arm) but stalls on position-servo arms (Panda, Gen3 0 %;
    servo_arm 82 % at its cap), where a scripted policy through the end-effector
    controller already reaches 73-100 % (Panda 93, Gen3 100, xArm7 73, servo_arm 80).
    On torque arms the scripted ee policy does no better than learnt torques (spatial_arm
    63 %: a 3-joint arm without redundancy stops at its joint limits). So: arms driven
    by position servos reach through the end effector, torque-driven arms learn joint
    torques."""
    from reacher.controllers import ControlError, EndEffectorControl
    from reacher.physics import Physics

    servos = len(position_servos(arm.model))
    if servos == 0:
        return "joint", "no position servos: the policy learns the actuators' controls (torques) directly"
    if servos < arm.n_actuators:
        return "joint", (f"{arm.n_actuators - servos} of {arm.n_actuators} actuators are not "
                         "position servos: the policy learns every actuator's control directly")
    try:
        EndEffectorControl(Physics(arm, 1), speed=1.0)
    except ControlError as err:
        return "joint", f"position servos, but {err}"
    return "ee", ("driven by position servos: the policy moves the end effector and "
                  "damped-least-squares IK sets the servo targets")


def resolve(config: Config, n_actuators: int, episode_s: float | None = None,
            control: str | None = None) -> Config:
    """The config with every auto field replaced by its value for this many actuators
    (and ``episode_s``, the length the environment chose, see `episode_seconds`;
    ``control``, the controller it chose, see `control_for`)."""
    changes = {}
    if config.control == "auto" and control:
        changes["control"] = control
    if not config.episode_s and episode_s:
        changes["episode_s"] = float(episode_s)
    if not config.hidden_sizes:
        width = WIDE if n_actuators >= WIDE_FROM_ACTUATORS else NARROW
        changes["hidden_sizes"] = (width, width)
    if not config.max_steps:
        changes["max_steps"] = MAX_STEPS_PER_ACTUATOR * n_actuators
    if not config.noise_decay_steps:
        changes["noise_decay_steps"] = config.steps or NOISE_DECAY_STEPS_PER_ACTUATOR * n_actuators
    return config.replace(**changes) if changes else config
