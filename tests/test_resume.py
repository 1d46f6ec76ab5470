"""Stopping and resuming a run: SIGINT/SIGTERM save and exit cleanly, `kill -9` loses at
most one checkpoint interval, and `--resume` continues the same run (metrics.csv appended
once, never duplicated), exactly as the uninterrupted run would have gone on.

The signal tests start `reacher train` with a budget it never reaches, wait for its first
checkpoint (so the signal handlers are in place), then stop it.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import in_process

from reacher.config import Config
from reacher.errors import CheckpointError
from reacher.run import checkpoint as ckpt
from reacher.run.metrics import read_metrics

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
CHECKPOINT_EVERY = 200
LONG = ["--steps", "100000", "--warmup-steps", "100", "--batch-size", "32",
        "--hidden-sizes", "32,32", "--eval-every", "100", "--eval-episodes", "1",
        "--final-eval-episodes", "2", "--checkpoint-every", str(CHECKPOINT_EVERY),
        "--threads", "1", "--quiet"]
START_TIMEOUT_S = 300  # torch's import and the first 200 steps, three runs at once on a busy 2-core machine


class Background:
    """`reacher train …` in the background; its output goes to files, so it never blocks."""

    def __init__(self, cwd: Path, *args):
        self.out, self.err = open(cwd / "train.out", "w+"), open(cwd / "train.err", "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "reacher", "train", *map(str, args)],
                                     cwd=cwd, env=ENV, stdout=self.out, stderr=self.err)

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.err.close()


def checkpoint_steps(run_dir: Path) -> int | None:
    try:
        return int(ckpt.load(run_dir).metadata["env_steps"])
    except CheckpointError:  # not written yet
        return None


def wait_for_checkpoint(job: Background, run_dir: Path, min_steps: int) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        steps = checkpoint_steps(run_dir)
        if steps is not None and steps >= min_steps:
            return steps
        assert job.proc.poll() is None, f"training ended early:\n{job.stderr()}"
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint at step ≥ {min_steps} after {START_TIMEOUT_S} s")


def metrics_lines(run_dir: Path) -> list[str]:
    return (run_dir / "metrics.csv").read_text(encoding="utf-8").splitlines()


def assert_one_clean_history(run_dir: Path) -> list[int]:
    """metrics.csv: the header once, then rows of strictly increasing steps."""
    lines = metrics_lines(run_dir)
    assert lines[0].startswith("step,")
    assert sum(line.startswith("step,") for line in lines) == 1, "header written twice"
    steps = [row["step"] for row in read_metrics(run_dir / "metrics.csv")]
    assert steps == sorted(set(steps)), f"steps not strictly increasing: {steps}"
    return steps


def leftover_temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name)


# --- SIGINT and SIGTERM -------------------------------------------------------------------------

SIGNALS = {"SIGTERM": [signal.SIGTERM], "SIGINT": [signal.SIGINT],
           "SIGINT twice": [signal.SIGINT, signal.SIGINT]}  # an impatient user
EXIT_CODES = {"SIGTERM": 143, "SIGINT": 130, "SIGINT twice": 130}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict:
    """One long training per case of SIGNALS, side by side; each gets its signal(s) once its
    first checkpoint is written. Returns name → (run dir, exit code, stderr, seconds to stop)."""
    jobs = {}
    try:
        for name in SIGNALS:
            cwd = tmp_path_factory.mktemp(name.replace(" ", "_"))
            jobs[name] = (cwd / "run", Background(cwd, "--run-dir", cwd / "run", *LONG))
        signalled, ended = {}, {}
        for name, (run_dir, job) in jobs.items():
            wait_for_checkpoint(job, run_dir, CHECKPOINT_EVERY)
            signalled[name] = time.monotonic()
            for i, signum in enumerate(SIGNALS[name]):
                if i:
                    time.sleep(0.2)  # the second lands while the first is being handled
                job.proc.send_signal(signum)
        deadline = time.monotonic() + 60
        while len(ended) < len(jobs) and time.monotonic() < deadline:
            for name, (_, job) in jobs.items():
                if name not in ended and job.proc.poll() is not None:
                    ended[name] = time.monotonic()
            time.sleep(0.05)
        outcome = {name: (run_dir, job.proc.poll(), job.stderr(),
                          ended.get(name, math.inf) - signalled[name])
                   for name, (run_dir, job) in jobs.items()}
        return outcome
    finally:
        for _, job in jobs.values():
            job.close()


@pytest.mark.parametrize("name", SIGNALS)
def test_a_signal_exits_cleanly_with_a_checkpoint(stopped, name):
    run_dir, code, err, seconds = stopped[name]
    assert code == EXIT_CODES[name], err
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in err, err
    assert err.startswith("error: ") or "stopped by" in err, err
    meta = ckpt.load(run_dir, with_replay=True).metadata  # whole and loadable
    assert meta["env_steps"] >= CHECKPOINT_EVERY
    assert leftover_temporaries(run_dir) == []
    steps = assert_one_clean_history(run_dir)
    assert steps and steps[-1] <= meta["env_steps"]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_signal_says_how_to_resume(stopped, name):
    run_dir, _, err, _ = stopped[name]
    assert len(err.splitlines()) == 1, err
    assert "--resume" in err and str(run_dir) in err, err
    assert (run_dir / "curve.png").is_file()


def test_resume_after_sigterm_continues_the_run(stopped, monkeypatch, capsys):
    run_dir = stopped["SIGTERM"][0]
    stopped_at = ckpt.load(run_dir).metadata["env_steps"]
    before = assert_one_clean_history(run_dir)
    target = stopped_at + 200
    # The stops above are real processes; the resume is the command in this process.
    result = in_process(["train", "--run-dir", run_dir, "--resume", "--steps", target, "--quiet"],
                        run_dir.parent, monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    assert ckpt.load(run_dir).metadata["env_steps"] == target
    after = assert_one_clean_history(run_dir)
    assert after[:len(before)] == before  # appended, nothing rewritten
    assert after[-1] == target and len(after) > len(before)
    walls = [row["wall_time"] for row in read_metrics(run_dir / "metrics.csv")]
    assert walls == sorted(walls), "wall_time restarted on resume"


# --- kill -9 --------------------------------------------------------------------------------------

def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    job = Background(tmp_path, "--run-dir", run_dir, *LONG)
    try:
        _kill_9_and_resume(tmp_path, run_dir, job, monkeypatch, capsys)
    finally:
        job.close()


def _kill_9_and_resume(tmp_path: Path, run_dir: Path, job: Background, monkeypatch, capsys) -> None:
    seen = wait_for_checkpoint(job, run_dir, 2 * CHECKPOINT_EVERY)
    # Let an evaluation row past the checkpoint be written (every 100 steps), so resume
    # has rows to drop.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = read_metrics(run_dir / "metrics.csv")
        if rows and rows[-1]["step"] > (checkpoint_steps(run_dir) or 0):
            break
        time.sleep(0.05)
    job.proc.kill()
    assert job.wait(timeout=30) == -signal.SIGKILL

    saved = ckpt.load(run_dir, with_replay=True)  # a whole checkpoint, never a partial one
    resumed_from = saved.metadata["env_steps"]
    rows_before = read_metrics(run_dir / "metrics.csv")
    progress = rows_before[-1]["step"]  # at least this far when killed
    assert resumed_from >= seen
    assert resumed_from >= progress - CHECKPOINT_EVERY
    assert resumed_from % 50 == 0  # checkpoints fall between episodes
    killed_leftovers = leftover_temporaries(run_dir)  # possible: killed mid-write

    target = resumed_from + 300
    result = in_process(["train", "--run-dir", run_dir, "--resume", "--steps", target, "--quiet"], tmp_path,
                        monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    assert ckpt.load(run_dir).metadata["env_steps"] == target
    steps = assert_one_clean_history(run_dir)
    assert steps[-1] == target
    assert leftover_temporaries(run_dir) == [], f"still there after the next run: {killed_leftovers}"
    rows_after = read_metrics(run_dir / "metrics.csv")
    kept = [r for r in rows_before if r["step"] <= resumed_from]
    assert rows_after[:len(kept)] == kept  # rows up to the checkpoint survive unchanged
    assert all(r["step"] > resumed_from for r in rows_after[len(kept):])


# --- exactness --------------------------------------------------------------------------------

EXACT = Config(steps=600, warmup_steps=100, batch_size=32, hidden_sizes=(32, 32), eval_every=200,
               eval_episodes=2, final_eval_episodes=2, checkpoint_every=300, threads=1)


def _numbers(rows: list[dict]) -> list[dict]:
    """Metrics without the clock readings, which may differ between runs."""
    return [{k: v for k, v in row.items() if not (k.endswith("_time") or k.endswith("_per_s"))}
            for row in rows]


def _assert_same_agent(a: Path, b: Path) -> None:
    agent_a, agent_b = ckpt.load(a).model["agent"], ckpt.load(b).model["agent"]
    for part in ("actor", "critic", "norm"):
        for name, tensor in agent_a[part].items():
            assert torch.equal(tensor, agent_b[part][name]), f"{part}.{name} differs"


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """600 steps uninterrupted, with a copy of the run as it stood at its step-300 checkpoint
    (decaying noise, the default, so the schedule's position must survive the resume)."""
    from reacher.run.training import train

    root = tmp_path_factory.mktemp("exact")
    save = ckpt.save

    def save_and_copy(path, metadata, model, replay=None):
        out = save(path, metadata, model, replay)
        if metadata["env_steps"] == 300 and Path(path).parent == root / "straight":
            shutil.copytree(root / "straight", root / "at300")
        return out

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ckpt, "save", save_and_copy)
        try:
            train(EXACT, root / "straight", progress=False)
        finally:
            torch.set_num_threads(threads)
    assert (root / "at300" / ckpt.FILENAME).is_file()
    return root


