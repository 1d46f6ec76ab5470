"""reacher.task.env.ReachEnv through Gymnasium: API, observation, actions, reward, rendering."""

from __future__ import annotations

import math
import re
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from conftest import ARM_CASES, ArmCase, end_effector_pos
from gymnasium.utils.env_checker import check_env

import reacher  # noqa: F401  (registers the environments)
from reacher.task.env import ReachEnv
from reacher.task.reward import ReachReward

ENV_IDS = ("reacher/TwoLink-v0", "reacher/ThreeLink-v0", "reacher/Reach-v0")
BUILTIN_CASES = {
    "two_link": ArmCase("two_link", "", "fingertip", "site", True, (0, 0, 0.025), 0.1 + 0.11),
    "three_link": ArmCase("three_link", "", "fingertip", "site", True, (0, 0, 0.025),
                          0.08 + 0.07 + 0.06),
}
ALL_ARMS = sorted(BUILTIN_CASES) + sorted(ARM_CASES)

# Warnings Gymnasium's checker is known to raise for this environment, and why they are fine.
EXPECTED_WARNINGS = (
    # observations are unbounded (joint velocities, positions in metres) on purpose
    r"A Box observation space (minimum|maximum) value is -?infinity",
    # check_env also makes a render_mode="human" env; headless, ReachEnv says it shows nothing
    r"render_mode='human' needs a display",
)


@pytest.fixture(params=ALL_ARMS)
def arm(request, arm_dir) -> tuple[ArmCase, dict]:
    """Every arm in turn: its case and the gym.make arguments that build it."""
    name = request.param
    if name in BUILTIN_CASES:
        return BUILTIN_CASES[name], {"id": "reacher/Reach-v0", "arm": name}
    case = ARM_CASES[name]
    return case, {"id": "reacher/Reach-v0", "arm": arm_dir / f"{name}.xml",
                  "end_effector": case.end_effector}


