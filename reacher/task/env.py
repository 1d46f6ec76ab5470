"""What the task asks: move the arm's fingertip to a target. A Gymnasium environment.

`ReachEnv` composes three parts, each in its own module: the running arm
(`reacher.sim.physics`), the controller that says what an action means
(`reacher.sim.controllers`), and the task — targets, observation, reward, success
(`reacher.task.reach`). `reacher.run.envs.make_env` builds one from a training `Config`.

Its arguments are plain values; one left at None is chosen for the arm exactly as
``reacher train`` chooses it (`reacher.sim.fit`), so a bare ``ReachEnv(arm)``,
``gym.make("reacher/Reach-v0", arm=...)`` and training run the same episodes.
"""

from __future__ import annotations

import math
from pathlib import Path

import gymnasium as gym
import numpy as np

from reacher.errors import ArmFileError
from reacher.sim.arm import Arm, load_arm
from reacher.sim.controllers import EE_SPEED_M_S, JOINT_RATE_RAD_S, make_controller
from reacher.sim.fit import control_for, episode_seconds
from reacher.sim.physics import Physics
from reacher.sim.rendering import has_display, make_renderer
from reacher.sim.timing import CONTROL_PERIOD_S, control_timing
from reacher.task import goal
from reacher.task.observation import table
from reacher.task.reach import ReachTask, target_from
from reacher.task.reward import ReachReward

__all__ = ["DefersToTimeLimit", "ReachEnv"]


