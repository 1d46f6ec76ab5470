"""The environment a training `Config` describes: its arm as a `ReachEnv`, or its Gymnasium id."""

from __future__ import annotations

import copy
import dataclasses

import gymnasium as gym
import numpy as np

from reacher.run.settings import env_kwargs
from reacher.sim.arm import Arm, load_arm
from reacher.task import goal
from reacher.task.env import ReachEnv


def make_env(config, render_mode: str | None = None, *, arm: Arm | None = None,
             **render_kwargs) -> gym.Env:
    """The environment a `Config` describes: a ReachEnv for its arm, or its Gymnasium id
    (``config.env``) with actions rescaled to [-1, 1] like ReachEnv's.

    ``arm``, an `Arm` already loaded for this config (the one `settings.for_arm` read),
    saves loading the file again; the env gets its own copy of the compiled model. A
    field still on auto is left to ReachEnv, which chooses as `settings.for_arm` does."""
    if config.env:
        import reacher  # noqa: F401  (registers reacher/* ids)

        goal_kwargs = {"goal_observation": True} if config.goal_observation else {}
        try:
            env = gym.make(config.env, render_mode=render_mode, **goal_kwargs, **render_kwargs)
        except (gym.error.Error, TypeError) as err:
            raise ValueError(f"env '{config.env}': {err}") from None
        if not isinstance(env.action_space, gym.spaces.Box) or not (
                isinstance(env.observation_space, gym.spaces.Box) or goal.is_goal_space(env.observation_space)):
            raise ValueError(f"env '{config.env}': needs Box observation and action spaces, has "
                             f"{type(env.observation_space).__name__} and "
                             f"{type(env.action_space).__name__}")
        if not isinstance(env.unwrapped, ReachEnv):
            env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
        return env
    if arm is None:
        arm = load_arm(config.arm, config.end_effector)
    else:  # never share a model between envs: MjData and any model tweak stay per env
        arm = dataclasses.replace(arm, model=copy.copy(arm.model))
    return ReachEnv(arm, render_mode=render_mode, **env_kwargs(config), **render_kwargs)