def _random_actions(env, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


# --- registration and the Gymnasium API checker ---------------------------------------------------

def test_environments_are_registered():
    for env_id in ENV_IDS:
        assert env_id in gym.registry
        assert gym.registry[env_id].entry_point == "reacher.task.env:ReachEnv"
    # The episode limit is the env's own (the arm's, as in training), not a registered TimeLimit.
    assert gym.registry["reacher/TwoLink-v0"].kwargs == {"arm": "two_link"}
    assert gym.registry["reacher/ThreeLink-v0"].kwargs == {"arm": "three_link"}
    assert all(gym.registry[env_id].max_episode_steps is None for env_id in ENV_IDS)


def _episode_length(env, seed: int = 0) -> int:
    env.reset(seed=seed)
    for step in range(1, 10_000):
        if env.step(env.action_space.sample())[3]:
            return step
    raise AssertionError("no truncation in 10,000 steps")


PANDA = {"arm": "examples/arms/panda.xml", "end_effector": "attachment_site"}


def test_gym_make_and_a_bare_env_run_the_episodes_training_runs(tmp_path):
    """Panda is driven by position servos: training gives it 2-s episodes, and so do
    gym.make and a bare ReachEnv (before, Gymnasium's 50-step TimeLimit made them 1 s)."""
    from reacher.config import Config
    from reacher.run import settings
    from reacher.run.envs import make_env
    from reacher.sim.arm import load_arm

    config = Config(arm=PANDA["arm"], end_effector=PANDA["end_effector"])
    trained = settings.for_arm(config, load_arm(config.arm, config.end_effector))
    assert trained.episode_s == 2.0
    steps = round(trained.episode_s / trained.control_period_s)
    assert _episode_length(make_env(trained)) == steps
    assert _episode_length(gym.make("reacher/Reach-v0", **PANDA)) == steps
    assert _episode_length(ReachEnv(PANDA["arm"], PANDA["end_effector"])) == steps
    # Torque-driven two_link keeps 1 s everywhere.
    assert _episode_length(gym.make("reacher/TwoLink-v0")) == _episode_length(ReachEnv()) == 50


@pytest.mark.parametrize("steps", [30, 130])
def test_gym_make_max_episode_steps_counts_alone_shorter_or_longer(steps):
    env = gym.make("reacher/Reach-v0", max_episode_steps=steps, **PANDA)
    assert env.spec.max_episode_steps == steps
    assert [_episode_length(env, seed) for seed in range(2)] == [steps, steps]
    assert _episode_length(gym.make(env.spec)) == steps  # the spec makes the same env again


@pytest.mark.parametrize("env_id, arm_name", [
    ("reacher/TwoLink-v0", None),
    ("reacher/ThreeLink-v0", None),
    ("reacher/Reach-v0", "four_link"),
    ("reacher/Reach-v0", "spatial"),
])
def test_check_env(env_id, arm_name, arm_dir):
    kwargs = {}
    if arm_name:
        kwargs = {"arm": str(arm_dir / f"{arm_name}.xml"),
                  "end_effector": ARM_CASES[arm_name].end_effector}
    env = gym.make(env_id, width=64, height=64, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught
                  if not any(re.search(p, str(w.message)) for p in EXPECTED_WARNINGS)]
    assert unexpected == []
    env.close()


# --- observation and info -------------------------------------------------------------------------

def _assert_layout_matches_state(env, case: ArmCase, obs: np.ndarray) -> None:
    """The observation table of ReachEnv's docstring, checked against MjData's own fields
    (qpos, qvel, site/body positions, mocap), not against the sensors it is read from."""
    inner = env.unwrapped
    arm, data, layout = inner.arm, inner.data, inner.goal_layout
    n_hinge, n_joints = int(arm.hinge.sum()), arm.n_joints
    qpos, qvel = data.qpos[arm.qpos_adr], data.qvel[arm.qvel_adr]
    np.testing.assert_allclose(obs[:n_hinge], np.cos(qpos[arm.hinge]), atol=1e-12)
    np.testing.assert_allclose(obs[n_hinge:2 * n_hinge], np.sin(qpos[arm.hinge]), atol=1e-12)
    np.testing.assert_allclose(obs[2 * n_hinge:n_hinge + n_joints], qpos[~arm.hinge])
    np.testing.assert_allclose(obs[n_hinge + n_joints:layout.achieved.start], qvel)
    np.testing.assert_allclose(obs[layout.achieved], end_effector_pos(env, case), atol=1e-12)
    np.testing.assert_allclose(obs[layout.desired], data.mocap_pos[arm.target_mocap])


def test_reset_and_step_follow_the_documented_layout(arm):
    case, kwargs = arm
    env = gym.make(**kwargs)
    layout = env.unwrapped.goal_layout
    n = env.observation_space.shape[0]
    n_hinge, n_joints = int(env.unwrapped.arm.hinge.sum()), env.unwrapped.arm.n_joints
    assert n == 2 * n_hinge + (n_joints - n_hinge) + n_joints + 9
    assert (layout.achieved, layout.desired, layout.delta) == \
        (slice(n - 9, n - 6), slice(n - 6, n - 3), slice(n - 3, n))

    obs, info = env.reset(seed=3)
    _assert_layout_matches_state(env, case, obs)
    np.testing.assert_array_equal(obs[n_hinge + n_joints:n - 9], 0.0)  # starts at rest
    for action in [None, *_random_actions(env, 5)]:
        if action is not None:
            obs, reward, terminated, truncated, info = env.step(action)
            assert isinstance(reward, float) and math.isfinite(reward)
            assert terminated is False and truncated is False
        assert obs.shape == env.observation_space.shape and obs.dtype == np.float64
        assert np.isfinite(obs).all() and env.observation_space.contains(obs)
        assert set(info) >= {"distance", "is_success", "target"}
        assert isinstance(info["distance"], float) and isinstance(info["is_success"], bool)
        assert info["target"].shape == (3,)
        np.testing.assert_allclose(obs[n - 6:n - 3], info["target"])
        # the fingertip sensor and MjData's site/body position come from one forward pass
        np.testing.assert_allclose(obs[n - 9:n - 6], end_effector_pos(env, case), atol=1e-12)
        np.testing.assert_allclose(obs[n - 3:], obs[n - 9:n - 6] - obs[n - 6:n - 3])
        np.testing.assert_allclose(np.square(obs[:n_hinge]) + np.square(obs[n_hinge:2 * n_hinge]),
                                   1.0)
        assert info["distance"] == pytest.approx(np.linalg.norm(obs[-3:]), abs=1e-12)
        assert info["is_success"] == (info["distance"] <= 0.02)
    env.close()


def test_step_observes_the_state_after_the_step():
    case = BUILTIN_CASES["two_link"]
    env = gym.make("reacher/TwoLink-v0")
    env.reset(seed=0)
    for _ in range(3):
        obs = env.step(np.ones(2, np.float32))[0]
    # MjData's positions are from the same forward pass as the sensors; recompute them
    mujoco.mj_forward(env.unwrapped.model, env.unwrapped.data)
    _assert_layout_matches_state(env, case, obs)
    env.close()


def test_spatial_arm_moves_out_of_plane(spatial_path):
    env = gym.make("reacher/Reach-v0", arm=spatial_path)
    tip = env.unwrapped.goal_layout.achieved
    z = [env.reset(seed=0)[0][tip][2]]
    z += [env.step(np.array([0, -1, 0], np.float32))[0][tip][2] for _ in range(20)]
    assert max(z) - min(z) > 0.05  # the shoulder pitches the fingertip out of its start plane
    env.close()


# --- reachable targets ----------------------------------------------------------------------------

def _targets_and_fingertips(env, n: int) -> tuple[np.ndarray, np.ndarray]:
    layout = env.unwrapped.goal_layout
    targets, tips = [], []
    for seed in range(n):
        obs, info = env.reset(seed=seed)
        targets.append(info["target"])
        tips.append(obs[layout.achieved])
    return np.array(targets), np.array(tips)


def test_targets_are_within_reach(arm):
    case, kwargs = arm
    env = gym.make(**kwargs)
    targets, tips = _targets_and_fingertips(env, 200)
    base = np.asarray(case.base_pos)
    for points in (targets, tips):
        assert np.linalg.norm(points - base, axis=1).max() <= case.reach_m + 1e-9
    if case.planar:
        np.testing.assert_allclose(targets[:, 2], tips[:, 2], atol=1e-12)
    else:
        assert np.ptp(targets[:, 2]) > 0.1  # a spatial arm's targets fill its 3-D workspace
    assert len(np.unique(targets.round(9), axis=0)) == len(targets)
    env.close()


@pytest.mark.parametrize("name", ALL_ARMS)
def test_targets_are_within_reach_m(name, arm_dir):
    if name in BUILTIN_CASES:
        env = gym.make("reacher/Reach-v0", arm=name)
    else:
        env = gym.make("reacher/Reach-v0", arm=arm_dir / f"{name}.xml",
                       end_effector=ARM_CASES[name].end_effector)
    arm = env.unwrapped.arm
    targets, _ = _targets_and_fingertips(env, 500)
    assert np.linalg.norm(targets - arm.base_pos, axis=1).max() <= arm.reach_m + 5e-4
    env.close()


def test_two_link_targets_match_the_analytic_workspace():
    # Upper link 0.1 m, fingertip 0.11 m beyond the elbow, elbow limited to ±2.9 rad: the
    # fingertip is d = sqrt(l1² + l2² + 2·l1·l2·cos(elbow)) from the shoulder.
    l1, l2, elbow_max = 0.1, 0.11, 2.9
    d_min = math.sqrt(l1**2 + l2**2 + 2 * l1 * l2 * math.cos(elbow_max))
    d_max = l1 + l2
    env = gym.make("reacher/TwoLink-v0")
    targets, tips = _targets_and_fingertips(env, 300)
    shoulder = np.array([0, 0, 0.025])
    for points in (targets, tips):
        d = np.linalg.norm(points - shoulder, axis=1)
        assert d.min() >= d_min - 1e-9 and d.max() <= d_max + 1e-9
        assert d.min() < d_min + 0.02 and d.max() > d_max - 0.01  # the whole annulus is used
        np.testing.assert_allclose(points[:, 2], 0.025, atol=1e-12)
    env.close()


def test_reset_with_explicit_target():
    env = gym.make("reacher/TwoLink-v0")
    obs, info = env.reset(seed=0, options={"target": [0.05, -0.1, 0.025]})
    np.testing.assert_allclose(info["target"], [0.05, -0.1, 0.025])
    np.testing.assert_allclose(obs[env.unwrapped.goal_layout.desired], [0.05, -0.1, 0.025])
    env.close()


@pytest.mark.parametrize("target", [
    [0.1, 0.2],
    [0.1, np.nan, 0.0],
    "here",
])
def test_reset_with_a_bad_target_says_so(target):
    env = gym.make("reacher/TwoLink-v0")
    with pytest.raises(ValueError, match=re.escape("options['target'] must be 3 finite numbers")):
        env.reset(options={"target": target})
    env.close()


# --- actions --------------------------------------------------------------------------------------

def test_out_of_range_actions_are_clipped():
    env = gym.make("reacher/TwoLink-v0")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array([5.0, -1e6], np.float32))
    np.testing.assert_array_equal(env.unwrapped.data.ctrl, [1.0, -1.0])
    # the effort cost is charged for the clipped action, not the requested one
    assert reward == pytest.approx(ReachReward()(info["distance"], np.array([1.0, -1.0])))
    env.step([0.25, -0.5])  # a plain list works too
    np.testing.assert_allclose(env.unwrapped.data.ctrl, [0.25, -0.5])
    env.close()


