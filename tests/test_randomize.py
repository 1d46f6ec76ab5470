"""reacher.task.randomize: per-episode model perturbations, observation noise and action delay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import in_process

from reacher.config import Config, ConfigError, from_mapping, load_toml, to_toml
from reacher.ddpg.replay import ReplayBuffer, relabel
from reacher.run import checkpoint as ckpt
from reacher.run import robustness
from reacher.run.envs import make_env
from reacher.sim.arm import is_position_servo
from reacher.task import randomize
from reacher.task.env import ReachEnv
from reacher.task.goal import flatten
from reacher.task.randomize import (
    DEFAULT_RANGES,
    ActionHistory,
    Randomized,
    Ranges,
    as_trained,
    wrap,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"
PARAMS = ("body_mass", "body_inertia", "dof_damping", "geom_friction", "dof_frictionloss",
          "actuator_gainprm", "actuator_biasprm")
# Every model range on, noise and delay off: what the model tests perturb.
MODEL_RANGES = Ranges(randomize_mass=0.4, randomize_damping=0.3, randomize_friction=0.5,
                      randomize_gain=0.2)


def _params(model) -> dict[str, np.ndarray]:
    return {name: getattr(model, name).copy() for name in PARAMS}


def _rollout(env, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        out.append(env.step(a)[0])
    return np.array(out)


def _actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(np.float32)


# --- off by default -----------------------------------------------------------------------------

def test_off_by_default_leaves_the_env_and_its_model_untouched():
    env = ReachEnv("two_link")
    nominal = _params(env.model)
    assert not Ranges.from_config(Config()).any()
    assert wrap(env, Config()) is env
    made = make_env(Config())
    assert made.unwrapped is made  # no wrapper around it
    assert as_trained(env, Config()) is env  # a run trained without a delay reads no history
    env.reset(seed=0)
    for name, value in _params(env.model).items():
        np.testing.assert_array_equal(value, nominal[name], err_msg=name)
    # Model ranges alone leave the observation's layout as it is: bit-identical at the start.
    perturbed = wrap(ReachEnv("two_link"), MODEL_RANGES)
    assert perturbed.observation_space == env.observation_space
    np.testing.assert_array_equal(perturbed.reset(seed=5)[0], ReachEnv("two_link").reset(seed=5)[0])


# --- model perturbations ------------------------------------------------------------------------

def test_perturbations_stay_within_the_ranges_and_never_drift():
    env = wrap(ReachEnv("two_link"), MODEL_RANGES)
    model = env.unwrapped.model
    nominal = _params(model)
    first = None
    seen = {name: [] for name in ("mass", "damping", "gain")}
    for seed in range(30):
        env.reset(seed=seed)
        p = env.perturbation
        # The model is exactly the nominal one times this episode's factors.
        np.testing.assert_array_equal(model.body_mass[env.bodies], nominal["body_mass"][env.bodies] * p.mass)
        np.testing.assert_array_equal(model.body_inertia[env.bodies],
                                      nominal["body_inertia"][env.bodies] * p.mass[:, None])
        np.testing.assert_array_equal(model.dof_damping[env.dofs], nominal["dof_damping"][env.dofs] * p.damping)
        np.testing.assert_array_equal(model.actuator_gainprm[:, 0], nominal["actuator_gainprm"][:, 0] * p.gain)
        assert model.body_mass[0] == 0 and model.body_mass[-1] == nominal["body_mass"][-1]  # world, target
        for name, x in (("mass", 0.4), ("damping", 0.3), ("gain", 0.2)):
            factors = getattr(p, name)
            assert np.all((factors >= 1 - x) & (factors <= 1 + x)), (name, factors)
            seen[name].extend(factors)
        assert np.all((p.friction_geom >= 0.5) & (p.friction_geom <= 1.5))
        if first is None:
            first = _params(model)
    for name, x in (("mass", 0.4), ("damping", 0.3), ("gain", 0.2)):
        assert np.ptp(seen[name]) > x, f"{name} factors barely vary: {seen[name]}"
    # After 30 episodes, seed 0 again gives exactly the first episode's model.
    env.reset(seed=0)
    for name, value in _params(model).items():
        np.testing.assert_array_equal(value, first[name], err_msg=name)


def test_the_same_seed_gives_the_same_perturbations_and_observations():
    ranges = DEFAULT_RANGES
    a, b = wrap(ReachEnv("two_link"), ranges), wrap(ReachEnv("two_link"), ranges)
    actions = _actions(20)
    np.testing.assert_array_equal(_rollout(a, 3, actions), _rollout(b, 3, actions))
    for name, value in _params(a.unwrapped.model).items():
        np.testing.assert_array_equal(value, getattr(b.unwrapped.model, name), err_msg=name)
    a.reset(seed=4)
    assert not np.array_equal(a.get_wrapper_attr("perturbation").mass, b.get_wrapper_attr("perturbation").mass)


def test_perturbed_physics_changes_the_motion():
    actions = _actions(30)
    nominal = _rollout(ReachEnv("two_link"), 0, actions)
    perturbed = _rollout(wrap(ReachEnv("two_link"), MODEL_RANGES), 0, actions)
    np.testing.assert_array_equal(nominal[0], perturbed[0])  # the same episode start
    assert np.abs(nominal[-1] - perturbed[-1]).max() > 1e-3


def test_a_position_servos_gain_and_stiffness_scale_together():
    env = wrap(ReachEnv(EXAMPLES / "servo_arm.xml", end_effector="tool"), Ranges(randomize_gain=0.5))
    model = env.unwrapped.model
    servos = is_position_servo(model)
    assert servos.any()
    kp = model.actuator_gainprm[:, 0].copy()
    for seed in range(3):
        env.reset(seed=seed)
        assert np.array_equal(is_position_servo(model), servos)  # still servos: kp·(ctrl − q)
        np.testing.assert_array_equal(model.actuator_biasprm[servos, 1], -model.actuator_gainprm[servos, 0])
        assert not np.allclose(model.actuator_gainprm[:, 0], kp)


# --- observation noise --------------------------------------------------------------------------

def test_observation_noise_is_only_on_the_joint_state():
    std = 0.01
    env = wrap(ReachEnv("two_link"), Ranges(obs_noise_std=std))
    clean = ReachEnv("two_link")
    state = clean.goal_layout.achieved.start
    errors = []
    for seed in range(40):
        noisy_obs, _ = env.reset(seed=seed)
        clean_obs, _ = clean.reset(seed=seed)
        # The fingertip, target and their difference are exact, so rewards and relabelling agree.
        np.testing.assert_array_equal(noisy_obs[state:], clean_obs[state:])
        errors.append(noisy_obs[:state] - clean_obs[:state])
    assert abs(np.std(errors) - std) < 0.15 * std
    assert abs(np.mean(errors)) < 0.2 * std


def test_observation_noise_with_goal_observations_spares_the_goals():
    env = wrap(ReachEnv("two_link", goal_observation=True), Ranges(obs_noise_std=0.01))
    clean = ReachEnv("two_link", goal_observation=True)
    for seed in range(3):
        noisy, _ = env.reset(seed=seed)
        exact, _ = clean.reset(seed=seed)
        a = np.full(2, 0.5, np.float32)
        for _ in range(5):
            noisy, reward, _, _, info = env.step(a)
            exact, exact_reward, _, _, _ = clean.step(a)
        assert not np.array_equal(noisy["observation"], exact["observation"])
        for key in ("achieved_goal", "desired_goal"):
            np.testing.assert_array_equal(noisy[key], exact[key])
        assert reward == exact_reward
        assert env.unwrapped.compute_reward(noisy["achieved_goal"], noisy["desired_goal"], info) == reward


# --- action delay -------------------------------------------------------------------------------

def test_a_delay_of_k_steps_applies_each_action_exactly_k_steps_late():
    env = wrap(ReachEnv("two_link"), Ranges(action_delay_steps=3))
    history = env.get_wrapper_attr("goal_layout").achieved.start - np.arange(6, 0, -1)
    actions = _actions(25)
    delays = set()
    for seed in range(12):
        delayed = np.delete(_rollout(env, seed, actions), history, axis=1)  # the env's own values
        k = env.get_wrapper_attr("perturbation").delay_steps
        delays.add(k)
        # The same episode without the wrapper, given k zero actions first.
        shifted = np.concatenate([np.zeros((k, 2), np.float32), actions])[:len(actions)]
        np.testing.assert_array_equal(delayed, _rollout(ReachEnv("two_link"), seed, shifted))
    assert delays == {0, 1, 2, 3}  # drawn uniformly from 0..3
    # A bad action is refused when it is given, not k steps later.
    while env.get_wrapper_attr("perturbation").delay_steps == 0:
        env.reset()
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0], np.float32))


def test_with_a_delay_the_observation_carries_the_last_actions_before_the_goals():
    k = 3
    env = wrap(ReachEnv("two_link"), Ranges(action_delay_steps=k))
    assert isinstance(env, ActionHistory) and isinstance(env.env, Randomized)  # the history outside
    assert wrap(env, Ranges(action_delay_steps=k)) is env  # wrapped once
    clean = ReachEnv("two_link")
    state = clean.goal_layout.achieved.start
    assert env.observation_space.shape == (clean.observation_space.shape[0] + 2 * k,)
    actions = _actions(10) * 1.5  # some beyond [-1, 1]: recorded clipped, as applied
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs[state:state + 2 * k], 0.0)  # nothing given yet
    given = np.zeros((k, 2))
    for a in actions:
        obs, *_ = env.step(a)
        given = np.vstack([given[1:], np.clip(a, -1, 1)])
        np.testing.assert_array_equal(obs[state:state + 2 * k], given.reshape(-1))  # oldest first
    # The goals still end the layout, where the wrapper's goal_layout says.
    layout = env.get_wrapper_attr("goal_layout")
    assert layout.delta.stop == len(obs) and layout.achieved.start == state + 2 * k
    reach = env.unwrapped
    np.testing.assert_array_equal(obs[layout.desired], reach.task.target)
    np.testing.assert_allclose(obs[layout.achieved], reach.data.site(reach.arm.end_effector).xpos)
    np.testing.assert_allclose(obs[layout.delta], obs[layout.achieved] - obs[layout.desired])
    # The history is exact even with observation noise; noise stays on the joint state.
    noisy = wrap(ReachEnv("two_link"), Ranges(obs_noise_std=0.05, action_delay_steps=k))
    noisy.reset(seed=1)
    for a in actions[:k]:
        obs, *_ = noisy.step(a)
    np.testing.assert_array_equal(obs[state:state + 2 * k], np.clip(actions[:k], -1, 1).reshape(-1))


def test_the_goal_dict_carries_the_history_in_its_observation_part():
    ranges = Ranges(action_delay_steps=2)
    flat_env, dict_env = wrap(ReachEnv("two_link"), ranges), wrap(ReachEnv("two_link", goal_observation=True), ranges)
    assert dict_env.observation_space["observation"].shape == (6 + 2 * 2,)  # state, 2 actions
    assert dict_env.observation_space["achieved_goal"].shape == (3,)
    flat, _ = flat_env.reset(seed=2)
    goal, _ = dict_env.reset(seed=2)
    for a in _actions(6):
        assert dict_env.observation_space.contains(goal)
        np.testing.assert_array_equal(flatten(goal), flat)
        flat, flat_reward, *_ = flat_env.step(a)
        goal, reward, _, _, info = dict_env.step(a)
        assert reward == dict_env.unwrapped.compute_reward(goal["achieved_goal"], goal["desired_goal"], info)


@pytest.mark.parametrize("goal_observation", [False, True])
def test_hindsight_relabelling_of_delayed_transitions_is_consistent(goal_observation):
    """What the env stored, relabelled with its own target, is what it returned; relabelled
    with another, the goal slices say that target and the history is untouched."""
    from reacher.task.goal import flat_env

    env = flat_env(wrap(ReachEnv("two_link", goal_observation=goal_observation), Ranges(action_delay_steps=2)))
    layout = env.get_wrapper_attr("goal_layout")
    buffer = ReplayBuffer(env.observation_space.shape[0], 2, 200)
    delays = set()
    for seed in range(4):
        obs, _ = env.reset(seed=seed)
        delays.add(env.get_wrapper_attr("perturbation").delay_steps)
        for a in _actions(50, seed):  # in [-1, 1], as training stores them
            next_obs, reward, terminated, truncated, _ = env.step(a)
            buffer.add(obs, a, reward, next_obs, terminated)
            obs = next_obs
        buffer.end_episode()
    assert delays >= {1, 2}
    idx = np.arange(buffer.size)
    stored = {k: v.copy() for k, v in buffer.batch(idx).items()}
    # The stored reward is the one relabelling computes for the stored target: the effort
    # charged is the given (stored) action's, whatever the delay applied.
    effort = np.square(np.clip(stored["action"], -1, 1)).sum(axis=1)
    recomputed = layout.reward.from_goals(stored["next_obs"][:, layout.achieved],
                                          stored["next_obs"][:, layout.desired], effort, exact=False)
    np.testing.assert_allclose(recomputed, stored["reward"], rtol=1e-5, atol=1e-5)
    # Relabel everything with a later fingertip: goals move, the state and history do not.
    batch = relabel({k: v.copy() for k, v in stored.items()}, buffer, idx, layout, 1.0,
                    np.random.default_rng(0))
    state = slice(0, layout.achieved.start)
    for key in ("obs", "next_obs"):
        np.testing.assert_array_equal(batch[key][:, state], stored[key][:, state])
        np.testing.assert_array_equal(batch[key][:, layout.achieved], stored[key][:, layout.achieved])
        np.testing.assert_allclose(batch[key][:, layout.delta],
                                   batch[key][:, layout.achieved] - batch[key][:, layout.desired])
    assert not np.array_equal(batch["obs"][:, layout.desired], stored["obs"][:, layout.desired])
    np.testing.assert_allclose(batch["reward"], layout.reward.from_goals(
        batch["next_obs"][:, layout.achieved], batch["next_obs"][:, layout.desired], effort, exact=False),
        rtol=1e-5, atol=1e-5)


# --- bad ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("randomize_mass", 1.0), ("randomize_mass", -0.1), ("randomize_mass", float("nan")),
    ("randomize_damping", 1.5), ("randomize_friction", -0.5), ("randomize_gain", float("inf")),
    ("obs_noise_std", -0.01), ("action_delay_steps", -1),
])
def test_a_bad_range_is_one_error_naming_its_field(name, value):
    for make in (lambda: Config(**{name: value}), lambda: Ranges(**{name: value}),
                 lambda: from_mapping({name: value}, source="x.toml")):
        with pytest.raises(ConfigError) as err:
            make()
        message = str(err.value)
        assert name in message and "\n" not in message, message


def test_bad_ranges_on_the_command_line_and_in_files_create_nothing(tmp_path, monkeypatch, capsys):
    # Through reacher.cli.main in this process, as test_cli runs its bad-input cases (its
    # real-process ones show that the command is this function plus an exit code).
    cases = [("train", "--randomize-mass", "1.0", "--steps", "10", "--run-dir", "r")]
    (tmp_path / "bad.toml").write_text("[randomisation]\nrandomize_gain = -0.2\n")
    cases.append(("train", "--config", "bad.toml", "--steps", "10", "--run-dir", "r"))
    cases.append(("evaluate", "nowhere", "--config", "bad.toml"))
    for args in cases:
        result = in_process(args, tmp_path, monkeypatch, capsys)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "randomize_mass" in lines[0] or "randomize_gain" in lines[0], lines[0]
        assert not (tmp_path / "r").exists()


def test_a_randomisation_needs_a_reacher_arm():
    import gymnasium as gym

    with pytest.raises(ValueError, match="randomisation needs a reacher arm env"):
        wrap(gym.make("Pendulum-v1"), DEFAULT_RANGES)


# --- recorded, resumed, evaluated ----------------------------------------------------------------

def test_ranges_are_recorded_in_config_toml(tmp_path):
    config = Config(randomize_mass=0.25, obs_noise_std=0.003, action_delay_steps=2)
    (tmp_path / "config.toml").write_text(to_toml(config))
    assert Ranges.from_config(load_toml(tmp_path / "config.toml")) == Ranges.from_config(config)


RESUMED = Config(steps=600, warmup_steps=100, batch_size=32, hidden_sizes=(32, 32), eval_every=200,
                 eval_episodes=2, final_eval_episodes=2, checkpoint_every=300, threads=1,
                 noise_scale=0.2, noise_final_scale=0.2, randomize_mass=0.2, randomize_damping=0.3,
                 randomize_gain=0.2, obs_noise_std=0.005, action_delay_steps=2)


@pytest.fixture
def randomized_training():
    """Training as train.py runs it: the training env randomised and, under a delay, the
    evaluation env and hindsight relabelling reading the action history as well."""
    import reacher.run.training

    threads = torch.get_num_threads()
    yield reacher.run.training.train
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_resumed_randomised_run_is_the_uninterrupted_run(tmp_path, randomized_training):
    train = randomized_training
    train(RESUMED, tmp_path / "long", progress=False)
    train(RESUMED.replace(steps=300), tmp_path / "short", progress=False)
    train(RESUMED, tmp_path / "short", resume=True, progress=False, overrides={"steps": 600})
    a, b = ckpt.load(tmp_path / "long", with_replay=True), ckpt.load(tmp_path / "short", with_replay=True)
    for key in a.replay:  # the same observations: the same perturbations, noise and delays
        np.testing.assert_array_equal(a.replay[key], b.replay[key], err_msg=key)
    for part in ("actor", "critic"):
        for name, tensor in a.model["agent"][part].items():
            assert torch.equal(tensor, b.model["agent"][part][name]), f"{part}.{name}"
    # ... and it was randomised: its first observation is the nominal env's with noisy
    # joints, and the (empty) history of its 2 last actions before the goals.
    exact, _ = ReachEnv("two_link").reset(seed=RESUMED.seed)
    first = a.replay["obs"][0]
    state = len(exact) - 9
    np.testing.assert_array_equal(first[state:state + 4], 0.0)
    first = np.delete(first, np.arange(state, state + 4))
    assert not np.array_equal(first[:state], exact[:state])
    np.testing.assert_allclose(first, exact, atol=0.05)


@pytest.mark.slow
def test_evaluate_randomize_reports_nominal_and_perturbed(tmp_path, randomized_training, monkeypatch, capsys):
    randomized_training(RESUMED.replace(steps=300), tmp_path / "run", progress=False)
    result = subprocess.run([sys.executable, "-m", "reacher", "evaluate", "run", "--episodes", "3",
                             "--randomize", "--json"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout  # the JSON alone
    report = json.loads(result.stdout)
    assert {"success_rate", "mean_final_distance", "mean_return", "episodes"} <= set(report)
    assert report["perturbed"]["episodes"] == 3
    assert report["ranges"] == DEFAULT_RANGES.as_dict()
    # The nominal figures are plain `evaluate`'s on the nominal model: the same episodes.
    from reacher.api import evaluate_policy, load_policy

    policy = load_policy(tmp_path / "run")
    # (The nominal model, observed with the action history the run trained with.)
    nominal = evaluate_policy(policy, 3, env=as_trained(make_env(randomize.nominal(policy.config)),
                                                        policy.config))
    assert report["mean_return"] == pytest.approx(nominal.mean_return)
    assert report["perturbed"]["mean_return"] != pytest.approx(nominal.mean_return)
    # A config file's ranges replace the defaults.
    (tmp_path / "ranges.toml").write_text("obs_noise_std = 0.05\n")
    result = in_process(["evaluate", "run", "--episodes", "2", "--config", "ranges.toml"], tmp_path,
                        monkeypatch, capsys)
    assert result.returncode == 0, result.stderr
    assert "nominal model" in result.stdout and "obs_noise_std 0.05" in result.stdout


@pytest.mark.slow
def test_policies_with_and_without_a_history_evaluate_on_delayed_models(tmp_path, randomized_training,
                                                                       monkeypatch, capsys):
    """A run trained with a delay reads its history on the nominal model too; one trained
    without reads none, even evaluated with a delay. Neither exports its history."""
    from reacher.api import load_policy

    randomized_training(RESUMED.replace(steps=300), tmp_path / "delayed", progress=False)
    randomized_training(randomize.nominal(RESUMED).replace(steps=300), tmp_path / "nominal", progress=False)
    for run, history in (("delayed", 2), ("nominal", 0)):
        policy = load_policy(tmp_path / run)
        assert policy.config.action_delay_steps == history
        result = robustness.evaluate_randomized(policy, Ranges(action_delay_steps=3), episodes=2)
        assert result.perturbed.episodes == result.nominal.episodes == 2
    pytest.importorskip("onnxruntime")
    result = in_process(["export", "delayed", "--out", "p.onnx"], tmp_path, monkeypatch, capsys)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "action_delay_steps = 2" in lines[0], lines
    assert not list(tmp_path.glob("p.*"))
