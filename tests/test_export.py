"""`reacher export`: the ONNX file gives the trained policy's actions, its sidecar describes
the observation and action exactly, and examples/onnx_reach.py reaches with it without
reacher. Bad input is one `error:` line and writes nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import mujoco
import numpy as np
import pytest
from conftest import BODY_HAND_XML, SLIDER_XML, write_arm
from test_cli import ENV, assert_one_error_line, in_process, listing

from reacher.config import Config
from reacher.run.training import train
from reacher.task.env import ReachEnv
from reacher.task.goal import flatten

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "onnx_reach.py"
needs_onnx = pytest.mark.skipif(
    find_spec("onnx") is None or find_spec("onnxruntime") is None,
    reason="onnx or onnxruntime is not installed (pip install 'reacher[export]'; make test installs it)")

# A few hundred steps: the weights and the normaliser's statistics are those of a real
# run, which is all the equality needs; it need not reach.
TINY = Config(steps=400, warmup_steps=200, eval_every=400, eval_episodes=2, final_eval_episodes=2,
              checkpoint_every=400, batch_size=32, hidden_sizes=(32, 32), threads=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("export") / "run"
    train(TINY, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported") / "policy.onnx"
    from reacher.tools.export import export_policy

    export_policy(tiny_run, out)
    return out


def _session(path: Path):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _real_observations(policy, episodes: int = 6) -> np.ndarray:
    """Flat observations from env rollouts: half the episodes driven by the policy, half by
    random actions, so the batch covers states the policy does and does not steer into."""
    env, rng, seen = policy.make_env(), np.random.default_rng(0), []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        done = False
        while not done:
            seen.append(flatten(obs))  # the flat layout the agent and the ONNX file read
            action = policy(obs) if episode % 2 else rng.uniform(-1, 1, env.action_space.shape)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()
    return np.asarray(seen, dtype=np.float32)


# --- the ONNX file ---------------------------------------------------------------------------

@needs_onnx
def test_onnxruntime_gives_the_torch_policys_actions(tiny_run, exported):
    import torch

    from reacher.run.policy import load_policy
    from reacher.tools.export import TOLERANCE

    policy = load_policy(tiny_run)
    observations = _real_observations(policy)
    assert len(observations) == 300
    with torch.no_grad():
        expected = policy.agent.actor(policy.agent.norm(torch.as_tensor(observations))).numpy()
        unnormalised = policy.agent.actor(torch.as_tensor(observations)).numpy()
    # The normaliser matters here, so a graph without it could not pass.
    assert np.abs(unnormalised - expected).max() > 0.01
    actions = _session(exported).run(["action"], {"observation": observations})[0]
    assert actions.shape == (300, 2) and actions.dtype == np.float32
    np.testing.assert_allclose(actions, expected, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(actions, policy(observations), rtol=0, atol=TOLERANCE)
    one = _session(exported).run(["action"], {"observation": observations[:1]})[0]  # batch of one
    np.testing.assert_allclose(one, expected[:1], rtol=0, atol=TOLERANCE)


@needs_onnx
def test_sidecar_describes_the_two_link_policy(tiny_run, exported):
    info = json.loads(exported.with_suffix(".json").read_text(encoding="utf-8"))
    assert info["format"] == "reacher-policy/1"
    assert info["onnx"]["sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert info["onnx"]["opset"] == 17
    assert info["onnx"]["input"] == {"name": "observation", "dtype": "float32", "shape": ["batch", 15]}
    arm_file = ROOT / "assets" / "two_link.xml"
    assert info["arm"]["file"] == "two_link.xml"
    assert info["arm"]["sha256"] == hashlib.sha256(arm_file.read_bytes()).hexdigest()
    assert info["observation"]["names"] == [
        "cos(shoulder)", "cos(elbow)", "sin(shoulder)", "sin(elbow)", "shoulder.vel", "elbow.vel",
        "fingertip.x", "fingertip.y", "fingertip.z", "target.x", "target.y", "target.z",
        "(fingertip-target).x", "(fingertip-target).y", "(fingertip-target).z"]
    assert info["observation"]["units"] == ["1"] * 4 + ["rad/s"] * 2 + ["m"] * 9
    assert [(a["name"], a["ctrlrange"], a["mode"], a["kind"]) for a in info["action"]["actuators"]] == [
        ("shoulder", [-1.0, 1.0], "absolute", "motor"), ("elbow", [-1.0, 1.0], "absolute", "motor")]
    assert info["action"]["controller"] == "joint"
    assert info["control"] == {"period_s": 0.02, "timestep_s": 0.01, "physics_steps_per_action": 2,
                               "episode_s": 1.0, "episode_steps": 50}
    assert info["end_effector"]["name"] == "fingertip" and info["end_effector"]["type"] == "site"
    assert info["success_radius_m"] == 0.02
    assert info["goal_observation"]["used"] is False
    assert info["run"]["env_steps"] == 400


@needs_onnx
@pytest.mark.parametrize("changes", [{"goal_observation": True}, {"env": "Pendulum-v1"}],
                         ids=["goal_observation", "gymnasium_env"])
def test_export_of_other_observation_modes(changes, tmp_path):
    """Goal observations are exported in the flat layout the agent reads, and the sidecar
    says how to flatten the Dict; a Gymnasium env's run exports with its action bounds."""
    import torch

    from reacher.run.policy import load_policy
    from reacher.tools.export import export_policy

    train(TINY.replace(**changes), tmp_path / "run", progress=False)
    done = export_policy(tmp_path / "run", tmp_path / "p.onnx")
    info = json.loads(done.sidecar.read_text(encoding="utf-8"))
    policy = load_policy(tmp_path / "run")
    observations = _real_observations(policy, episodes=2)
    if changes.get("goal_observation"):
        assert info["goal_observation"]["flatten"] == [
            "observation", "achieved_goal", "desired_goal", "achieved_goal - desired_goal"]
        assert info["observation"]["size"] == 15 and info["onnx"]["input"]["shape"] == ["batch", 15]
    else:
        assert info["env"] == "Pendulum-v1" and info["observation"]["size"] == 3
        assert (info["action"]["low"], info["action"]["high"]) == ([-2.0], [2.0])
        assert info["control"]["period_s"] == pytest.approx(0.05)
    with torch.no_grad():
        expected = policy.agent.actor(policy.agent.norm(torch.as_tensor(observations))).numpy()
    actions = _session(done.onnx).run(["action"], {"observation": observations})[0]
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)


