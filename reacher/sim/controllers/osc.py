"""The `ee` law for motors: operational-space control (robosuite's OSC).

    τ = Jᵀ·Λ·((Δx/T − ẋ)/T) + gravity + Nᵀ·M·(s·k₀(q₀ − q) − d₀q̇),
    Λ = (J M⁻¹ Jᵀ)⁻¹,  N = I − J̄J,  J̄ = M⁻¹JᵀΛ:

the end-effector velocity that covers Δx in one period T, reached within one, and a
nullspace pull towards the rest posture q₀ that does not disturb the end effector,
its spring scaled by s = |Δx|∞ / the largest step (a zero action holds the arm as it is).
Since Nᵀ·p = p − Jᵀ·Λ·J M⁻¹·p, the torque is Jᵀ·Λ·(v − J M⁻¹ p) + p + gravity: one
solve with the mass matrix for Jᵀ (MuJoCo's own factorisation when the motors drive
every dof) and one 3×3 system, no n×n inverse or projector.
"""

from __future__ import annotations

import math

import numpy as np

from reacher.sim.controllers.base import Actuation, solve3

OSC_POSTURE_KP, OSC_POSTURE_KD = 10.0, 2 * math.sqrt(10.0)  # robosuite's nullspace gains
_LAMBDA_EPS = 1e-6  # regularises Λ's inverse where the arm cannot move the end effector


class OperationalSpace:
    """`controls(dx)`: the motor controls that move the end effector by `dx` this period."""

    def __init__(self, drive: Actuation, rest: np.ndarray, period: float, max_step: float):
        self.drive = drive
        self.max_step = max_step
        self.rest = rest
        self.period = period
        nv = drive.physics.model.nv
        # Every dof driven: M⁻¹ and M come from MuJoCo's factorisation of the whole arm.
        self._whole = isinstance(drive.dof_index, slice) and drive.dof_index == slice(None)
        self._m_inv_jt = np.zeros((3, nv))  # rows: M⁻¹·(each row of J)
        self._p = np.zeros(nv)
        self.replan = None

    def controls(self, dx: list[float]) -> np.ndarray:
        drive, T = self.drive, self.period
        q = drive.positions()
        qd = drive.velocities()
        if self.replan is not None:
            goal = self.replan.step(dx, q)
            if goal is not None:  # a joint-space move out of a stall (replan.py), as joint_delta's
                acc = ((self.replan.toward(goal, q) - q) / T - qd) / T
                return drive.controls(q, qd, drive.mass_matrix() @ acc + drive.bias_forces())
        J = drive.jacobian()
        # The posture spring only while the task moves (see ServoIK.targets); its damper always.
        share = min(1.0, max(abs(dx[0]), abs(dx[1]), abs(dx[2])) / self.max_step)
        pull = (share * OSC_POSTURE_KP) * (self.rest - q) - OSC_POSTURE_KD * qd
        if self._whole:
            physics = drive.physics
            A = physics.solve_mass(self._m_inv_jt, J)
            p = physics.mul_mass(self._p, pull)
        else:
            M = drive.mass_matrix()
            A = np.linalg.solve(M, J.T).T
            p = M @ pull
        v = (np.array(dx) / T - J @ qd) / T - A @ p
        f = solve3((J @ A.T).tolist(), _LAMBDA_EPS, v.tolist())
        torque = J.T @ np.array(f) + p + drive.bias_forces()
        return drive.controls(q, qd, torque)  # motors only: the torque
