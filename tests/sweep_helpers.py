"""What the sweep tests share: a tiny spec, and finding the processes a killed sweep left."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="ray is not installed (pip install -e '.[sweep]'; make test does)")

# Seconds, not minutes, per trial: learning is not what these tests check.
TINY = """
warmup_steps = 100
batch_size = 32
eval_every = 100
eval_episodes = 1
final_eval_episodes = 4
checkpoint_every = 100
"""


def write_spec(directory: Path, body: str, name: str = "spec.toml") -> Path:
    path = Path(directory) / name
    path.write_text(TINY + body, encoding="utf-8")
    return path


def session_members(sid: int) -> list[int]:
    """Pids of the live processes in session `sid` (a sweep started with start_new_session:
    the driver and every Ray process it started, which stay in its session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session …
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def end_session(sid: int) -> None:
    """SIGKILL, by pid, whatever is left of session `sid`: only processes this test started."""
    for pid in session_members(sid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def start_sweep(spec: Path, out: Path, log) -> subprocess.Popen:
    """`reacher sweep SPEC --out OUT` as a user starts it, in a session of its own (so
    `end_session` finds what it started), its output in the open file `log`."""
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen([sys.executable, "-m", "reacher", "sweep", str(spec), "--out", str(out)],
                            env=env, stdout=log, stderr=log, start_new_session=True)


def wait_for_checkpoint(proc: subprocess.Popen, log, run_dir: Path, timeout_s: float = 240) -> None:
    """Until the trial in `run_dir` has saved a checkpoint: the sweep is running for sure."""
    from reacher.run import checkpoint as ckpt

    deadline = time.monotonic() + timeout_s
    while not (run_dir / ckpt.FILENAME).is_file():
        assert proc.poll() is None, f"sweep ended early:\n{log.seek(0) or log.read()}"
        assert time.monotonic() < deadline, "the sweep made no progress"
        time.sleep(0.1)