class ReachEnv(gym.Env):
    """Reach a target with the fingertip of a MuJoCo arm.

    The arm is any MJCF arm with hinge or slide joints and actuators (see
    `reacher.sim.arm.load_arm`); the built-ins are ``two_link`` and ``three_link``.

    ## Action space
    ``Box(-1, 1, (n,), float32)``; what it means is the ``control`` argument's
    (`reacher.sim.controllers`). Values outside [-1, 1] are clipped; NaN, inf or a wrong
    shape raise ``ValueError``.

    | control       | n            | an action value of ±1 means                              |
    |---------------|--------------|----------------------------------------------------------|
    | ``joint``     | n_actuators  | each actuator's ctrlrange end, in the MJCF ``<actuator>`` order: a motor's torque, a position servo's absolute joint target (with ``servo_speed`` > 0: an offset from the joint's position of servo_speed·dt), a velocity servo's velocity |
    | ``joint_delta`` | n_actuators | move that actuator's joint target by ``joint_rate``·dt (rad or m) from where the joint is; gravity compensated |
    | ``ee``        | 3            | move the end effector by ``ee_speed``·dt (m) along world x, y, z; joint targets by damped-least-squares IK (position servos) or operational-space torques (motors); gravity compensated |

    ``joint_delta`` and ``ee`` need an arm driven by position servos or motors on its
    joints, one per joint (``ee``: not both kinds). ``control=None`` (or ``"auto"``) picks
    per arm by `reacher.sim.fit.control_for`, as ``reacher train`` does.

    ## Observation space
    ``Box(-inf, inf, (n,), float64)``, read from the model's sensors, in this order
    (`reacher.task.observation`; ``observation_layout`` holds it for this env's arm, each
    value named):

    {observation_table}

    For ``two_link`` that is 2+2+2+3+3+3 = 15 values. ``joint`` and ``joint_delta``
    act from the measured state alone and add nothing; ``ee`` adds the fingertip's
    velocity (J·q̇), which its policy needs to stop a moving arm on the target.

    With ``goal_observation=True`` it is instead the Dict that goal-conditioned
    libraries (Stable-Baselines3's ``HerReplayBuffer``, Gymnasium-Robotics) expect,
    each part a float64 Box: ``observation`` (the rows above the fingertip),
    ``achieved_goal`` (fingertip position) and ``desired_goal`` (target position); see
    `reacher.task.goal`. ``compute_reward(achieved_goal, desired_goal, info)`` then returns
    exactly the reward ``step`` returned, for one transition or a batch ((n, 3) goals
    with a list or array of infos, or a dict of arrays); it reads nothing from
    ``info``, so SB3's ``HerReplayBuffer`` works with its defaults (empty infos).

    ## Reward
    ``-distance - ctrl_cost_weight·‖a‖² - precision_weight·(1 - exp(-(distance/precision_scale_m)²))``
    with distance the fingertip-to-target distance in metres (see `reacher.task.reward`).
    With ``goal_observation=True`` the control cost is left out (ctrl_cost_weight is
    taken as 0): a reward of the goals alone is one a HER library can recompute for
    any relabelled goal without the step's action.

    ## Starting state
    Joint positions uniform within the joint limits (hinges without limits: [-π, π]),
    joint velocities zero. The target is the fingertip position at another uniformly
    drawn configuration, so it is always reachable: in the table plane for planar arms,
    anywhere in the 3-D workspace for spatial ones. Configurations in which the arm
    collides with itself or its surroundings (e.g. a floor) are drawn again for both
    (`reacher.sim.collision`), so no target lies inside the arm or below the floor. ``reset(options={"target": xyz})``
    sets it explicitly.

    ## Timing
    The policy acts every ``control_period_s`` (0.02 s) of simulated time; an episode
    lasts ``episode_s``, by default the arm's as ``reacher train`` has it
    (`reacher.sim.fit.episode_seconds`: 1 s for an arm that learns joint torques; for one
    that reaches through ``ee``, the time its controller takes for 90 % of sampled moves,
    at least 1 s, or 2 s with position servos).
    The physics steps per action, ``frame_skip``, follow from
    the arm file's own timestep (see `reacher.sim.timing`), so a model at MuJoCo's default
    0.002 s and the built-ins at 0.01 s both act at 50 Hz for 1 s. ``dt`` and
    ``metadata["render_fps"]`` are the control period and rate.

    ## Episode end
    Never terminates (reaching has no terminal state). Truncates after ``episode_s``
    (``max_episode_steps`` steps when given: 50 steps for the built-ins, 100 for a
    servo-driven arm), or, made by ``gym.make(id, max_episode_steps=N)``, after
    Gymnasium's TimeLimit of N steps alone (see `DefersToTimeLimit`); or at once
    if the physics blows up (NaN/inf state or
    MuJoCo's instability warning), with ``info["physics_error"]`` saying so; the next
    ``reset`` starts clean.

    ## Info
    ``distance`` (m), ``is_success`` (distance ≤ ``success_radius``), ``target`` (xyz, m),
    from both ``reset`` and ``step``; with ``goal_observation=True``, ``step`` adds
    ``effort``, the action's ‖a‖² (which the goal-mode reward does not charge).

    ## Arguments
    ``arm``: built-in name or MJCF path; ``end_effector``: site or body name;
    ``control`` ("joint"; "joint_delta", "ee", or None/"auto": the arm's, see the action
    table), ``ee_speed`` (1.25 m/s) and ``joint_rate`` (1.25 rad/s) for them;
    ``control_period_s`` (0.02) and ``episode_s`` (None: the arm's, see Timing);
    ``frame_skip`` and ``max_episode_steps`` state the same in steps and override them;
    ``ctrl_cost_weight``, ``precision_weight``, ``precision_scale_m``: reward weights;
    ``success_radius`` (0.02 m); ``servo_speed`` (0: a position servo's action is an
    absolute joint target; above 0, an offset from the joint's position of at most
    servo_speed·dt, in rad/s or m/s; ``joint`` control only); ``render_mode``
    ("rgb_array" or "human"); ``width``, ``height`` (480) and ``camera`` (name, default
    "angled") for rgb_array frames; ``goal_observation`` (False): the Dict observation above.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(
        self,
        arm: str | Path | Arm = "two_link",
        end_effector: str = "fingertip",
        *,
        control: str | None = "joint",
        ee_speed: float = EE_SPEED_M_S,
        joint_rate: float = JOINT_RATE_RAD_S,
        control_period_s: float = CONTROL_PERIOD_S,
        episode_s: float | None = None,
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
        try:
            self.timing = control_timing(self.model.opt.timestep, control_period_s,
                                         episode_seconds(self.arm) if episode_s is None else episode_s,
                                         frame_skip, max_episode_steps)
        except ValueError as err:  # the period asked for against this file's timestep
            raise ArmFileError(self.arm.source, str(err)) from None
        if self.timing.note:
            gym.logger.warn(self.timing.note)
        self.frame_skip = self.timing.frame_skip
        # None once Gymnasium's TimeLimit counts the steps instead (`DefersToTimeLimit`).
        self.max_episode_steps: int | None = self.timing.episode_steps
        self.dt = self.timing.control_period_s
        self.metadata = {**self.metadata, "render_fps": self.timing.control_hz}

        self.physics = Physics(self.arm, self.frame_skip)
        self.data = self.physics.data
        if control is None or control == "auto":
            control = control_for(self.arm)[0]
        self.controller = make_controller(control, self.physics, servo_speed=servo_speed,
                                          ee_speed=ee_speed, joint_rate=joint_rate)
        self.control = self.controller.name
        self.action_space = self.controller.action_space
        self._act = self.controller.act
        self._action_shape = self.action_space.shape

        self.goal_observation = bool(goal_observation)
        # Goal mode's reward is a function of the goals alone (see "Reward" above).
        self.reward_fn = ReachReward(0.0 if self.goal_observation else ctrl_cost_weight,
                                     precision_weight, precision_scale_m)
        self.success_radius = float(success_radius)
        self.task = ReachTask(self.physics, self.reward_fn, self.success_radius,
                              self.controller.observes_end_effector_velocity)
        self.observation_layout = self.task.layout
        self.goal_layout = self.task.goal_layout
        self._state_size = self.task.state_size
        self.observation_space = (goal.goal_space(self._state_size) if self.goal_observation else
                                  gym.spaces.Box(-np.inf, np.inf, (self.task.observation_size,),
                                                 np.float64))

        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.camera = camera if camera is not None else self._default_camera()
        self._renderer = None
        self._viewer = None
        self._warned_no_display = False
        self._steps = 0

    @property
    def _collision(self):
        return self.task.collision

    # --- Gymnasium API ----------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        target = target_from(options) if options and "target" in options else None
        self.task.start(self.np_random, target)
        self._steps = 0
        obs = self.task.observe()
        distance = float(np.linalg.norm(obs[-3:]))
        if self.goal_observation:
            obs = goal.split(obs, self._state_size)
        return obs, {"distance": distance, "is_success": distance <= self.success_radius,
                     "target": self.task.target.copy()}

    def step(self, action):
        # The hot path: a few microseconds of Python around the physics, so every
        # operation here is chosen for speed (see scripts/bench_env.py).
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._action_shape:
            raise ValueError(f"action has shape {a.shape}, expected {self._action_shape} "
                             f"(one value per {self.control} action: "
                             f"{', '.join(self.controller.action_names())})")
        # Arms have a handful of actuators: plain floats beat numpy calls here.
        values = a.tolist()
        if not math.isfinite(sum(values)):  # any NaN or inf makes the sum NaN or inf
            raise ValueError(f"action contains NaN or inf: {a}")
        clipped = [min(max(v, -1.0), 1.0) for v in values]
        effort = sum(v * v for v in clipped)
        self._act(clipped)
        self.physics.advance()
        self._steps += 1

        obs = self.task.observe()
        reward, distance, info = self.task.outcome(obs, effort)
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        if self.physics.unstable() or not math.isfinite(reward):
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
        or a batch (n, 3)), as goal-conditioned libraries call it: a float, or an array
        of n rewards. `info` is accepted and not read (goal mode charges no effort).

        Only goal envs have it: Stable-Baselines3 (and others) take any env with a
        ``compute_reward`` for a goal env, so in the default mode it is absent."""
        if not self.goal_observation:
            raise AttributeError("compute_reward exists only with goal_observation=True")
        return self._compute_reward

    def _compute_reward(self, achieved_goal, desired_goal, info):
        achieved, desired = np.asarray(achieved_goal, np.float64), np.asarray(desired_goal, np.float64)
        try:
            np.broadcast_shapes(achieved.shape, desired.shape)
        except ValueError:
            raise ValueError(f"compute_reward: achieved_goal of shape {achieved.shape} and "
                             f"desired_goal of shape {desired.shape} do not match") from None
        return self.reward_fn.from_goals(achieved, desired, 0.0)

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

    def _default_camera(self) -> str | int:
        for name in ("angled", "top"):
            if name in self.arm.cameras:
                return name
        return -1



# The observation table is the layout's own (one description; see reacher.task.observation).
ReachEnv.__doc__ = ReachEnv.__doc__.replace("{observation_table}", table().replace("\n", "\n    "))

def _check_positive(**values) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


class DefersToTimeLimit(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """What ``gym.make`` puts around a registered reacher env (the ids register it as an
    additional wrapper, which Gymnasium applies outside its TimeLimit): when
    ``gym.make(id, max_episode_steps=N)`` added a TimeLimit, its N steps count alone and
    the env's own episode length is lifted, so N may be longer than it too; without
    one the env ends its episodes itself, at the arm's length. A pass-through otherwise."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        inner = env
        while isinstance(inner, gym.Wrapper):
            if isinstance(inner, gym.wrappers.TimeLimit):
                env.unwrapped.max_episode_steps = None
                break
            inner = inner.env
