"""`joint_delta` control: one action per actuator, moving its joint's target by at most
``joint_rate × control period`` from where the joint is.

Servos get the target, led by the gravity torque and their damping (see
`Actuation.controls`); motors track it by PD in joint acceleration,
τ = M·((Δq/T − q̇)/T) + gravity: the joint velocity that covers Δq in one period, reached
within one period. So a zero action holds the arm still.
"""

from __future__ import annotations

import numpy as np

from reacher.sim.controllers.base import Actuation, Controller
from reacher.sim.physics import Physics

JOINT_RATE_RAD_S = 1.25  # panda-gym's joint mode: at most 0.05 rad per 0.04-s action


class JointDeltaControl(Controller):
    """One action per actuator: its joint's target moves by at most rate × period."""

    name = "joint_delta"

    def __init__(self, physics: Physics, rate: float):
        super().__init__(physics, physics.arm.n_actuators)
        self.drive = Actuation(physics, self.name)
        self.max_step = float(rate) * self.period
        self._acc = np.zeros(physics.model.nv)

    def act(self, action: list[float]) -> None:
        p, drive = self.physics, self.drive
        q = drive.positions()
        target = q + self.max_step * np.array(action)
        np.clip(target, drive.q_low, drive.q_high, out=target)
        if drive.servos_only:
            p.set_controls(drive.servo_controls(target, q, drive.bias_forces()))
            return
        T = self.period
        acc = self._acc
        acc[drive.dof] = ((target - q) / T - drive.velocities()) / T
        torque = drive.bias_forces()
        torque = np.where(drive.servo, torque, (p.mass_matrix() @ acc)[drive.dof] + torque)
        p.set_controls(drive.controls(target, (target - q) / T, torque))
