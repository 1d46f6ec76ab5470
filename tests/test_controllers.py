"""The controllers on their own, without learning: what an action means under joint,
joint_delta and ee control, on every example arm, and the settings that choose them."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from test_actuation import MIXED
from test_collision import ARM as SERVO_ARM

import reacher  # noqa: F401  (registers the environments)
from reacher.config import Config, ConfigError, from_mapping, saved_base
from reacher.errors import ControlError
from reacher.run import settings as adapt
from reacher.run.envs import make_env
from reacher.sim import fit
from reacher.sim.arm import load_arm
from reacher.sim.controllers.base import extreme_eigenvalues
from reacher.sim.controllers.ik import SINGULAR_RATIO, ServoIK
from reacher.task.env import ReachEnv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"
# Every example arm with its end effector (examples/arms/README.md).
EXAMPLE_ARMS = {"four_link": "tip", "spatial_arm": "fingertip", "long_arm": "hand",
                "tiny_arm": "tip_link", "servo_arm": "tool", "panda": "attachment_site",
                "gen3": "pinch_site", "xarm7": "attachment_site", "iiwa14": "attachment_site",
                "ur5e": "wrist_3_link", "iiwa14_torque": "attachment_site"}
MENAGERIE = ("panda", "gen3", "xarm7", "iiwa14", "ur5e")
# Known and open, and the arm's: Menagerie's UR5e big joints have 200 N·m·s/rad of damping
# against a 150 N·m force limit, so they turn at no more than 0.75 rad/s whatever the
# controller asks. The scripted ee policy reaches 1 of these 12 targets in 2 s; given 4 s,
# 43 %, given 8 s, 60 % (30 episodes; docs/benchmarks.md). It also overshoots an ee step by
# about 1.9x. Strict: if a controller ever drives it within the episode, these tests say so.
UR5E_OPEN = pytest.mark.xfail(strict=True, reason="ee control does not yet drive the UR5e "
                              "(slow, heavily damped servos); see docs/benchmarks.md")


def _open(name: str):
    return pytest.param(name, marks=UR5E_OPEN) if name == "ur5e" else name


def _example(name: str) -> tuple[str, str]:
    return str(EXAMPLES / f"{name}.xml"), EXAMPLE_ARMS[name]


@pytest.fixture
def servo_arm(tmp_path) -> Path:
    path = tmp_path / "over_floor.xml"
    path.write_text(SERVO_ARM)
    return path


def test_every_example_arm_is_listed():
    assert {p.stem for p in EXAMPLES.glob("*.xml")} == set(EXAMPLE_ARMS)


# --- ee: a scripted proportional policy reaches -------------------------------------------------

EPISODES = 12
# "Most reachable targets", per arm: what the controller reaches on these 12 seeds
# (2026-12-01: 12/12 on Panda, Gen3 and tiny_arm, 11 on four_link, 10 on iiwa14_torque,
# 9 on the rest), less one episode of margin. The misses are a local controller's: a
# 3-joint arm whose target needs the other elbow, self-contact (xArm7's elbow folded onto
# its wrist), a floor in the way (servo_arm); docs/benchmarks.md, Controllers. Raised
# 2026-12-08 with the global step out of joint-limit stalls (replan.py), again what it
# reaches less one episode: servo_arm 9 → 12, spatial_arm 9 → 10, iiwa14 and iiwa14_torque
# 10 → 11 of 12 ("Leaving local minima").
MIN_SHARE = {"panda": 0.9, "gen3": 0.9, "tiny_arm": 0.9, "four_link": 0.9, "iiwa14_torque": 0.8,
             "xarm7": 0.65, "iiwa14": 0.8, "spatial_arm": 0.75, "long_arm": 0.65,
             "servo_arm": 0.9, "ur5e": 0.55}


def _scripted_ee(arm: str, end_effector: str, episodes: int = EPISODES,
                 episode_s: float | None = 2.0) -> float:
    """Share of episodes a policy moving the end effector straight at the target ends
    within 2 cm: action = (target − ee) / the most one action moves, clipped; episodes of
    `episode_s` (None: the arm's default, reacher.sim.fit)."""
    env = ReachEnv(arm, end_effector, control="ee", episode_s=episode_s)
    step = env.controller.max_step
    reached = 0
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        for _ in range(env.max_episode_steps):
            obs, _, _, _, info = env.step(np.clip(-obs[-3:] / step, -1.0, 1.0))
        reached += info["is_success"]
    return reached / episodes


@pytest.mark.slow
@pytest.mark.parametrize("name", [_open(n) for n in sorted(EXAMPLE_ARMS)])
def test_a_proportional_policy_through_ee_reaches_on_every_example_arm(name):
    share = _scripted_ee(*_example(name))
    assert share >= MIN_SHARE[name], f"{name}: {100 * share:.0f} % of {EPISODES} scripted reaches within 2 cm"


def test_every_example_arm_has_a_threshold():
    assert set(MIN_SHARE) == set(EXAMPLE_ARMS)


def test_a_proportional_policy_through_ee_reaches_with_servos_and_motors(arm_dir):
    assert _scripted_ee("two_link", "fingertip", 6) >= 0.8  # motors: operational space (6/6 measured)
    assert _scripted_ee(str(arm_dir / "body_hand.xml"), "hand", 6) >= 0.8  # a body end effector (6/6)


@pytest.mark.parametrize("name", [_open(n) for n in MENAGERIE])
def test_an_ee_action_moves_the_end_effector_at_most_speed_times_period(name):
    env = ReachEnv(*_example(name), control="ee", ee_speed=0.5)
    assert env.action_space.shape == (3,) and env.controller.max_step == pytest.approx(0.5 * env.dt)
    obs, _ = env.reset(seed=0, options={"target": [0.3, 0.0, 0.5]})
    for axis in range(3):
        for _ in range(5):  # from rest, the end effector speeds up within a few actions
            before = obs[-9:-6].copy()
            action = np.zeros(3)
            action[axis] = 1.0
            obs, *_ = env.step(action)
        moved = obs[-9:-6] - before
        assert moved[axis] > 0.3 * env.controller.max_step  # it goes where it is told
        assert np.linalg.norm(moved) < 1.5 * env.controller.max_step  # and not much further


# --- joint_delta holds a pose against gravity --------------------------------------------------

@pytest.mark.parametrize("name", ["spatial_arm", "panda"])  # motors and servos, both under gravity
def test_joint_delta_holds_a_commanded_pose_against_gravity(name):
    env = ReachEnv(*_example(name), control="joint_delta", episode_s=None)
    assert env.model.opt.gravity[2] < 0
    env.reset(seed=3)
    arm = env.arm
    q_goal = arm.random_configuration(np.random.default_rng(0))
    q_goal = np.clip(q_goal, arm.joint_low + 0.2, arm.joint_high - 0.2)
    step = env.controller.max_step
    for _ in range(150):  # 3 s: drive the joints to the commanded pose
        q = env.data.qpos[arm.qpos_adr]
        env.step(np.clip((q_goal - q) / step, -1.0, 1.0))
    reached = env.data.qpos[arm.qpos_adr].copy()
    assert np.abs(reached - q_goal).max() < 0.05
    for _ in range(50):  # 1 s of zero actions: the pose holds
        env.step(np.zeros(env.action_space.shape))
    assert np.abs(env.data.qpos[arm.qpos_adr] - reached).max() < 0.01


@pytest.mark.parametrize("name", ["spatial_arm", "panda"])
def test_joint_delta_moves_each_joint_by_about_rate_times_period(name):
    env = ReachEnv(*_example(name), control="joint_delta", joint_rate=0.5)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape)
    action[:2] = [1.0, -1.0]
    q = env.data.qpos[env.arm.qpos_adr].copy()
    for _ in range(10):
        env.step(action)
    moved = env.data.qpos[env.arm.qpos_adr] - q
    assert moved[0] > 0 > moved[1]
    np.testing.assert_allclose(np.abs(moved[:2]), 10 * 0.5 * env.dt, rtol=0.3)
    assert np.abs(moved[2:]).max() < 0.2 * 10 * 0.5 * env.dt


