"""Hindsight on goal envs that are not reacher's: a Gymnasium env with a goal Dict
observation and ``compute_reward`` trains with reacher's relabelling, through its own
compute_reward; ``is_success`` from its info drives evaluation, the gate and the metrics."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from reacher.config import Config
from reacher.ddpg.replay import ReplayBuffer, relabel
from reacher.run.metrics import read_metrics
from reacher.run.training import Training
from reacher.task import goal

POINT_ID = "reacher_tests/PointGoal-v0"


class PointGoal(gym.Env):
    """A point in the plane moved toward a goal, Fetch-style: reward -(d > eps), sparse.
    Positions and goals in [-1, 1]², a step moves at most 0.2 per axis, 20 steps."""

    EPS = 0.1
    metadata = {"render_modes": []}

    def __init__(self, render_mode=None):
        box = lambda low, high: gym.spaces.Box(low, high, (2,), np.float64)  # noqa: E731
        self.observation_space = gym.spaces.Dict({"observation": box(-1, 1), "achieved_goal": box(-1, 1),
                                                  "desired_goal": box(-1, 1)})
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.compute_reward_calls = 0

    def _obs(self):
        return {"observation": self.pos.copy(), "achieved_goal": self.pos.copy(), "desired_goal": self.goal.copy()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.goal = self.np_random.uniform(-1, 1, 2), self.np_random.uniform(-1, 1, 2)
        return self._obs(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.2 * np.clip(action, -1, 1), -1, 1)
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], {}))
        self.compute_reward_calls -= 1  # count only hindsight's calls
        return obs, reward, False, False, {"is_success": reward == 0.0}

    def compute_reward(self, achieved_goal, desired_goal, info):
        self.compute_reward_calls += 1
        return -(np.linalg.norm(achieved_goal - desired_goal, axis=-1) > self.EPS).astype(np.float64)


gym.register(POINT_ID, entry_point=PointGoal, max_episode_steps=20)

POINT = Config(env=POINT_ID, steps=2_000, warmup_steps=500, batch_size=64, hidden_sizes=(64, 64),
               eval_every=1_000, eval_episodes=50, final_eval_episodes=100, checkpoint_every=100_000,
               gamma=0.95, threads=1, seed=0)


def test_the_layout_of_a_goal_env_follows_flatten():
    env = gym.make(POINT_ID)
    layout = goal.env_goal_layout(env)
    obs, _ = env.reset(seed=0)
    flat = goal.flatten(obs)
    np.testing.assert_array_equal(flat[layout.achieved], obs["achieved_goal"])
    np.testing.assert_array_equal(flat[layout.desired], obs["desired_goal"])
    np.testing.assert_array_equal(flat[layout.delta], obs["achieved_goal"] - obs["desired_goal"])
    assert goal.env_goal_layout(gym.make("Pendulum-v1")) is None


def test_relabelling_calls_the_envs_compute_reward_in_batches():
    env = gym.make(POINT_ID)
    layout = goal.env_goal_layout(env)
    buffer = ReplayBuffer(8, 2, 200)
    rng = np.random.default_rng(0)
    obs = goal.flatten(env.reset(seed=0)[0])
    for _ in range(100):
        action = rng.uniform(-1, 1, 2)
        next_obs, reward, _, truncated, _ = env.step(action)
        next_obs = goal.flatten(next_obs)
        buffer.add(obs, action, reward, next_obs, False)
        obs = next_obs
        if truncated:
            buffer.end_episode()
            obs = goal.flatten(env.reset()[0])
    env.unwrapped.compute_reward_calls = 0
    idx = buffer.sample_indices(64, rng)
    batch = relabel(buffer.batch(idx), buffer, idx, layout, 1.0, rng)
    assert env.unwrapped.compute_reward_calls == 1  # one call for the whole batch
    d = np.linalg.norm(batch["next_obs"][:, layout.achieved] - batch["next_obs"][:, layout.desired], axis=1)
    np.testing.assert_array_equal(batch["reward"], -(d > PointGoal.EPS).astype(np.float32))
    assert (batch["reward"] == 0).mean() > 0.1  # hindsight found goals that were reached


def _success(tmp_path, name, **changes):
    training = Training(POINT.replace(**changes), tmp_path / name, progress=False)
    outcome = training.run()
    rows = read_metrics(tmp_path / name / "metrics.csv")
    assert all(r["mean_final_distance"] is None and r["success_rate"] is not None for r in rows)
    assert (tmp_path / name / "curve.png").stat().st_size > 0  # drawn without a distance
    return outcome.evaluation.success_rate


@pytest.mark.slow
def test_hindsight_beats_no_hindsight_on_a_goal_env_from_elsewhere(tmp_path):
    with_her = _success(tmp_path, "her")
    without = _success(tmp_path, "plain", hindsight_fraction=0.0)
    # Measured (seeds 0, 1): 100 % and 100 % with hindsight, 1 % and 4 % without (at 3,000 steps
    # 100 % and 1 %, 12 %; at 1,000 or 1,200 steps, whose noise decays sooner, 0–1 % either way).
    assert with_her >= without + 0.5, (with_her, without)


def test_reachs_goal_env_relabels_the_same_through_compute_reward():
    """reacher/Reach-v0 in goal mode: its compute_reward, called as for any goal env,
    gives the rewards of the built-in relabelling (the two paths are one reward)."""
    env = gym.make("reacher/Reach-v0", goal_observation=True)
    layout, builtin = goal.env_goal_layout(env), env.unwrapped.goal_layout
    assert (layout.achieved, layout.desired, layout.delta) == (builtin.achieved, builtin.desired, builtin.delta)
    rng = np.random.default_rng(0)
    achieved, desired = rng.uniform(-0.2, 0.2, (32, 3)), rng.uniform(-0.2, 0.2, (32, 3))
    np.testing.assert_allclose(layout.reward.from_goals(achieved, desired),
                               builtin.reward.from_goals(achieved, desired, 0.0, exact=False), rtol=1e-12)


@pytest.mark.slow
def test_reach_through_env_trains_as_the_builtin_path(tmp_path):
    """`--env reacher/Reach-v0` with goal observations is the built-in arm run, step for
    step (the 3-seed comparison of steps to 95 % is a benchmark: bench_learning.py)."""
    small = Config(steps=1_500, warmup_steps=300, eval_every=500, eval_episodes=5, final_eval_episodes=10,
                   checkpoint_every=100_000, batch_size=64, hidden_sizes=(64, 64), threads=1,
                   goal_observation=True)
    runs = []
    for name, config in (("env", small.replace(env="reacher/Reach-v0")), ("arm", small)):
        outcome = Training(config, tmp_path / name, progress=False).run()
        rows = [{k: v for k, v in r.items() if not k.endswith(("_time", "_per_s"))}
                for r in read_metrics(tmp_path / name / "metrics.csv")]
        runs.append((outcome.evaluation, rows))
    assert runs[0] == runs[1]
    assert runs[0][1][-1]["critic_loss"] > 0
