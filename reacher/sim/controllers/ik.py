"""The `ee` law for position servos: damped-least-squares differential IK (mjctrl's ``diffik``).

    dq = Jᵀ(JJᵀ + λI)⁻¹·Δx + s·(I − J⁺J)·(k₀·(q₀ − q) − push(q))·T,

joint targets q + dq within the joint ranges, q₀ the rest posture, push a joint-limit
avoidance that is zero mid-range and grows steeply near a limit, s = |Δx|∞ / the
largest step (a zero action holds the arm as it is), and λ growing as J nears a
singularity (`step_damping`). The targets go to the
servos led by gravity and the servos' damping (`Actuation.servo_controls`).
"""

from __future__ import annotations

import math

import numpy as np

from reacher.sim.controllers.base import Actuation, extreme_eigenvalues, solve3

IK_DAMPING = 1e-4  # λ of the damped least squares (m²), as mjctrl's diffik
# Near a kinematic singularity the damping grows (adaptive damped least squares):
# where the smallest singular value σ of J falls below SINGULAR_RATIO × the largest,
# λ gains SINGULAR_DAMPING × ε² × (1 − σ²/ε²), ε = SINGULAR_RATIO × σ_max. Relative to
# J's own scale, so that no arm's size sets it. A fixed λ there asks the joints for
# speeds the force-limited servos cannot give along the near-singular direction and
# the arm stalls in it (UR5e: 55 → 65 % of 120 scripted reaches on three seed sets, no
# other arm worse in total; docs/benchmarks.md, "Controllers").
SINGULAR_RATIO, SINGULAR_DAMPING = 0.1, 0.3
# 1/s: how fast the nullspace pulls towards the rest posture. Measured on scripted reaches
# (docs/benchmarks.md): 0, 0.25 and 1 give Panda 88/88/94 %, Gen3 100/96/74 %, xArm7
# 84/80/80 %; a gentle pull keeps a redundant arm off its limits over long runs.
POSTURE_RATE = 0.25
# Joint-limit avoidance in the nullspace: each limited joint is pushed back towards the
# middle of its range at LIMIT_RATE × half-range × u⁹ rad/s, at most LIMIT_SPEED, u its
# position in the range scaled to [-1, 1]: nothing in the middle (0.2 % of full strength
# at u = 0.5), strong in the last tenth. A local IK otherwise walks a joint onto its limit
# on the way and stalls there where the target needs that joint. The cap keeps the push
# from shaking the end effector off its course: uncapped, a Panda start at u = −0.99 moved
# the end effector 3 commanded steps the wrong way (docs/benchmarks.md, Controllers).
LIMIT_RATE, LIMIT_SPEED = 16.0, 2.0  # 1/s, rad/s
_NULLSPACE_EPS = 1e-6


