"""The `ee` law for motors: operational-space control (robosuite's OSC).

    τ = Jᵀ·Λ·((Δx/T − ẋ)/T) + gravity + Nᵀ·M·(k₀(q₀ − q) − d₀q̇),
    Λ = (J M⁻¹ Jᵀ)⁻¹,  N = I − J̄J,  J̄ = M⁻¹JᵀΛ:

the end-effector velocity that covers Δx in one period T, reached within one, and a
nullspace pull towards the rest posture q₀ that does not disturb the end effector.
"""

from __future__ import annotations

import math

import numpy as np

from reacher.sim.controllers.base import Actuation

OSC_POSTURE_KP, OSC_POSTURE_KD = 10.0, 2 * math.sqrt(10.0)  # robosuite's nullspace gains
_LAMBDA_EPS = 1e-6  # regularises Λ's inverse where the arm cannot move the end effector


class OperationalSpace:
    """`controls(dx)`: the motor controls that move the end effector by `dx` this period."""

    def __init__(self, drive: Actuation, rest: np.ndarray, period: float):
        self.drive = drive
        self.rest = rest
        self.period = period
        self._eye3 = np.eye(3)
        self._eye_n = np.eye(len(drive.dof))

    def controls(self, dx: list[float]) -> np.ndarray:
        drive, T = self.drive, self.period
        J = drive.jacobian()
        q = drive.positions()
        gravity = drive.bias_forces()
        M = drive.mass_matrix()
        M_inv = np.linalg.inv(M)
        qd = drive.velocities()
        Lam = np.linalg.inv(J @ M_inv @ J.T + _LAMBDA_EPS * self._eye3)
        force = Lam @ ((np.array(dx) / T - J @ qd) / T)
        J_bar = M_inv @ J.T @ Lam
        null = self._eye_n - J_bar @ J
        posture = M @ (OSC_POSTURE_KP * (self.rest - q) - OSC_POSTURE_KD * qd)
        torque = J.T @ force + null.T @ posture + gravity
        return drive.controls(q, qd, torque)  # motors only: the torque
