"""The `reacher` command end to end, run as a user runs it: `python -m reacher` in subprocesses.

One tiny run (300 steps, 32-unit networks) is trained once per module, then evaluated,
rendered and misused by the tests below. Each bad input must give exit code 2, one
`error: ` line on stderr, no traceback, and write nothing. Every bad-input case runs
through `reacher.cli.main` in this process (a subprocess costs seconds of torch import
each); the contract's main ones also run as real processes, side by side.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import imageio
import numpy as np
import pytest
import tomllib
from PIL import Image

from reacher import config as cfg
from reacher.run import settings as adapt

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
TINY = ["--warmup-steps", "100", "--batch-size", "32", "--hidden-sizes", "32,32",
        "--eval-every", "200", "--eval-episodes", "2", "--final-eval-episodes", "3",
        "--threads", "1"]
REQUIRED_COLUMNS = ("step", "wall_time", "success_rate", "mean_final_distance", "mean_return",
                    "critic_loss", "actor_loss", "mean_q")
EPISODE_STEPS = 50  # the built-in arms' default episode length


def reacher(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python -m reacher ARGS` the way a user would."""
    return subprocess.run([sys.executable, "-m", "reacher", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def assert_one_error_line(result: subprocess.CompletedProcess) -> str:
    """Exit 2 and exactly one stderr line `error: …`, no traceback; returns the line."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def listing(*roots: Path) -> dict:
    """Every file and folder under `roots` with its size and mtime, to show nothing changed."""
    out = {}
    for root in roots:
        if root.exists():
            for p in [root, *root.rglob("*")]:
                st = p.stat()
                out[str(p)] = (p.is_dir(), st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def in_process(args, cwd: Path, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """`reacher ARGS` through `reacher.cli.main` in this process: the same code path as the
    command, without paying torch's import per case."""
    import torch

    from reacher import cli

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    threads = torch.get_num_threads()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


# --- the trained run shared by the tests -----------------------------------------------------

@dataclass
class Run:
    cwd: Path
    dir: Path
    train: subprocess.CompletedProcess
    flags: dict  # config values given as flags or in the --config file, as config.toml holds them


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """300 steps of the two-link arm: steps and seed from a TOML file, the seed overridden
    by a flag, the network from a nested table."""
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "train.toml").write_text("steps = 300\nseed = 5\n[agent]\nhidden_sizes = [32, 32]\n"
                                    "batch_size = 32\n", encoding="utf-8")
    flags = ["--config", "train.toml", "--seed", "7", "--warmup-steps", "100",
             "--eval-every", "200", "--eval-episodes", "2", "--final-eval-episodes", "3",
             "--checkpoint-every", "200", "--threads", "1", "--no-normalize-obs", "--gamma", "0.9"]
    result = ok(reacher("train", "--run-dir", "run", *flags, cwd=cwd))
    expected = {"steps": 300, "seed": 7, "hidden_sizes": [32, 32], "batch_size": 32,
                "warmup_steps": 100, "eval_every": 200, "eval_episodes": 2,
                "final_eval_episodes": 3, "checkpoint_every": 200, "threads": 1,
                "normalize_obs": False, "gamma": 0.9}
    return Run(cwd, cwd / "run", result, expected)


def test_train_writes_the_run_files(run):
    assert "trained 300 steps" in run.train.stdout
    names = {p.name for p in run.dir.iterdir()}
    assert {"config.toml", "metrics.csv", "curve.png", "checkpoint.ckpt"} <= names
    assert not [n for n in names if n.endswith(".tmp") or ".tmp." in n], names
    with Image.open(run.dir / "curve.png") as png:
        assert png.format == "PNG" and png.size[0] > 100 and png.size[1] > 100


def test_config_toml_is_complete_and_follows_defaults_file_flags(run):
    saved = tomllib.loads((run.dir / "config.toml").read_text(encoding="utf-8"))
    assert set(saved) == {f.name for f in cfg.fields()}
    for key, value in run.flags.items():
        assert saved[key] == value, key
    # Fields left at their defaults hold them, those that adapt to the arm resolved
    # for the two-link arm's two actuators (reacher.run.settings) ...
    defaults = cfg.as_dict(cfg.Config())
    expected = adapt.resolve(cfg.from_mapping({**defaults, **run.flags}), n_actuators=2, episode_s=1.0,
                             control="joint")  # auto: joint for torque motors
    for key in set(saved) - set(run.flags):
        assert saved[key] == cfg.as_dict(expected)[key], key
    # ... and it reads back as the Config the run used.
    assert cfg.load_toml(run.dir / "config.toml") == expected


def test_metrics_csv(run):
    with open(run.dir / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
        header = rows[0].keys() if rows else []
    assert set(REQUIRED_COLUMNS) <= set(header), header
    steps = [int(r["step"]) for r in rows]
    assert steps == [200, 300]  # a periodic evaluation, then the final one
    for row in rows:
        assert 0 <= float(row["success_rate"]) <= 1
        assert float(row["mean_final_distance"]) > 0
        assert float(row["wall_time"]) > 0
        assert row["critic_loss"] and row["mean_q"]
    assert [int(r["train_episodes"]) for r in rows] == [s // EPISODE_STEPS for s in steps]


def test_checkpoint_metadata(run):
    from reacher.run import checkpoint as ckpt

    meta = ckpt.load(run.dir).metadata
    assert meta["env_steps"] == 300
    assert meta["config"]["seed"] == 7


def test_evaluate_json(run):
    result = ok(reacher("evaluate", "run", "--episodes", "4", "--json", cwd=run.cwd))
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
    report = json.loads(result.stdout)
    assert set(report) == {"success_rate", "mean_final_distance", "mean_return", "episodes"}
    assert report["episodes"] == 4
    assert 0 <= report["success_rate"] <= 1
    assert 0 < report["mean_final_distance"] < 1  # metres; the two-link arm reaches 0.21 m
    assert isinstance(report["mean_return"], float) and report["mean_return"] < 0


def test_evaluate_table(run, monkeypatch, capsys):
    result = ok(in_process(["evaluate", run.dir, "--episodes", "2", "--seed", "3"], run.cwd,
                           monkeypatch, capsys))
    text = result.stdout
    assert not text.lstrip().startswith("{")
    for label in ("episodes", "success rate", "mean final distance", "mean return"):
        assert label in text, text
    assert re.search(r"episodes\s+2\b", text), text


def expected_frames(episodes: int, fps: float) -> int:
    """What reacher.tools.video promises: per episode one start frame, one per 1/fps of simulated
    time, then the last frame held for hold_s."""
    from reacher.task.env import ReachEnv
    from reacher.tools.video import render_video

    dt = ReachEnv("two_link").dt
    hold_s = inspect.signature(render_video).parameters["hold_s"].default
    per_step = round(EPISODE_STEPS * dt * fps)
    return episodes * (1 + per_step + int(hold_s * fps + 0.5))


def printed_video(result) -> tuple[int, float]:
    found = re.search(r"\((\d+) frames, ([\d.]+) fps, (\d+) episodes\)", result.stdout)
    assert found, result.stdout
    return int(found.group(1)), float(found.group(2))


def test_render_mp4(run):
    # One episode (~0.1 s of CPU a software-rendered frame); test_video counts the frames of
    # several.
    result = ok(reacher("render", "run", "--episodes", "1", "--out", "clips/x.mp4",
                        "--size", "160x128", cwd=run.cwd))
    frames, fps = printed_video(result)
    assert fps == 50  # one frame per 0.02 s env step
    assert frames == expected_frames(1, fps) == 1 + EPISODE_STEPS + round(0.5 * fps)
    path = run.cwd / "clips" / "x.mp4"
    with imageio.v2.get_reader(path) as reader:
        video = np.stack([frame for frame in reader])
    assert video.shape == (frames, 128, 160, 3)  # height 128, width 160
    assert video.std() > 10  # not blank
    assert np.abs(video[1:].astype(int) - video[:-1]).max() > 30  # it moves
    assert not [p for p in path.parent.iterdir() if p.name != "x.mp4"]  # no temporary left


def test_render_gif(run):
    result = ok(reacher("render", "run", "--episodes", "1", "--out", "x.gif",
                        "--size", "160x128", "--camera", "angled", cwd=run.cwd))
    frames, fps = printed_video(result)
    assert fps <= 25
    assert frames == expected_frames(1, fps)
    with Image.open(run.cwd / "x.gif") as gif:
        assert gif.size == (160, 128)
        durations = []
        for i in range(gif.n_frames):  # identical held frames are merged into longer ones
            gif.seek(i)
            durations.append(gif.info["duration"])
            if i == 0:
                first = np.asarray(gif.convert("RGB"))
    assert sum(durations) == pytest.approx(1000 * frames / fps, abs=1)
    assert first.std() > 10


# --- Gymnasium envs --------------------------------------------------------------------------

def test_pendulum_trains_and_evaluates_without_success_notion(tmp_path, monkeypatch, capsys):
    ok(in_process(["train", "--env", "Pendulum-v1", "--run-dir", "pend", "--steps", "400", "--quiet", *TINY],
                  tmp_path, monkeypatch, capsys))
    assert tomllib.loads((tmp_path / "pend" / "config.toml").read_text())["env"] == "Pendulum-v1"
    report = json.loads(ok(in_process(["evaluate", "pend", "--episodes", "2", "--json"],
                                      tmp_path, monkeypatch, capsys)).stdout)
    assert report["success_rate"] is None and report["mean_final_distance"] is None
    assert report["episodes"] == 2 and report["mean_return"] < 0
    # A video needs an arm: refused before anything is written.
    line = assert_one_error_line(in_process(["render", "pend", "--out", "p.mp4"], tmp_path,
                                            monkeypatch, capsys))
    assert "arm" in line or "ReachEnv" in line
    assert not (tmp_path / "p.mp4").exists()


# --- help ------------------------------------------------------------------------------------

def test_top_level_help_lists_the_commands(tmp_path):
    text = ok(reacher("--help", cwd=tmp_path)).stdout
    for command in ("train", "evaluate", "render"):
        assert command in text


def test_train_help_lists_every_config_field(tmp_path):
    text = ok(reacher("train", "--help", cwd=tmp_path)).stdout
    for flag in ("--run-dir", "--config", "--resume"):
        assert flag in text
    for f in cfg.fields():
        flag = "--" + f.name.replace("_", "-")
        assert re.search(rf"{re.escape(flag)}\b", text), f"{flag} missing from train --help"
        if cfg.field_type(f) is bool:
            assert "--no-" + f.name.replace("_", "-") in text


def test_no_command_is_a_usage_error(tmp_path):
    result = reacher(cwd=tmp_path)
    assert result.returncode == 2 and "usage" in result.stderr


# --- bad input -------------------------------------------------------------------------------

@dataclass
class Case:
    args: list
    setup: callable = None  # setup(case_dir) prepares the files the case needs
    says: str = ""  # a piece of the error line (the key, the path)
    watch: list = field(default_factory=list)  # paths under the case dir that must not change
    needs_run: bool = False  # args may use {run}, the trained run's directory


def _file(name: str, text: str):
    def setup(d: Path):
        (d / name).write_text(text, encoding="utf-8")
    return setup


def _mkdir(name: str):
    return lambda d: (d / name).mkdir()


def _garbage_checkpoint(d: Path):
    (d / "broken").mkdir()
    (d / "broken" / "checkpoint.ckpt").write_bytes(b"PK\x03\x04 not really a zip")


T = ["--steps", "100", "--quiet", *TINY]
CASES = {
    "evaluate-missing-dir": Case(["evaluate", "nope"], says="nope"),
    "render-missing-dir": Case(["render", "nope", "--out", "v.mp4"], says="nope"),
    "evaluate-dir-without-checkpoint": Case(["evaluate", "empty"], _mkdir("empty"),
                                            says="checkpoint", watch=["empty"]),
    "render-dir-without-checkpoint": Case(["render", "empty", "--out", "v.mp4"], _mkdir("empty"),
                                          says="checkpoint", watch=["empty"]),
    "evaluate-corrupt-checkpoint": Case(["evaluate", "broken"], _garbage_checkpoint,
                                        says="checkpoint.ckpt", watch=["broken"]),
    "arm-missing-file": Case(["train", "--run-dir", "r", "--arm", "missing.xml", *T],
                             says="missing.xml"),
    "arm-empty-file": Case(["train", "--run-dir", "r", "--arm", "empty.xml", *T],
                           _file("empty.xml", ""), says="empty.xml"),
    "arm-malformed-xml": Case(["train", "--run-dir", "r", "--arm", "bad.xml", *T],
                              _file("bad.xml", "<mujoco><worldbody><body>\n"), says="bad.xml"),
    "arm-not-mujoco": Case(["train", "--run-dir", "r", "--arm", "odd.xml", *T],
                           _file("odd.xml", "<html><body/></html>\n"), says="odd.xml"),
    "arm-unknown-builtin": Case(["train", "--run-dir", "r", "--arm", "five_link", *T],
                                says="five_link"),
    "end-effector-unknown": Case(["train", "--run-dir", "r", "--end-effector", "thumb", *T],
                                 says="thumb"),
    "env-unknown": Case(["train", "--run-dir", "r", "--env", "NoSuchEnv-v9", *T],
                        says="NoSuchEnv"),
    "render-out-parent-is-file": Case(["render", "{run}", "--out", "afile/x.mp4"],
                                      _file("afile", "a file\n"), says="afile", needs_run=True,
                                      watch=["afile"]),
    "render-out-avi": Case(["render", "{run}", "--out", "x.avi"], says="x.avi", needs_run=True),
    "render-size-zero": Case(["render", "{run}", "--out", "x.mp4", "--size", "0x10"],
                             says="0x10", needs_run=True),
    "render-size-odd": Case(["render", "{run}", "--out", "x.mp4", "--size", "161x128"],
                            says="161x128", needs_run=True),
    "render-size-garbage": Case(["render", "{run}", "--out", "x.mp4", "--size", "big"],
                                says="big", needs_run=True),
    "render-unknown-camera": Case(["render", "{run}", "--out", "x.mp4", "--camera", "drone"],
                                  says="drone", needs_run=True),
    "train-existing-run-without-resume": Case(["train", "--run-dir", "{run}", *T],
                                              says="--resume", needs_run=True),
    "train-run-dir-under-a-file": Case(["train", "--run-dir", "afile/run", *T],
                                       _file("afile", "a file\n"), says="afile", watch=["afile"]),
    "resume-empty-dir": Case(["train", "--run-dir", "empty", "--resume", *T], _mkdir("empty"),
                             says="empty", watch=["empty"]),
    "resume-missing-dir": Case(["train", "--run-dir", "nothing", "--resume", *T], says="nothing"),
    "device-cuda-without-gpu": Case(["train", "--run-dir", "r", "--device", "cuda", *T],
                                    says="cuda"),
    "toml-unknown-key": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                             _file("c.toml", "steps = 100\nxxx = 1\n"), says="unknown key 'xxx'",
                             watch=["c.toml"]),
    "toml-nested-unknown-key": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                                    _file("c.toml", "[agent]\nlearning_rate = 1\n"),
                                    says="unknown key 'learning_rate'"),
    "toml-bad-type": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                          _file("c.toml", 'gamma = "high"\n'), says="gamma"),
    "toml-bad-value": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                           _file("c.toml", "batch_size = -1\n"), says="batch_size"),
    "toml-syntax": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                        _file("c.toml", "steps = = 3\n"), says="c.toml"),
    "toml-missing-file": Case(["train", "--run-dir", "r", "--config", "none.toml", *T],
                              says="none.toml"),
    "flag-bad-type": Case(["train", "--run-dir", "r", "--gamma", "high", *T], says="gamma"),
    "flag-bad-value": Case(["train", "--run-dir", "r", "--gamma", "1.5", *T], says="gamma"),
    "flag-teacher-without-ee": Case(["train", "--run-dir", "r", "--teacher-weight", "1", *T],
                                    says="teacher_weight needs control ee"),
    "toml-teacher-weight-negative": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                                         _file("c.toml", "teacher_weight = -0.5\n"), says="teacher_weight"),
    "flag-unknown": Case(["train", "--run-dir", "r", "--learning-rate", "1", *T],
                         says="--learning-rate"),
    "evaluate-zero-episodes": Case(["evaluate", "{run}", "--episodes", "0"], says="--episodes",
                                   needs_run=True),
    "env-missing-module": Case(["train", "--run-dir", "r", "--env", "nonexistent_mod:Foo-v0", *T],
                               says="no module named 'nonexistent_mod'"),
    "import-missing-module": Case(["evaluate", "{run}", "--import", "nonexistent_mod"],
                                  says="nonexistent_mod", needs_run=True),
    "flag-hidden-sizes-huge": Case(["train", "--run-dir", "r", *T, "--hidden-sizes", "1000000000"],
                                   says="hidden_sizes must be at most 64 layers of at most 65,536"),
    "flag-buffer-size-huge": Case(["train", "--run-dir", "r", *T, "--buffer-size", "1e12"],
                                  says="buffer_size must be at most"),
    "flag-seed-huge": Case(["train", "--run-dir", "r", *T, "--seed", "1e20"], says="seed must be below"),
    "toml-not-utf8": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                          lambda d: (d / "c.toml").write_bytes(b"steps = 100 # \xe9t\xe9\n"),
                          says="c.toml: is not UTF-8", watch=["c.toml"]),
    "toml-env-imports-a-module": Case(["train", "--run-dir", "r", "--config", "c.toml", *T],
                                      _file("c.toml", 'env = "never_imported_xyz:Pendulum-v1"\n'),
                                      says="would import module 'never_imported_xyz'", watch=["c.toml"]),
}


