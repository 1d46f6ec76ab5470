"""reacher.run.checkpoint and reacher.run.policy: saving, loading, and refusing bad checkpoints.

Every refusal is a `CheckpointError` (a ValueError) whose message names the file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from reacher.config import Config
from reacher.errors import CheckpointError
from reacher.run import checkpoint as ckpt
from reacher.run.policy import load_policy
from reacher.run.training import Training
from reacher.task.env import ReachEnv

TINY = Config(steps=600, warmup_steps=200, eval_every=300, eval_episodes=2, final_eval_episodes=2,
              checkpoint_every=300, batch_size=32, hidden_sizes=(32, 32), threads=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Training:
    """A tiny finished two_link run (its Training object, agent included)."""
    training = Training(TINY, tmp_path_factory.mktemp("trained") / "run", progress=False)
    training.run()
    return training


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    """A private copy of the trained run directory, free to damage."""
    return Path(shutil.copytree(trained.run_dir, tmp_path / "run"))


# What every reacher checkpoint declares: the sizes that bound what loading it may allocate.
SIZES = {"obs_dim": 3, "act_dim": 1, "config": {"hidden_sizes": [8, 8]}}


def _observations(n: int = 20) -> np.ndarray:
    env = ReachEnv("two_link")
    obs = [env.reset(seed=s)[0] for s in range(n)]
    rng = np.random.default_rng(0)
    for _ in range(5):
        obs.append(env.step(rng.uniform(-1, 1, 2).astype(np.float32))[0])
    return np.array(obs)


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _refused(path, *words) -> CheckpointError:
    """Load `path`; it must raise CheckpointError naming the file and saying each of `words`."""
    with pytest.raises(CheckpointError) as caught:
        ckpt.load(path, with_replay=True)
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, message
    assert isinstance(caught.value, ValueError)
    return caught.value


# --- a trained run, saved and loaded ----------------------------------------------------------------

def test_loaded_policy_acts_exactly_like_the_kept_policy(trained):
    """load_policy reads the policy the run kept, the best evaluated (reacher.run.gate)."""
    from reacher.ddpg.agent import Agent
    from reacher.run.settings import agent_kwargs

    policy = load_policy(trained.run_dir)
    kept = Agent(trained.obs_dim, trained.act_dim, **agent_kwargs(trained.config))
    kept.load_state_dict(trained.gate.kept_policy, policy_only=True)
    obs = _observations()
    np.testing.assert_array_equal(policy(obs), kept.act(obs))
    for o in obs[:3]:
        np.testing.assert_array_equal(policy(o), kept.act(o))
    # The run records its config with the arm-adapted fields resolved (reacher.run.settings).
    assert policy.config == trained.config
    assert trained.config.replace(max_steps=0, noise_decay_steps=0, episode_s=0.0, control="auto",
                                  teacher_weight=1.0) == TINY  # the teacher resolves to 0 off ee
    # The normaliser came along: without it the actions would differ.
    assert policy.agent.norm.count.item() == kept.norm.count.item() > 0


def test_loaded_policy_makes_its_env(trained):
    policy = load_policy(trained.run_dir / ckpt.FILENAME)  # a file works as well as the directory
    env = policy.make_env()
    obs, _ = env.reset(seed=0)
    assert policy(obs).shape == env.action_space.shape
    assert isinstance(env.unwrapped, ReachEnv) and env.unwrapped.arm.name == "two_link"


def test_the_checkpoint_format_is_listed_in_one_place(trained):
    """reacher.run.snapshot says what a training checkpoint holds: every TrainingState field
    is in its metadata, and the counters the loader checks are among them."""
    from dataclasses import fields

    from reacher.run import snapshot

    meta = ckpt.load(trained.run_dir).metadata
    state = {f.name for f in fields(snapshot.TrainingState)}
    assert state <= set(meta)
    assert set(snapshot.COUNTERS) <= state | {"updates"} and ckpt.COUNTERS is snapshot.COUNTERS
    assert snapshot.TrainingState.from_dict(meta) == trained.state


def test_checkpoint_holds_everything_resume_needs(trained):
    checkpoint = ckpt.load(trained.run_dir, with_replay=True)
    meta = checkpoint.metadata
    assert meta["format"] == ckpt.FORMAT
    assert (meta["obs_dim"], meta["act_dim"]) == (15, 2)
    assert meta["arm"] == "two_link" and meta["env"] is None
    assert meta["env_steps"] == 600 and meta["updates"] == trained.agent.updates
    assert 400 <= meta["updates"] <= 401  # one per step after the 200 warm-up steps
    assert meta["config"]["hidden_sizes"] == [32, 32]
    assert set(meta["versions"]) >= {"reacher", "torch", "mujoco", "gymnasium", "numpy"}
    assert set(checkpoint.model["agent"]) >= {"actor", "critic", "actor_target", "critic_target",
                                              "actor_opt", "critic_opt", "norm", "updates"}
    for name, tensor in trained.agent.actor.state_dict().items():
        torch.testing.assert_close(checkpoint.model["agent"]["actor"][name], tensor, rtol=0, atol=0)
    assert len(checkpoint.replay["obs"]) == 600
    # Without with_replay the buffer is not read at all.
    assert ckpt.load(trained.run_dir).replay is None


def test_run_directory_holds_no_temporary_files(trained):
    assert not [p.name for p in trained.run_dir.iterdir() if p.name.endswith(".tmp")]


def test_save_load_round_trip(tmp_path):
    model = {"weights": torch.arange(6.0).reshape(2, 3), "nested": {"b": torch.ones(2, dtype=torch.int64)},
             "count": 7, "rng": torch.get_rng_state()}
    replay = {"obs": np.arange(12, dtype=np.float32).reshape(4, 3), "episode_len": np.array(2)}
    path = ckpt.save(tmp_path / "deep" / "x.ckpt", {**SIZES, "note": "é"}, model, replay)
    assert path == tmp_path / "deep" / "x.ckpt"
    loaded = ckpt.load(path, with_replay=True)
    assert loaded.path == path
    assert loaded.metadata == {"format": ckpt.FORMAT, **SIZES, "note": "é"}
    torch.testing.assert_close(loaded.model["weights"], model["weights"])
    torch.testing.assert_close(loaded.model["nested"]["b"], model["nested"]["b"])
    assert loaded.model["count"] == 7
    torch.testing.assert_close(loaded.model["rng"], model["rng"])
    assert loaded.replay.keys() == replay.keys()
    for key in replay:
        np.testing.assert_array_equal(loaded.replay[key], replay[key])
    assert sorted(os.listdir(path.parent)) == ["x.ckpt"]  # no temporary file left behind


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "x.ckpt"
    ckpt.save(path, {**SIZES, "n": 1}, {"w": torch.zeros(1)})
    ckpt.save(path, {**SIZES, "n": 2}, {"w": torch.ones(1)})
    assert ckpt.load(path).metadata["n"] == 2
    assert sorted(os.listdir(tmp_path)) == ["x.ckpt"]


# --- refusals ---------------------------------------------------------------------------------------

def test_pickled_code_in_model_is_refused_and_never_runs(run_copy, tmp_path):
    marker = tmp_path / "pwned_marker"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = run_copy / ckpt.FILENAME
    members = _members(path)
    members["model.pt"] = _torch_bytes({"agent": Payload()})
    _write_zip(path, members)
    _refused(path, "model.pt", "refused")
    with pytest.raises(CheckpointError, match="refused"):
        load_policy(run_copy)
    assert not marker.exists()
    # The payload is live: an unsafe load would have run it.
    torch.load(io.BytesIO(members["model.pt"]), weights_only=False)
    assert marker.exists()


def test_plain_pickle_as_model_is_refused(run_copy, tmp_path):
    marker = tmp_path / "pwned_marker"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = run_copy / ckpt.FILENAME
    members = _members(path)
    members["model.pt"] = pickle.dumps({"agent": Payload()}, protocol=2)
    _write_zip(path, members)
    _refused(path, "model.pt", "refused")
    assert not marker.exists()


def test_raw_pickle_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(pickle.dumps({"actor": [1, 2, 3]}))
    _refused(path, "not a reacher checkpoint")


def test_truncated_file_is_refused(run_copy):
    path = run_copy / ckpt.FILENAME
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    _refused(path, "truncated")


def test_flipped_bytes_inside_model_are_caught_by_the_crc(run_copy):
    path = run_copy / ckpt.FILENAME
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.pt")
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    middle = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))
    _refused(path, "corrupted")


def test_damaged_model_with_a_valid_crc_is_refused(run_copy):
    path = run_copy / ckpt.FILENAME
    members = _members(path)
    members["model.pt"] = members["model.pt"][: len(members["model.pt"]) // 2]
    _write_zip(path, members)
    _refused(path, "model.pt is corrupted")


@pytest.mark.parametrize("member", ["model.pt", "metadata.json"])
def test_missing_member_is_refused(run_copy, member):
    path = run_copy / ckpt.FILENAME
    members = _members(path)
    del members[member]
    _write_zip(path, members)
    _refused(path, "incomplete", member)


@pytest.mark.parametrize("metadata, words", [
    ({"format": "reacher-checkpoint/99"}, ["reacher-checkpoint/99", ckpt.FORMAT]),
    ({"obs_dim": 15}, ["format None"]),
])
def test_wrong_format_is_refused(tmp_path, metadata, words):
    path = _write_zip(tmp_path / "x.ckpt", {"metadata.json": json.dumps(metadata).encode(),
                                            "model.pt": _torch_bytes({})})
    _refused(path, *words)


def test_metadata_that_is_not_json_is_refused(tmp_path):
    path = _write_zip(tmp_path / "x.ckpt", {"metadata.json": b"{oops", "model.pt": _torch_bytes({})})
    _refused(path, "metadata")


@pytest.mark.parametrize("text", [b"[]", b'"reacher"', b'{"format": "\xff"}'])
def test_metadata_of_the_wrong_shape_is_refused(tmp_path, text):
    path = _write_zip(tmp_path / "x.ckpt", {"metadata.json": text, "model.pt": _torch_bytes({})})
    _refused(path, "metadata")


def test_replay_holding_objects_is_refused(tmp_path):
    path = ckpt.save(tmp_path / "x.ckpt", SIZES, {"w": torch.zeros(1)},
                     {"obs": np.array([{"not": "an array"}], dtype=object)})
    _refused(path, "replay.npz")
    assert ckpt.load(path).replay is None  # a policy load never opens the buffer


def test_damaged_replay_is_refused(run_copy):
    path = run_copy / ckpt.FILENAME
    members = _members(path)
    members["replay.npz"] = members["replay.npz"][:1000]
    _write_zip(path, members)
    _refused(path, "replay.npz")


def test_run_directory_without_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'empty'}.*holds no {ckpt.FILENAME}"):
        ckpt.load(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="holds no"):
        load_policy(tmp_path / "empty")


def test_nonexistent_path(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'nope'}: no such run directory"):
        ckpt.load(tmp_path / "nope")


def test_model_without_an_agent_cannot_be_restored(run_copy):
    path = run_copy / ckpt.FILENAME
    members = _members(path)
    members["model.pt"] = _torch_bytes({"torch_rng": torch.get_rng_state()})
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match="cannot be restored"):
        load_policy(run_copy)


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")
@pytest.mark.parametrize("model", ["tensor", "agent tensor"])
def test_model_of_the_wrong_shape_cannot_be_restored(run_copy, model):
    path = run_copy / ckpt.FILENAME
    members = _members(path)
    members["model.pt"] = _torch_bytes(torch.zeros(3) if model == "tensor" else {"agent": torch.zeros(3)})
    _write_zip(path, members)
    with pytest.raises(CheckpointError, match="cannot be restored"):
        load_policy(run_copy)


def test_sizes_of_another_arm_are_refused(trained):
    checkpoint = ckpt.load(trained.run_dir)
    three = ReachEnv("three_link")
    obs_dim, act_dim = three.observation_space.shape[0], three.action_space.shape[0]
    with pytest.raises(CheckpointError) as caught:
        ckpt.check_sizes(checkpoint, obs_dim, act_dim, "the three_link env")
    message = str(caught.value)
    assert str(checkpoint.path) in message
    assert "observation size 15 and action size 2" in message
    assert f"the three_link env has {obs_dim} and {act_dim}" in message
    ckpt.check_sizes(checkpoint, 15, 2, "the same env")  # no error


# --- a failed resume touches nothing ---------------------------------------------------------------

def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


def test_resuming_with_another_arm_is_refused_before_anything_changes(run_copy):
    before = _snapshot(run_copy)
    with pytest.raises(CheckpointError, match="observation size 15 and action size 2"):
        Training(TINY.replace(arm="three_link", steps=900), run_copy, resume=True, progress=False)
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize("damage", ["truncate", "bad format", "no agent"])
def test_resuming_a_damaged_checkpoint_is_refused_before_anything_changes(run_copy, damage):
    path = run_copy / ckpt.FILENAME
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5000])
    else:
        members = _members(path)
        if damage == "bad format":
            members["metadata.json"] = json.dumps({"format": "other"}).encode()
        else:
            members["model.pt"] = _torch_bytes({"torch_rng": torch.get_rng_state()})
        _write_zip(path, members)
    before = _snapshot(run_copy)
    with pytest.raises(CheckpointError, match=str(path)):
        Training(TINY.replace(steps=900), run_copy, resume=True, progress=False)
    assert _snapshot(run_copy) == before
    assert b"600," in before["metrics.csv"]  # the rows logged so far are still there
