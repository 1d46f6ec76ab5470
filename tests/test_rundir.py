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

from reacher.config import Config
from reacher.errors import CheckpointError
from reacher.run import checkpoint as ckpt
from reacher.run.metrics import read_metrics
from reacher.run.training import train

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


# --- symlinks are never followed ----------------------------------------------------------------

def _outside(tmp_path: Path) -> Path:
    target = tmp_path / "precious.txt"
    target.write_text("not yours\n")
    return target


def test_a_lock_symlinked_elsewhere_is_refused_and_its_target_untouched(tmp_path):
    from reacher.errors import RunError

    target, run_dir = _outside(tmp_path), tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").symlink_to(target)
    with pytest.raises(RunError, match=r"run/\.lock: is a symbolic link"):
        _train(TINY, run_dir)
    assert target.read_text() == "not yours\n"
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]


@pytest.mark.parametrize("resume", [False, True], ids=["new run", "resume"])
def test_a_metrics_csv_symlinked_elsewhere_is_refused_and_its_target_untouched(finished, tmp_path, resume):
    from reacher.errors import RunError

    target = _outside(tmp_path)
    if resume:
        run_dir = _copy(finished, tmp_path)
        (run_dir / "metrics.csv").unlink()
    else:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
    (run_dir / "metrics.csv").symlink_to(target)
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(RunError, match=r"run/metrics\.csv: is a symbolic link"):
        _train(TINY.replace(steps=300), run_dir, resume=resume, overrides={"steps": 300} if resume else None)
    assert target.read_text() == "not yours\n"
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_cli_symlinked_lock_is_one_error_line(tmp_path, monkeypatch, capsys):
    from test_cli import (
        in_process,  # the command's code path in this process, as test_cli's bad inputs
    )

    target, run_dir = _outside(tmp_path), tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").symlink_to(target)
    result = in_process(["train", "--run-dir", run_dir, "--steps", "100", "--quiet"], tmp_path, monkeypatch, capsys)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {run_dir}/.lock: is a symbolic link; a run directory's files are never written "
        "through links (remove it)"]
    assert target.read_text() == "not yours\n"


# --- one row per step ---------------------------------------------------------------------------

def test_a_run_restarted_after_a_kill_before_its_first_checkpoint_starts_metrics_afresh(tmp_path):
    """What a `kill -9` before the first checkpoint leaves: config.toml, metrics.csv with rows,
    a stale lock and a half-written checkpoint. The same command again is a new run."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.toml").write_text("steps = 150\n")
    (run_dir / "metrics.csv").write_text("step,wall_time\n100,1.0\n150,2.0\n")
    (run_dir / ".lock").write_text("12345 elsewhere\n")
    (run_dir / ".checkpoint.ckpt.k2j4h5g6.tmp").write_bytes(b"PK\x03\x04 half")
    (run_dir / ".reacher-run").write_text("reacher run directory\n")  # written as the run opened it
    _train(TINY, run_dir)
    assert _steps(run_dir) == [100, 150]
    assert sorted(p.name for p in run_dir.iterdir()) == [".reacher-run", "checkpoint.ckpt", "config.toml",
                                                          "curve.png", "metrics.csv"]


def test_resuming_a_finished_run_does_not_evaluate_it_again(finished, tmp_path):
    run_dir = _copy(finished, tmp_path)
    before = (run_dir / "metrics.csv").read_bytes()
    saved = ckpt.load(run_dir).metadata
    outcome = _train(TINY, run_dir, resume=True)
    assert (run_dir / "metrics.csv").read_bytes() == before
    assert outcome.env_steps == 150 and outcome.stop_reason == saved["stop_reason"]
    last = read_metrics(run_dir / "metrics.csv")[-1]
    assert outcome.evaluation is not None
    assert outcome.evaluation.mean_return == pytest.approx(last["mean_return"], rel=1e-5)


def test_the_final_evaluation_at_the_step_of_the_last_periodic_one_replaces_its_row(tmp_path, monkeypatch):
    """A success-gated run stops at the periodic evaluation that meets its target; the final
    evaluation at that same step is that step's one row (keeping the losses logged with it)."""
    from reacher.run import gate
    from reacher.run.evaluation import Evaluation

    calls = []

    def always_succeeds(policy, env, episodes, seed, *args, **kwargs):
        calls.append(episodes)
        return Evaluation(success_rate=1.0, mean_final_distance=0.01, mean_return=-float(len(calls)),
                          episodes=episodes)

    monkeypatch.setattr(gate, "evaluate", always_succeeds)  # every evaluation of the run
    # 6 of 6 confirmation episodes bound the rate at 0.69 with 95 % confidence: above 0.5.
    config = TINY.replace(steps=0, max_steps=1000, success_target=0.5, success_evals=2, eval_episodes=3,
                          final_eval_episodes=7)
    outcome = _train(config, tmp_path / "run")
    assert outcome.stop_reason == "success" and outcome.env_steps == 100
    assert calls == [3, 3, 3, 7]  # the periodic evaluation, its two confirmations, the final one
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert [r["step"] for r in rows] == [100]
    assert rows[-1]["mean_return"] == -4  # the final evaluation's
    assert rows[-1]["critic_loss"] is not None  # the periodic one's losses kept


