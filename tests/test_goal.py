"""Goal observations: the Dict observation, compute_reward, and reacher's agent in that mode."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reacher  # noqa: F401  (registers the environments)
from reacher.config import Config
from reacher.ddpg.replay import ReplayBuffer, relabel
from reacher.run.envs import make_env
from reacher.run.metrics import read_metrics
from reacher.run.training import train
from reacher.task import goal
from reacher.task.env import ReachEnv

ENV_IDS = ("reacher/TwoLink-v0", "reacher/ThreeLink-v0", "reacher/Reach-v0")
EXPECTED_WARNINGS = (  # as in test_env.py: unbounded observations, no display for "human"
    r"A Box observation space (minimum|maximum) value is -?infinity",
    r"render_mode='human' needs a display",
)


def _actions(env, n: int, seed: int = 0) -> np.ndarray:
    """Random actions, some beyond [-1, 1] so that clipping shows in the effort."""
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (n, *env.action_space.shape)).astype(np.float32)


def _transitions(env_id: str, n: int, **kwargs):
    """n goal-mode steps with random actions, across episode ends: lists of
    achieved goals, desired goals, infos and rewards."""
    env = gym.make(env_id, goal_observation=True, **kwargs)
    env.reset(seed=0)
    achieved, desired, infos, rewards = [], [], [], []
    for action in _actions(env, n):
        obs, reward, terminated, truncated, info = env.step(action)
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        infos.append(info)
        rewards.append(reward)
        if terminated or truncated:
            env.reset()
    return env, np.array(achieved), np.array(desired), infos, np.array(rewards)


# --- the observation ------------------------------------------------------------------------------

@pytest.mark.parametrize("env_id", ENV_IDS)
def test_goal_observation_holds_the_flat_observations_values(env_id):
    # Goal mode's reward leaves the effort out: it equals the flat env's without it.
    flat_env = gym.make(env_id, ctrl_cost_weight=0.0)
    goal_env = gym.make(env_id, goal_observation=True)
    n = flat_env.observation_space.shape[0]
    space = goal_env.observation_space
    assert isinstance(space, gym.spaces.Dict) and list(space) == ["achieved_goal", "desired_goal", "observation"]
    assert space["observation"].shape == (n - 9,)
    assert space["achieved_goal"].shape == space["desired_goal"].shape == (3,)
    assert all(s.dtype == np.float64 for s in space.values())

    flat, flat_info = flat_env.reset(seed=7)
    obs, info = goal_env.reset(seed=7)
    for action in [None, *_actions(flat_env, 60)]:  # past the 50-step episode end
        if action is not None:
            flat, flat_reward, _, flat_truncated, flat_info = flat_env.step(action)
            obs, reward, _, truncated, info = goal_env.step(action)
            assert reward == flat_reward and truncated == flat_truncated
            if truncated:
                flat, flat_info = flat_env.reset()
                obs, info = goal_env.reset()
        assert space.contains(obs)
        np.testing.assert_array_equal(obs["observation"], flat[:n - 9])
        np.testing.assert_array_equal(obs["achieved_goal"], flat[n - 9:n - 6])  # the fingertip
        np.testing.assert_array_equal(obs["desired_goal"], flat[n - 6:n - 3])  # the target
        np.testing.assert_array_equal(obs["desired_goal"], info["target"])
        np.testing.assert_array_equal(goal.flatten(obs), flat)
        assert {k: v for k, v in info.items() if k != "effort"}.keys() == flat_info.keys()


def test_the_default_mode_is_a_flat_box_without_compute_reward():
    env = gym.make("reacher/TwoLink-v0")
    assert isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.shape == (15,)
    env.reset(seed=0)
    *_, info = env.step(np.zeros(2, np.float32))
    assert set(info) == {"distance", "is_success", "target"}
    # Stable-Baselines3 takes any env with compute_reward for a goal env; a flat one has none.
    assert not hasattr(env.unwrapped, "compute_reward")
    with pytest.raises(AttributeError, match="goal_observation=True"):
        env.unwrapped.compute_reward(np.zeros(3), np.zeros(3), {})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes_in_goal_mode(env_id):
    env = gym.make(env_id, goal_observation=True, width=64, height=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught
                  if not any(re.search(p, str(w.message)) for p in EXPECTED_WARNINGS)]
    assert unexpected == []
    env.close()


def test_stable_baselines3_check_env_passes_in_both_modes():
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker",
                                      reason="stable-baselines3 is not installed (pip install -e '.[test]')")
    for goal_observation in (False, True):
        env = ReachEnv("two_link", goal_observation=goal_observation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its notes on unbounded Boxes
            sb3_checker.check_env(env)  # in goal mode this compares compute_reward with step


# --- compute_reward -------------------------------------------------------------------------------

@pytest.mark.parametrize("env_id", ENV_IDS)
def test_compute_reward_is_the_step_reward_one_by_one_and_batched(env_id):
    env, achieved, desired, infos, rewards = _transitions(env_id, 300)
    compute = env.unwrapped.compute_reward
    singles = [compute(a, d, i) for a, d, i in zip(achieved, desired, infos)]
    assert all(isinstance(r, float) for r in singles)
    np.testing.assert_array_equal(singles, rewards)  # exactly, not approximately
    # Batches as Stable-Baselines3 passes them (an array of info dicts, empty ones with its
    # default copy_info_dict=False), as a list, and as a vector env's infos (a dict of arrays).
    efforts = np.array([i["effort"] for i in infos])
    empty = np.array([{} for _ in infos])
    for batch_info in (np.array(infos), infos, {"effort": efforts}, empty, None):
        batch = compute(achieved, desired, batch_info)
        assert batch.shape == (300,) and batch.dtype == np.float64
        np.testing.assert_array_equal(batch, rewards)


def test_compute_reward_for_other_goals_follows_the_documented_formula():
    env, achieved, _, infos, _ = _transitions("reacher/TwoLink-v0", 50, ctrl_cost_weight=0.3,
                                              precision_weight=2.0, precision_scale_m=0.05)
    desired = achieved + np.random.default_rng(1).normal(0, 0.03, achieved.shape)  # relabelled
    distance = np.linalg.norm(achieved - desired, axis=1)
    effort = np.array([i["effort"] for i in infos])
    # Goal mode charges no effort, whatever ctrl_cost_weight says (the docstring's Reward).
    expected = -distance - 2.0 * (1 - np.exp(-(distance / 0.05) ** 2))
    np.testing.assert_allclose(env.unwrapped.compute_reward(achieved, desired, infos), expected, rtol=1e-12)
    assert (effort > 0).all() and effort.max() <= 2.0  # info still reports ‖a‖² of the clipped action


def test_compute_reward_needs_nothing_from_info():
    """SB3's HerReplayBuffer with its defaults (copy_info_dict=False) passes empty infos."""
    env, achieved, desired, infos, rewards = _transitions("reacher/TwoLink-v0", 5)
    np.testing.assert_array_equal(env.unwrapped.compute_reward(achieved, desired, [{}] * 5), rewards)
    np.testing.assert_array_equal(env.unwrapped.compute_reward(achieved, desired, {}), rewards)