def test_joint_control_is_the_default_and_unchanged(servo_arm):
    env = ReachEnv(servo_arm, "tip")
    assert env.control == "joint" and env.action_space.shape == (3,)
    env.reset(seed=0)
    env.step(np.array([1.0, -1.0, 0.0], np.float32))
    np.testing.assert_allclose(env.data.ctrl, [3.14, -2.5, 0.0])  # absolute servo targets


# --- every controller works with the rest of the env -------------------------------------------

@pytest.mark.parametrize("control", ["joint", "joint_delta", "ee"])
def test_goal_mode_vector_envs_and_render_work_with_every_controller(control, servo_arm):
    env = gym.make("reacher/Reach-v0", arm=str(servo_arm), end_effector="tip", control=control,
                   goal_observation=True, render_mode="rgb_array", width=64, height=64)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        assert reward == env.unwrapped.compute_reward(obs["achieved_goal"], obs["desired_goal"], {})
    assert env.render().shape == (64, 64, 3)
    env.close()
    vec = gym.make_vec("reacher/Reach-v0", num_envs=2, arm=str(servo_arm), end_effector="tip",
                       control=control)
    vec.reset(seed=0)
    obs, reward, *_ = vec.step(np.zeros(vec.action_space.shape, np.float32))
    assert reward.shape == (2,) and np.isfinite(obs).all()
    vec.close()


