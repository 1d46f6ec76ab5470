"""The reaching reward, shared by the environment and hindsight relabelling.

    reward = -distance_m
             - ctrl_cost_weight * ||a||^2
             - precision_weight * (1 - exp(-(distance_m / precision_scale_m)^2))

The first two terms are the classic Reacher reward. The precision term is a
bowl a few centimetres wide around the target: far away it is a constant, close
in it pays sharply for the last centimetre, which plain -distance barely does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReachReward:
    ctrl_cost_weight: float = 0.05
    precision_weight: float = 1.0
    precision_scale_m: float = 0.02

    def __call__(self, distance_m, action) -> np.ndarray:
        """Rewards for a batch: distances (...,) in metres and actions (..., n_actuators)."""
        return self.from_effort(distance_m, np.square(action).sum(axis=-1), np.exp)

    def from_effort(self, distance_m, effort, exp=math.exp):
        """The formula, given ‖a‖² (`effort`); with math.exp for the env's scalar fast path."""
        bowl = 1.0 - exp(-(distance_m / self.precision_scale_m) ** 2)
        return -distance_m - self.ctrl_cost_weight * effort - self.precision_weight * bowl
