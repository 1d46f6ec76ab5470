"""Files: read only what is a regular file of bounded size; write so that a crash or a
full disk never leaves one half-written, lost, or written through a link.

Reading. Whatever reacher reads may come from someone else: an arm and the meshes it
names, a config file, a run directory's files. `open_regular` is the one way in: a
non-blocking open (a FIFO never waits for a writer), then ``fstat`` on what was opened,
so a device (``/dev/zero``), a FIFO or a directory is refused before a byte is read,
whatever link led there; `read_regular` adds a size cap. Their refusals are one
`UnreadableFile` naming the file and the problem.

Writing. `atomic_write` (and `replacing`, for a writer that wants a path, like ffmpeg)
writes a temporary file beside the target and renames it over the target: the target
is either the old file or the whole new one, never a mix. The temporary file is created
with ``O_EXCL`` (a planted file or symlink of its name is never opened) and locked while
it is written; the data and the rename are fsynced, so a power cut after the rename keeps
the new file. `replacing_together` does the same for files that only make sense as a set
(an export's model and its sidecar): all are written before any is renamed. A write that
fails (``ENOSPC``) removes its temporary files and raises `CannotWrite`, whose message is
``cannot write FILE: REASON``. A ``kill -9`` mid-write leaves the temporary file behind;
`remove_temporaries` is how the next run of that directory (or of that output) clears
them, leaving alone any that a live writer still holds locked.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import stat
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Iterator, NamedTuple

from reacher.errors import CannotWrite, UnreadableFile

TMP_SUFFIX = ".tmp"
_NAME_MAX = 255  # bytes in one path component (ext4, xfs, btrfs, tmpfs)
_RANDOM_HEX = 16


# --- reading --------------------------------------------------------------------------------

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def open_regular(path: str | Path, follow_links: bool = True) -> int:
    """A read-only descriptor of the regular file at `path`, or `UnreadableFile`.

    ``O_NONBLOCK`` makes the open of a FIFO return at once (it would wait for a writer);
    what is opened is then checked with ``fstat``, so a symlink to a device is refused
    as the device. With `follow_links` False a symlink at `path` itself is refused."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_links:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile(path, "no such file", missing=True) from None
    except OSError as err:
        if err.errno == errno.ELOOP and not follow_links:
            raise UnreadableFile(path, "is a symbolic link, which is not followed here") from None
        if err.errno == errno.EISDIR:
            raise UnreadableFile(path, "is not a regular file but a directory") from None
        raise UnreadableFile(path, f"cannot be read ({err.strerror or err})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise UnreadableFile(path, f"is not a regular file but {kind}")
    os.set_blocking(fd, True)
    return fd


def read_regular(path: str | Path, limit: int, follow_links: bool = True) -> bytes:
    """The bytes of the regular file at `path`, refused without reading it when it holds
    more than `limit` bytes (and, for a file that grows meanwhile, after `limit` + 1)."""
    fd = open_regular(path, follow_links)
    try:
        with open(fd, "rb", closefd=False) as f:
            if os.fstat(fd).st_size > limit:
                raise UnreadableFile(path, f"is larger than {_size(limit)}")
            data = f.read(limit + 1)
    except OSError as err:
        raise UnreadableFile(path, f"cannot be read ({err.strerror or err})") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnreadableFile(path, f"is larger than {_size(limit)}")
    return data


def check_regular(path: str | Path, limit: int, follow_links: bool = True) -> int:
    """The size of the regular file at `path`, refused (as by `read_regular`) when it is
    not one or is larger than `limit`; nothing is read."""
    fd = open_regular(path, follow_links)
    try:
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > limit:
        raise UnreadableFile(path, f"is larger than {_size(limit)}")
    return size


def read_head(path: str | Path, n: int) -> bytes:
    """The first `n` bytes of the regular file at `path` (a header), or `UnreadableFile`."""
    fd = open_regular(path)
    try:
        return os.read(fd, n)
    except OSError as err:
        raise UnreadableFile(path, f"cannot be read ({err.strerror or err})") from None
    finally:
        os.close(fd)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


# --- writing --------------------------------------------------------------------------------

@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Yield a new temporary file beside `path`; when the block succeeds it replaces `path`
    (with the mode a plain open() would give), and when it fails it is removed. An
    OSError on the way (a full disk) is raised as `CannotWrite` naming `path`."""
    with replacing_together(path) as (tmp,):
        text = {} if "b" in mode else {"encoding": "utf-8"}
        with os.fdopen(os.dup(tmp.fd), mode, **text) as f:
            yield f
            f.flush()


def write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


class Temporary(NamedTuple):
    """A temporary file being written in place of `target`: its `path`, and `fd`, open
    for writing and holding the lock that marks it live."""

    target: Path
    path: Path
    fd: int

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except OSError as err:
                raise CannotWrite(self.target, err) from None


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield the path of a new, empty, locked temporary file beside `path` for the block
    to write by name (as ffmpeg does); when the block succeeds the file is fsynced and
    renamed over `path`, and when it fails it is removed."""
    with replacing_together(path) as (tmp,):
        yield tmp.path


@contextmanager
def replacing_together(*paths: str | Path) -> Iterator[tuple[Temporary, ...]]:
    """One `Temporary` per path; when the block succeeds all are fsynced, then renamed over
    their targets. A failure while writing any of them (a full disk) removes them all and
    leaves every target as it was: files that only make sense as a set (an export's model
    and its sidecar) are never torn by a full disk."""
    with ExitStack() as stack:
        temps: list[Temporary] = []
        for path in (Path(p) for p in paths):
            fd, tmp = _create_temporary(path)
            stack.callback(os.close, fd)  # closed last: the lock is held until renamed
            temps.append(Temporary(path, tmp, fd))
        current = temps[0].target
        try:
            yield tuple(temps)
            for tmp in temps:
                current = tmp.target
                os.fsync(tmp.fd)  # the data reaches the disk before the rename can
            for tmp in temps:
                current = tmp.target
                os.replace(tmp.path, tmp.target)  # replaces a symlink at the target, never what it points to
            for directory in {t.target.parent for t in temps}:
                fsync_dir(directory)  # and the renames themselves survive a power cut
        except BaseException as err:
            for tmp in temps:
                tmp.path.unlink(missing_ok=True)
            if isinstance(err, OSError) and not isinstance(err, CannotWrite):
                named = next((t.target for t in temps if err.filename in (str(t.path), t.path)), current)
                raise CannotWrite(named, err) from None
            raise


def fsync_dir(directory: str | Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_prefix(name: str) -> str:
    """How the temporary files of a target called `name` begin: ``.NAME.``, with a long
    name cut and told apart by its hash so that the temporary name (22 bytes longer)
    still fits in one path component."""
    room = _NAME_MAX - len(TMP_SUFFIX) - _RANDOM_HEX - 2  # the dots around NAME
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= room:
        return f".{name}."
    digest = hashlib.sha256(raw).hexdigest()[:8]
    cut = raw[:room - 9].decode("utf-8", "ignore")
    return f".{cut}~{digest}."


def is_temporary(name: str) -> bool:
    """Whether `name` is one of atomic_write's temporary files (``.NAME.RANDOM.tmp``)."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def remove_temporaries(directory: str | Path, of: str | None = None) -> list[str]:
    """Remove the temporary files a killed writer left in `directory` (not in its
    subfolders), or only those of the target named `of`; one that a live writer holds
    locked stays. Returns the names removed."""
    prefix = None if of is None else temporary_prefix(of)
    removed = []
    for entry in os.scandir(directory):
        if not is_temporary(entry.name) or (prefix and not entry.name.startswith(prefix)):
            continue
        if entry.is_dir(follow_symlinks=False) or _held(entry.path):
            continue
        if prefix and not entry.is_file(follow_symlinks=False):
            continue  # in someone's output folder, only the files a writer of ours left
        Path(entry.path).unlink(missing_ok=True)  # a symlink goes, never its target
        removed.append(entry.name)
    return removed


def _held(path: str) -> bool:
    """Whether a writer holds the temporary file at `path` locked (it is being written)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False  # a symlink, or gone: no writer's
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # a FIFO or the like: not one of ours
    finally:
        os.close(fd)
    return False


def _create_temporary(path: Path) -> tuple[int, Path]:
    # Mode 0o666 through the process umask is what a plain open() gives; O_EXCL fails
    # on any existing name (a symlink included), so a planted file is never written.
    # The lock tells `remove_temporaries` of another process that this one is live.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    prefix = temporary_prefix(path.name)
    while True:
        tmp = path.parent / f"{prefix}{secrets.token_hex(_RANDOM_HEX // 2)}{TMP_SUFFIX}"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # 2^-64 a try: a name taken by chance, or planted
            continue
        except OSError as err:
            raise CannotWrite(path, err) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd, tmp
