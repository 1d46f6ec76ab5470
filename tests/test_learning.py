"""Training end to end: determinism, any Gymnasium task, and a real learning threshold."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from reacher.config import Config
from reacher.run import checkpoint as ckpt
from reacher.run.envs import make_env
from reacher.run.metrics import read_metrics
from reacher.run.policy import load_policy
from reacher.run.training import train

TINY = Config(steps=600, warmup_steps=200, eval_every=300, eval_episodes=2, final_eval_episodes=2,
              checkpoint_every=300, batch_size=32, hidden_sizes=(32, 32), threads=1)


def _is_timing(column: str) -> bool:
    """Clock readings (wall_time, eval_time, steps_per_s, ...): the only columns that may vary."""
    return column.endswith("_time") or column.endswith("_per_s")


def _rows(run_dir) -> list[dict]:
    return [{k: v for k, v in row.items() if not _is_timing(k)}
            for row in read_metrics(run_dir / "metrics.csv")]


def _actor(run_dir) -> dict[str, torch.Tensor]:
    return ckpt.load(run_dir).model["agent"]["actor"]


# --- determinism -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """Seed 0 twice and seed 1 once, TD3 options on so their randomness is covered too."""
    config = TINY.replace(twin_critics=True, policy_delay=2, target_noise=0.2, noise="ou")
    root = tmp_path_factory.mktemp("determinism")
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("other", 1)):
        train(config.replace(seed=seed), run_dir=root / name, progress=False)
        runs[name] = root / name
    return runs


def test_same_seed_gives_identical_metrics_and_weights(three_runs):
    a, b = three_runs["a"], three_runs["b"]
    rows = _rows(a)
    assert [r["step"] for r in rows] == [300, 600]
    assert all(r["critic_loss"] is not None and r["actor_loss"] is not None for r in rows)
    assert rows == _rows(b)
    actor_a, actor_b = _actor(a), _actor(b)
    for name in actor_a:
        torch.testing.assert_close(actor_a[name], actor_b[name], rtol=0, atol=0)
    replay_a = ckpt.load(a, with_replay=True).replay
    replay_b = ckpt.load(b, with_replay=True).replay
    for key in replay_a:
        np.testing.assert_array_equal(replay_a[key], replay_b[key])


def test_another_seed_gives_other_results(three_runs):
    a, other = three_runs["a"], three_runs["other"]
    assert [r["mean_return"] for r in _rows(a)] != [r["mean_return"] for r in _rows(other)]
    actor_a, actor_o = _actor(a), _actor(other)
    assert all(not torch.equal(actor_a[name], actor_o[name]) for name in actor_a)


def test_metrics_count_training_episodes(three_runs):
    rows = read_metrics(three_runs["a"] / "metrics.csv")
    episode_steps = 50  # the built-in arms' 1-s episodes at the 0.02-s control period
    assert [r["train_episodes"] for r in rows] == [r["step"] // episode_steps for r in rows]


# --- any Gymnasium task ------------------------------------------------------------------------------

def test_actions_are_rescaled_to_the_tasks_bounds():
    env = make_env(Config(env="Pendulum-v1"))
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    pendulum = env.unwrapped
    assert pendulum.action_space.low.tolist() == [-2.0] and pendulum.action_space.high.tolist() == [2.0]
    env.reset(seed=0)
    for action, torque in ((1.0, 2.0), (-1.0, -2.0), (0.5, 1.0), (0.0, 0.0)):
        env.step(np.array([action], np.float32))
        assert pendulum.last_u == pytest.approx(torque)


def test_training_on_a_gymnasium_task(tmp_path):
    config = TINY.replace(env="Pendulum-v1", steps=500, eval_every=1000, checkpoint_every=1000)
    outcome = train(config, run_dir=tmp_path / "run", progress=False)
    assert outcome.env_steps == 500
    assert outcome.evaluation.success_rate is None and outcome.evaluation.mean_final_distance is None
    assert np.isfinite(outcome.evaluation.mean_return)
    meta = ckpt.load(tmp_path / "run").metadata
    assert (meta["env"], meta["arm"], meta["obs_dim"], meta["act_dim"]) == ("Pendulum-v1", None, 3, 1)
    policy = load_policy(tmp_path / "run")
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    action = policy(obs)
    assert action.shape == (1,) and abs(action[0]) <= 1.0
    env.step(action)  # the policy's [-1, 1] action lands on the pendulum as ±2 N·m at most
    assert env.unwrapped.last_u == pytest.approx(2.0 * float(action[0]), rel=1e-6)


def test_a_task_without_box_spaces_is_refused():
    with pytest.raises(ValueError, match="CartPole-v1.*Box"):
        make_env(Config(env="CartPole-v1"))


# --- learning ----------------------------------------------------------------------------------------

# Pendulum-v1 is a task the agent was not written for. A random policy scores about −1200
# per 200-step episode, a solved one about −150. Plain DDPG, sizes suited to the task.
# Calibration (10 evaluation episodes, 8000 steps, 16–35 s on 2 shared cores): seeds 0–5
# all reach −146 to −151; with the actor step disabled −1132 and −1168, with the target
# networks never updated −1114, with every transition treated as terminal −1138. At 6000
# steps seeds 0–2 reached −373, −215, −147: the threshold leaves room for the curve to be a
# little later elsewhere, and none for a broken agent.
PENDULUM = Config(env="Pendulum-v1", steps=8000, seed=0, warmup_steps=1000, batch_size=128,
                  hidden_sizes=(64, 64), gamma=0.99, tau=0.005, noise_scale=0.1,
                  noise_final_scale=0.1, eval_every=8000, checkpoint_every=8000,
                  final_eval_episodes=10, threads=1)
PENDULUM_THRESHOLD = -300.0


@pytest.mark.slow
def test_ddpg_learns_pendulum(tmp_path):
    start = time.perf_counter()
    outcome = train(PENDULUM, run_dir=tmp_path / "run", progress=False)
    elapsed = time.perf_counter() - start
    assert outcome.evaluation.episodes == 10
    assert outcome.evaluation.mean_return >= PENDULUM_THRESHOLD, (
        f"mean return {outcome.evaluation.mean_return:.0f} over 10 episodes after "
        f"{PENDULUM.steps} steps ({elapsed:.0f} s); expected ≥ {PENDULUM_THRESHOLD:.0f}")