# --- --resume checks the checkpoint belongs to this run ---------------------------------------

def test_resume_refuses_a_changed_arm_file_of_the_same_sizes(tmp_path):
    from reacher.sim.arm import builtin_path

    arm = tmp_path / "arm.xml"
    xml = builtin_path("two_link").read_text()
    arm.write_text(xml)
    _train(TINY.replace(arm=str(arm)), tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    assert 'model="two_link"' in xml
    arm.write_text(xml.replace('model="two_link"', 'model="another_arm_of_the_same_sizes"'))
    with pytest.raises(CheckpointError, match="arm.*SHA-256"):
        _train(TINY.replace(steps=300), tmp_path / "run", resume=True, overrides={"steps": 300})
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


@pytest.mark.parametrize("change", [{"goal_observation": True}, {"ctrl_cost_weight": 0.5},
                                    {"end_effector": "link2"}, {"success_radius": 0.05}])
def test_resume_refuses_another_task(finished, tmp_path, change):
    run_dir = _copy(finished, tmp_path)
    with pytest.raises((CheckpointError, ValueError), match=next(iter(change))):
        _train(TINY.replace(steps=300, **change), run_dir, resume=True, overrides={"steps": 300, **change})


# --- durability ---------------------------------------------------------------------------------

def test_atomic_writes_fsync_the_file_and_its_directory(tmp_path, monkeypatch):
    import os
    import stat

    from reacher import files

    synced = []
    real = os.fsync

    def record(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(files.os, "fsync", record)
    files.write_text(tmp_path / "a.txt", "hello\n")
    assert synced == ["file", "dir"]
    assert (tmp_path / "a.txt").read_text() == "hello\n"


def test_atomic_writes_never_set_the_umask(tmp_path, monkeypatch):
    import os

    from reacher import files

    umask = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                     if line.startswith("Umask:")).split()[1], 8)

    def forbidden(mask):
        raise AssertionError("os.umask changes the umask of every thread")

    monkeypatch.setattr(os, "umask", forbidden)
    files.write_text(tmp_path / "a.txt", "hello\n")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_temporaries_of_a_killed_checkpoint_write_are_removed_by_the_next_run(finished, tmp_path):
    run_dir = _copy(finished, tmp_path)
    for name in (".checkpoint.ckpt.a8d7f6e5.tmp", ".metrics.csv.0123456789abcdef.tmp"):
        (run_dir / name).write_bytes(b"half written")
    _train(TINY.replace(steps=300), run_dir, resume=True, overrides={"steps": 300})
    assert sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")) == []