def test_the_action_size_follows_the_controller():
    arm, ee = _example("panda")
    sizes = {c: ReachEnv(arm, ee, control=c).action_space.shape for c in ("joint", "joint_delta", "ee")}
    assert sizes == {"joint": (7,), "joint_delta": (7,), "ee": (3,)}


# --- auto: chosen per arm, recorded --------------------------------------------------------------

def test_auto_picks_ee_for_servo_arms_and_torque_arms_with_more_than_three_actuators(arm_dir, servo_arm):
    # Servo arms and torque arms of 4+ actuators learn far better through ee; torque arms
    # of 2-3 actuators keep learning their torques (docs/benchmarks.md, "Learning on 7-DOF arms").
    for name in MENAGERIE + ("servo_arm", "iiwa14_torque", "four_link"):
        assert fit.control_for(load_arm(*_example(name)))[0] == "ee", name
    for arm, ee in [("two_link", "fingertip"), ("three_link", "fingertip"), _example("spatial_arm"),
                    _example("tiny_arm"), _example("long_arm"), (str(arm_dir / "slider.xml"), "fingertip")]:
        assert fit.control_for(load_arm(arm, ee))[0] == "joint", arm
    assert ReachEnv(servo_arm, "tip", control="auto").control == "ee"
    control, why = fit.control_for(load_arm(*_example("iiwa14_torque")))
    assert "7 torque actuators" in why and "operational-space" in why


def test_make_env_resolves_auto_and_the_run_records_the_name(servo_arm):
    config = Config(arm=str(servo_arm), end_effector="tip")
    assert config.control == "auto"
    env = make_env(config)
    assert env.control == "ee" and env.action_space.shape == (3,)
    resolved = adapt.resolve(config, 3, env.timing.episode_s, control=env.control)
    assert resolved.control == "ee"
    assert adapt.resolve(config.replace(control="joint"), 3, control="ee").control == "joint"


def test_runs_saved_before_control_existed_read_as_joint():
    assert from_mapping({"arm": "two_link"}, saved_base()).control == "joint"
    assert from_mapping({"arm": "two_link", "control": "ee"}, saved_base()).control == "ee"


def test_make_env_reuses_a_loaded_arm_with_its_own_model(servo_arm):
    arm = load_arm(servo_arm, "tip")
    env = make_env(Config(arm=str(servo_arm), end_effector="tip"), arm=arm)
    assert env.arm.model is not arm.model and env.data is not None
    assert env.arm.joint_names == arm.joint_names


@pytest.mark.slow
def test_training_loads_the_arm_once(servo_arm, tmp_path, monkeypatch):
    import reacher.run.training as train_module
    from reacher.run import envs as env_module
    from reacher.run.training import Training

    calls = []
    real = env_module.load_arm
    for module in (env_module, train_module):  # wherever it is loaded from
        monkeypatch.setattr(module, "load_arm", lambda *a, **k: calls.append(a) or real(*a, **k))
    training = Training(Config(arm=str(servo_arm), end_effector="tip", threads=1,
                               hidden_sizes=(8, 8)), tmp_path / "run", progress=False)
    try:
        assert len(calls) == 1
        assert training.eval_env.unwrapped.model is not training.env.unwrapped.model
        assert training.config.control == "ee"
        assert 'control = "ee"' in (tmp_path / "run" / "config.toml").read_text()
    finally:
        training.open_run_dir.close()