@pytest.mark.parametrize("action, words", [
    ([np.nan, 0.0], "NaN or inf"),
    ([0.0, np.inf], "NaN or inf"),
    ([0.0, -np.inf], "NaN or inf"),
    ([0.1, 0.2, 0.3], "shape (3,), expected (2,)"),
    (0.5, "shape (), expected (2,)"),
    ([[0.1, 0.2]], "shape (1, 2), expected (2,)"),
])
def test_invalid_actions_raise(action, words):
    env = gym.make("reacher/TwoLink-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError) as excinfo:
        env.step(action)
    assert words in str(excinfo.value)
    if "shape" in words:
        assert "shoulder, elbow" in str(excinfo.value)  # names the actuators it expects
    env.close()


def test_actions_scale_onto_an_asymmetric_ctrlrange(asymmetric_ctrl_path):
    env = gym.make("reacher/Reach-v0", arm=asymmetric_ctrl_path)
    env.reset(seed=0)
    for action, ctrl in ((-1.0, -2.0), (1.0, 4.0), (0.0, 1.0), (0.5, 2.5), (-3.0, -2.0)):
        env.step(np.full(2, action, np.float32))
        np.testing.assert_allclose(env.unwrapped.data.ctrl, [ctrl, ctrl])
    env.close()


# --- determinism ----------------------------------------------------------------------------------

def _rollout(seed: int, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    env = gym.make("reacher/ThreeLink-v0")
    obs, info = env.reset(seed=seed)
    trajectory = [obs]
    for action in actions:
        trajectory.append(env.step(action)[0])
    second_target = env.reset()[1]["target"]  # the seeded stream carries on across resets
    env.close()
    return np.array(trajectory), np.stack([info["target"], second_target])


def test_same_seed_same_episode():
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 3)).astype(np.float32)
    obs_a, targets_a = _rollout(11, actions)
    obs_b, targets_b = _rollout(11, actions)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(targets_a, targets_b)
    obs_c, targets_c = _rollout(12, actions)
    assert not np.allclose(targets_a, targets_c)
    assert not np.allclose(obs_a, obs_c)


