"""Settings that adapt to the arm, so a user's own arm learns without tuning.

A Config field left at its "auto" value (0, or an empty ``hidden_sizes``) is resolved
here from what the environment is: how many actuators drive it. The rules were chosen
by measuring across arms (docs/benchmarks.md, "Any arm"), never for one file. The
resolved values are what a run records in config.toml, so a resumed or re-evaluated
run uses exactly them.
"""

from __future__ import annotations

from reacher.config import Config

# Per actuator: the cap on a success-gated run, and the horizon of the noise decay.
MAX_STEPS_PER_ACTUATOR = 25_000
NOISE_DECAY_STEPS_PER_ACTUATOR = 8_000
# Two hidden layers; wider once there are more joints to coordinate.
NARROW, WIDE = 128, 256
WIDE_FROM_ACTUATORS = 3


def resolve(config: Config, n_actuators: int) -> Config:
    """The config with every auto field replaced by its value for this many actuators."""
    changes = {}
    if not config.hidden_sizes:
        width = WIDE if n_actuators >= WIDE_FROM_ACTUATORS else NARROW
        changes["hidden_sizes"] = (width, width)
    if not config.max_steps:
        changes["max_steps"] = MAX_STEPS_PER_ACTUATOR * n_actuators
    if not config.noise_decay_steps:
        changes["noise_decay_steps"] = config.steps or NOISE_DECAY_STEPS_PER_ACTUATOR * n_actuators
    return config.replace(**changes) if changes else config
