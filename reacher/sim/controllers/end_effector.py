"""`ee` control: three actions move the end effector by at most ``ee_speed × control
period`` along x, y and z (world frame, m), whatever the number of joints.

The law that gets it there depends on the actuators: damped-least-squares differential
IK setting position servos' targets (`reacher.sim.controllers.ik`), or operational-space
control setting motors' torques (`reacher.sim.controllers.osc`). Both are computed from
the measured state every control period, so the loop is closed on the measured
end-effector position.
"""

from __future__ import annotations

import mujoco
import numpy as np

from reacher.errors import ControlError
from reacher.sim.arm import Arm
from reacher.sim.controllers.base import Actuation, Controller
from reacher.sim.controllers.ik import ServoIK
from reacher.sim.controllers.osc import OperationalSpace
from reacher.sim.controllers.replan import Replanner
from reacher.sim.physics import Physics

EE_SPEED_M_S = 1.25  # panda-gym and Fetch: at most 5 cm per 0.04-s action


class EndEffectorControl(Controller):
    """Three actions: move the end effector by at most speed × period along x, y, z."""

    name = "ee"
    observes_end_effector_velocity = True

    def __init__(self, physics: Physics, speed: float, replan: bool = True):
        super().__init__(physics, 3)
        self.drive = drive = Actuation(physics, self.name)
        model, arm = physics.model, physics.arm
        if drive.servo.any() and not drive.servos_only:
            raise ControlError(f"control 'ee': {arm.name} mixes position servos and motors; "
                               "use --control joint or joint_delta")
        self.max_step = float(speed) * self.period
        self.servo = drive.servos_only
        if not _moves_end_effector(model, arm, drive.dof):
            raise ControlError(f"control 'ee': no actuated joint of {arm.name} moves its end "
                               f"effector '{arm.end_effector}'; use --control joint")
        self.rest = rest_posture(model, arm, drive.qpos)
        law = ServoIK(drive, self.rest, self.period, self.max_step) if self.servo else \
            OperationalSpace(drive, self.rest, self.period, self.max_step)
        # The global step out of stalls at joint limits (replan.py); `replan=False` keeps
        # the local step alone (tests and benchmarks compare the two).
        self.replanner = Replanner(drive, self.rest, self.period, self.max_step) if replan else None
        law.replan = self.replanner
        self.law = law
        self._controls = law.controls

    def action_names(self) -> tuple[str, ...]:
        return ("x", "y", "z")

    def act(self, action: list[float]) -> None:
        step = self.max_step
        self.physics.set_controls(self._controls([step * action[0], step * action[1],
                                                  step * action[2]]))


def rest_posture(model: mujoco.MjModel, arm: Arm, qpos_adr: np.ndarray) -> np.ndarray:
    """The file's "home" keyframe, else its first keyframe, else the middle of the joint
    ranges: where the nullspace of a redundant arm is pulled."""
    if model.nkey:
        key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
        return model.key_qpos[max(key, 0)][qpos_adr].copy()
    middle = np.zeros(model.nq)
    middle[arm.qpos_adr] = (arm.joint_low + arm.joint_high) / 2
    return middle[qpos_adr]


def _moves_end_effector(model: mujoco.MjModel, arm: Arm, dofs: np.ndarray) -> bool:
    """Whether any of `dofs` lies on the end effector's chain to the world."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, arm.end_effector)
    body = model.site_bodyid[site] if site >= 0 else model.body(arm.end_effector).id
    chain = set()
    while body > 0:
        chain.add(int(body))
        body = model.body_parentid[body]
    return any(int(model.dof_bodyid[v]) in chain for v in dofs)
