"""The reaching reward, shared by the environment and hindsight relabelling.

    reward = -distance_m
             - ctrl_cost_weight * ||a||^2
             - precision_weight * (1 - exp(-(distance_m / precision_scale_m)^2))

The first two terms are the classic Reacher reward. The precision term is a
bowl a few centimetres wide around the target: far away it is a constant, close
in it pays sharply for the last centimetre, which plain -distance barely does.
Every function works on scalars and on batches (leading axes) alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReachReward:
    ctrl_cost_weight: float = 0.1
    precision_weight: float = 1.0
    precision_scale_m: float = 0.02

    def __call__(self, distance_m, action) -> np.ndarray | float:
        """Reward for a fingertip `distance_m` from the target after applying `action` in [-1, 1]."""
        effort = np.square(action).sum(axis=-1)
        bowl = 1.0 - np.exp(-np.square(distance_m / self.precision_scale_m))
        return -distance_m - self.ctrl_cost_weight * effort - self.precision_weight * bowl
