"""Checkpoints: one file, written atomically, that cannot run code when loaded.

A checkpoint is an uncompressed zip archive holding (for a training run, what each
holds is `reacher.run.snapshot`'s)
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
import math
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reacher.config import Config, from_mapping, saved_base
from reacher.envids import check_untrusted
from reacher.errors import (
    CheckpointError,
    ConfigError,
    EnvIdError,
    UnreadableFile,
    one_line,
)
from reacher.files import atomic_write, open_regular
from reacher.run.snapshot import COUNTERS, REAL_COUNTERS, check_sizes  # noqa: F401  (ckpt.check_sizes)

FORMAT = "reacher-checkpoint/1"
FILENAME = "checkpoint.ckpt"
METADATA_LIMIT = 16 * 2**20  # bytes: config, counters, RNG states, sampled losses
MAX_DIM = 10_000_000  # observation or action values: a 3000x3000 RGB image flattened fits


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
    if not run.is_file():  # a FIFO or device would block or never end
        raise CheckpointError(run, "is neither a run directory nor a checkpoint file")
    return run


def load(run: str | Path, with_replay: bool = False, map_location: str = "cpu") -> Checkpoint:
    """Read and check a checkpoint; raises `CheckpointError` and returns nothing partial.

    A checkpoint may come from someone else, so every size is checked before anything is
    allocated: the metadata first (its own size, its sizes and types, its env id), then
    each member against the bytes the declared sizes can need, then the arrays inside."""
    path = resolve(run)
    try:
        with open(open_regular(path), "rb") as raw, zipfile.ZipFile(raw) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            missing = [m for m in ("metadata.json", "model.pt") if m not in infos]
            if missing:
                raise CheckpointError(path, f"is incomplete (no {missing[0]})")
            metadata, config = _read_metadata(path, archive, infos["metadata.json"])
            model_limit, replay_limit = _member_limits(path, metadata, config)
            _check_memory(path, "networks", model_limit)
            _check_weights_present(path, config, metadata, infos["model.pt"])
            model_bytes = _read_member(path, archive, infos["model.pt"], model_limit)
            replay_bytes = None
            if with_replay and "replay.npz" in infos:
                _check_memory(path, "a replay buffer", replay_limit)
                replay_bytes = _read_member(path, archive, infos["replay.npz"], replay_limit)
    except zipfile.BadZipFile:  # also a CRC mismatch found by read()
        raise CheckpointError(path, "is not a reacher checkpoint, or is truncated or corrupted "
                                    "(not a readable zip archive)") from None
    except UnreadableFile as err:  # replaced by a FIFO or a device since it was resolved
        raise CheckpointError(path, err.problem) from None
    except (zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as err:
        raise CheckpointError(path, f"cannot be read ({one_line(err)})") from None
    model = _load_model(path, model_bytes, model_limit, map_location)
    replay = None if replay_bytes is None else _load_replay(path, replay_bytes, replay_limit, metadata)
    return Checkpoint(path, metadata, model, replay)


# --- checks, each before the allocation it guards ------------------------------------------------

def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, refused before reading when its declared size exceeds `limit`
    (a few compressed bytes can declare gigabytes; zipfile stops at the declared size
    and its CRC check catches a member that lies about it)."""
    if info.file_size > limit:
        raise CheckpointError(path, f"{info.filename} declares {info.file_size:,} bytes, more than the "
                                    f"{limit:,} its sizes in metadata.json allow; refused")
    return archive.read(info)