class ServoIK:
    """`controls(dx)`: the servo controls that move the end effector by `dx` this period."""

    def __init__(self, drive: Actuation, rest: np.ndarray, period: float, max_step: float = 1.0):
        self.drive = drive
        self.max_step = max_step
        self._posture_gain = POSTURE_RATE * period
        # Per joint, for the nullspace pull: rest angle, 2 / range and middle × that (u in
        # [-1, 1] across the range), the limit push's gain, and whether it has no limits.
        limited = np.isfinite(drive.q_low) & np.isfinite(drive.q_high)
        low, high = np.where(limited, drive.q_low, -1.0), np.where(limited, drive.q_high, 1.0)
        inv_half = np.where(limited, 2 / (high - low), 0.0)
        self._joints = list(zip(rest.tolist(), inv_half.tolist(),
                                ((low + high) / 2 * inv_half).tolist(),
                                np.where(limited, LIMIT_RATE * period * (high - low) / 2, 0.0).tolist(),
                                (~limited).tolist()))
        self._limit_step = LIMIT_SPEED * period
        self.replan = None

    def controls(self, dx: list[float]) -> np.ndarray:
        drive = self.drive
        q = drive.positions()
        if self.replan is not None:
            goal = self.replan.step(dx, q)
            if goal is not None:
                return drive.servo_controls(self.replan.toward(goal, q), q, drive.bias_forces())
        return drive.servo_controls(self.targets(drive.jacobian(), dx, q), q, drive.bias_forces())

    def nullspace_pull(self, q: np.ndarray, share: float = 1.0) -> np.ndarray:
        """The joint motion wanted this period besides the task: towards the rest posture,
        and away from the joint limits (see LIMIT_RATE), times `share`. Plain floats: over seven joints
        this is half the time of the dozen numpy calls it would take (scripts/bench_env.py)."""
        cap, gain = self._limit_step * share, self._posture_gain * share
        pull = []
        for x, (rest, inv_half, middle, limit_gain, continuous) in zip(q.tolist(), self._joints):
            error = rest - x
            if continuous:  # the short way round to its rest angle
                error = math.remainder(error, 2 * math.pi)
            u = x * inv_half - middle
            u2 = u * u
            u4 = u2 * u2
            push = min(cap, max(-cap, share * limit_gain * u4 * u4 * u))  # u⁹
            pull.append(gain * error - push)
        return np.array(pull)

    def targets(self, J: np.ndarray, dx: list[float], q: np.ndarray) -> np.ndarray:
        """Joint targets q + dq: damped least squares for `dx`, plus the nullspace pull
        projected into J's nullspace; joints that would pass a limit hand the step over."""
        # The nullspace with far less damping than the step's: the step's own damping
        # would leak the posture pull into the end effector's motion (measured: Gen3
        # 74 % instead of 96 % of scripted reaches). J⁺J's eigenvalues σ²/(σ² + ε) stay
        # within [0, 1], so the projector stays bounded at singularities.
        drive = self.drive
        # The pull runs only as much as the task moves: asked to hold still, the arm does
        # not reconfigure, since the servos track a nullspace motion only approximately and
        # nothing then brings the end effector back (xArm7: 20-50 cm off after 5 s of zero
        # actions from 9 of 10 starts; now none. Scripted reaches unchanged on the six
        # servo arms, docs/benchmarks.md, "Controllers").
        pull = self.nullspace_pull(q, min(1.0, max(abs(dx[0]), abs(dx[1]), abs(dx[2])) / self.max_step))
        JJt = (J @ J.T).tolist()
        damping = step_damping(JJt)
        y = solve3(JJt, damping, dx)
        z = solve3(JJt, _NULLSPACE_EPS, (J @ pull).tolist())
        # J⁺dx + (I − J⁺J)·pull = Jᵀ(y − z) + pull, without forming an n×n matrix.
        target = J.T @ np.array([y[0] - z[0], y[1] - z[1], y[2] - z[2]])
        target += pull
        target += q
        blocked = (target < drive.q_low) | (target > drive.q_high)
        if not blocked.any():
            return target
        # The free joints take the step over from those at a limit. The pull stays in the
        # whole arm's nullspace: the blocked joints' share of it (back from their limits)
        # is compensated by the others instead of moving the end effector (measured: the
        # limit push of a blocked iiwa14 joint, projected with its column dropped, threw
        # the end effector 13 cm off in one period).
        free = J * ~blocked
        y = solve3((free @ free.T).tolist(), damping, dx)
        target = free.T @ np.array(y) - J.T @ np.array(z)
        target += pull
        target += q
        return np.clip(target, drive.q_low, drive.q_high, out=target)


def step_damping(JJt: list) -> float:
    """λ for the step's damped least squares: IK_DAMPING, plus more as J nears a
    singularity (see SINGULAR_RATIO)."""
    smallest, largest = extreme_eigenvalues(JJt)  # σ_min², σ_max²
    eps2 = SINGULAR_RATIO * SINGULAR_RATIO * largest
    if smallest >= eps2:
        return IK_DAMPING
    return IK_DAMPING + SINGULAR_DAMPING * eps2 * (1.0 - max(smallest, 0.0) / eps2)
