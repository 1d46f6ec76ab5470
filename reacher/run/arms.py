"""The arm file a run names: recorded by absolute path, and known by its content.

Kept apart from the run directory's module (which imports torch, for checkpoints) so that
reading a sweep spec needs neither torch nor a run directory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reacher.config import Config
from reacher.files import read_regular
from reacher.limits import MAX_ARM_BYTES
from reacher.sim.arm import BUILTIN_ARMS


def absolute_arm(config: Config) -> Config:
    """Record a user's arm file by absolute path, so evaluate, render and --resume find
    it from any working directory."""
    path = Path(config.arm).expanduser()
    if config.env or config.arm in BUILTIN_ARMS or not path.exists():
        return config
    return config.replace(arm=str(path.resolve()))


def arm_digest(path: str | Path) -> str:
    """The SHA-256 of an arm file: what ties a checkpoint, and an exported policy's sidecar,
    to the arm it was trained on. Read as the arm file itself is (a regular file of bounded
    size): the file on disk may have been replaced since it loaded."""
    return hashlib.sha256(read_regular(path, MAX_ARM_BYTES)).hexdigest()
