"""Checkpoints: one file, written atomically, that cannot run code when loaded.

A checkpoint is an uncompressed zip archive holding
  * ``metadata.json`` — format, observation/action sizes, env or arm, the config,
    counters, RNG states, library versions;
  * ``model.pt`` — tensors only (networks, optimisers, normaliser, torch RNG),
    read back with ``torch.load(weights_only=True)``, which refuses pickled code;
  * ``replay.npz`` — the replay buffer (optional), read with ``allow_pickle=False``.

It is written to a temporary file beside the target and renamed over it, so a crash
leaves the previous checkpoint intact. Loading reads and checks everything before
any of it is used.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reacher.errors import one_line
from reacher.files import atomic_write

FORMAT = "reacher-checkpoint/1"
FILENAME = "checkpoint.ckpt"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"checkpoint {path}: {problem}")


@dataclass
class Checkpoint:
    path: Path
    metadata: dict
    model: dict
    replay: dict[str, np.ndarray] | None


def save(path: str | Path, metadata: dict, model: dict,
         replay: dict[str, np.ndarray] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = io.BytesIO()
    torch.save(model, weights)
    with atomic_write(path) as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"format": FORMAT, **metadata}, indent=1))
        archive.writestr("model.pt", weights.getvalue())
        if replay is not None:
            buf = io.BytesIO()
            np.savez(buf, **replay)
            archive.writestr("replay.npz", buf.getvalue())
    return path


def resolve(run: str | Path) -> Path:
    """A run directory or a checkpoint file → the checkpoint file."""
    run = Path(run)
    if run.is_dir():
        path = run / FILENAME
        if not path.is_file():
            raise CheckpointError(run, f"run directory holds no {FILENAME} (was training started "
                                       "and did it reach its first checkpoint?)")
        return path
    if not run.exists():
        raise CheckpointError(run, "no such run directory or checkpoint file")
    return run


def load(run: str | Path, with_replay: bool = False, map_location: str = "cpu") -> Checkpoint:
    """Read and check a checkpoint; raises `CheckpointError` and returns nothing partial."""
    path = resolve(run)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [m for m in ("metadata.json", "model.pt") if m not in names]
            if not missing:
                metadata_bytes = archive.read("metadata.json")
                model_bytes = archive.read("model.pt")
                replay_bytes = archive.read("replay.npz") if with_replay and "replay.npz" in names else None
    except zipfile.BadZipFile:  # also a CRC mismatch found by read()
        raise CheckpointError(path, "is not a reacher checkpoint, or is truncated or corrupted "
                                    "(not a readable zip archive)") from None
    except (zipfile.LargeZipFile, EOFError, OSError) as err:
        raise CheckpointError(path, f"cannot be read ({err})") from None
    if missing:
        raise CheckpointError(path, f"is incomplete (no {missing[0]})")
    try:
        metadata = json.loads(metadata_bytes)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise CheckpointError(path, "has corrupted metadata (metadata.json is not JSON)") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(path, "has corrupted metadata (metadata.json is not an object)")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(path, f"has format {metadata.get('format')!r}, expected {FORMAT!r}")
    try:
        model = torch.load(io.BytesIO(model_bytes), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(path, f"model.pt holds Python objects beyond tensors{what}, which "
                                    "could run code when loaded; refused") from None
    except Exception as err:  # torch raises several types for damaged data
        raise CheckpointError(path, f"model.pt is corrupted ({one_line(err, 200)})") from None
    replay = None
    if replay_bytes is not None:
        try:
            with np.load(io.BytesIO(replay_bytes), allow_pickle=False) as npz:
                replay = {k: npz[k] for k in npz.files}
        except ValueError as err:
            raise CheckpointError(path, f"replay.npz is unreadable or holds objects ({err})") from None
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise CheckpointError(path, f"replay.npz is corrupted ({err})") from None
    return Checkpoint(path, metadata, model, replay)


def check_sizes(checkpoint: Checkpoint, obs_dim: int, act_dim: int, what: str) -> None:
    """Refuse a checkpoint trained on an env of other observation or action sizes."""
    meta = checkpoint.metadata
    if (meta.get("obs_dim"), meta.get("act_dim")) != (obs_dim, act_dim):
        raise CheckpointError(
            checkpoint.path,
            f"was trained with observation size {meta.get('obs_dim')} and action size "
            f"{meta.get('act_dim')}, but {what} has {obs_dim} and {act_dim}")


def library_versions() -> dict:
    import gymnasium
    import mujoco

    import reacher

    return {"reacher": reacher.__version__, "torch": torch.__version__,
            "mujoco": mujoco.__version__, "gymnasium": gymnasium.__version__,
            "numpy": np.__version__}
