"""The reaching reward, shared by the environment and hindsight relabelling.

    reward = -distance_m
             - ctrl_cost_weight * ||a||^2
             - precision_weight * (1 - exp(-(distance_m / precision_scale_m)^2))

The first two terms are the classic Reacher reward. The precision term is a
bowl a few centimetres wide around the target: far away it is a constant, close
in it pays sharply for the last centimetre, which plain -distance barely does.

`ReachReward.from_goals` is the reward as a function of the goals (fingertip and
target) and the action's effort: what ``ReachEnv.compute_reward`` returns for
goal-conditioned libraries and what hindsight relabelling (`reacher.ddpg.replay.relabel`)
recomputes, so the three agree by construction.
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

    def from_goals(self, achieved_goal, desired_goal, effort, exact: bool = True):
        """The reward with the fingertip at `achieved_goal` and the target at `desired_goal`
        (xyz in metres, shape (3,) or (n, 3)) after an action with ‖a‖² = `effort` (scalar
        or (n,)). A float for one transition, an array of n for a batch.

        ``exact`` reproduces `ReachEnv.step`'s float64 scalar arithmetic bit for bit (its
        ``**`` and ``math.exp`` round differently from numpy's in the last bit), at about
        a microsecond per transition; ``exact=False`` is numpy's vector maths, for
        training's relabelling, where float32 storage rounds far more anyway."""
        delta = np.subtract(achieved_goal, desired_goal)
        if delta.shape[-1:] != (3,):
            raise ValueError(f"goals must be xyz positions, shape (3,) or (n, 3); got {delta.shape}")
        # Summed in the order step sums dx² + dy² + dz², so the distances agree exactly.
        dx, dy, dz = delta[..., 0], delta[..., 1], delta[..., 2]
        distance = np.sqrt(dx * dx + dy * dy + dz * dz)
        effort = np.asarray(effort, dtype=distance.dtype if not exact else np.float64)
        if not exact:
            return self.from_effort(distance, effort, np.exp)
        if distance.ndim == 0:
            return self.from_effort(float(distance), float(effort))
        distance, effort = np.broadcast_arrays(distance, effort)
        return np.fromiter(map(self.from_effort, distance.ravel().tolist(), effort.ravel().tolist()),
                           np.float64, distance.size).reshape(distance.shape)