def prepare(name: str, case: Case, root: Path, run: Run) -> tuple[Path, list[str]]:
    d = root / name
    d.mkdir()
    if case.setup:
        case.setup(d)
    return d, [str(a).replace("{run}", str(run.dir)) for a in case.args]


def check_case(name: str, result, d: Path, before: dict, run: Run, run_before: dict) -> None:
    case = CASES[name]
    line = assert_one_error_line(result)
    assert case.says in line, line
    assert listing(d) == before, f"{name} wrote into {d}"
    if case.needs_run:
        assert listing(run.dir) == run_before, "the trained run was changed"


def skip_if_gpu(name: str) -> None:
    if name == "device-cuda-without-gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA GPU is available here")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_error_line_and_writes_nothing(name, run, tmp_path, monkeypatch, capsys):
    skip_if_gpu(name)
    d, args = prepare(name, CASES[name], tmp_path, run)
    before, run_before = listing(d), listing(run.dir)
    check_case(name, in_process(args, d, monkeypatch, capsys), d, before, run, run_before)


# One of each kind (run dir, arm file, config file, usage) as real processes, side by side:
# each is mostly torch's import.
IN_A_PROCESS = ("evaluate-missing-dir", "arm-malformed-xml", "toml-unknown-key",
                "render-size-zero")


