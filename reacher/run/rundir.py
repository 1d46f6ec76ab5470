"""The run directory: its one writer's lock, its metrics log and its checkpoint (what
``--resume`` checks in it before it continues a run there is `reacher.run.snapshot`'s).

A run directory holds ``config.toml`` (the resolved config), ``metrics.csv`` (one row
per evaluation step), ``curve.png``, ``checkpoint.ckpt``, TensorBoard events when
tensorboard is installed, and ``.lock`` while a run writes there.

What holds, however a run ends (Ctrl-C, an error, ``kill -9``):
  * one writer at a time: ``.lock`` is an ``flock``, released by the kernel when its
    holder dies, so a lock file left by a crash is stale by construction;
  * nothing is followed through a symlink: a run refuses a run directory whose files
    are links (one error line naming the file), so it never writes outside it;
  * ``metrics.csv`` never holds two rows for one step: a new run starts it afresh, a
    resumed one drops the rows logged after its checkpoint, and a second evaluation at
    the same step (the final one after the periodic one that ended the run) replaces
    the first;
  * temporary files of a write cut short by ``kill -9`` are removed by the next run;
  * a run directory is known by its marker, ``.reacher-run``, written when a run first
    opens it: a run refuses a directory without one that holds files it would overwrite
    or delete (a ``config.toml``, a ``metrics.csv``, ``*.tmp`` files: someone else's
    project), except a run directory of an earlier version (a ``checkpoint.ckpt``),
    which ``--resume`` continues and marks;
  * each of its files must be a regular file: a FIFO, a directory or a device in the
    place of one is refused with one line naming it, before anything reads or waits.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
from pathlib import Path

from reacher.config import Config, load_toml, saved_base
from reacher.errors import CannotWrite, LockBusy, RunDirBusy, RunError
from reacher.files import UnreadableFile, is_temporary, read_regular, remove_temporaries, write_text
from reacher.limits import MAX_RUN_FILE_BYTES
from reacher.run import checkpoint as ckpt
from reacher.run.arms import absolute_arm
from reacher.run.lock import DirectoryLock
from reacher.run.metrics import COLUMNS

LOCK_NAME = ".lock"
CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.csv"
CURVE_NAME = "curve.png"
MARKER_NAME = ".reacher-run"
MARKER_TEXT = "reacher run directory: written by reacher train, which may overwrite the files here\n"
RUN_FILES = (LOCK_NAME, CONFIG_NAME, METRICS_NAME, CURVE_NAME, ckpt.FILENAME, MARKER_NAME)
# What a run overwrites or deletes in its directory: another directory holding any of them
# is not taken for a run directory.
_OVERWRITTEN = (CONFIG_NAME, METRICS_NAME, CURVE_NAME)


# --- before a run starts ------------------------------------------------------------------

def default_run_dir(config: Config) -> Path:
    name = config.env.replace("/", "_") if config.env else Path(config.arm).stem
    return Path("runs") / f"{name}-seed{config.seed}"


def prepare_run(config: Config, run_dir: Path, resume: bool, overrides: dict | None = None) -> Config:
    """Check the run directory and return the config the run uses (saved one on resume)."""
    config = absolute_arm(config)
    refuse_links(run_dir)
    has_checkpoint = (run_dir / ckpt.FILENAME).is_file()
    if not resume or has_checkpoint:
        check_is_run_dir(run_dir)
    if resume:
        if not run_dir.is_dir():
            raise RunError(f"run directory {run_dir}: does not exist, nothing to resume")
        if not has_checkpoint:
            raise RunError(f"run directory {run_dir}: holds no {ckpt.FILENAME}, nothing to resume")
        _read_rows(run_dir / METRICS_NAME)  # damaged: refused before the lock is even taken
        config_file = run_dir / CONFIG_NAME
        if config_file.is_file():
            saved = load_toml(config_file, base=saved_base())
            return absolute_arm(saved.replace(**overrides)) if overrides else saved
        return config
    if has_checkpoint:
        raise RunError(f"run directory {run_dir}: already holds a run; pass --resume to continue "
                       "it or choose another --run-dir")
    return config


def refuse_links(run_dir: Path) -> None:
    """A run's own files must be regular files: a symlink among them could make a run
    write (or truncate) whatever it points to, a FIFO would make it wait forever."""
    for name in RUN_FILES:
        path = run_dir / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as err:
            raise RunError(f"{path}: cannot be read ({err.strerror})") from None
        if stat.S_ISLNK(mode):
            raise RunError(f"{path}: is a symbolic link; a run directory's files are "
                           "never written through links (remove it)")
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise RunError(f"{path}: is not a regular file but {kind}; a run directory's files must be "
                           "regular files (remove it)")


def check_is_run_dir(run_dir: Path) -> None:
    """Refuse a directory that is not a run directory (no marker, no checkpoint of an
    earlier version) and holds files a run would overwrite or delete."""
    if not run_dir.is_dir() or (run_dir / MARKER_NAME).is_file() or (run_dir / ckpt.FILENAME).is_file():
        return
    try:
        names = sorted(os.listdir(run_dir))
    except OSError as err:
        raise RunError(f"run directory {run_dir}: cannot be read ({err.strerror})") from None
    theirs = [n for n in names if n in _OVERWRITTEN or is_temporary(n)]
    if theirs:
        raise RunError(f"{run_dir}: is not a reacher run directory (it has no {MARKER_NAME}) and holds "
                       f"{theirs[0]}, which a run would overwrite or delete; choose another --run-dir")


def file_id(path: Path) -> tuple | None:
    """Which file is at `path` now: checkpoints are replaced by rename, never rewritten."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


