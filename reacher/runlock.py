"""The run directory's lock, now part of `reacher.rundir`; these names stay importable here."""

from reacher.rundir import LOCK_NAME, RunDirBusy, RunLock, run_lock

__all__ = ["LOCK_NAME", "RunDirBusy", "RunLock", "run_lock"]