def test_different_seeds_different_targets():
    env = gym.make("reacher/TwoLink-v0")
    targets = np.array([env.reset(seed=seed)[1]["target"] for seed in range(20)])
    assert len(np.unique(targets.round(9), axis=0)) == 20
    env.close()


# --- episode end, timing and constructor arguments ------------------------------------------------

def test_truncates_exactly_at_max_episode_steps():
    env = ReachEnv("two_link", max_episode_steps=7)
    for _ in range(2):  # and again after a reset
        env.reset(seed=0)
        ends = [env.step(env.action_space.sample())[2:4] for _ in range(7)]
        assert ends == [(False, False)] * 6 + [(False, True)]


def test_gym_make_max_episode_steps_is_honoured():
    env = gym.make("reacher/TwoLink-v0", max_episode_steps=60)
    env.reset(seed=0)
    truncated = [env.step(env.action_space.sample())[3] for _ in range(60)]
    assert truncated == [False] * 59 + [True]


def test_frame_skip_sets_dt_and_physics_time():
    for frame_skip, dt in ((2, 0.02), (5, 0.05)):
        env = gym.make("reacher/TwoLink-v0", frame_skip=frame_skip)
        inner = env.unwrapped
        assert inner.frame_skip == frame_skip and inner.dt == pytest.approx(dt)
        assert inner.model.opt.timestep == 0.01
        env.reset(seed=0)
        for _ in range(3):
            env.step(env.action_space.sample())
        assert inner.data.time == pytest.approx(3 * dt)
        assert inner.metadata["render_fps"] == round(1 / dt)
        env.close()