# --- the open run directory ----------------------------------------------------------------

class RunDir:
    """A run directory held by this process: locked, cleared of a killed writer's
    temporary files, with ``config.toml`` written and ``metrics.csv`` open.

    `restored_from` is the `file_id` of the checkpoint a resumed run loaded (None for a
    new run): under the lock the directory must still be as it was checked. On any
    failure the lock is released and nothing has been written."""

    def __init__(self, path: str | Path, config_text: str, restored_from: tuple | None = None,
                 resume_step: int | None = None):
        self.path = Path(path)
        self.lock = run_lock(self.path)
        try:
            refuse_links(self.path)
            check_is_run_dir(self.path)  # again, under the lock
            self._check_still_ours(restored_from)
            if resume_step is not None:
                _read_rows(self.path / METRICS_NAME)  # a damaged file refused before anything is written
            if not (self.path / MARKER_NAME).is_file():
                write_text(self.path / MARKER_NAME, MARKER_TEXT)
            remove_temporaries(self.path)
            write_text(self.path / CONFIG_NAME, config_text)
            self.metrics = MetricsLog(self.path, resume_step)
        except BaseException:
            self.lock.release()
            raise

    @property
    def checkpoint_path(self) -> Path:
        return self.path / ckpt.FILENAME

    def save_checkpoint(self, metadata: dict, model: dict, replay: dict | None) -> None:
        ckpt.save(self.checkpoint_path, metadata, model, replay)

    def close(self) -> None:
        try:
            self.metrics.close()
        finally:
            self.lock.release()

    def _check_still_ours(self, restored_from: tuple | None) -> None:
        current = file_id(self.checkpoint_path)
        if restored_from is None and current is not None:
            raise RunError(f"run directory {self.path}: another run has just started here; "
                           "choose another --run-dir")
        if restored_from is not None and current != restored_from:
            raise RunDirBusy(f"run directory {self.path}: its checkpoint was rewritten by another "
                             "run while this one started; try again")


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """os.open that refuses a symlink at `path` with one line naming it."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RunError(f"{path}: is a symbolic link; a run directory's files are never "
                           "written through links (remove it)") from None
        raise


# --- the lock ---------------------------------------------------------------------------------

def run_lock(run_dir: str | Path) -> DirectoryLock:
    """The lock of one run directory (reacher.run.lock), taken now and held until
    `release()` or the end of a ``with`` block; raises `RunDirBusy` at once, without
    waiting, when another process holds it."""
    run_dir = Path(run_dir)
    refuse_links(run_dir)  # a FIFO or a directory as .lock: one line naming it
    try:
        return DirectoryLock(run_dir, LOCK_NAME)
    except LockBusy as busy:
        raise RunDirBusy(f"run directory {run_dir}: is in use by another run ({busy.holder}); "
                         "wait for it to end or choose another run directory") from None
    except CannotWrite:
        raise
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise RunError(f"{run_dir / LOCK_NAME}: is a symbolic link; a run directory's files are "
                           "never written through links (remove it)") from None
        raise RunError(f"{run_dir / LOCK_NAME}: cannot be locked ({err.strerror or err})") from None


# --- the metrics log --------------------------------------------------------------------------

class MetricsLog:
    """Appends one row per evaluation to ``metrics.csv``, at most one row per step.

    A new run (`resume_step` None) starts the file afresh: rows of an earlier run that
    never reached its first checkpoint are not part of this one. A resumed run drops the
    rows past its checkpoint's step (logged after it, then lost with the process), so the
    file reads as one uninterrupted run."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.path = run_dir / METRICS_NAME
        self._rows: list[dict[str, str]] = []  # as written, so a rewrite keeps them byte for byte
        if resume_step is not None:
            self._rows = [r for r in self._read() if _step(r) is not None and _step(r) <= resume_step]
        self._rewrite()
        self._file = self._open_append()
        self._tensorboard = _tensorboard_writer(run_dir, 0 if resume_step is None else resume_step + 1)

    def write(self, row: dict) -> None:
        text = {k: _fmt(row.get(k)) for k in COLUMNS}
        step = int(row["step"])
        if self._rows and _step(self._rows[-1]) >= step:
            # A second evaluation at one step (the final one right after the periodic one
            # that ended the run): the later one wins, the earlier fills what it lacks.
            earlier = [r for r in self._rows if _step(r) == step]
            merged = {**(earlier[-1] if earlier else {}), **{k: v for k, v in text.items() if v != ""}}
            self._rows = [r for r in self._rows if _step(r) < step] + [{k: merged.get(k, "") for k in COLUMNS}]
            self._file.close()
            self._rewrite()
            self._file = self._open_append()
        else:
            self._rows.append(text)
            try:
                csv.DictWriter(self._file, fieldnames=COLUMNS).writerow(text)
                self._file.flush()
            except OSError as err:  # a full disk: a cut row is dropped when the run resumes
                raise CannotWrite(self.path, err) from None
        if self._tensorboard is not None:
            names = {"success_rate": "eval/success_rate", "mean_final_distance": "eval/final_distance_m",
                     "mean_return": "eval/return", "critic_loss": "losses/critic",
                     "actor_loss": "losses/actor", "mean_q": "losses/mean_q",
                     "steps_per_s": "charts/steps_per_s"}
            for key, tag in names.items():
                if row.get(key) is not None:
                    self._tensorboard.add_scalar(tag, row[key], step)
            self._tensorboard.flush()

    def row_at(self, step: int) -> dict[str, str] | None:
        return next((r for r in self._rows if _step(r) == step), None)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()

    def _read(self) -> list[dict[str, str]]:
        return _read_rows(self.path)

    def _rewrite(self) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self._rows)
        write_text(self.path, text.getvalue())

    def _open_append(self):
        fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return open(fd, "a", newline="", encoding="utf-8")


def _read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics.csv (none when there is no file), or one RunError naming it."""
    try:
        data = read_regular(path, MAX_RUN_FILE_BYTES, follow_links=False)
    except UnreadableFile as err:
        if err.missing:
            return []
        raise RunError(f"{path}: {err.problem}") from None
    try:
        rows = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        return [{k: row.get(k) or "" for k in COLUMNS} for row in rows]
    except (UnicodeDecodeError, csv.Error) as err:
        raise RunError(f"{path}: is not a metrics file as reacher writes it ({err}); "
                       "move it away to resume") from None


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(float(row["step"]))
    except (KeyError, TypeError, ValueError):
        return None


def _tensorboard_writer(run_dir: Path, purge_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    # purge_step hides events at or after it that an earlier process of this run logged.
    return SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
