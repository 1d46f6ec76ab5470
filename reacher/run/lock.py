"""One process at a time in a directory: an flock on a lock file there (a run directory's
``.lock``, a sweep directory's ``.sweep.lock``).

The kernel releases an flock when its holder dies, however it dies, so a lock file left by a
crash is stale by construction and the next process takes it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from reacher.errors import CannotWrite, LockBusy


class DirectoryLock:
    """The lock file `name` in `directory`, taken when constructed (both created if needed)
    and held until `release()` or the end of a ``with`` block; raises `LockBusy` at once,
    without waiting, when another process holds it, and OSError (ELOOP for a symlink, which
    is never followed) when the file cannot be opened.

    The file records the holder's pid and host, for the message a second process gets. The
    file goes on release, and so does the directory if the lock created it and nothing else
    was written there."""

    def __init__(self, directory: str | Path, name: str):
        self.directory = Path(directory)
        self._created = not self.directory.exists()
        self.path = self.directory / name
        self._fd: int | None = _acquire(self.path, self.directory)
        # Written in place, not atomically: the lock is on this inode, so it must stay.
        try:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        except OSError as err:  # a full disk: the lock file (and a directory made for it) go
            self.release()
            raise CannotWrite(self.path, err) from None

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # still holding the lock: see _acquire
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                self.directory.rmdir()  # only if empty
            except OSError:
                pass

    def __enter__(self) -> "DirectoryLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _acquire(path: Path, directory: Path) -> int:
    while True:
        directory.mkdir(parents=True, exist_ok=True)  # a releasing holder may just have removed it
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockBusy(path, holder) from None
        # A holder unlinks the file before it lets go, so a lock won on a file that is no
        # longer at `path` is worthless: open the current one and try again.
        try:
            if os.lstat(path).st_ino == os.fstat(fd).st_ino:
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
