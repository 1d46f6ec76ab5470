"""What the task asks: move the arm's fingertip to a target. A Gymnasium environment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

from reacher import goal
from reacher.arm import Arm, load_arm, position_servos
from reacher.collision import CollisionCheck
from reacher.rendering import has_display, make_renderer
from reacher.reward import ReachReward
from reacher.timing import CONTROL_PERIOD_S, EPISODE_S, control_timing

_COLLISION_SAMPLES = 200  # random configurations that reveal by-design contact pairs

# MuJoCo counts these warnings when it finds NaN/inf or huge values, and then resets
# the state itself; mj_resetData (every reset) clears the counts.
_BADQPOS, _BADQVEL, _BADQACC = (int(w) for w in (mujoco.mjtWarning.mjWARN_BADQPOS,
                                                 mujoco.mjtWarning.mjWARN_BADQVEL,
                                                 mujoco.mjtWarning.mjWARN_BADQACC))


@dataclass(frozen=True)
class GoalLayout:
    """Where the goal lives in the observation, so stored transitions can be relabelled
    with another target (hindsight replay): the fingertip slice is what was achieved,
    the target slice what was desired, and ``delta`` = fingertip − target."""

    achieved: slice
    desired: slice
    delta: slice
    reward: ReachReward
    success_radius_m: float


class ReachEnv(gym.Env):
    """Reach a target with the fingertip of a MuJoCo arm.

    The arm is any MJCF arm with hinge or slide joints and actuators (see
    `reacher.arm.load_arm`); the built-ins are ``two_link`` and ``three_link``.

    ## Action space
    ``Box(-1, 1, (n_actuators,), float32)``: one value per actuator, in the order of
    the MJCF ``<actuator>`` block, scaled linearly onto each actuator's ``ctrlrange``.
    Values outside [-1, 1] are clipped; NaN, inf or a wrong shape raise ``ValueError``.

    ## Observation space
    ``Box(-inf, inf, (n,), float64)``, read from the model's sensors, in this order:

    | part                        | size           | unit      |
    |-----------------------------|----------------|-----------|
    | cos of each hinge angle     | n_hinge        |           |
    | sin of each hinge angle     | n_hinge        |           |
    | position of each slide      | n_slide        | m         |
    | velocity of every joint     | n_joints       | rad/s, m/s|
    | fingertip position (world)  | 3              | m         |
    | target position (world)     | 3              | m         |
    | fingertip − target          | 3              | m         |

    For ``two_link`` that is 2+2+2+3+3+3 = 15 values.

    With ``goal_observation=True`` it is instead the Dict that goal-conditioned
    libraries (Stable-Baselines3's ``HerReplayBuffer``, Gymnasium-Robotics) expect,
    each part a float64 Box: ``observation`` (the rows above the fingertip),
    ``achieved_goal`` (fingertip position) and ``desired_goal`` (target position); see
    `reacher.goal`. ``compute_reward(achieved_goal, desired_goal, info)`` then returns
    exactly the reward ``step`` returned, for one transition or a batch ((n, 3) goals
    with a list or array of infos, or a dict of arrays).

    ## Reward
    ``-distance - ctrl_cost_weight·‖a‖² - precision_weight·(1 - exp(-(distance/precision_scale_m)²))``
    with distance the fingertip-to-target distance in metres (see `reacher.reward`).

    ## Starting state
    Joint positions uniform within the joint limits (hinges without limits: [-π, π]),
    joint velocities zero. The target is the fingertip position at another uniformly
    drawn configuration, so it is always reachable: in the table plane for planar arms,
    anywhere in the 3-D workspace for spatial ones. Configurations in which the arm
    collides with itself or its surroundings (e.g. a floor) are drawn again for both
    (`reacher.collision`), so no target lies inside the arm or below the floor. ``reset(options={"target": xyz})``
    sets it explicitly.

    ## Timing
    The policy acts every ``control_period_s`` (0.02 s) of simulated time; an episode
    lasts ``episode_s`` (1 s here; training's `make_env` gives arms driven by position
    servos 2 s, see `reacher.adapt`). The physics steps per action, ``frame_skip``, follow from
    the arm file's own timestep (see `reacher.timing`), so a model at MuJoCo's default
    0.002 s and the built-ins at 0.01 s both act at 50 Hz for 1 s. ``dt`` and
    ``metadata["render_fps"]`` are the control period and rate.

    ## Episode end
    Never terminates (reaching has no terminal state). Truncates after ``episode_s``
    (50 steps by default; through ``gym.make`` Gymnasium's TimeLimit counts the steps
    instead, 50 unless ``gym.make(id, max_episode_steps=N)`` says otherwise), or at once
    if the physics blows up (NaN/inf state or
    MuJoCo's instability warning), with ``info["physics_error"]`` saying so; the next
    ``reset`` starts clean.

    ## Info
    ``distance`` (m), ``is_success`` (distance ≤ ``success_radius``), ``target`` (xyz, m),
    from both ``reset`` and ``step``; with ``goal_observation=True``, ``step`` adds
    ``effort``, the ‖a‖² the reward charged, which ``compute_reward`` needs.

    ## Arguments
    ``arm``: built-in name or MJCF path; ``end_effector``: site or body name;
    ``control_period_s`` (0.02) and ``episode_s`` (1.0; None: no limit of the env's own);
    ``frame_skip`` and ``max_episode_steps`` state the same in steps and override them;
    ``ctrl_cost_weight``, ``precision_weight``, ``precision_scale_m``: reward weights;
    ``success_radius`` (0.02 m); ``servo_speed`` (0: a position servo's action is an
    absolute joint target; above 0, an offset from the joint's position of at most
    servo_speed·dt, in rad/s or m/s); ``render_mode`` ("rgb_array" or "human"); ``width``,
    ``height`` (480) and ``camera`` (name, default "angled") for rgb_array frames;
    ``goal_observation`` (False): the Dict observation above.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(
        self,
        arm: str | Path | Arm = "two_link",
        end_effector: str = "fingertip",
        *,
        control_period_s: float = CONTROL_PERIOD_S,
        episode_s: float | None = EPISODE_S,
        frame_skip: int | None = None,
        max_episode_steps: int | None = None,
        ctrl_cost_weight: float = ReachReward.ctrl_cost_weight,
        precision_weight: float = ReachReward.precision_weight,
        precision_scale_m: float = ReachReward.precision_scale_m,
        success_radius: float = 0.02,
        servo_speed: float = 0.0,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera: str | None = None,
        goal_observation: bool = False,
    ):
        _check_positive(success_radius=success_radius, precision_scale_m=precision_scale_m,
                        width=width, height=height)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, "
                             f"not {render_mode!r}")
        self.arm = arm if isinstance(arm, Arm) else load_arm(arm, end_effector)
        self.model = self.arm.model
        self.data = mujoco.MjData(self.model)
        self.timing = control_timing(self.model.opt.timestep, control_period_s,
                                     EPISODE_S if episode_s is None else episode_s,
                                     frame_skip, max_episode_steps)
        if self.timing.note:
            gym.logger.warn(self.timing.note)
        self.frame_skip = self.timing.frame_skip
        self.max_episode_steps = (self.timing.episode_steps
                                  if episode_s is not None or max_episode_steps is not None else None)
        self.success_radius = float(success_radius)
        self.reward_fn = ReachReward(ctrl_cost_weight, precision_weight, precision_scale_m)
        self.dt = self.timing.control_period_s
        self.metadata = {**self.metadata, "render_fps": self.timing.control_hz}

        arm_ = self.arm
        # The observation, in order, as sensordata indices (see _observe).
        hinge_pos = arm_.joint_pos_adr[arm_.hinge]
        self._gather = np.concatenate([hinge_pos, hinge_pos, arm_.joint_pos_adr[~arm_.hinge],
                                       arm_.joint_vel_adr, arm_.end_effector_adr, arm_.target_adr,
                                       arm_.end_effector_adr])
        self._n_hinge = len(hinge_pos)
        n = len(self._gather)
        self.goal_layout = GoalLayout(achieved=slice(n - 9, n - 6), desired=slice(n - 6, n - 3),
                                      delta=slice(n - 3, n), reward=self.reward_fn,
                                      success_radius_m=self.success_radius)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), np.float64)
        self.goal_observation = bool(goal_observation)
        self._state_size = n - 9  # what precedes the fingertip, target and their difference
        if self.goal_observation:
            self.observation_space = goal.goal_space(self._state_size)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (arm_.n_actuators,), np.float32)
        self._ctrl_mid = (arm_.ctrl_high + arm_.ctrl_low) / 2
        self._ctrl_half = (arm_.ctrl_high - arm_.ctrl_low) / 2
        self._ctrl_is_action = bool(np.all(self._ctrl_mid == 0) and np.all(self._ctrl_half == 1))
        # Position servos driven relative to where their joint is now (servo_speed > 0).
        servos = position_servos(self.model) if servo_speed > 0 else np.zeros(0, np.intp)
        self._servo_act = servos
        self._servo_qpos = self.model.jnt_qposadr[self.model.actuator_trnid[servos, 0]]
        self._servo_step = float(servo_speed) * self.timing.control_period_s
        if len(servos):
            self._ctrl_is_action = False
        self._split_steps = self.model.opt.integrator != mujoco.mjtIntegrator.mjINT_RK4
        samples = np.random.default_rng(0).uniform(arm_.joint_low, arm_.joint_high,
                                                   (_COLLISION_SAMPLES, arm_.n_joints))
        self._collision = CollisionCheck(self.model, arm_.qpos_adr, samples)
        self._target = np.zeros(3)
        self._action_shape = self.action_space.shape

        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.camera = camera if camera is not None else self._default_camera()
        self._renderer = None
        self._viewer = None
        self._warned_no_display = False
        self._steps = 0

    # --- Gymnasium API ----------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        m, d, arm = self.model, self.data, self.arm
        mujoco.mj_resetData(m, d)
        target = self._target_from(options) if options and "target" in options else \
            arm.fingertip_at(d, self._free_configuration())
        d.qpos[arm.qpos_adr] = self._free_configuration()
        d.mocap_pos[arm.target_mocap] = target
        mujoco.mj_forward(m, d)
        self._steps = 0
        self._target = target.copy()
        obs = self._observe()
        distance = float(np.linalg.norm(obs[-3:]))
        if self.goal_observation:
            obs = goal.split(obs, self._state_size)
        return obs, {"distance": distance, "is_success": distance <= self.success_radius,
                     "target": target.copy()}

    def step(self, action):
        # The hot path: a few microseconds of Python around the physics, so every
        # operation here is chosen for speed (see scripts/bench_env.py).
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._action_shape:
            raise ValueError(f"action has shape {a.shape}, expected {self._action_shape} "
                             f"(one value per actuator: {', '.join(self.arm.actuator_names)})")
        # Arms have a handful of actuators: plain floats beat numpy calls here.
        values = a.tolist()
        if not math.isfinite(sum(values)):  # any NaN or inf makes the sum NaN or inf
            raise ValueError(f"action contains NaN or inf: {a}")
        clipped = [min(max(v, -1.0), 1.0) for v in values]
        effort = sum(v * v for v in clipped)
        m, d = self.model, self.data
        d.ctrl[:] = clipped if self._ctrl_is_action else self._ctrl_mid + self._ctrl_half * np.array(clipped)
        if len(self._servo_act):
            s = self._servo_act
            d.ctrl[s] = np.clip(d.qpos[self._servo_qpos] + self._servo_step * np.asarray(clipped)[s],
                                self.arm.ctrl_low[s], self.arm.ctrl_high[s])
        self._advance(m, d)
        self._steps += 1

        obs = self._observe()
        dx, dy, dz = obs[-3:].tolist()
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        reward = self.reward_fn.from_effort(distance, effort)
        info = {"distance": distance, "is_success": distance <= self.success_radius,
                "target": self._target.copy()}
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        warnings = d.warning.number
        if (warnings.any() and (warnings[_BADQPOS] or warnings[_BADQVEL] or warnings[_BADQACC])) \
                or not math.isfinite(reward):
            # MuJoCo resets the state itself when it detects NaN/inf or huge values.
            info["physics_error"] = (f"MuJoCo reported an unstable simulation at step "
                                     f"{self._steps}; the episode was truncated")
            truncated = True
            reward = reward if math.isfinite(reward) else 0.0
        if self.render_mode == "human":
            self.render()
        if self.goal_observation:
            info["effort"] = effort
            obs = goal.split(obs, self._state_size)
        return obs, reward, False, truncated, info

    @property
    def compute_reward(self):
        """``compute_reward(achieved_goal, desired_goal, info)``: the reward `step` returns
        for the fingertip at `achieved_goal` and the target at `desired_goal` (xyz, m; (3,)
        or a batch (n, 3)), with the action's effort read from `info` (``info["effort"]``;
        a list or array of such dicts for a batch), as goal-conditioned libraries call it:
        a float, or an array of n rewards.

        Only goal envs have it: Stable-Baselines3 (and others) take any env with a
        ``compute_reward`` for a goal env, so in the default mode it is absent."""
        if not self.goal_observation:
            raise AttributeError("compute_reward exists only with goal_observation=True")
        return self._compute_reward

    def _compute_reward(self, achieved_goal, desired_goal, info):
        effort = goal.efforts(info, self.reward_fn.ctrl_cost_weight)
        achieved, desired = np.asarray(achieved_goal, np.float64), np.asarray(desired_goal, np.float64)
        try:
            batch = np.broadcast_shapes(achieved.shape, desired.shape)[:-1]
        except ValueError:
            raise ValueError(f"compute_reward: achieved_goal of shape {achieved.shape} and "
                             f"desired_goal of shape {desired.shape} do not match") from None
        if effort.size == 1 and effort.shape != batch:
            effort = effort.reshape(())  # one info for all
        if effort.shape not in ((), batch):
            raise ValueError(f"compute_reward: {effort.size} infos for goals of shape {achieved.shape}")
        return self.reward_fn.from_goals(achieved, desired, effort)

    def _advance(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        """`frame_skip` physics steps, leaving positions, velocities and sensors fresh.

        mj_step computes sensors *before* integrating, so after it they lag the state
        by one substep. Splitting it as mj_step2 then mj_step1 (dm_control's trick)
        leaves them in sync at no extra cost; RK4 does not support the split, so it
        pays for an extra mj_forward instead."""
        if self._split_steps:
            for _ in range(self.frame_skip):
                mujoco.mj_step2(m, d)
                mujoco.mj_step1(m, d)
        else:
            mujoco.mj_step(m, d, nstep=self.frame_skip)
            mujoco.mj_forward(m, d)

    def render(self):
        if self.render_mode == "rgb_array":
            if self._renderer is None:
                self._renderer = make_renderer(self.model, self.height, self.width)
            self._renderer.update_scene(self.data, camera=self.camera)
            return self._renderer.render()
        if self.render_mode == "human":
            if self._viewer is None:
                if not has_display():
                    if not self._warned_no_display:
                        gym.logger.warn("render_mode='human' needs a display (DISPLAY is unset): "
                                        "nothing is shown; use render_mode='rgb_array' or "
                                        "`reacher render` for video")
                        self._warned_no_display = True
                    return None
                import mujoco.viewer

                self._viewer = mujoco.viewer.launch_passive(self.model, self.data)
            self._viewer.sync()
        return None

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._viewer is not None:
            self._viewer.close()
            self._viewer = None

    # --- helpers ----------------------------------------------------------------------

    def _observe(self) -> np.ndarray:
        # One gather from sensordata in observation order (hinge angles twice, for cos
        # and sin; the fingertip twice, for fingertip − target), then in-place maths.
        obs = self.data.sensordata[self._gather]
        h = self._n_hinge
        if h:
            np.cos(obs[:h], out=obs[:h])
            np.sin(obs[h:2 * h], out=obs[h:2 * h])
        np.subtract(obs[-3:], obs[-6:-3], out=obs[-3:])
        return obs

    def _free_configuration(self) -> np.ndarray:
        """Random joint positions where the arm touches neither itself nor anything else."""
        return self._collision.free_configuration(
            self.data, lambda: self.arm.random_configuration(self.np_random))

    def _target_from(self, options: dict) -> np.ndarray:
        try:
            target = np.asarray(options["target"], dtype=np.float64)
        except (TypeError, ValueError):
            target = np.full(1, np.nan)
        if target.shape != (3,) or not np.isfinite(target).all():
            raise ValueError(f"options['target'] must be 3 finite numbers (xyz, m), "
                             f"got {options['target']!r}")
        return target

    def _default_camera(self) -> str | int:
        for name in ("angled", "top"):
            if name in self.arm.cameras:
                return name
        return -1


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def make_env(config, render_mode: str | None = None, **render_kwargs) -> gym.Env:
    """The environment a `Config` describes: a ReachEnv for its arm, or its Gymnasium id
    (``config.env``) with actions rescaled to [-1, 1] like ReachEnv's."""
    if config.env:
        import reacher  # noqa: F401  (registers reacher/* ids)

        goal_kwargs = {"goal_observation": True} if config.goal_observation else {}
        try:
            env = gym.make(config.env, render_mode=render_mode, **goal_kwargs, **render_kwargs)
        except (gym.error.Error, TypeError) as err:
            raise ValueError(f"env '{config.env}': {err}") from None
        if not isinstance(env.action_space, gym.spaces.Box) or not (
                isinstance(env.observation_space, gym.spaces.Box) or goal.is_goal_space(env.observation_space)):
            raise ValueError(f"env '{config.env}': needs Box observation and action spaces, has "
                             f"{type(env.observation_space).__name__} and "
                             f"{type(env.action_space).__name__}")
        if not isinstance(env.unwrapped, ReachEnv):
            env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
        return env
    from reacher.adapt import episode_seconds

    arm = load_arm(config.arm, config.end_effector)
    return ReachEnv(
        arm, control_period_s=config.control_period_s,
        episode_s=config.episode_s or episode_seconds(arm), frame_skip=config.frame_skip or None,
        max_episode_steps=config.max_episode_steps or None, servo_speed=config.servo_speed,
        ctrl_cost_weight=config.ctrl_cost_weight,
        precision_weight=config.precision_weight, precision_scale_m=config.precision_scale_m,
        success_radius=config.success_radius, render_mode=render_mode,
        goal_observation=config.goal_observation, **render_kwargs)
