"""Robustness: one trained policy on its nominal model and on perturbed ones, same episodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reacher.errors import ConfigError
from reacher.run import checkpoint as ckpt
from reacher.run.envs import make_env
from reacher.run.evaluation import EVAL_SEED, Evaluation, evaluate
from reacher.task.goal import flat_size
from reacher.task.randomize import DEFAULT_RANGES, Ranges, nominal, wrap


@dataclass
class Robustness:
    """Success of one policy on the nominal model and on perturbed ones, same episodes."""

    nominal: Evaluation
    perturbed: Evaluation
    ranges: Ranges

    def as_dict(self) -> dict:
        return {"nominal": self.nominal.as_dict(), "perturbed": self.perturbed.as_dict(),
                "ranges": self.ranges.as_dict()}


def evaluate_randomized(policy, ranges: Ranges = DEFAULT_RANGES, episodes: int = 100,
                        seed: int = EVAL_SEED) -> Robustness:
    """Evaluate a trained policy (`reacher.load_policy`) on its nominal env and on
    perturbed ones. Episode i starts from the same seed in both, so the two figures
    differ only by the perturbations."""
    if not ranges.any():
        raise ConfigError("no randomisation range is set (randomize_mass, randomize_damping, "
                          "randomize_friction, randomize_gain, obs_noise_std, action_delay_steps)")
    # The policy sees the action history it trained with (none, if it trained without a
    # delay), whatever delay the evaluation applies.
    history = policy.config.action_delay_steps
    results = []
    for env_ranges in (Ranges(), ranges):
        # The run's env without its own ranges (if it trained with some): the nominal model.
        env = wrap(make_env(nominal(policy.config)), env_ranges, history_steps=history)
        try:
            ckpt.check_sizes(policy.checkpoint, flat_size(env.observation_space),
                             int(np.prod(env.action_space.shape)), "its env now")
            results.append(evaluate(policy, env, episodes, seed))
        finally:
            env.close()
    return Robustness(results[0], results[1], ranges)