# --- bad settings: one line naming the setting ---------------------------------------------------

def test_bad_control_settings_name_the_setting(servo_arm, tmp_path):
    with pytest.raises(ControlError, match="control must be one of .*'bogus'"):
        ReachEnv(servo_arm, "tip", control="bogus")
    with pytest.raises(ControlError, match="ee_speed must be a positive number, got 0"):
        ReachEnv(servo_arm, "tip", control="ee", ee_speed=0)
    with pytest.raises(ControlError, match="joint_rate must be a positive number, got -1"):
        ReachEnv(servo_arm, "tip", control="joint_delta", joint_rate=-1)
    with pytest.raises(ConfigError, match="control must be auto, joint, joint_delta or ee, got 'bogus'"):
        Config(control="bogus")
    with pytest.raises(ConfigError, match="ee_speed must be positive"):
        Config(ee_speed=0.0)
    with pytest.raises(ConfigError, match="joint_rate must be positive"):
        Config(joint_rate=-2.0)
    mixed = tmp_path / "mixed.xml"
    mixed.write_text(MIXED)
    with pytest.raises(ControlError, match="control 'ee': actuator 'actuator2'.*velocity|control 'ee'"):
        ReachEnv(mixed, "tip", control="ee")


# The site 'fixed' hangs on a passive joint no actuator drives: the arm moves it only
# through contact, never through a control.
UNMOVED = """<mujoco model="unmoved">
  <worldbody>
    <body name="pendulum" pos="0.3 0 0">
      <joint name="swing" axis="0 1 0" range="-1 1"/>
      <geom type="capsule" fromto="0 0 0 0 0 -0.1" size="0.01"/>
      <site name="fixed" pos="0 0 -0.1"/>
    </body>
    <body name="link">
      <joint name="hinge" axis="0 0 1" range="-1 1"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
      <site name="tip" pos="0.2 0 0"/>
    </body>
  </worldbody>
  <actuator><position joint="hinge" kp="10"/></actuator>
</mujoco>
"""


def test_ee_on_an_end_effector_no_joint_moves_is_refused(tmp_path):
    path = tmp_path / "unmoved.xml"
    path.write_text(UNMOVED)
    with pytest.raises(ControlError, match="control 'ee': no actuated joint of unmoved moves its "
                                           "end effector 'fixed'"):
        ReachEnv(path, "fixed", control="ee")
    assert ReachEnv(path, "tip", control="ee").action_space.shape == (3,)
    assert fit.control_for(load_arm(path, "fixed"))[0] == "joint"


@pytest.mark.parametrize("args, fragment", [
    (["--control", "bogus"], "control must be auto, joint, joint_delta or ee"),
    (["--ee-speed", "0"], "ee_speed must be positive"),
    (["--joint-rate", "-1"], "joint_rate must be positive"),
])
def test_the_cli_refuses_bad_control_settings_in_one_line(args, fragment, tmp_path, monkeypatch, capsys):
    from reacher import cli

    monkeypatch.chdir(tmp_path)
    try:
        code = cli.main(["train", "--run-dir", str(tmp_path / "run"), *args])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_cli_refuses_ee_on_an_arm_whose_end_effector_no_joint_moves(tmp_path, monkeypatch, capsys):
    from reacher import cli

    path = tmp_path / "unmoved.xml"
    path.write_text(UNMOVED)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["train", "--arm", str(path), "--end-effector", "fixed", "--control", "ee",
                     "--run-dir", str(tmp_path / "run"), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "control 'ee'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


# --- what ee control adds to the observation ---------------------------------------------------

@pytest.mark.parametrize("name", ["spatial_arm", "panda"])  # operational-space torques and servo IK
def test_ee_observes_the_end_effector_velocity_before_its_position(name):
    import mujoco

    joint = ReachEnv(*_example(name), control="joint_delta")
    env = ReachEnv(*_example(name), control="ee")
    layout = env.goal_layout
    assert env.observation_space.shape[0] == joint.observation_space.shape[0] + 3
    assert layout.achieved.start == env.observation_space.shape[0] - 9
    obs, _ = env.reset(seed=2)
    np.testing.assert_array_equal(obs[layout.achieved.start - 3:layout.achieved.start], 0.0)  # at rest
    site = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_SITE, env.arm.end_effector)
    velocity = np.zeros(6)
    for _ in range(4):
        obs, *_ = env.step(np.array([1.0, -0.5, 0.5]))
        # MuJoCo's own site velocity (world frame, linear part last), not the Jacobian.
        mujoco.mj_objectVelocity(env.model, env.data, mujoco.mjtObj.mjOBJ_SITE, site, velocity, 0)
        np.testing.assert_allclose(obs[layout.achieved.start - 3:layout.achieved.start], velocity[3:],
                                   atol=1e-9)
    assert np.linalg.norm(velocity[3:]) > 0.1  # it is moving: the check above compared something