@pytest.mark.parametrize("kwargs, words", [
    ({"frame_skip": 0}, "frame_skip must be positive"),
    ({"max_episode_steps": -1}, "max_episode_steps must be positive"),
    ({"success_radius": 0.0}, "success_radius must be positive"),
    ({"render_mode": "rgb"}, "render_mode must be one of"),
])
def test_bad_constructor_arguments(kwargs, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        ReachEnv("two_link", **kwargs)


# --- physics blow-up ------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("qvel", 1e30), ("qpos", np.nan)])
def test_physics_blow_up_truncates_and_reset_recovers(field, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warning to ./MUJOCO_LOG.TXT
    env = gym.make("reacher/TwoLink-v0")
    env.reset(seed=0)
    getattr(env.unwrapped.data, field)[:] = value
    obs, reward, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    assert truncated is True and terminated is False
    assert isinstance(info["physics_error"], str) and info["physics_error"]
    assert math.isfinite(reward)

    obs, info = env.reset(seed=1)
    assert np.isfinite(obs).all() and "physics_error" not in info
    for _ in range(5):
        obs, reward, _, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(obs).all() and not truncated and "physics_error" not in info
    env.close()


# --- reward ---------------------------------------------------------------------------------------

def test_reward_formula_with_custom_weights():
    w_ctrl, w_prec, scale = 0.3, 2.0, 0.05
    env = gym.make("reacher/TwoLink-v0", ctrl_cost_weight=w_ctrl, precision_weight=w_prec,
                   precision_scale_m=scale)
    env.reset(seed=4)

    def expected(d, a):
        return -d - w_ctrl * np.sum(np.square(a)) - w_prec * (1 - math.exp(-(d / scale) ** 2))

    for action in _random_actions(env, 5):
        _, reward, _, _, info = env.step(action)
        assert reward == pytest.approx(expected(info["distance"], action.astype(np.float64)))

    # 1 cm from the target, where the precision term is far from its plateau
    _, info = _reset_near_target(env, [0.01, 0, 0])
    _, reward, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["distance"] == pytest.approx(0.01, abs=1e-9)  # at rest, no torque: no motion
    assert reward == pytest.approx(expected(info["distance"], np.zeros(2)))
    assert reward > -0.01 - w_prec * 0.05
    env.close()


def _reset_near_target(env, offset) -> tuple[np.ndarray, dict]:
    """Reset with the target `offset` (m) from where the fingertip starts."""
    obs, _ = env.reset(seed=5, options={"target": [0.0, 0.0, 0.0]})
    tip = obs[env.unwrapped.goal_layout.achieved]
    return env.reset(seed=5, options={"target": tip + offset})  # same seed: same start


@pytest.mark.parametrize("success_radius, success", [(0.02, True), (0.005, False)])
def test_success_radius(success_radius, success):
    env = gym.make("reacher/TwoLink-v0", success_radius=success_radius)
    _, info = _reset_near_target(env, [0, 0.01, 0])
    assert info["distance"] == pytest.approx(0.01) and info["is_success"] is success
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["distance"] == pytest.approx(0.01) and info["is_success"] is success
    assert env.unwrapped.success_radius == success_radius
    env.close()


# --- rendering ------------------------------------------------------------------------------------

def _frame(**kwargs) -> np.ndarray:
    env = gym.make(render_mode="rgb_array", width=96, height=64, **kwargs)
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    return frame


def test_render_builtin_cameras():
    top = _frame(id="reacher/TwoLink-v0", camera="top")
    angled = _frame(id="reacher/TwoLink-v0", camera="angled")
    assert top.std() > 10 and angled.std() > 10
    assert np.abs(top.astype(int) - angled.astype(int)).mean() > 5


@pytest.mark.parametrize("camera", [None, "top"])
def test_render_user_arm_without_cameras(camera, four_link_path):
    # reacher adds a floor too, so a frame that is not blank proves little: the added
    # camera sees the arm when hiding the arm's geoms changes the frame.
    env = gym.make("reacher/Reach-v0", arm=four_link_path, end_effector="tip", camera=camera,
                   render_mode="rgb_array", width=96, height=64)
    env.reset(seed=0)
    frame = env.render().astype(int)
    model = env.unwrapped.model
    model.geom_rgba[model.geom_bodyid > 0, 3] = 0  # the links (and the target) vanish
    bare = env.render().astype(int)
    env.close()
    assert frame.std() > 3
    assert (np.abs(frame - bare).max(axis=2) > 30).mean() > 0.005
