"""`joint` control: one action per actuator, scaled onto its ctrlrange (reacher's original
mapping): a motor's torque, a position servo's absolute joint target (or, with
``servo_speed`` > 0, an offset from where the joint is), a velocity servo's velocity."""

from __future__ import annotations

import numpy as np

from reacher.sim.arm import position_servos
from reacher.sim.controllers.base import Controller
from reacher.sim.physics import Physics


class JointControl(Controller):
    """One action per actuator, scaled onto its ctrlrange."""

    name = "joint"

    def __init__(self, physics: Physics, servo_speed: float = 0.0):
        arm, model = physics.arm, physics.model
        super().__init__(physics, arm.n_actuators)
        self._mid = (arm.ctrl_high + arm.ctrl_low) / 2
        self._half = (arm.ctrl_high - arm.ctrl_low) / 2
        # [-1, 1] ctrlranges take the action as it is: a list copy, no numpy maths.
        self._ctrl_is_action = bool(np.all(self._mid == 0) and np.all(self._half == 1))
        # Position servos driven relative to where their joint is now (servo_speed > 0).
        servos = position_servos(model) if servo_speed > 0 else np.zeros(0, np.intp)
        self._servo_act = servos
        self._servo_qpos = model.jnt_qposadr[model.actuator_trnid[servos, 0]]
        self._servo_step = float(servo_speed) * self.period
        if len(servos):
            self._ctrl_is_action = False

    def act(self, action: list[float]) -> None:
        p = self.physics
        ctrl = action if self._ctrl_is_action else self._mid + self._half * np.array(action)
        if len(self._servo_act):
            s, arm = self._servo_act, p.arm
            ctrl[s] = np.clip(p.joint_positions(self._servo_qpos)
                              + self._servo_step * np.asarray(action)[s],
                              arm.ctrl_low[s], arm.ctrl_high[s])
        p.set_controls(ctrl)

    def action_for(self, ctrl: np.ndarray) -> np.ndarray:
        """The action whose controls are `ctrl` (clipped to the ctrlranges): e.g. the
        servo targets of a pose, as `reacher inspect` times moves."""
        return np.clip((np.asarray(ctrl, np.float64) - self._mid) / self._half, -1.0, 1.0)
