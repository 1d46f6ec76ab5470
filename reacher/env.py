"""What the task asks: move the arm's fingertip to a target. A Gymnasium environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np

from reacher.arm import Arm, load_arm
from reacher.rendering import has_display, make_renderer
from reacher.reward import ReachReward

_INSTABILITY_WARNINGS = np.array([int(mujoco.mjtWarning.mjWARN_BADQPOS),
                                  int(mujoco.mjtWarning.mjWARN_BADQVEL),
                                  int(mujoco.mjtWarning.mjWARN_BADQACC)])


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

    ## Reward
    ``-distance - ctrl_cost_weight·‖a‖² - precision_weight·(1 - exp(-(distance/precision_scale_m)²))``
    with distance the fingertip-to-target distance in metres (see `reacher.reward`).

    ## Starting state
    Joint positions uniform within the joint limits (hinges without limits: [-π, π]),
    joint velocities zero. The target is the fingertip position at another uniformly
    drawn configuration, so it is always reachable: in the table plane for planar arms,
    anywhere in the 3-D workspace for spatial ones. ``reset(options={"target": xyz})``
    sets it explicitly.

    ## Episode end
    Never terminates (reaching has no terminal state). Truncates after
    ``max_episode_steps`` steps, or at once if the physics blows up (NaN/inf state or
    MuJoCo's instability warning), with ``info["physics_error"]`` saying so; the next
    ``reset`` starts clean.

    ## Info
    ``distance`` (m), ``is_success`` (distance ≤ ``success_radius``), ``target`` (xyz, m),
    from both ``reset`` and ``step``.

    ## Arguments
    ``arm``: built-in name or MJCF path; ``end_effector``: site or body name;
    ``max_episode_steps`` (50); ``frame_skip`` (physics steps per env step, 2);
    ``ctrl_cost_weight``, ``precision_weight``, ``precision_scale_m``: reward weights;
    ``success_radius`` (0.02 m); ``render_mode`` ("rgb_array" or "human"); ``width``,
    ``height`` (480) and ``camera`` (name, default "angled") for rgb_array frames.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(
        self,
        arm: str | Path | Arm = "two_link",
        end_effector: str = "fingertip",
        *,
        max_episode_steps: int = 50,
        frame_skip: int = 2,
        ctrl_cost_weight: float = ReachReward.ctrl_cost_weight,
        precision_weight: float = ReachReward.precision_weight,
        precision_scale_m: float = ReachReward.precision_scale_m,
        success_radius: float = 0.02,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        camera: str | None = None,
    ):
        _check_positive(max_episode_steps=max_episode_steps, frame_skip=frame_skip,
                        success_radius=success_radius, precision_scale_m=precision_scale_m,
                        width=width, height=height)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, "
                             f"not {render_mode!r}")
        self.arm = arm if isinstance(arm, Arm) else load_arm(arm, end_effector)
        self.model = self.arm.model
        self.data = mujoco.MjData(self.model)
        self.frame_skip = int(frame_skip)
        self.max_episode_steps = int(max_episode_steps)
        self.success_radius = float(success_radius)
        self.reward_fn = ReachReward(ctrl_cost_weight, precision_weight, precision_scale_m)
        self.dt = self.model.opt.timestep * self.frame_skip
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.dt))}

        arm_ = self.arm
        n_hinge, n_joints = int(arm_.hinge.sum()), arm_.n_joints
        self._hinge_pos = arm_.joint_pos_adr[arm_.hinge]
        self._slide_pos = arm_.joint_pos_adr[~arm_.hinge]
        i = 2 * n_hinge + (n_joints - n_hinge) + n_joints
        self.goal_layout = GoalLayout(achieved=slice(i, i + 3), desired=slice(i + 3, i + 6),
                                      delta=slice(i + 6, i + 9), reward=self.reward_fn,
                                      success_radius_m=self.success_radius)
        self._obs = np.zeros(i + 9)
        self._n_hinge = n_hinge
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, self._obs.shape, np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (arm_.n_actuators,), np.float32)
        self._ctrl_mid = (arm_.ctrl_high + arm_.ctrl_low) / 2
        self._ctrl_half = (arm_.ctrl_high - arm_.ctrl_low) / 2

        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.camera = camera if camera is not None else self._default_camera()
        self._renderer = None
        self._viewer = None
        self._warned_no_display = False
        self._steps = 0
        self._warnings_seen = 0

    # --- Gymnasium API ----------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        m, d, arm = self.model, self.data, self.arm
        mujoco.mj_resetData(m, d)
        target = self._target_from(options) if options and "target" in options else \
            arm.fingertip_at(d, arm.random_configuration(self.np_random))
        d.qpos[arm.qpos_adr] = arm.random_configuration(self.np_random)
        d.mocap_pos[arm.target_mocap] = target
        mujoco.mj_forward(m, d)
        self._steps = 0
        self._warnings_seen = self._instability_count()
        obs = self._observe()
        distance = float(np.linalg.norm(obs[self.goal_layout.delta]))
        return obs, self._info(distance)

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape} "
                             f"(one value per actuator: {', '.join(self.arm.actuator_names)})")
        if not np.isfinite(a).all():
            raise ValueError(f"action contains NaN or inf: {a}")
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        d = self.data
        d.ctrl[:] = self._ctrl_mid + self._ctrl_half * a
        mujoco.mj_step(self.model, d, nstep=self.frame_skip)
        self._steps += 1

        obs = self._observe()
        distance = float(np.linalg.norm(obs[self.goal_layout.delta]))
        reward = float(self.reward_fn(distance, a))
        info = self._info(distance)
        truncated = self._steps >= self.max_episode_steps
        error = self._physics_error(obs)
        if error:
            info["physics_error"] = error
            truncated = True
            reward = 0.0 if not np.isfinite(reward) else reward
        if self.render_mode == "human":
            self.render()
        return obs, reward, False, truncated, info

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
        sd = self.data.sensordata
        arm, obs, h = self.arm, self._obs, self._n_hinge
        angles = sd[self._hinge_pos]
        obs[:h] = np.cos(angles)
        obs[h:2 * h] = np.sin(angles)
        j = 2 * h + len(self._slide_pos)
        obs[2 * h:j] = sd[self._slide_pos]
        k = j + arm.n_joints
        obs[j:k] = sd[arm.joint_vel_adr]
        obs[k:k + 3] = sd[arm.end_effector_adr]
        obs[k + 3:k + 6] = sd[arm.target_adr]
        obs[k + 6:k + 9] = obs[k:k + 3] - obs[k + 3:k + 6]
        return obs.copy()

    def _info(self, distance: float) -> dict:
        return {"distance": distance, "is_success": distance <= self.success_radius,
                "target": self.data.mocap_pos[self.arm.target_mocap].copy()}

    def _instability_count(self) -> int:
        return int(self.data.warning.number[_INSTABILITY_WARNINGS].sum())

    def _physics_error(self, obs: np.ndarray) -> str | None:
        count = self._instability_count()
        if count != self._warnings_seen:
            self._warnings_seen = count
            return f"MuJoCo reported an unstable simulation at step {self._steps}; state was reset"
        if not np.isfinite(obs).all():
            return f"physics state became NaN or inf at step {self._steps}"
        return None

    def _target_from(self, options: dict) -> np.ndarray:
        target = np.asarray(options["target"], dtype=np.float64)
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
