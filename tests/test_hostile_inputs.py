"""Hostile inputs: run directories, checkpoints, config files and sweep specs from someone else.

Each must give one error naming the file, field or value at fault (a ValueError subclass in
Python; one `error:` line and exit 2 from the command), never a traceback, never a hang,
never run code, and write nothing. The generated cases use hypothesis with few examples
and no deadline (the machine is shared), so the whole file takes seconds.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reacher import cli
from reacher import config as cfg
from reacher.ddpg.agent import Agent
from reacher.ddpg.replay import ReplayBuffer
from reacher.envids import check_untrusted, import_user_modules
from reacher.errors import CheckpointError, EnvIdError
from reacher.run import checkpoint as ckpt
from reacher.run.policy import load_policy
from reacher.run.settings import agent_kwargs
from reacher.tools.sweep_spec import load_spec

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
FEW = settings(max_examples=30, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CONFIG = cfg.Config(env="Pendulum-v1", hidden_sizes=(8, 8), threads=1)


# --- a small genuine run to damage: Pendulum, 8-unit networks, no training needed -----------------

def _metadata(config: cfg.Config = CONFIG, **changes) -> dict:
    meta = {"obs_dim": 3, "act_dim": 1, "env": config.env, "arm": None, "config": cfg.as_dict(config),
            "env_steps": 20, "episodes": 1, "updates": 0, "wall_time": 1.0, "eval_time": 0.0,
            "update_debt": 0.0, "next_eval": 2000, "next_checkpoint": 5000, "finished": False}
    return {**meta, **changes}


def _replay(n: int = 20) -> dict:
    buffer = ReplayBuffer(3, 1, 100)
    rng = np.random.default_rng(0)
    for _ in range(n):
        buffer.add(rng.normal(size=3), rng.uniform(-1, 1, 1), -1.0, rng.normal(size=3), False)
    buffer.end_episode()
    return buffer.state_dict()


def make_run(run_dir: Path, config: cfg.Config = CONFIG, **meta) -> Path:
    agent = Agent(3, 1, **agent_kwargs(config))
    ckpt.save(run_dir / ckpt.FILENAME, _metadata(config, **meta),
              {"agent": agent.state_dict(), "torch_rng": torch.get_rng_state()}, _replay())
    (run_dir / "config.toml").write_text(cfg.to_toml(config), encoding="utf-8")
    return run_dir


def rewrite(path: Path, **members: bytes) -> Path:
    """The checkpoint at `path` with some members replaced (None: removed)."""
    with zipfile.ZipFile(path) as archive:
        old = {name: archive.read(name) for name in archive.namelist()}
    old.update(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in old.items():
            if data is not None:
                archive.writestr(name, data)
    return path


def listing(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in [root, *root.rglob("*")]
            if not p.is_symlink()}


def one_error_line(code, err: str) -> str:
    lines = err.splitlines()
    assert code == 2 and "Traceback" not in err and len(lines) == 1, f"exit {code}\n{err}"
    assert lines[0].startswith("error: ")
    return lines[0]


def cli_run(args, capsys) -> tuple[int, str]:
    capsys.readouterr()
    threads = torch.get_num_threads()
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    finally:
        torch.set_num_threads(threads)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def genuine(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("genuine") / "run")


def test_the_genuine_run_loads(genuine):
    policy = load_policy(genuine)
    assert policy(np.zeros(3)).shape == (1,)
    assert len(ckpt.load(genuine, with_replay=True).replay["obs"]) == 20


# --- 1. an env id from a file never imports a module -------------------------------------------

def planted_module(directory: Path) -> tuple[str, Path]:
    """A module that leaves a marker file when imported, under a name no test shares."""
    name = f"planted_{uuid.uuid4().hex[:8]}"
    marker = directory / f"{name}.ran"
    (directory / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    return name, marker


def test_a_run_dir_naming_a_module_never_imports_it(tmp_path):
    """The attack of the issue: a run dir whose env is "module:Id", evaluated in the
    directory holding module.py. Refused, unless the user names the module."""
    name, marker = planted_module(tmp_path)
    evil = cfg.Config(env=f"{name}:Pendulum-v1", hidden_sizes=(8, 8), threads=1)
    run = make_run(tmp_path / "run", evil, env=evil.env)
    before = listing(run)
    result = subprocess.run([sys.executable, "-m", "reacher", "evaluate", "run", "--episodes", "1"],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    line = one_error_line(result.returncode, result.stderr)
    assert name in line and "--import" in line and "run/checkpoint.ckpt" in line
    assert not marker.exists() and listing(run) == before
    # Named on the command line, it is the user's to run.
    result = subprocess.run([sys.executable, "-m", "reacher", "evaluate", "run", "--episodes", "1",
                             "--import", name], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert marker.exists()


def test_resume_of_a_run_whose_config_toml_names_a_module_never_imports_it(tmp_path, monkeypatch, capsys):
    name, marker = planted_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run = make_run(tmp_path / "run")
    (run / "config.toml").write_text(cfg.to_toml(CONFIG.replace(env=f"{name}:Pendulum-v1")), encoding="utf-8")
    before = listing(run)
    line = one_error_line(*cli_run(["train", "--run-dir", run, "--resume", "--quiet"], capsys))
    assert str(run / "config.toml") in line and name in line
    assert not marker.exists() and listing(run) == before


def test_a_config_file_naming_a_module_never_imports_it(tmp_path, monkeypatch, capsys):
    name, marker = planted_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(f'env = "{name}:Pendulum-v1"\n', encoding="utf-8")
    line = one_error_line(*cli_run(["train", "--config", "c.toml", "--run-dir", "r"], capsys))
    assert "c.toml" in line and name in line
    assert not marker.exists() and not (tmp_path / "r").exists()
    # A sweep spec is a file too.
    (tmp_path / "spec.toml").write_text(f'seeds = [0]\n[grid]\nenv = ["Pendulum-v1", "{name}:X-v0"]\n')
    with pytest.raises(cfg.ConfigError, match=f"spec.toml: env '{name}:X-v0' would import"):
        load_spec(tmp_path / "spec.toml")
    assert not marker.exists()


def test_the_python_call_names_its_modules(tmp_path, monkeypatch):
    name, marker = planted_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    evil = CONFIG.replace(env=f"{name}:Pendulum-v1")
    run = make_run(tmp_path / "run", evil, env=evil.env)
    with pytest.raises(CheckpointError, match=f"would import module '{name}'"):
        load_policy(run)
    assert not marker.exists()
    policy = load_policy(run, env_modules=[name])
    assert marker.exists()
    policy.make_env().close()


def test_a_typed_env_with_a_missing_module_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(*cli_run(["train", "--env", "nonexistent_mod:Foo-v0", "--run-dir", "r"], capsys))
    assert "no module named 'nonexistent_mod'" in line
    line = one_error_line(*cli_run(["evaluate", "r", "--import", "nonexistent_mod"], capsys))
    assert "--import" in line and "nonexistent_mod" in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("env_id, says", [
    ("os:Pendulum-v1", None),  # imported already: importing it again runs nothing
    ("Pendulum-v1", None),
    ("reacher/TwoLink-v0", None),
    ("NoSuchEnv-v0", "not registered"),
    ("a:b:c", "more than one ':'"),
    ("never_imported_module_xyz:Pendulum-v1", "would import module"),
    (["a list"], "not a string"),
])
def test_which_ids_a_file_may_name(env_id, says):
    if says is None:
        check_untrusted(env_id, "f.toml")
    else:
        with pytest.raises(EnvIdError, match=says):
            check_untrusted(env_id, "f.toml")


def test_import_refuses_what_is_not_a_module_name():
    with pytest.raises(EnvIdError, match="not a module name"):
        import_user_modules(["../evil"])


# --- 6. loading checks sizes and types before it allocates --------------------------------------

def _deflated(size: int, name: str = "model.pt") -> bytes:
    """A zip archive of one member of `size` zero bytes, deflated to a thousandth of that."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            chunk = bytes(2**20)
            for _ in range(size // 2**20):
                member.write(chunk)
    return buf.getvalue()


def _peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_a_compressed_member_declaring_gigabytes_is_refused_before_reading(genuine, tmp_path):
    path = tmp_path / "bomb.ckpt"
    with zipfile.ZipFile(genuine / ckpt.FILENAME) as archive:
        metadata = archive.read("metadata.json")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("metadata.json", metadata)
        with archive.open("model.pt", "w", force_zip64=True) as member:
            for _ in range(300):
                member.write(bytes(2**20))
    assert path.stat().st_size < 2 * 2**20

    def load():
        with pytest.raises(CheckpointError, match="model.pt declares 314,572,800 bytes"):
            ckpt.load(path)
    assert _peak_mib(load) < 32


def test_an_archive_inside_model_pt_declaring_gigabytes_is_refused(genuine, tmp_path):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    rewrite(path, **{"model.pt": _deflated(100 * 2**20, "archive/data/0")})

    def load():
        with pytest.raises(CheckpointError, match="model.pt declares 104,857,600 bytes unpacked"):
            ckpt.load(path)
    assert _peak_mib(load) < 32


@pytest.mark.parametrize("change, says", [
    ({"config": {**cfg.as_dict(CONFIG), "hidden_sizes": [10**9]}}, "hidden_sizes"),
    ({"obs_dim": 10**10}, "obs_dim"),
    ({"act_dim": 2**64}, "act_dim"),
    ({"obs_dim": "3"}, "obs_dim"),
    ({"obs_dim": 100_000, "config": {**cfg.as_dict(CONFIG), "hidden_sizes": [50_000, 4000]}}, "memory"),
    ({"env_steps": -5}, "env_steps"),
    ({"wall_time": "long"}, "wall_time"),
    ({"config": [1, 2]}, "config must be an object"),
    ({"config": {"seed": 10**20}}, "seed"),
    ({"env": "nope_mod_xyz:Pendulum-v1"}, "would import module"),
])
def test_metadata_sizes_and_types_are_checked_before_allocating(genuine, tmp_path, change, says):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    rewrite(path, **{"metadata.json": json.dumps({"format": ckpt.FORMAT, **_metadata(), **change}).encode()})
    with pytest.raises(CheckpointError) as caught:
        load_policy(path)
    assert says in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_deeply_nested_metadata_is_one_error(genuine, tmp_path):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    rewrite(path, **{"metadata.json": b"[" * 100_000 + b"]" * 100_000})
    with pytest.raises(CheckpointError, match="nested too deeply"):
        ckpt.load(path)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _lying_npz(name: str, shape: tuple) -> bytes:
    """An npz whose member `name` declares `shape` in its header but holds 8 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(f"{name}.npy", header.getvalue() + bytes(8))
    return buf.getvalue()


@pytest.mark.parametrize("replay, says", [
    (lambda r: {**r, "episode_len": np.array(10**12)}, "episode_len"),
    (lambda r: {**r, "obs": r["obs"][:, :2]}, "obs has shape"),
    (lambda r: {**r, "future": r["future"] + 10**9}, "future"),
    (lambda r: {**r, "reward": np.array(["x"] * 20)}, "not numbers"),
])
def test_replay_sizes_and_types_are_checked(genuine, tmp_path, replay, says):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    rewrite(path, **{"replay.npz": _npz(**replay(_replay()))})
    with pytest.raises(CheckpointError, match=says):
        ckpt.load(path, with_replay=True)
    ckpt.load(path)  # a policy load never opens the buffer


def test_an_array_header_declaring_more_than_its_data_is_refused(genuine, tmp_path):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    rewrite(path, **{"replay.npz": _lying_npz("obs", (10**6, 3))})
    with pytest.raises(CheckpointError, match="declares shape"):
        ckpt.load(path, with_replay=True)


# --- generated: config files ---------------------------------------------------------------------

def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


FIELD_NAMES = [f.name for f in cfg.fields()]
SCALARS = (st.integers(min_value=-2**70, max_value=2**70) | st.floats(allow_nan=True) | st.booleans()
           | st.text(max_size=12) | st.sampled_from(["1e400", "1e20", "-1", "64,64", "Pendulum-v1",
                                                    "os:X", "cuda", "ou"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=2), max_leaves=6)


@FEW
@given(st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), VALUES, max_size=4))
def test_generated_config_files_give_a_config_or_one_error_naming_the_file(tmp_path, values):
    path = tmp_path / "c.toml"
    path.write_text("\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in values.items()) + "\n",
                    encoding="utf-8")
    args = cli.build_parser().parse_args(["train", "--config", str(path)])
    try:
        cli.config_from_args(args)
    except cfg.ConfigError as err:
        assert str(path) in str(err) and "\n" not in str(err), str(err)


@FEW
@given(st.binary(max_size=200))
def test_generated_bytes_as_a_config_file_give_one_error_naming_the_file(tmp_path, data):
    path = tmp_path / "c.toml"
    path.write_bytes(data)
    try:
        cfg.read_toml(path)
    except cfg.ConfigError as err:
        assert str(path) in str(err) and "\n" not in str(err), str(err)


def test_a_fifo_as_config_file_is_refused_at_once(tmp_path, capsys):
    os.mkfifo(tmp_path / "c.toml")
    line = one_error_line(*cli_run(["train", "--config", tmp_path / "c.toml"], capsys))
    assert "not a regular file" in line


# --- generated: checkpoints and run directories ----------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
                    | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=8)
META_KEYS = ["obs_dim", "act_dim", "env", "config", "env_steps", "format", "wall_time", "next_eval"]


@FEW
@given(key=st.sampled_from(META_KEYS), value=JSON)
def test_generated_metadata_loads_or_is_one_error(genuine, tmp_path, key, value):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    rewrite(path, **{"metadata.json": json.dumps({"format": ckpt.FORMAT, **_metadata(), key: value}).encode()})
    try:
        policy = load_policy(path)
    except CheckpointError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return
    policy.make_env().close()


@FEW
@given(config=st.dictionaries(st.sampled_from(FIELD_NAMES), VALUES, max_size=3))
def test_generated_configs_inside_a_checkpoint_load_or_are_one_error(genuine, tmp_path, config):
    path = tmp_path / "c.ckpt"
    path.write_bytes((genuine / ckpt.FILENAME).read_bytes())
    meta = _metadata()
    meta["config"] = {**meta["config"], **config}
    rewrite(path, **{"metadata.json": json.dumps({"format": ckpt.FORMAT, **meta}).encode()})
    try:
        load_policy(path)
    except CheckpointError as err:
        assert str(path) in str(err) and "\n" not in str(err)


DAMAGE = st.one_of(
    st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=4000)),
    st.tuples(st.just("flip"), st.integers(min_value=0, max_value=4000)),
    st.tuples(st.just("member"), st.sampled_from(["metadata.json", "model.pt", "replay.npz"]),
              st.binary(max_size=64)),
    st.tuples(st.just("fifo")), st.tuples(st.just("directory")), st.tuples(st.just("symlink")),
)


@FEW
@given(damage=DAMAGE)
def test_generated_damaged_run_dirs_give_one_error_line_and_change_nothing(genuine, tmp_path_factory,
                                                                           capsys, damage):
    root = tmp_path_factory.mktemp("damaged")
    run = make_run(root / "run")
    path = run / ckpt.FILENAME
    kind = damage[0]
    if kind == "truncate":
        path.write_bytes(path.read_bytes()[:damage[1]])
    elif kind == "flip":
        data = bytearray(path.read_bytes())
        data[damage[1] % len(data)] ^= 0xFF
        path.write_bytes(bytes(data))
    elif kind == "member":
        rewrite(path, **{damage[1]: damage[2]})
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    else:
        path.unlink()
        path.symlink_to("/dev/zero")
    before = listing(root)
    code, err = cli_run(["evaluate", run, "--episodes", "1"], capsys)
    if code != 0:  # a flipped byte in a zip's padding can leave a working checkpoint
        one_error_line(code, err)
    assert listing(root) == before