def _observation_from(info: dict, model, data, target: np.ndarray) -> np.ndarray:
    """The observation rebuilt from MuJoCo state by the sidecar's names alone."""
    joint = {j["name"]: j for j in info["arm"]["joints"]}
    ee = info["end_effector"]
    tip = data.site(ee["name"]).xpos if ee["type"] == "site" else data.body(ee["name"]).xipos
    qpos = lambda names: data.qpos[[model.joint(n).qposadr[0] for n in names]]  # noqa: E731
    part_values = {
        "cos_hinge_angle": lambda p: np.cos(qpos(p["joints"])),
        "sin_hinge_angle": lambda p: np.sin(qpos(p["joints"])),
        "slide_position": lambda p: qpos(p["joints"]),
        "joint_velocity": lambda p: data.qvel[[model.joint(n).dofadr[0] for n in p["joints"]]],
        "end_effector_position": lambda p: tip,
        "target_position": lambda p: target,
        "end_effector_minus_target": lambda p: tip - target,
    }
    assert all(joint[n]["type"] == "hinge" for n in info["observation"]["parts"][0]["joints"])
    return np.concatenate([part_values[p["part"]](p) for p in info["observation"]["parts"]])


# The hand's mass off its frame origin: MuJoCo's frame sensor on a body reads its centre of
# mass (xipos), not its frame (xpos), and the sidecar must say which.
OFFSET_HAND_XML = BODY_HAND_XML.replace('<geom type="sphere" size="0.015"/>',
                                        '<geom type="sphere" size="0.015" pos="0.02 0 0"/>')


@pytest.mark.parametrize("name, xml, end_effector", [("slider", SLIDER_XML, "fingertip"),
                                                     ("body_hand", OFFSET_HAND_XML, "hand")],
                         ids=["slide_joint", "body_end_effector"])
