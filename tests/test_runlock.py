"""One writer per run directory: `reacher train` holds a lock that a second run is refused
by, that is released when the run ends, and that a crashed holder does not leave held; a
sweep's claim on its --out is the same lock (reacher.run.lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from reacher.config import Config
from reacher.errors import RunDirBusy, SweepError
from reacher.run.metrics import read_metrics
from reacher.run.rundir import LOCK_NAME, run_lock
from reacher.run.training import Training, train

TINY = Config(steps=150, warmup_steps=50, batch_size=16, hidden_sizes=(8, 8), eval_every=100,
              eval_episodes=1, final_eval_episodes=1, checkpoint_every=100, threads=1)

HOLD = """
import sys, time
from reacher.run.lock import DirectoryLock
with DirectoryLock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_in_subprocess(run_dir, name: str = LOCK_NAME) -> subprocess.Popen:
    """Another process that takes the lock file `name` of `run_dir` and keeps it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), name], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_held_run_dir_is_refused_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    holder = hold_in_subprocess(run_dir)
    try:
        with pytest.raises(RunDirBusy, match=rf"run directory .*run: is in use by another run \(pid {holder.pid} on "):
            train(TINY, run_dir, progress=False)
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_two_runs_started_together_on_one_dir_one_refused(tmp_path):
    """What used to give duplicate metrics rows: the second start, before the first has
    written a checkpoint, is refused; the first run's files are its own."""
    run_dir = tmp_path / "run"
    with run_lock(run_dir):  # the first run, between its start and its first checkpoint
        with pytest.raises(RunDirBusy):
            train(TINY, run_dir, progress=False)
    outcome = train(TINY, run_dir, progress=False)
    steps = [row["step"] for row in read_metrics(run_dir / "metrics.csv")]
    assert outcome.env_steps == 150 and steps == sorted(set(steps))


def test_the_lock_is_released_when_the_run_ends_even_by_an_error(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    train(TINY, run_dir, progress=False)
    assert not (run_dir / LOCK_NAME).exists()  # no litter in a finished run
    with run_lock(run_dir):  # free again after a normal end
        pass

    def fail(self):
        raise RuntimeError("a bug mid-run")

    monkeypatch.setattr(Training, "_periodic", fail)
    with pytest.raises(RuntimeError, match="a bug mid-run"):
        train(TINY, tmp_path / "other", progress=False)
    with run_lock(tmp_path / "other"):  # and after a run that died of an exception
        pass


def test_a_lock_left_by_a_killed_run_is_stale_and_taken(tmp_path):
    run_dir = tmp_path / "run"
    holder = hold_in_subprocess(run_dir)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (run_dir / LOCK_NAME).read_text().split()[0] == str(holder.pid)  # the file stays behind
    start = time.monotonic()
    outcome = train(TINY, run_dir, progress=False)
    assert outcome.env_steps == 150 and time.monotonic() - start < 60


def test_a_sweep_directory_is_claimed_with_the_same_lock(tmp_path):
    pytest.importorskip("ray")
    from reacher.tools.sweep import SWEEP_LOCK, run_sweep
    spec = tmp_path / "spec.toml"
    spec.write_text("steps = 200\nseeds = [0]\n")
    out = tmp_path / "out"
    holder = hold_in_subprocess(out, SWEEP_LOCK)
    try:
        with pytest.raises(SweepError, match="sweep directory .*out: another sweep is running in it"):
            run_sweep(spec, out, resume=True)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # leaves its lock file behind, stale
        holder.wait()
    assert (out / SWEEP_LOCK).read_text().split()[0] == str(holder.pid)
    with pytest.raises(SweepError, match="holds no sweep, nothing to resume"):  # claimed, then checked
        run_sweep(spec, out, resume=True)
    assert list(out.iterdir()) == []  # released: the lock file goes


@pytest.mark.slow
def test_cli_second_resume_of_a_busy_run_is_one_error_line(tmp_path, monkeypatch, capsys):
    from test_cli import (
        in_process,  # the command's code path in this process, as test_cli's bad inputs
    )

    run_dir = tmp_path / "run"
    train(TINY, run_dir, progress=False)
    holder = hold_in_subprocess(run_dir)
    try:
        result = in_process(["train", "--run-dir", run_dir, "--resume", "--steps", "300", "--quiet"], tmp_path,
                            monkeypatch, capsys)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: run directory {run_dir}: is in use by another run (pid {holder.pid} on {os.uname().nodename}); "
        "wait for it to end or choose another run directory"]