# --- ee holds still: zero actions, 5 s under gravity --------------------------------------------

@pytest.mark.parametrize("name", ["xarm7", "ur5e", "iiwa14_torque", "panda"])
def test_zero_ee_actions_hold_the_end_effector_for_5_s(name):
    """A redundant arm's posture pull used to run on while the policy asked for nothing,
    and the servos' imperfect tracking of it walked the end effector off: 20-50 cm in 5 s
    from 9 of 10 starts on xArm7 and UR5e, 8 of 10 on iiwa14_torque."""
    env = ReachEnv(*_example(name), control="ee", episode_s=5.0)
    assert env.model.opt.gravity[2] < 0
    for seed in range(1000, 1004):
        env.reset(seed=seed)
        start = env.physics.end_effector_pos().copy()
        for _ in range(env.max_episode_steps):
            env.step(np.zeros(3))
        assert np.linalg.norm(env.physics.end_effector_pos() - start) < 0.02, seed


# --- ee near a kinematic singularity (adaptive damped least squares) ----------------------------

def test_the_eigenvalue_bounds_of_a_3x3_match_numpy():
    rng = np.random.default_rng(0)
    for i in range(300):
        J = rng.normal(size=(3, 7)) * rng.uniform(0.01, 3.0)
        if i % 3 == 0:
            J[2] = 0.0  # a planar arm: one eigenvalue zero
        A = J @ J.T
        smallest, largest = extreme_eigenvalues(A.tolist())
        want = np.linalg.eigvalsh(A)
        assert abs(smallest - want[0]) <= 1e-7 * want[2] and abs(largest - want[2]) <= 1e-7 * want[2]
    assert extreme_eigenvalues(np.eye(3).tolist()) == (1.0, 1.0)


def test_near_a_singularity_the_ik_step_asks_no_more_joint_motion_than_at_the_bands_edge():
    # UR5e straightening its elbow: σ_min of J falls to 0. With a fixed λ the joint motion
    # per metre asked along the weakest direction peaks at 1/(2√λ) where σ = √λ (5x the
    # bound below, measured), motion force-limited servos cannot give; the adaptive
    # damping keeps it near 1/ε, what the arm gets where the band starts (σ = ε =
    # SINGULAR_RATIO × σ_max; the nullspace pull adds a few per cent).
    env = ReachEnv(*_example("ur5e"), control="ee")
    env.reset(seed=0)
    control, physics = env.controller, env.physics
    drive = control.drive
    law = ServoIK(drive, control.rest, control.period, control.max_step)
    worst = 0.0
    for elbow in np.linspace(0.0, 0.3, 31):
        q = control.rest.copy()
        q[2] = elbow
        physics.data.qpos[drive.qpos] = q
        physics.forward()
        J = drive.jacobian().copy()
        U, S, _ = np.linalg.svd(J)
        dq = law.targets(J, (control.max_step * U[:, 2]).tolist(), q) - q
        worst = max(worst, np.linalg.norm(dq) / control.max_step * SINGULAR_RATIO * S[0])
    assert worst <= 1.5, f"the joint step reached {worst:.2f}x the band's-edge gain"
