"""The run directory: what a run leaves there, and what it refuses to do there.

Checkpoints written before the run directory had its own module still resume; files in
a run directory are never written through symlinks; metrics.csv never holds two rows for
one step; --resume refuses a checkpoint of another arm, env or task; a kill -9 mid-write
leaves no temporary file past the next run.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from reacher import checkpoint as ckpt
from reacher.config import Config
from reacher.metrics import read_metrics
from reacher.train import train

TINY = Config(steps=150, warmup_steps=50, batch_size=16, hidden_sizes=(8, 8), eval_every=100,
              eval_episodes=1, final_eval_episodes=1, checkpoint_every=100, threads=1)

# The metadata keys checkpoints had before TrainingState (reacher 0.x, and the oldest
# ones, which lacked the evaluation bookkeeping).
KEYS_BEFORE_TRAINING_STATE = (
    "format", "obs_dim", "act_dim", "env", "arm", "arm_file", "end_effector", "config", "env_steps",
    "episodes", "updates", "wall_time", "eval_time", "update_debt", "success_streak",
    "periodic_evals", "finished", "stop_reason", "next_eval", "next_checkpoint", "rng", "env_rng",
    "noise", "losses", "versions")
OLDEST_LACKED = ("eval_time", "success_streak", "periodic_evals", "losses", "finished", "stop_reason")


def _train(config: Config, run_dir: Path, **kwargs):
    threads = torch.get_num_threads()
    try:
        return train(config, run_dir, progress=False, **kwargs)
    finally:
        torch.set_num_threads(threads)


def _rewrite_metadata(path: Path, change) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["metadata.json"] = json.dumps(change(json.loads(members["metadata.json"]))).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _steps(run_dir: Path) -> list[int]:
    return [row["step"] for row in read_metrics(run_dir / "metrics.csv")]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    _train(TINY, run_dir)
    return run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run_dir, tmp_path / "run"))


@pytest.mark.parametrize("keys", ["before TrainingState", "oldest"])
def test_an_old_checkpoint_still_resumes(finished, tmp_path, keys):
    run_dir = _copy(finished, tmp_path)
    dropped = OLDEST_LACKED if keys == "oldest" else ()
    _rewrite_metadata(run_dir / ckpt.FILENAME, lambda meta: {
        k: v for k, v in meta.items() if k in KEYS_BEFORE_TRAINING_STATE and k not in dropped})
    outcome = _train(TINY.replace(steps=300), run_dir, resume=True, overrides={"steps": 300})
    assert outcome.env_steps == 300
    assert ckpt.load(run_dir).metadata["env_steps"] == 300
    steps = _steps(run_dir)
    assert steps == sorted(set(steps)) and steps[-1] == 300