@pytest.fixture(scope="module")
def processes(run, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("errors")
    jobs = {name: prepare(name, CASES[name], root, run) for name in IN_A_PROCESS}
    jobs["debug"] = (root, ["--debug", "evaluate", "nope"])
    before = {name: listing(d) for name, (d, _) in jobs.items()}
    run_before = listing(run.dir)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(reacher, *args, cwd=d) for name, (d, args) in jobs.items()}
        results = {name: f.result() for name, f in futures.items()}
    return {"results": results, "jobs": jobs, "before": before, "run_before": run_before}


@pytest.mark.parametrize("name", IN_A_PROCESS)
def test_bad_input_in_a_real_process(name, processes, run):
    skip_if_gpu(name)
    d, _ = processes["jobs"][name]
    check_case(name, processes["results"][name], d, processes["before"][name], run,
               processes["run_before"])


def test_debug_shows_the_traceback(processes):
    result = processes["results"]["debug"]
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "CheckpointError" in result.stderr and "nope" in result.stderr


def test_debug_after_the_command(tmp_path, monkeypatch):
    # In this process: --debug lets the error through (the process above shows that a
    # raised error is the traceback on stderr), wherever the flag stands.
    from reacher import cli
    from reacher.errors import CheckpointError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="nope"):
        cli.main(["evaluate", "nope", "--debug"])