def test_sidecar_layout_rebuilds_the_envs_observation(name, xml, end_effector, tmp_path):
    """A slide joint and a body as end effector: the layout the sidecar gives, computed from
    qpos, qvel and positions by name, is exactly the env's observation, step after step."""
    assert OFFSET_HAND_XML != BODY_HAND_XML
    from reacher.tools.export import reach_description

    env = ReachEnv(write_arm(tmp_path, name, xml), end_effector)
    info = reach_description(env, Config())
    assert info["observation"]["size"] == env.observation_space.shape[0] == len(info["observation"]["names"])
    slides = [j["name"] for j in info["arm"]["joints"] if j["type"] == "slide"]
    assert slides == (["rail"] if name == "slider" else [])
    ee = info["end_effector"]
    assert (ee["type"], ee["position"].split(".")[-1].split()[0]) == (
        ("site", "xpos") if name == "slider" else ("body", "xipos"))
    rng = np.random.default_rng(0)
    obs, reset_info = env.reset(seed=0)
    for _ in range(20):
        mujoco.mj_kinematics(env.model, env.data)
        rebuilt = _observation_from(info, env.model, env.data, reset_info["target"])
        np.testing.assert_array_equal(rebuilt, obs)
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
    env.close()


def test_sidecar_says_when_servo_actions_are_offsets(tmp_path):
    from reacher.tools.export import reach_description

    env = ReachEnv(ROOT / "examples" / "arms" / "servo_arm.xml", "tool", servo_speed=2.0)
    info = reach_description(env, Config(servo_speed=2.0))
    assert {a["kind"] for a in info["action"]["actuators"]} == {"position servo"}
    assert {a["mode"] for a in info["action"]["actuators"]} == {"offset"}
    assert "0.04" in info["action"]["offset"]  # 2 rad/s for 0.02 s
    env.close()


def test_sidecar_of_another_controller_says_actions_are_its_commands():
    """An action of the 'ee' controller moves the end effector: it is no actuator control,
    so the sidecar names its three values and gives no actuator formulas for it."""
    from reacher.tools.export import reach_description

    env = ReachEnv("two_link", control="ee")
    action = reach_description(env, Config(control="ee"))["action"]
    assert (action["controller"], action["size"], action["names"]) == ("ee", 3, ["x", "y", "z"])
    assert "absolute" not in action and "offset" not in action
    assert {a["mode"] for a in action["actuators"]} == {None}
    assert "'ee' controller" in action["note"] and action["settings"]["ee_speed"] == Config().ee_speed
    env.close()


# --- the example: a plain MuJoCo loop without reacher ----------------------------------------

def _run_example(policy: Path, arm: Path, episodes: int) -> subprocess.CompletedProcess:
    """examples/onnx_reach.py in an isolated Python (-I: no PYTHONPATH, no current folder) in
    which `import reacher` fails; it also reports whether torch was imported."""
    code = ("import runpy, sys\n"
            "sys.modules['reacher'] = None  # any import of reacher now fails\n"
            f"sys.argv = ['onnx_reach.py', {str(policy)!r}, {str(arm)!r}, '{episodes}']\n"
            f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n"
            "print('torch imported:', 'torch' in sys.modules)\n")
    return subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          env=ENV, cwd=EXAMPLE.parent, timeout=300)


# 3,000 steps of the default two_link settings, seed 0, one thread. Measured: `reacher
# evaluate` 51 % of 100 episodes, this script 104 of 200 (at 4,000 steps 82 % and 170 of
# 200), and a 400-step policy that barely steers 1 % and 2 of 200. The bar, 10 of 40 (25 %),
# is half the trained rate, leaving room for a slower learner on other hardware, and far
# above what a broken export or a script that feeds another observation than the env's gets.
REACHING = Config(steps=3000, seed=0, eval_every=3000, eval_episodes=10, final_eval_episodes=10,
                  checkpoint_every=3000, threads=1)


@needs_onnx
@pytest.mark.slow
def test_example_reaches_with_the_exported_policy_without_reacher(tmp_path):
    from reacher.tools.export import export_policy

    train(REACHING, tmp_path / "run", progress=False)
    policy = tmp_path / "reach.onnx"
    export_policy(tmp_path / "run", policy)
    result = _run_example(policy, ROOT / "assets" / "two_link.xml", 40)
    assert result.returncode == 0, result.stderr
    assert "torch imported: False" in result.stdout
    successes, episodes = map(int, result.stdout.split("success ")[1].split()[0].split("/"))
    assert episodes == 40 and successes >= 10, result.stdout


@needs_onnx
def test_example_refuses_another_arm_file(exported):
    result = _run_example(exported, ROOT / "assets" / "three_link.xml", 1)
    assert result.returncode == 1
    assert "three_link.xml is not the arm file the policy was trained on (two_link.xml)" in result.stderr


