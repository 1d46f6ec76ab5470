"""What the sweep tests share: a tiny spec, and finding the processes a killed sweep left."""

from __future__ import annotations

import importlib.util
import os
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