def test_compute_reward_refuses_mismatched_shapes():
    env, achieved, desired, infos, _ = _transitions("reacher/TwoLink-v0", 4)
    compute = env.unwrapped.compute_reward
    with pytest.raises(ValueError, match="do not match"):
        compute(achieved, desired[:2], infos)
    with pytest.raises(ValueError, match="xyz"):
        compute(achieved[:, :2], desired[:, :2], infos)


def test_relabelling_uses_the_envs_reward_function():
    """Hindsight relabelling rewrites the target; its reward must be compute_reward's."""
    env = ReachEnv("two_link")
    layout = env.goal_layout
    buffer = ReplayBuffer(env.observation_space.shape[0], 2, 1000)
    obs, _ = env.reset(seed=0)
    for action in _actions(env, 500):
        clipped = np.clip(action, -1, 1)  # training stores the action it clipped
        next_obs, reward, _, truncated, _ = env.step(clipped)
        buffer.add(obs, clipped, reward, next_obs, False)
        obs = next_obs
        if truncated:
            buffer.end_episode()
            obs, _ = env.reset()
    rng = np.random.default_rng(0)
    idx = buffer.sample_indices(256, rng)
    original = buffer.batch(idx)["obs"][:, layout.desired].copy()
    batch = relabel(buffer.batch(idx), buffer, idx, layout, 1.0, rng)
    assert not np.allclose(batch["obs"][:, layout.desired], original)  # the targets did change
    # The flat env charges effort; the goal env's compute_reward does not: add it back.
    goal_env = ReachEnv("two_link", goal_observation=True)
    efforts = np.square(batch["action"].astype(np.float64)).sum(axis=1)
    expected = goal_env.compute_reward(batch["next_obs"][:, layout.achieved], batch["next_obs"][:, layout.desired],
                                       None) - env.reward_fn.ctrl_cost_weight * efforts
    np.testing.assert_allclose(batch["reward"], expected, rtol=1e-5, atol=1e-6)  # float32 storage


# --- reacher's own agent --------------------------------------------------------------------------

TINY = Config(steps=600, warmup_steps=200, eval_every=300, eval_episodes=2, final_eval_episodes=2,
              checkpoint_every=300, batch_size=32, hidden_sizes=(32, 32), threads=1)


@pytest.mark.slow
def test_the_agent_trains_the_same_in_either_mode(tmp_path):
    """The agent reads the flat layout in both modes, so a seed gives the same run (goal
    mode charges no effort, so it is the flat run with ctrl_cost_weight 0)."""
    runs = {}
    for goal_observation in (False, True):
        run_dir = tmp_path / str(goal_observation)
        config = TINY.replace(goal_observation=True) if goal_observation else TINY.replace(ctrl_cost_weight=0.0)
        outcome = train(config, run_dir, progress=False)
        rows = [{k: v for k, v in row.items() if not k.endswith(("_time", "_per_s"))}
                for row in read_metrics(run_dir / "metrics.csv")]
        runs[goal_observation] = (outcome.evaluation, rows)
    assert runs[True] == runs[False]
    assert len(runs[True][1]) == 2 and runs[True][1][-1]["critic_loss"] > 0


def test_make_env_in_goal_mode_for_an_arm_and_a_registered_id():
    for config in (Config(goal_observation=True), Config(env="reacher/ThreeLink-v0", goal_observation=True)):
        env = make_env(config)
        assert goal.is_goal_space(env.observation_space)
        assert goal.flat_size(env.observation_space) == (15 if not config.env else 18)
        env.close()
    with pytest.raises(ValueError, match="env 'Pendulum-v1': .*goal_observation"):
        make_env(Config(env="Pendulum-v1", goal_observation=True))
