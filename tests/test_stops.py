"""Training stops when it should: a signal stops it in every phase, within seconds; an
episode length that would never end is refused; a simulation that blows up in every
episode stops it with an error naming the arm, and a blow-up's bogus transition is never
learned from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_cli import (
    in_process,  # the command's code path in this process, as test_cli's bad inputs
)

from reacher.config import Config, ConfigError
from reacher.errors import CheckpointError
from reacher.run import checkpoint as ckpt
from reacher.run.training import Training, train

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
SMALL = ["--warmup-steps", "50", "--batch-size", "16", "--hidden-sizes", "8,8", "--threads", "1", "--quiet"]
STOP_S = 2.0  # the promise: Ctrl-C and SIGTERM stop a run within 2 s, whatever it is doing


def _allowed_s() -> float:
    """STOP_S on an idle machine; a loaded one runs everything about `load / cores` times
    slower, and twice that covers the load's swings. A run that ignores the signal never
    stops, so this still catches it."""
    return STOP_S * min(max(1.0, 2 * os.getloadavg()[0] / (os.cpu_count() or 1)), 30.0)


# --- episode length bounds ---------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("episode_s", 1e9), ("max_episode_steps", 10**12)])
def test_an_episode_that_would_never_end_is_refused(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be at most"):
        Config(**{field: value})


def test_the_longest_sensible_episodes_are_accepted():
    Config(episode_s=600.0)
    Config(max_episode_steps=1_000_000)


def test_cli_episode_s_1e9_is_one_error_line(tmp_path, monkeypatch, capsys):
    result = in_process(["train", "--run-dir", tmp_path / "r", "--episode-s", "1e9", "--quiet"], tmp_path,
                        monkeypatch, capsys)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "episode_s must be at most 600" in result.stderr
    assert not (tmp_path / "r").exists()


# --- signals in every phase --------------------------------------------------------------------

def _start(tmp_path: Path, *args) -> subprocess.Popen:
    err = open(tmp_path / "train.err", "w")
    return subprocess.Popen([sys.executable, "-m", "reacher", "train", "--run-dir", str(tmp_path / "run"),
                             *SMALL, *map(str, args)], cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=err)


def _wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (run_dir.parent / "train.err").read_text()
        try:
            return ckpt.load(run_dir).metadata
        except CheckpointError:
            time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def _stop(proc: subprocess.Popen, signum: int) -> float:
    start = time.monotonic()
    proc.send_signal(signum)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return time.monotonic() - start


@pytest.mark.parametrize("phase", ["periodic evaluation", "final evaluation"])
def test_sigterm_stops_an_evaluation_within_seconds_and_resume_redoes_it(tmp_path, phase, monkeypatch, capsys):
    """An evaluation of 100,000 episodes takes far longer than this test may; SIGTERM must
    end it, save a checkpoint, and a resume must evaluate the same step again."""
    run_dir = tmp_path / "run"
    if phase == "periodic evaluation":
        # checkpoint at 100, then the evaluation at 150 that never ends
        args = ["--steps", "100000", "--checkpoint-every", "100", "--eval-every", "150",
                "--eval-episodes", "100000"]
    else:
        # checkpoint at 100, then at 150 the final evaluation that never ends
        args = ["--steps", "150", "--checkpoint-every", "100", "--eval-every", "1000000",
                "--final-eval-episodes", "100000"]
    # No learning (warmup to the end): the 50 steps after the checkpoint take milliseconds,
    # so 3 s later the run is in the evaluation even on a loaded machine.
    proc = _start(tmp_path, *args, "--warmup-steps", "1000")
    _wait_for_checkpoint(proc, run_dir)
    time.sleep(3.0)
    seconds = _stop(proc, signal.SIGTERM)
    err = (tmp_path / "train.err").read_text()
    print(f"{phase}: stopped {seconds:.2f} s after SIGTERM (load {os.getloadavg()[0]:.1f})")
    assert proc.returncode == 143, err
    assert seconds < _allowed_s(), f"took {seconds:.1f} s"
    meta = ckpt.load(run_dir).metadata
    assert meta["env_steps"] == 150 and not meta["finished"], "not stopped in the evaluation at 150"
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert not any(line.startswith("150,") for line in rows)  # no row of a cut-short evaluation

    shorter = ["--eval-episodes", "1", "--steps", "200"] if phase == "periodic evaluation" else \
        ["--final-eval-episodes", "1"]
    # The stop is a real process's; the resume is the command in this process.
    result = in_process(["train", "--run-dir", run_dir, "--resume", *shorter, "--quiet"], tmp_path, monkeypatch,
                        capsys)
    assert result.returncode == 0, result.stderr
    steps = [int(line.split(",")[0]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert 150 in steps and steps == sorted(set(steps))  # the cut-short evaluation, done again


# --- physics blow-ups --------------------------------------------------------------------------

class _BlowsUp(gym.Env):
    """A stand-in for an unstable arm: truncates with ``physics_error`` at `at` steps into
    each episode (from episode `first` on), its next state being the "reset" state."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None, at=3, first=0, last=10**9):
        self.render_mode, self.at, self.first, self.last = render_mode, at, first, last
        self.t, self.episode = 0, -1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        if self.t == self.at and self.first <= self.episode <= self.last:
            return np.zeros(2), 0.0, False, True, {"physics_error": f"blew up at step {self.t}"}
        return np.full(2, float(self.t)), -1.0, False, False, {}


