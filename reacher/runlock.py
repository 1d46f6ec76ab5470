"""One writer per run directory: a lock that `reacher train` (and every sweep trial) holds.

The lock is an ``flock`` on ``RUN_DIR/.lock``. The kernel releases it when the holding
process exits, however it exits, so a lock file left behind by a crash or ``kill -9``
is stale by construction: the next run finds it unheld and takes it. The file records
the holder's pid and host, for the message a second writer gets.
"""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".lock"


class RunDirBusy(ValueError):
    """Another process holds the run directory's lock."""


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the lock of `run_dir` (created if needed) for the block; raise `RunDirBusy`
    at once, without waiting, when another process holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(f"run directory {run_dir}: is in use by another run ({_holder(fd)}); "
                             "wait for it to end or choose another run directory") from None
        # Overwritten in place, not atomically: the lock is on this inode, so it must stay.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid, host = os.pread(fd, 200, 0).decode().split()
    except (OSError, UnicodeDecodeError, ValueError):
        return "holder unknown"
    return f"pid {pid} on {host}"
