"""Goal observations: ReachEnv as the goal-conditioned env that HER libraries expect.

Gymnasium-Robotics (FetchReach), panda-gym and Stable-Baselines3's
``HerReplayBuffer`` work with a Dict observation

    observation    the arm's own state: joint angles (cos, sin) and slides, velocities
    achieved_goal  the fingertip position (xyz, m)
    desired_goal   the target position (xyz, m)

and ``env.unwrapped.compute_reward(achieved_goal, desired_goal, info)``. The flat
observation holds the same values plus fingertip − target, which depends on the goal
and so has no place in ``observation`` (a relabelled goal would contradict it).
`flatten` turns a goal observation back into the flat layout, which is what reacher's
own agent reads in either mode.

In goal mode the reward charges no effort (the action shows in no goal), so
`compute_reward` depends on the goals alone and reads nothing from its info; ``step``'s
info still carries ``effort`` (‖a‖² of the clipped action).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gymnasium as gym
import numpy as np

KEYS = ("observation", "achieved_goal", "desired_goal")
GOAL_SIZE = 3  # xyz


def goal_space(state_size: int) -> gym.spaces.Dict:
    """The Dict observation space for an arm whose own state has `state_size` values."""
    box = lambda n: gym.spaces.Box(-np.inf, np.inf, (n,), np.float64)  # noqa: E731
    return gym.spaces.Dict({"observation": box(state_size), "achieved_goal": box(GOAL_SIZE),
                            "desired_goal": box(GOAL_SIZE)})


def flat_size(space: gym.Space) -> int:
    """How many values the flat layout of an observation from `space` has (Box or goal Dict)."""
    if isinstance(space, gym.spaces.Dict):  # observation, both goals, and their difference
        return sum(int(np.prod(space[k].shape)) for k in (*KEYS, "achieved_goal"))
    return int(np.prod(space.shape))


def is_goal_space(space: gym.Space) -> bool:
    """Whether `space` is a goal Dict (observation, achieved_goal, desired_goal)."""
    return isinstance(space, gym.spaces.Dict) and set(KEYS) <= set(space.spaces)


def flat_env(env: gym.Env) -> gym.Env:
    """`env` with its goal observations in the flat layout (unchanged if it has none)."""
    if not is_goal_space(env.observation_space):
        return env
    space = gym.spaces.Box(-np.inf, np.inf, (flat_size(env.observation_space),), np.float64)
    return gym.wrappers.TransformObservation(env, flatten, space)


def split(flat: np.ndarray, state_size: int) -> dict[str, np.ndarray]:
    """A flat observation (state, fingertip, target, fingertip − target) as the Dict."""
    fingertip = state_size + GOAL_SIZE
    return {"observation": flat[:state_size], "achieved_goal": flat[state_size:fingertip],
            "desired_goal": flat[fingertip:fingertip + GOAL_SIZE]}


def flatten(obs) -> np.ndarray:
    """A goal observation (or a batch of them, as vector envs return) in the flat layout:
    observation, achieved_goal, desired_goal, achieved_goal − desired_goal. Anything
    that is not a Dict observation is returned unchanged."""
    if not isinstance(obs, dict):
        return obs
    try:
        achieved, desired = obs["achieved_goal"], obs["desired_goal"]
        return np.concatenate([obs["observation"], achieved, desired, achieved - desired], axis=-1)
    except KeyError as err:
        raise ValueError(f"a goal observation needs the keys {', '.join(KEYS)}; "
                         f"got {', '.join(map(str, obs))} (missing {err})") from None


@dataclass(frozen=True)
class GoalLayout:
    """Where the goals sit in a flat observation, and the reward of a pair of goals: what
    hindsight relabelling reads (`reacher.ddpg.replay.relabel` and `n_step`) to give stored
    transitions another target. ``achieved`` is the fingertip (what was reached),
    ``desired`` the target, ``delta`` = achieved − desired; ``reward`` has
    ``from_goals(achieved, desired, effort, exact)`` (`reacher.task.reward.ReachReward` for
    reacher's arms, `EnvReward` for any other goal env)."""

    achieved: slice
    desired: slice
    delta: slice
    reward: object


# --- hindsight on any goal env ---------------------------------------------------------------

@dataclass(frozen=True)
class EnvReward:
    """A goal env's own ``compute_reward``, called in batches the way `reacher.ddpg.replay`
    calls ReachReward.from_goals. Each transition gets an empty info dict, as SB3's
    HerReplayBuffer passes by default: goal envs' rewards (Gymnasium-Robotics, panda-gym,
    reacher's own) depend on the goals alone."""

    compute_reward: Callable

    def from_goals(self, achieved_goal, desired_goal, effort=None, exact: bool = False) -> np.ndarray:
        achieved = np.asarray(achieved_goal)
        infos = np.array([{} for _ in range(len(achieved))], dtype=object)
        reward = np.asarray(self.compute_reward(achieved, np.asarray(desired_goal), infos), np.float64)
        if reward.shape != (len(achieved),):
            raise ValueError(f"compute_reward returned shape {reward.shape} for a batch of "
                             f"{len(achieved)} goals; hindsight needs one reward per goal")
        return reward


def env_goal_layout(env: gym.Env) -> GoalLayout | None:
    """The layout for hindsight relabelling of a goal env (a goal Dict observation and a
    ``compute_reward``) seen through `flat_env`; None for any other env."""
    space = env.observation_space
    compute = getattr(env.unwrapped, "compute_reward", None)
    if not is_goal_space(space) or not callable(compute):
        return None
    state, goal = (int(np.prod(space[k].shape)) for k in ("observation", "achieved_goal"))
    if int(np.prod(space["desired_goal"].shape)) != goal:
        return None
    return GoalLayout(achieved=slice(state, state + goal), desired=slice(state + goal, state + 2 * goal),
                         delta=slice(state + 2 * goal, state + 3 * goal), reward=EnvReward(compute))
