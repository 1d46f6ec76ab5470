"""The reaching task: where episodes start, where the target is, what is observed, and
how well the arm did (reward and success).

It reads the running arm (`reacher.sim.physics`) but never drives it: what an action
means is the controller's business (`reacher.sim.controllers`).
"""

from __future__ import annotations

import math

import numpy as np

from reacher.sim.collision import CollisionCheck
from reacher.sim.physics import Physics
from reacher.task.goal import GoalLayout
from reacher.task.observation import observation_layout
from reacher.task.reward import ReachReward


class ReachTask:
    """Targets and starts drawn free of collisions, the observation, reward and success."""

    def __init__(self, physics: Physics, reward: ReachReward, success_radius_m: float,
                 end_effector_velocity: bool = False):
        self.physics = physics
        self.reward = reward
        self.success_radius_m = float(success_radius_m)
        arm = physics.arm
        # The observation (reacher.task.observation), gathered in its order from sensordata
        # (see observe): hinge angles twice (for cos and sin), the fingertip twice (for
        # fingertip − target), and with `end_effector_velocity` three places the
        # fingertip's velocity J·q̇ overwrites. That velocity is what a controller that
        # moves the end effector needs: a servo arm keeps moving after an action
        # (measured on Panda through ee: a reversed command takes two control periods to
        # turn the end effector round), and recovering it from seven joint velocities is
        # a nonlinear map the policy would otherwise have to learn.
        self.layout = layout = observation_layout(arm, end_effector_velocity)
        hinge_pos = arm.joint_pos_adr[arm.hinge]
        sensors = {"cos_hinge_angle": hinge_pos, "sin_hinge_angle": hinge_pos,
                   "slide_position": arm.joint_pos_adr[~arm.hinge], "joint_velocity": arm.joint_vel_adr,
                   "end_effector_velocity": arm.end_effector_adr, "end_effector_position": arm.end_effector_adr,
                   "target_position": arm.target_adr, "end_effector_minus_target": arm.end_effector_adr}
        self._gather = np.concatenate([sensors[values.part.key] for values in layout.parts])
        self._velocity = layout["end_effector_velocity"] if end_effector_velocity else None
        self._cos, self._sin = layout["cos_hinge_angle"], layout["sin_hinge_angle"]
        self._n_hinge = len(hinge_pos)
        self._tip, self._target = layout["end_effector_position"], layout["target_position"]
        self._delta = layout["end_effector_minus_target"]
        self.observation_size = layout.size
        self.state_size = layout.state.stop  # what precedes the fingertip, target and difference
        self.goal_layout = GoalLayout(achieved=self._tip, desired=self._target, delta=self._delta,
                                      reward=reward)
        self.collision = CollisionCheck.for_arm(physics.model, arm)
        self.target = np.zeros(3)

    def start(self, rng: np.random.Generator, target: np.ndarray | None = None) -> None:
        """A new episode: the arm at rest in a collision-free configuration, the target at
        `target` or at the fingertip of another such configuration (always reachable)."""
        physics, arm = self.physics, self.physics.arm
        d = physics.data
        physics.reset()
        if target is None:
            target = arm.fingertip_at(d, self._free_configuration(rng))
        d.qpos[arm.qpos_adr] = self._free_configuration(rng)
        d.mocap_pos[arm.target_mocap] = target
        physics.forward()
        self.target = np.array(target, dtype=np.float64)

    def observe(self) -> np.ndarray:
        # One gather from sensordata in observation order, then in-place maths.
        obs = self.physics.data.sensordata[self._gather]
        if self._n_hinge:
            np.cos(obs[self._cos], out=obs[self._cos])
            np.sin(obs[self._sin], out=obs[self._sin])
        np.subtract(obs[self._delta], obs[self._target], out=obs[self._delta])
        if self._velocity is not None:
            physics = self.physics
            obs[self._velocity] = physics.end_effector_jacobian() @ physics.data.qvel
        return obs

    def outcome(self, obs: np.ndarray, effort: float) -> tuple[float, float, dict]:
        """Reward and info for the observation after an action of ‖a‖² = `effort`."""
        dx, dy, dz = obs[self._delta].tolist()
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        reward = self.reward.from_effort(distance, effort)
        return reward, distance, {"distance": distance,
                                  "is_success": distance <= self.success_radius_m,
                                  "target": self.target.copy()}

    def _free_configuration(self, rng: np.random.Generator) -> np.ndarray:
        """Random joint positions where the arm touches neither itself nor anything else."""
        arm = self.physics.arm
        return self.collision.free_configuration(self.physics.data,
                                                 lambda: arm.random_configuration(rng))


def target_from(options: dict) -> np.ndarray:
    """``options["target"]`` as xyz (m), or ValueError naming it."""
    try:
        target = np.asarray(options["target"], dtype=np.float64)
    except (TypeError, ValueError):
        target = np.full(1, np.nan)
    if target.shape != (3,) or not np.isfinite(target).all():
        raise ValueError(f"options['target'] must be 3 finite numbers (xyz, m), "
                         f"got {options['target']!r}")
    return target
