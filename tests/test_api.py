"""The Python API at the package's top level, and the scripts that equal the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import reacher
from reacher.task import goal

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
TINY = reacher.Config(steps=600, warmup_steps=200, eval_every=300, eval_episodes=2, final_eval_episodes=5,
                      checkpoint_every=300, batch_size=32, hidden_sizes=(32, 32), threads=1)


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=ROOT,
                          timeout=300)


def test_import_reacher_stays_light_until_the_api_is_used():
    result = _python("-c", "import sys, reacher\n"
                           "assert 'torch' not in sys.modules, 'import reacher loaded torch'\n"
                           "config = reacher.Config(seed=3)\n"
                           "assert 'torch' not in sys.modules, 'reacher.Config loaded torch'\n"
                           "reacher.learn, reacher.load_policy, reacher.evaluate_policy, reacher.render_policy\n"
                           "print(sorted(set(reacher.__all__) & set(dir(reacher))))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["['Config',", "'ReachEnv',", "'evaluate_policy',", "'learn',",
                                     "'load_policy',", "'render_policy']"]
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        reacher.trian  # noqa: B018


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("api") / "run"
    return reacher.learn(TINY, run_dir, progress=False)


@pytest.mark.slow
def test_learn_load_evaluate_round_trip(learned):
    assert learned.env_steps == 600 and learned.interrupted_by is None
    assert (learned.run_dir / "checkpoint.ckpt").is_file()
    policy = reacher.load_policy(learned.run_dir)
    # The saved weights and the rebuilt env give exactly the run's own final evaluation.
    assert reacher.evaluate_policy(policy, episodes=5) == learned.evaluation
    assert reacher.evaluate_policy(str(learned.run_dir), episodes=5) == learned.evaluation
    other = reacher.evaluate_policy(policy, episodes=5, seed=7)
    assert other.episodes == 5 and other.mean_return != learned.evaluation.mean_return
    # A callable of one's own runs in the env it is given; an env is needed for it.
    env = policy.make_env()
    zero = reacher.evaluate_policy(lambda obs: np.zeros(2, np.float32), episodes=2, env=env)
    assert zero.episodes == 2 and zero.mean_return != learned.evaluation.mean_return
    env.close()
    with pytest.raises(ValueError, match="needs env="):
        reacher.evaluate_policy(lambda obs: np.zeros(2), episodes=1)
    with pytest.raises(ValueError, match="episodes must be a positive integer"):
        reacher.evaluate_policy(policy, episodes=0)


@pytest.mark.slow
def test_a_loaded_policy_acts_on_flat_and_goal_observations_alike(learned):
    policy = reacher.load_policy(learned.run_dir)
    flat_env = policy.make_env()
    goal_env = reacher.ReachEnv("two_link", goal_observation=True)
    flat, _ = flat_env.reset(seed=3)
    obs, _ = goal_env.reset(seed=3)
    np.testing.assert_array_equal(policy(obs), policy(flat))
    batch = {k: np.stack([v, v]) for k, v in obs.items()}  # as a vector env returns them
    np.testing.assert_allclose(policy(batch), np.stack([policy(flat)] * 2), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(goal.flatten(batch)[1], flat)


@pytest.mark.slow
def test_render_policy_writes_the_video(learned, tmp_path):
    info = reacher.render_policy(learned.run_dir, tmp_path / "reach.mp4", episodes=1, size=(64, 48), hold_s=0)
    assert info.path == tmp_path / "reach.mp4" and info.path.stat().st_size > 0
    assert info.episodes == 1 and info.frames == 51  # the first frame, then one per step


@pytest.mark.slow
def test_learn_resumes_with_changed_fields(learned, tmp_path):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(learned.run_dir, run_dir)
    more = reacher.learn(run_dir=run_dir, resume=True, steps=700, progress=False)
    assert more.env_steps == 700 and more.run_dir == run_dir
    with pytest.raises(ValueError, match="already holds a run"):
        reacher.learn(TINY, run_dir, progress=False)


@pytest.mark.slow
def test_scripts_equal_the_cli(learned):
    script = _python(str(ROOT / "scripts" / "train.py"), "--help")
    cli = _python("-m", "reacher", "train", "--help")
    assert script.returncode == cli.returncode == 0
    assert script.stdout == cli.stdout and "usage: reacher train" in script.stdout
    script = _python(str(ROOT / "scripts" / "evaluate.py"), str(learned.run_dir), "--json", "--episodes", "5")
    assert script.returncode == 0, script.stderr
    assert json.loads(script.stdout) == learned.evaluation.as_dict()
    bad = _python(str(ROOT / "scripts" / "render.py"), str(learned.run_dir / "missing"))
    assert bad.returncode == 2 and bad.stderr.startswith("error: checkpoint") and "Traceback" not in bad.stderr