@needs_onnx
def test_readme_loop_runs_without_reacher(exported, tmp_path):
    """The export guide's plain-MuJoCo loop, as printed, beside the files it names."""
    import re
    import shutil

    guide = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    shutil.copy(exported, tmp_path / "reach.onnx")
    shutil.copy(exported.with_suffix(".json"), tmp_path / "reach.json")
    shutil.copy(ROOT / "assets" / "two_link.xml", tmp_path)
    (tmp_path / "loop.py").write_text(code, encoding="utf-8")
    guard = ("import runpy, sys\nsys.modules['reacher'] = sys.modules['torch'] = None\n"
             "runpy.run_path('loop.py', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-I", "-c", guard], capture_output=True, text=True,
                            env=ENV, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+\.\d\d cm from the target\n", result.stdout), result.stdout
    assert len(code.strip().splitlines()) <= 20


# --- the command -----------------------------------------------------------------------------

@needs_onnx
def test_export_command_writes_both_files(tiny_run, tmp_path, monkeypatch, capsys):
    result = in_process(["export", tiny_run, "--out", "p.onnx"], tmp_path, monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.onnx"]
    assert result.stdout.startswith("wrote p.onnx and p.json (onnxruntime matches the torch policy")
    # Replacing needs --force; then both files are new, and the pair matches.
    (tmp_path / "p.onnx").write_bytes(b"old")
    result = in_process(["export", tiny_run, "--out", "p.onnx", "--force"], tmp_path, monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    info = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert info["onnx"]["sha256"] == hashlib.sha256((tmp_path / "p.onnx").read_bytes()).hexdigest()


@needs_onnx
def test_export_defaults_to_the_run_dir(tiny_run, tmp_path, monkeypatch, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    result = in_process(["export", run], tmp_path, monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    assert (run / "policy.onnx").is_file() and (run / "policy.json").is_file()


def _existing(name: str):
    def setup(d: Path):
        (d / name).write_text("keep me\n", encoding="utf-8")
    return setup


# args, setup(case dir), a piece of the error line
BAD = {
    "missing-run": (["export", "nope", "--out", "p.onnx"], None, "nope"),
    "run-without-checkpoint": (["export", "empty", "--out", "p.onnx"], lambda d: (d / "empty").mkdir(),
                               "checkpoint"),
    "out-in-missing-folder": (["export", "{run}", "--out", "no/such/p.onnx"], None, "no/such"),
    "out-under-a-file": (["export", "{run}", "--out", "afile/p.onnx"], _existing("afile"), "afile"),
    "out-exists": (["export", "{run}", "--out", "p.onnx"], _existing("p.onnx"), "p.onnx exists"),
    "sidecar-exists": (["export", "{run}", "--out", "p.onnx"], _existing("p.json"), "p.json exists"),
    "out-not-onnx": (["export", "{run}", "--out", "p.pt"], None, "p.pt"),
}


@needs_onnx
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_error_line_and_writes_nothing(name, tiny_run, tmp_path, monkeypatch, capsys):
    args, setup, says = BAD[name]
    if setup:
        setup(tmp_path)
    before, run_before = listing(tmp_path), listing(tiny_run)
    result = in_process([str(a).replace("{run}", str(tiny_run)) for a in args], tmp_path, monkeypatch, capsys)
    assert says in assert_one_error_line(result)
    assert listing(tmp_path) == before and listing(tiny_run) == run_before


@needs_onnx
def test_a_graph_that_differs_from_torch_is_refused(tiny_run, tmp_path, monkeypatch, capsys):
    """The check before writing: were onnxruntime's actions off by 1e-3, nothing is written."""
    from reacher.tools import export

    real = export.torch_actions
    monkeypatch.setattr(export, "torch_actions", lambda agent, obs: real(agent, obs) + 1e-3)
    result = in_process(["export", tiny_run, "--out", "p.onnx"], tmp_path, monkeypatch, capsys)
    assert "differs from the torch policy by 0.001" in assert_one_error_line(result)
    assert list(tmp_path.iterdir()) == []


def test_without_onnx_one_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails as if not installed
    result = in_process(["export", "anything", "--out", "p.onnx"], tmp_path, monkeypatch, capsys)
    line = assert_one_error_line(result)
    assert "onnx" in line and "pip install 'reacher[export]'" in line
    assert list(tmp_path.iterdir()) == []


@needs_onnx
def test_bad_input_in_a_real_process(tmp_path):
    result = subprocess.run([sys.executable, "-m", "reacher", "export", "nope", "--out", "p.onnx"],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=180)
    assert "nope" in assert_one_error_line(result)
    assert list(tmp_path.iterdir()) == []