def test_negative_seed_names_the_key(tmp_path, monkeypatch, capsys):
    line = assert_one_error_line(in_process(["train", "--run-dir", "r", "--seed", "-1", *T],
                                            tmp_path, monkeypatch, capsys))
    assert "seed" in line
    assert not (tmp_path / "r").exists()


def test_resume_with_another_network_is_one_error_line(run, tmp_path, monkeypatch, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run.dir, copy)
    before = listing(copy)
    line = assert_one_error_line(in_process(["train", "--run-dir", copy, "--resume", "--steps",
                                             "400", "--hidden-sizes", "64,64", "--quiet"],
                                            tmp_path, monkeypatch, capsys))
    assert "hidden_sizes" in line or "checkpoint" in line
    assert listing(copy) == before


def test_run_with_a_relative_arm_path_works_from_elsewhere(tmp_path, monkeypatch, capsys):
    from reacher.sim.arm import builtin_path

    work = tmp_path / "work"
    work.mkdir()
    (work / "my_arm.xml").write_text(builtin_path("two_link").read_text())
    ok(in_process(["train", "--run-dir", "r", "--arm", "my_arm.xml", "--steps", "50", "--quiet",
                   *TINY], work, monkeypatch, capsys))
    report = json.loads(ok(in_process(["evaluate", work / "r", "--episodes", "1", "--json"],
                                      tmp_path, monkeypatch, capsys)).stdout)
    assert report["episodes"] == 1
