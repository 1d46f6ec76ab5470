"""Hostile values and text: absurd numbers, wrong types from Python, text from a file that
would act on the terminal (issue 24, items 4, 5, 7, 9, 11-15).

Each refusal is one `error:` line naming the field or value (a ValueError subclass in
Python), never a traceback or a hang; each case stays under 1 GB and 5 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sweep_helpers import end_session, needs_ray, session_members, start_sweep, wait_for_checkpoint, write_spec
from test_hostile_inputs import cli_run, one_error_line, rewrite

from reacher import cli
from reacher import config as cfg
from reacher.api import evaluate_policy
from reacher.errors import one_line, printable
from reacher.run import checkpoint as ckpt
from reacher.run.policy import load_policy
from reacher.sim.arm import builtin_path, load_arm
from reacher.tools.sweep_spec import load_spec

# --- text from a file or a user is printed with its control characters escaped -----------------

def test_printable_escapes_what_acts_on_a_terminal():
    assert printable("arm\x1b]0;owned\x07\x1b[2J.xml") == "arm\\x1b]0;owned\\x07\\x1b[2J.xml"
    assert printable("a\nb\u202ec") == "a\\nb\\u202ec"
    assert printable("two_link — 2 cm ±20 %") == "two_link — 2 cm ±20 %"
    assert one_line(ValueError("first\nsecond \x1b[2J")) == "first second \\x1b[2J"


def test_a_newline_in_the_end_effector_keeps_the_error_one_line(capsys):
    code, err = cli_run(["inspect", "two_link", "--end-effector", "tip\nerror: forged"], capsys)
    line = one_error_line(code, err)
    assert "tip\\nerror: forged" in line


# --- 11. the Python API converts and checks each value as the CLI and config files do ----------

def test_python_values_are_converted_as_the_cli_converts_them():
    config = cfg.Config(normalize_obs="false", twin_critics="false", hidden_sizes=[32, 32], steps="1e3",
                        actor_lr=1, arm=Path("my_arm.xml"))
    assert config.normalize_obs is False and config.twin_critics is False
    assert config.hidden_sizes == (32, 32) and config.steps == 1000 and config.actor_lr == 1.0
    assert config.arm == "my_arm.xml" and isinstance(config.actor_lr, float)


@pytest.mark.parametrize("changes, says", [
    ({"seed": 1.5}, "seed: expected an integer, got 1.5"),
    ({"arm": 123}, "arm: expected a string, got 123"),
    ({"normalize_obs": "maybe"}, "normalize_obs: expected true or false, got 'maybe'"),
    ({"hidden_sizes": [32, 2.5]}, "hidden_sizes: expected a list of integers"),
    ({"steps": True}, "steps: expected an integer, got True"),
    ({"actor_lr": "fast"}, "actor_lr: expected a number, got 'fast'"),
])
def test_python_values_of_the_wrong_type_are_refused_by_name(changes, says):
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.Config(**changes)
    assert says in str(caught.value)
    with pytest.raises(cfg.ConfigError):
        cfg.Config().replace(**changes)


def test_a_config_built_in_python_round_trips_through_config_toml(tmp_path):
    config = cfg.Config(hidden_sizes=[32, 32], normalize_obs="off", seed=3.0)
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml(config), encoding="utf-8")
    assert cfg.load_toml(path) == config


# --- 12. integers in exponent notation are exact or refused ------------------------------------

@pytest.mark.parametrize("flag, text", [("--steps", "1e-3"), ("--seed", "15e-1"), ("--steps", "1.5"),
                                        ("--batch-size", "2.56e1")])
def test_an_integer_flag_that_is_not_a_whole_number_is_refused(flag, text, capsys, tmp_path):
    code, err = cli_run(["train", "--run-dir", tmp_path / "run", flag, text], capsys)
    line = one_error_line(code, err)
    assert f"expected an integer, got '{text}'" in line
    assert not (tmp_path / "run").exists()


def test_an_integer_in_exponent_notation_is_exact():
    assert cfg.coerce("steps", "1e3", int) == 1000
    assert cfg.coerce("steps", "25e2", int) == 2500
    assert cfg.coerce("seed", "12345678901234567e1", int) == 123456789012345670  # a float would round
    with pytest.raises(cfg.ConfigError, match="steps: expected an integer"):
        cfg.coerce("steps", "1e-3", int)


# --- runs to damage: a tiny trained Pendulum run, and a two_link one from an arm file whose
# name holds terminal escapes ------------------------------------------------------------------

TINY = ["--steps", "200", "--hidden-sizes", "8,8", "--eval-every", "200", "--eval-episodes", "1",
        "--final-eval-episodes", "1", "--threads", "1", "--warmup-steps", "100", "--quiet"]
ESCAPES = "\x1b]0;owned\x07\x1b[2J"


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pendulum") / "run"
    assert cli.main(["train", "--env", "Pendulum-v1", "--run-dir", str(run), *TINY]) == 0
    return run


@pytest.fixture(scope="module")
def escaped_arm_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("escaped")
    arm = root / f"arm{ESCAPES}.xml"
    shutil.copyfile(builtin_path("two_link"), arm)
    run = root / "run"
    assert cli.main(["train", "--arm", str(arm), "--run-dir", str(run), "--steps", "100",
                     "--eval-every", "100", *TINY[4:]]) == 0
    return run


def _with_metadata(run: Path, dest: Path, **changes) -> Path:
    shutil.copytree(run, dest)
    path = dest / ckpt.FILENAME
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read("metadata.json"))
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            meta[outer] = {**meta[outer], inner: value}
        else:
            meta[key] = value
    rewrite(path, **{"metadata.json": json.dumps(meta).encode()})
    return dest


# --- 7. a checkpoint's text is data, never a format string, and is printed escaped ---------------

@pytest.mark.parametrize("changes", [
    {"stop_reason": "{x}"}, {"stop_reason": 5}, {"stop_reason": "{steps.__class__.__mro__}"},
    {"final_evaluation.success_rate": [1]}, {"final_evaluation.episodes": "many"},
], ids=["unknown-field", "number", "attribute", "rate-list", "episodes-text"])
def test_a_finished_run_whose_checkpoint_lies_is_one_error_naming_it(pendulum, tmp_path, capsys, changes):
    run = _with_metadata(pendulum, tmp_path / "run", **changes)
    code, err = cli_run(["train", "--run-dir", run, "--resume"], capsys)
    line = one_error_line(code, err)
    assert str(run / ckpt.FILENAME) in line and next(iter(changes)).split(".")[-1] in line
    assert "__mro__" not in line or "{steps.__class__.__mro__}" in line


def test_the_genuine_finished_run_still_resumes_to_its_summary(pendulum, tmp_path, capsys):
    run = _with_metadata(pendulum, tmp_path / "run")
    capsys.readouterr()
    assert cli.main(["train", "--run-dir", str(run), "--resume"]) == 0
    assert "ran the 200 steps asked for" in capsys.readouterr().out


def test_evaluate_prints_the_checkpoints_arm_with_its_escapes_escaped(escaped_arm_run, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(escaped_arm_run), "--episodes", "1"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert printable(ESCAPES) in out


# --- 13. the end effector must be moved by the arm's joints -------------------------------------

@pytest.mark.parametrize("command", [["inspect", "two_link"], ["train", "--steps", "10"]])
def test_the_target_as_end_effector_is_refused(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = cli_run([*command, "--end-effector", "target"], capsys)
    line = one_error_line(code, err)
    assert "end effector 'target' is on the mocap body 'target'" in line
    assert list(tmp_path.iterdir()) == []


def test_an_end_effector_fixed_to_the_world_is_refused(tmp_path):
    text = builtin_path("two_link").read_text().replace("<worldbody>", '<worldbody><site name="post"/>', 1)
    arm = tmp_path / "post.xml"
    arm.write_text(text)
    with pytest.raises(ValueError, match="end effector 'post' is fixed to the world"):
        load_arm(arm, "post")
    load_arm(arm, "fingertip")


# --- 5. updates per step: bounded, and a signal ends a step's updates --------------------------

def test_absurd_updates_per_step_are_refused(tmp_path, capsys):
    code, err = cli_run(["train", "--run-dir", tmp_path / "run", "--updates-per-step", "1e17"], capsys)
    assert "updates_per_step must be at most 1000, got 1e+17" in one_error_line(code, err)
    assert not (tmp_path / "run").exists()


def test_a_signal_during_a_steps_updates_stops_them_and_saves(tmp_path, monkeypatch):
    from reacher import api
    from reacher.ddpg.agent import Agent

    calls = []
    update = Agent.update

    def interrupting_update(self, *batch):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # Training's handler takes it: a first Ctrl-C
        return update(self, *batch)

    monkeypatch.setattr(Agent, "update", interrupting_update)
    outcome = api.learn(cfg.Config(env="Pendulum-v1", hidden_sizes=(8, 8), threads=1, steps=400,
                                   warmup_steps=50, batch_size=16, updates_per_step=1000),
                        tmp_path / "run", progress=False)
    assert outcome.interrupted_by == "SIGINT" and len(calls) < 10
    assert (tmp_path / "run" / ckpt.FILENAME).is_file()


# --- 9. inspect --config has train's bounds -----------------------------------------------------

@pytest.mark.parametrize("line, says", [
    ("frame_skip = 100000000", "frame_skip must be at most 1,000,000"),
    ("frame_skip = 10000000000", "frame_skip must be at most 1,000,000"),
    ("control_period_s = 1e9", "control_period_s must be at most 600"),
    ("frame_skip = 100000", "frame_skip 100000 makes each action 1000 s of simulated time"),
])
@pytest.mark.parametrize("command", ["inspect", "train"])
def test_timing_that_would_hang_a_step_is_refused(tmp_path, capsys, line, says, command):
    config = tmp_path / "c.toml"
    config.write_text(line + "\n")
    args = ["inspect", "two_link"] if command == "inspect" else ["train", "--run-dir", tmp_path / "run"]
    start = time.monotonic()
    code, err = cli_run([*args, "--config", config], capsys)
    assert says in one_error_line(code, err) and time.monotonic() - start < 5
    assert not (tmp_path / "run").exists()


# --- 4. a policy knows the arm it was trained on ------------------------------------------------

@pytest.fixture(scope="module")
def edited_arm_run(tmp_path_factory) -> tuple[Path, Path]:
    """A two_link run whose arm file had its gear doubled after training."""
    root = tmp_path_factory.mktemp("edited")
    arm = root / "arm.xml"
    shutil.copyfile(builtin_path("two_link"), arm)
    run = root / "run"
    assert cli.main(["train", "--arm", str(arm), "--run-dir", str(run), "--steps", "100",
                     "--eval-every", "100", *TINY[4:]]) == 0
    text = arm.read_text()
    assert text.count('gear="10"') >= 1
    arm.write_text(text.replace('gear="10"', 'gear="20"'))
    return run, arm


@pytest.mark.parametrize("command", [["evaluate", "--episodes", "1"], ["render", "--episodes", "1"]])
def test_evaluate_and_render_warn_when_the_arm_file_changed(edited_arm_run, tmp_path, capsys, command):
    run, arm = edited_arm_run
    extra = ["--out", str(tmp_path / "v.gif"), "--size", "64x64"] if command[0] == "render" else []
    capsys.readouterr()
    assert cli.main([command[0], str(run), *command[1:], *extra]) == 0
    err = capsys.readouterr().err
    assert f"warning: arm file {arm} has changed since the policy was trained on it" in err
    assert err.count("warning: arm file") == 1


def test_the_export_sidecar_names_the_arm_trained_on_and_the_example_refuses_the_edited_file(
        edited_arm_run, tmp_path, capsys):
    run, arm = edited_arm_run
    out = tmp_path / "p.onnx"
    capsys.readouterr()
    assert cli.main(["export", str(run), "--out", str(out)]) == 0
    assert "has changed since the policy was trained" in capsys.readouterr().err
    sidecar = json.loads(out.with_suffix(".json").read_text())
    trained = ckpt.load(run).metadata["arm_sha256"]
    assert sidecar["arm"]["sha256"] == trained != hashlib.sha256(arm.read_bytes()).hexdigest()
    example = Path(__file__).resolve().parent.parent / "examples" / "onnx_reach.py"
    done = subprocess.run([sys.executable, str(example), str(out), str(arm), "1"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "is not the arm file the policy was trained on" in done.stderr


# --- 14. sweeps: a trial that can never be scheduled, and a stop that leaves nothing running -----

@needs_ray
def test_a_trial_asking_more_threads_than_cpus_is_refused_up_front(tmp_path, capsys):
    spec = write_spec(tmp_path, "steps = 100\nseeds = [0]\nthreads = 64\n")
    out = tmp_path / "out"
    start = time.monotonic()
    code, err = cli_run(["sweep", spec, "--out", out], capsys)
    line = one_error_line(code, err)
    assert f"sweep spec {spec}: trial seed=0 asks for threads = 64" in line
    assert f"more CPUs than this machine has ({cfg.usable_cpus()})" in line
    assert time.monotonic() - start < 5 and not out.exists()


def test_a_sweep_seed_beyond_what_numpy_takes_names_the_spec(tmp_path, capsys):
    spec = write_spec(tmp_path, f"steps = 100\nseeds = [0, {2**62}]\n")
    code, err = cli_run(["sweep", spec, "--out", tmp_path / "out"], capsys)
    line = one_error_line(code, err)
    assert str(spec) in line and "seeds must be below 2**62" in line and str(2**62) in line


@needs_ray
@pytest.mark.slow
def test_sigterm_stops_the_sweeps_one_ray_and_leaves_none_of_its_processes(tmp_path):
    """Before: Tune's thread, still running after ray.shutdown, auto-started a second local
    Ray (a new session carrying the driver's pid), whose agents outlived the driver."""
    spec = write_spec(tmp_path, 'hidden_sizes = "16,16"\nsteps = 5000\nseeds = [0]\n')
    out = tmp_path / "out"
    (trial,) = load_spec(spec).trials(out.resolve())
    with open(tmp_path / "sweep.log", "w+") as log:
        proc = start_sweep(spec, out, log)
        try:
            wait_for_checkpoint(proc, log, trial.run_dir)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            deadline = time.monotonic() + 10
            while session_members(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = session_members(proc.pid)
            log.seek(0)
            printed = log.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            end_session(proc.pid)
    assert code == 143, printed
    assert "Started a local Ray instance" not in printed and "Initializing Ray automatically" not in printed
    assert not left, f"Ray processes outlived the sweep: {left}"


# --- 15. devices, seeds, names, divergent settings, threads ------------------------------------

def test_a_device_that_does_not_exist_is_named_not_a_corrupted_checkpoint(pendulum, capsys):
    code, err = cli_run(["evaluate", pendulum, "--device", "foo", "--episodes", "1"], capsys)
    line = one_error_line(code, err)
    assert "device must be 'cpu' or 'cuda'" in line and "'foo'" in line and "corrupted" not in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_load_policy_on_cuda_without_a_gpu_says_so(pendulum):
    with pytest.raises(ValueError, match="device 'cuda' requested but no CUDA GPU is available"):
        load_policy(pendulum, device="cuda")


@pytest.mark.parametrize("command", ["evaluate", "render"])
def test_a_negative_episode_seed_is_one_error(pendulum, capsys, command):
    code, err = cli_run([command, pendulum, "--seed", "-1", "--episodes", "1"], capsys)
    assert "--seed must be an integer from 0 to 2**62 - 1, got '-1'" in one_error_line(code, err)


def test_a_negative_seed_from_python_is_one_error(pendulum):
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 2\\*\\*62, got -1"):
        evaluate_policy(load_policy(pendulum), 1, seed=-1)


@pytest.mark.parametrize("command", [["inspect"], ["train", "--steps", "10", "--arm"]])
def test_an_arm_path_that_is_not_utf8_is_one_error(tmp_path, capsys, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"\xff.xml")  # as argv gives such a name: a lone surrogate
    shutil.copyfile(builtin_path("two_link"), tmp_path / name)
    code, err = cli_run([*command, str(tmp_path / name)], capsys)
    line = one_error_line(code, err)
    assert "\\udcff.xml: has a name that is not UTF-8" in line


@pytest.mark.parametrize("flag, value, says", [
    ("--actor-lr", "1e30", "actor_lr must be at most 1 (Adam's step size), got 1e+30"),
    ("--critic-lr", "2", "critic_lr must be at most 1"),
    ("--precision-weight", "1e308", "precision_weight must be at most 1e+06"),
    ("--ctrl-cost-weight", "1e308", "ctrl_cost_weight must be at most 1e+06"),
])
def test_settings_that_make_the_networks_diverge_are_refused_by_name(tmp_path, capsys, flag, value, says):
    code, err = cli_run(["train", "--run-dir", tmp_path / "run", flag, value], capsys)
    assert says in one_error_line(code, err)
    assert not (tmp_path / "run").exists()


def test_the_usable_cpus_follow_the_affinity_not_the_machine(monkeypatch):
    """What a local sweep's Ray is given, and what a trial's threads are checked against."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert cfg.usable_cpus() == 1
    done = subprocess.run(["taskset", "-c", "0", sys.executable, "-c",
                           "from reacher.config import usable_cpus; print(usable_cpus())"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.stdout.strip() == "1", done.stderr



def test_trainings_own_lines_escape_what_they_name():
    import io

    from reacher.run.progress import Progress

    log = io.StringIO()
    Progress(enabled=False, log=log).line(f"warning: arm{ESCAPES}.xml: the simulation blew up")
    assert log.getvalue() == f"warning: arm{printable(ESCAPES)}.xml: the simulation blew up\n"


def test_networks_that_diverge_name_the_settings_to_lower(tmp_path, monkeypatch):
    from reacher import api
    from reacher.ddpg.agent import Agent

    monkeypatch.setattr(Agent, "act", lambda self, obs: np.full(1, np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match=r"training diverged at step 20: .*lower actor_lr \(0.001\) and "
                                         r"critic_lr \(0.001\)"):
        api.learn(cfg.Config(env="Pendulum-v1", hidden_sizes=(8, 8), threads=1, steps=100, warmup_steps=20),
                  tmp_path / "run", progress=False)


def test_the_commands_warnings_are_one_escaped_line():
    code = ("import warnings; from reacher import cli\n"
            "cli.main = lambda: warnings.warn('from the arm file: x\\x1b[2J\\ny') or 0\n"
            "cli.run()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 0 and done.stderr == "warning: from the arm file: x\\x1b[2J y\n", done.stderr


def test_the_learning_curves_title_is_escaped(tmp_path, monkeypatch):
    """The curve's title is the arm file's name: drawn with its control characters escaped,
    as every printed name is (raw, matplotlib warned of missing glyphs for them)."""
    import matplotlib.axes

    from reacher.run import metrics

    csv = tmp_path / "metrics.csv"
    csv.write_text(",".join(metrics.COLUMNS) + "\n" + ",".join(["1000"] + ["0.5"] * (len(metrics.COLUMNS) - 1)) + "\n")
    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, t, *a, **k: titles.append(t) or real(self, t, *a, **k))
    assert metrics.plot_curve(csv, tmp_path / "curve.png", title="arm\x1b[2J\x07") is not None
    assert titles == [printable("arm\x1b[2J\x07")] and "\x1b" not in titles[0]
