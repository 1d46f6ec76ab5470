"""Deterministic evaluation: run the policy without noise on fixed seeds."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

from reacher.limits import MAX_SEED

EVAL_SEED = 1_000_000  # evaluation episodes never share seeds with training episodes
# Training's periodic evaluations decide when a run stops (the success gate), so they
# draw their episodes from a separate range: the final evaluation, and `reacher
# evaluate`, then measure the policy on episodes nothing was selected on. Each periodic
# evaluation takes the next block of this range, so evaluations in a row are
# independent samples.
VALIDATION_SEED = 2_000_000


@dataclass
class Evaluation:
    success_rate: float | None  # share of episodes ending within the success radius
    mean_final_distance: float | None  # metres, at each episode's last step
    mean_return: float
    episodes: int

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Evaluation:
        """Read back from `as_dict` (a checkpoint's); TypeError or ValueError unless each
        figure is a number (the rates and distance may be null, episodes a whole number)."""
        evaluation = cls(**values)
        for name in ("success_rate", "mean_final_distance", "mean_return", "episodes"):
            value = getattr(evaluation, name)
            optional = name in ("success_rate", "mean_final_distance")
            if (value is None and optional) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                continue
            raise TypeError(f"{name} is {value!r}, not a number")
        if not float(evaluation.episodes).is_integer():
            raise ValueError(f"episodes is {evaluation.episodes!r}, not a whole number")
        return evaluation


def evaluate(policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, episodes: int,
             seed: int = EVAL_SEED, stop: Callable[[], bool] | None = None) -> Evaluation | None:
    """Episode i starts from ``env.reset(seed=seed + i)``; success and distance are read
    from the last step's info (None where the env reports no such notion).

    `stop` is asked before every step (training passes its Ctrl-C/SIGTERM flag, since an
    evaluation can be long); when it says so, evaluation ends at once and returns None."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to 2**62, got {seed!r}")
    returns, distances, successes = [], [], []
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            if stop is not None and stop():
                return None
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        if "distance" in info:
            distances.append(float(info["distance"]))
        if "is_success" in info:
            successes.append(bool(info["is_success"]))
    return Evaluation(
        success_rate=float(np.mean(successes)) if len(successes) == episodes else None,
        mean_final_distance=float(np.mean(distances)) if len(distances) == episodes else None,
        mean_return=float(np.mean(returns)),
        episodes=episodes,
    )