def _resume(run_dir: Path, config: Config, steps: int) -> None:
    from reacher.run.training import train

    threads = torch.get_num_threads()
    try:
        train(config.replace(steps=steps), run_dir, resume=True, progress=False,
              overrides={"steps": steps})
    finally:
        torch.set_num_threads(threads)


def test_resume_from_a_checkpoint_continues_exactly(straight):
    """Killed right after its step-300 checkpoint and resumed: the same run, bit for bit."""
    assert ckpt.load(straight / "at300").metadata["env_steps"] == 300
    _resume(straight / "at300", EXACT, 600)
    _assert_same_agent(straight / "straight", straight / "at300")
    a = ckpt.load(straight / "straight", with_replay=True)
    b = ckpt.load(straight / "at300", with_replay=True)
    for key in a.replay:
        np.testing.assert_array_equal(a.replay[key], b.replay[key])
    for key in ("env_steps", "episodes", "updates", "update_debt", "rng", "env_rng"):
        assert a.metadata[key] == b.metadata[key], key


def test_resume_from_a_checkpoint_logs_the_same_metrics(straight):
    if ckpt.load(straight / "at300").metadata["env_steps"] != 600:
        _resume(straight / "at300", EXACT, 600)
    assert _numbers(read_metrics(straight / "at300" / "metrics.csv")) == \
        _numbers(read_metrics(straight / "straight" / "metrics.csv"))


def test_extending_a_finished_run_matches_the_longer_run(tmp_path):
    """300 steps, then `--resume --steps 600`, gives the 600-step run's weights. The noise
    is kept constant: its linear decay runs over `steps`, so extending a run with decaying
    noise changes the schedule (by design) and could not match."""
    config = EXACT.replace(noise_scale=0.2, noise_final_scale=0.2)
    threads = torch.get_num_threads()
    from reacher.run.training import train

    try:
        train(config, tmp_path / "long", progress=False)
        train(config.replace(steps=300), tmp_path / "short", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert ckpt.load(tmp_path / "short").metadata["env_steps"] == 300
    _resume(tmp_path / "short", config, 600)
    _assert_same_agent(tmp_path / "long", tmp_path / "short")