def _read_metadata(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[dict, Config]:
    data = _read_member(path, archive, info, METADATA_LIMIT)
    try:
        metadata = json.loads(data)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise CheckpointError(path, "has corrupted metadata (metadata.json is not JSON)") from None
    except RecursionError:
        raise CheckpointError(path, "has corrupted metadata (metadata.json is nested too deeply)") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(path, "has corrupted metadata (metadata.json is not an object)")
    if metadata.get("format") != FORMAT:
        raise CheckpointError(path, f"has format {metadata.get('format')!r}, expected {FORMAT!r}")
    for key in ("obs_dim", "act_dim"):
        value = metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
            raise CheckpointError(path, f"metadata.json: {key} must be an integer from 1 to {MAX_DIM:,}, "
                                        f"got {_short(value)}")
    for key in COUNTERS:
        value = metadata.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 2**63 \
                or (key not in REAL_COUNTERS and not isinstance(value, int)):
            kind = "number" if key in REAL_COUNTERS else "integer"
            raise CheckpointError(path, f"metadata.json: {key} must be a non-negative {kind}, got {_short(value)}")
    if not isinstance(metadata.get("config"), dict):
        raise CheckpointError(path, f"metadata.json: config must be an object, got {_short(metadata.get('config'))}")
    try:
        config = from_mapping(metadata["config"], saved_base(), source="metadata.json: config")
    except ConfigError as err:
        raise CheckpointError(path, str(err)) from None
    try:
        for env_id in (metadata.get("env"), config.env):
            check_untrusted(env_id, "metadata.json")
    except EnvIdError as err:
        raise CheckpointError(path, str(err)) from None
    return metadata, config


def _member_limits(path: Path, metadata: dict, config: Config) -> tuple[int, int]:
    """The most bytes model.pt and replay.npz can need for the declared sizes: the
    networks, their targets and Adam's two moments in float32, the normaliser, and the
    replay buffer's transitions, each with slack for the archives' own headers."""
    obs, act = metadata["obs_dim"], metadata["act_dim"]
    hidden = config.hidden_sizes or (256, 256)  # adapt's widest choice, for a config left on auto
    actor = _weights([obs, *hidden, act])
    critic = (2 if config.twin_critics else 1) * _weights([obs + act, *hidden, 1])
    model = 2 * (4 * 4 * (actor + critic) + 3 * 8 * obs) + 1_000_000
    transitions = min(config.buffer_size, int(metadata.get("env_steps") or config.buffer_size))
    replay = 2 * transitions * (4 * (2 * obs + act + 2) + 8) + 100_000  # 2x: room for a new array
    return model, replay


_SMALL_NETWORKS = 16 * 2**20  # bytes: built without harm, then refused as not restorable


def _check_weights_present(path: Path, config: Config, metadata: dict, info: zipfile.ZipInfo) -> None:
    """The actor alone, in float32, is what the declared sizes make at the least: a
    model.pt smaller than that cannot hold the networks the agent would be built with,
    so the sizes are refused before those networks are allocated (a 364 KB checkpoint
    declaring hidden_sizes = [65536, 4096] would otherwise build 10 GB of them first)."""
    if not config.hidden_sizes:  # auto widths: chosen small, and only once the env is known
        return
    needed = 4 * _weights([metadata["obs_dim"], *config.hidden_sizes, metadata["act_dim"]])
    if needed > _SMALL_NETWORKS and info.file_size < needed:
        sizes = ", ".join(map(str, config.hidden_sizes))
        raise CheckpointError(path, f"metadata.json: config.hidden_sizes [{sizes}] makes an actor of "
                                    f"{needed:,} bytes, but model.pt holds {info.file_size:,}; refused")


def _check_memory(path: Path, what: str, limit: int) -> None:
    """Refuse what could not be held anyway (the limits carry 2x slack, left out here)."""
    memory = _physical_memory()
    if limit // 2 > memory:
        raise CheckpointError(path, f"declares {what} of {limit / 2 / 2**30:,.1f} GiB, more than this "
                                    f"machine's {memory / 2**30:,.1f} GiB of memory; refused")


def _weights(sizes: list[int]) -> int:
    return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform: assume a large machine
        return 2**40


def _inner_archive(path: Path, data: bytes, member: str, limit: int) -> zipfile.ZipFile:
    """model.pt and replay.npz are zip archives themselves: their members may be
    compressed, so their declared sizes are checked too, all of them together."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        if data[:2] == b"PK":
            raise CheckpointError(path, f"{member} is corrupted (not a readable archive)") from None
        raise CheckpointError(path, f"{member} is not a zip archive as reacher writes it (it may hold "
                                    "pickled Python objects, which could run code when loaded); refused") from None
    total = sum(info.file_size for info in archive.infolist())
    if total > limit:
        raise CheckpointError(path, f"{member} declares {total:,} bytes unpacked, more than the {limit:,} "
                                    "its sizes in metadata.json allow; refused")
    return archive


def _load_model(path: Path, data: bytes, limit: int, map_location: str) -> dict:
    _inner_archive(path, data, "model.pt", limit).close()
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(path, f"model.pt holds Python objects beyond tensors{what}, which "
                                    "could run code when loaded; refused") from None
    except Exception as err:  # torch raises several types for damaged data
        raise CheckpointError(path, f"model.pt is corrupted ({one_line(err, 200)})") from None


def _load_replay(path: Path, data: bytes, limit: int, metadata: dict) -> dict[str, np.ndarray]:
    """The replay arrays, each header read and checked (numbers only, and no bigger than
    the bytes behind it) before numpy allocates what the header declares; then the
    shapes against the metadata's sizes."""
    try:
        with _inner_archive(path, data, "replay.npz", limit) as archive:
            for info in archive.infolist():
                with archive.open(info) as f:
                    shape, dtype = _array_header(f)
                if dtype.hasobject or dtype.kind not in "biuf":
                    raise CheckpointError(path, f"replay.npz: {info.filename} holds {dtype}, not numbers; refused")
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise CheckpointError(path, f"replay.npz: {info.filename} declares shape {shape}, more "
                                                "than the data it holds; refused")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            replay = {k: npz[k] for k in npz.files}
    except ValueError as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(path, f"replay.npz is unreadable or holds objects ({one_line(err)})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(path, f"replay.npz is corrupted ({one_line(err)})") from None
    _check_replay_shapes(path, replay, metadata["obs_dim"], metadata["act_dim"])
    return replay


def _array_header(f) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in read:
        raise ValueError(f"unsupported .npy version {version}")
    shape, _, dtype = read[version](f)
    return shape, dtype


def _check_replay_shapes(path: Path, replay: dict, obs_dim: int, act_dim: int) -> None:
    n = len(replay["obs"]) if "obs" in replay and replay["obs"].ndim else 0
    expected = {"obs": (n, obs_dim), "next_obs": (n, obs_dim), "action": (n, act_dim),
                "reward": (n,), "terminated": (n,), "future": (n,), "episode_len": ()}
    for name, array in replay.items():
        if name in expected and array.shape != expected[name]:
            raise CheckpointError(path, f"replay.npz: {name} has shape {array.shape}, expected "
                                        f"{expected[name]} for {n} transitions of these sizes")
    if "future" in replay and n and not (0 <= replay["future"].min() and replay["future"].max() < n):
        raise CheckpointError(path, f"replay.npz: future must lie within [0, {n}), the transitions held")
    if "episode_len" in replay and not 0 <= int(replay["episode_len"]) <= n:
        raise CheckpointError(path, f"replay.npz: episode_len is {int(replay['episode_len']):,}, but the "
                                    f"buffer holds {n:,} transitions")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"
