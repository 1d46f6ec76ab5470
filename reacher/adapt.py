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


def resolve(config: Config, n_actuators: int, episode_s: float | None = None) -> Config:
    """The config with every auto field replaced by its value for this many actuators
    (and ``episode_s``, the length the environment chose, see `episode_seconds`)."""
    changes = {}
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
