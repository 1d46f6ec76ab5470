"""Writing files so that a crash never leaves one half-written, lost, or written through a link.

`atomic_write` writes a temporary file beside the target and renames it over the target:
the target is either the old file or the whole new one, never a mix. The temporary file
is created with ``O_EXCL`` (a planted file or symlink of its name is never opened), and
the data and the rename are fsynced, so a power cut after the rename keeps the new file.
A ``kill -9`` mid-write leaves the temporary file behind; `remove_temporaries` is how the
next run of that directory clears them.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Yield a new temporary file beside `path`; when the block succeeds it replaces `path`
    (with the mode a plain open() would give), and when it fails it is removed."""
    path = Path(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the data reaches the disk before the rename can
        os.replace(tmp, path)  # replaces a symlink at `path` itself, never its target
        fsync_dir(path.parent)  # and the rename itself survives a power cut
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def fsync_dir(directory: str | Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temporary(name: str) -> bool:
    """Whether `name` is one of atomic_write's temporary files (``.NAME.RANDOM.tmp``)."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def remove_temporaries(directory: str | Path) -> list[str]:
    """Remove the temporary files a killed writer left in `directory` (not in its
    subfolders); only safe while no other process writes there. Returns their names."""
    removed = []
    for entry in os.scandir(directory):
        if is_temporary(entry.name) and not entry.is_dir(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)  # a symlink goes, never its target
            removed.append(entry.name)
    return removed


def _create_temporary(path: Path) -> tuple[int, str]:
    # Mode 0o666 through the process umask is what a plain open() gives; O_EXCL fails
    # on any existing name (a symlink included), so a planted file is never written.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(8)}{TMP_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # 2^-64 a try: a name taken by chance, or planted
            continue
