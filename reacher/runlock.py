"""One writer per run directory: a lock that `reacher train` (and every sweep trial) holds.

The lock is an ``flock`` on ``RUN_DIR/.lock``, removed when the run ends. The kernel
releases the flock when the holding process exits, however it exits, so a lock file
left behind by a crash or ``kill -9`` is stale by construction: the next run finds it
unheld and takes it. The file records the holder's pid and host, for the message a
second writer gets.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

LOCK_NAME = ".lock"


class RunDirBusy(ValueError):
    """Another process holds the run directory's lock."""


class RunLock:
    """The lock of one run directory, taken when constructed (created if needed) and
    held until `release()` or the end of a ``with`` block; raises `RunDirBusy` at once,
    without waiting, when another process holds it.

    The lock file goes on release, and so does the directory if the lock created it and
    nothing else was written there."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._created = not self.run_dir.exists()
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = _acquire(self.path, self.run_dir)
        # Written in place, not atomically: the lock is on this inode, so it must stay.
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode())

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # still holding the lock: see _acquire
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                self.run_dir.rmdir()  # only if empty
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


run_lock = RunLock  # `with run_lock(run_dir): ...`


def _acquire(path: Path, run_dir: Path) -> int:
    while True:
        run_dir.mkdir(parents=True, exist_ok=True)  # a releasing run may just have removed it
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirBusy(f"run directory {run_dir}: is in use by another run ({holder}); "
                             "wait for it to end or choose another run directory") from None
        # A holder unlinks the file before it lets go, so a lock won on a file that is no
        # longer at `path` is worthless: open the current one and try again.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid, host = os.pread(fd, 200, 0).decode().split()
    except (OSError, UnicodeDecodeError, ValueError):
        return "holder unknown"
    return f"pid {pid} on {host}"
