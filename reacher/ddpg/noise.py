"""Exploration noise added to the actor's action while collecting experience."""

from __future__ import annotations

import numpy as np


class GaussianNoise:
    """Independent N(0, scale²) per action dimension."""

    def __init__(self, act_dim: int, scale: float):
        self.act_dim = act_dim
        self.scale = scale

    def reset(self) -> None:
        pass

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        return self.scale * rng.standard_normal(self.act_dim)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise: x ← x + θ(0 − x)·dt + σ√dt·N(0, 1), reset to 0 each episode.

    `scale` is the stationary std so both noises share one knob: for this discrete
    process (dt = 1) that needs σ = scale·√(θ(2 − θ)).
    """

    def __init__(self, act_dim: int, scale: float, theta: float = 0.15):
        self.act_dim = act_dim
        self.scale = scale
        self.theta = theta
        self.x = np.zeros(act_dim)

    def reset(self) -> None:
        self.x = np.zeros(self.act_dim)

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        sigma = self.scale * np.sqrt(self.theta * (2.0 - self.theta))
        self.x = self.x - self.theta * self.x + sigma * rng.standard_normal(self.act_dim)
        return self.x.copy()

    def state_dict(self) -> dict:
        return {"x": self.x.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.x = np.asarray(state["x"], dtype=np.float64)


def make_noise(kind: str, act_dim: int, scale: float, theta: float = 0.15):
    if kind == "gaussian":
        return GaussianNoise(act_dim, scale)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(act_dim, scale, theta)
    raise ValueError(f"unknown noise '{kind}' (expected gaussian or ou)")


def scheduled_scale(start: float, end: float, step: int, total: int) -> float:
    """Linear decay from `start` to `end` over `total` steps."""
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return start + (end - start) * frac