@pytest.fixture
def blowing_up():
    names = []

    def register(**kwargs):
        name = f"test-stops/BlowsUp{len(names)}-v0"
        gym.register(name, entry_point=_BlowsUp, max_episode_steps=10, kwargs=kwargs)
        names.append(name)
        return name

    yield register
    for name in names:
        del gym.registry[name]


def _small(**changes) -> Config:
    return Config(**{"steps": 200, "warmup_steps": 1000, "batch_size": 8, "hidden_sizes": (8,),
                     "eval_every": 100, "eval_episodes": 1, "final_eval_episodes": 1, "threads": 1,
                     **changes})


def test_a_blow_up_is_counted_reported_and_not_learned_from(tmp_path, blowing_up):
    import io

    log = io.StringIO()
    training = Training(_small(env=blowing_up(first=1, last=2)), tmp_path / "run", progress=False, log=log)
    threads = torch.get_num_threads()
    try:
        outcome = training.run()
    finally:
        torch.set_num_threads(threads)
    assert outcome.env_steps == 200 and outcome.physics_errors == 2
    assert ckpt.load(tmp_path / "run").metadata["physics_errors"] == 2
    # Episodes 1 and 2 end at their third step, which is not stored: 200 - 2 transitions.
    assert len(training.buffer) == 198
    assert not (training.buffer.next_obs[:198] == 0).all(axis=1).any()  # no "reset" next state
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: env test-stops/BlowsUp0-v0: the simulation blew up")


def test_blow_ups_in_every_episode_stop_training_with_an_error_naming_it(tmp_path, blowing_up):
    from reacher.errors import PhysicsError

    name = blowing_up(at=1)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(PhysicsError, match=rf"env {name}: the simulation blew up in 10 episodes in a row"):
            train(_small(env=name, steps=10_000), tmp_path / "run", progress=False)
    finally:
        torch.set_num_threads(threads)


def test_cli_an_arm_that_blows_up_stops_with_one_error_line_naming_it(tmp_path):
    from reacher.sim.arm import builtin_path

    xml = builtin_path("two_link").read_text()
    arm = tmp_path / "explodes.xml"
    arm.write_text(_with_huge_gear(xml))
    result = subprocess.run([sys.executable, "-m", "reacher", "train", "--run-dir", str(tmp_path / "run"),
                             "--arm", str(arm), "--steps", "2000", *SMALL], capture_output=True, text=True,
                            timeout=300, env=ENV)
    assert result.returncode == 2, result.stderr
    # MuJoCo prints its own instability warnings; reacher adds one warning, then the error.
    lines = [line for line in result.stderr.splitlines() if not line.startswith("WARNING: Nan") and line]
    assert "Traceback" not in result.stderr
    assert lines[0].startswith(f"warning: arm {arm}: the simulation blew up at step 1 "), result.stderr
    assert lines[1:] == [lines[-1]], result.stderr
    assert lines[-1].startswith(f"error: arm {arm}: the simulation blew up in 10 episodes in a row")


def _with_huge_gear(xml: str) -> str:
    import re

    changed, n = re.subn(r'gear="[^"]*"', 'gear="1e9"', xml)
    assert n, "no gear attribute in the two_link arm"
    return changed
