"""Vector envs: gym.make_vec for every registered id, both vectorisation modes and both
observation modes, step for step the same as the single envs it holds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import reacher  # noqa: F401  (registers the environments)

ENV_IDS = ("reacher/TwoLink-v0", "reacher/ThreeLink-v0", "reacher/Reach-v0")
N = 3


def _stack(observations: list) -> np.ndarray | dict:
    if isinstance(observations[0], dict):
        return {k: np.stack([o[k] for o in observations]) for k in observations[0]}
    return np.stack(observations)


def _assert_same(batched, singles: list) -> None:
    expected = _stack(singles)
    if isinstance(expected, dict):
        assert batched.keys() == expected.keys()
        for key in expected:
            np.testing.assert_array_equal(batched[key], expected[key], err_msg=key)
    else:
        np.testing.assert_array_equal(batched, expected)


@pytest.mark.parametrize("goal_observation", [False, True], ids=["flat", "goal"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec(env_id, mode, goal_observation):
    vec = gym.make_vec(env_id, num_envs=N, vectorization_mode=mode, goal_observation=goal_observation)
    singles = [gym.make(env_id, goal_observation=goal_observation) for _ in range(N)]
    try:
        assert vec.single_observation_space == singles[0].observation_space
        assert vec.action_space.shape == (N, *singles[0].action_space.shape)
        obs, info = vec.reset(seed=10)
        _assert_same(obs, [env.reset(seed=10 + i)[0] for i, env in enumerate(singles)])  # env i: seed + i
        rng = np.random.default_rng(0)
        truncations = []
        for _ in range(60):  # past the 50-step episode end: Gymnasium's autoreset takes over
            actions = rng.uniform(-1, 1, vec.action_space.shape).astype(np.float32)
            obs, reward, terminated, truncated, info = vec.step(actions)
            assert vec.observation_space.contains(obs)
            assert reward.shape == (N,) and info["distance"].shape == (N,) and not terminated.any()
            truncations.append(truncated.copy())
            if goal_observation and "effort" in info:  # not on the autoreset step (a reset)
                # A vector env's infos (a dict of arrays) feed compute_reward as they are.
                np.testing.assert_array_equal(
                    singles[0].unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], info),
                    reward)
        assert [int(t.sum()) for t in truncations] == [0] * 49 + [N] + [0] * 10
    finally:
        vec.close()
        for env in singles:
            env.close()


def test_vector_steps_match_the_single_envs():
    vec = gym.make_vec("reacher/TwoLink-v0", num_envs=N, vectorization_mode="sync")
    singles = [gym.make("reacher/TwoLink-v0") for _ in range(N)]
    vec.reset(seed=0)
    for i, env in enumerate(singles):
        env.reset(seed=i)
    rng = np.random.default_rng(1)
    for _ in range(20):
        actions = rng.uniform(-1, 1, vec.action_space.shape).astype(np.float32)
        obs, reward, *_ = vec.step(actions)
        steps = [env.step(a) for env, a in zip(singles, actions)]
        _assert_same(obs, [s[0] for s in steps])
        np.testing.assert_array_equal(reward, [s[1] for s in steps])
    vec.close()
