"""The `ee` controller's global step: leave a stall at a joint limit by another posture.

A local step (differential IK, operational-space control) follows the commanded
direction from where the arm is; where that needs a joint past its limit it stalls,
though the same end-effector position is often reached from another posture (the
other elbow) from which the commanded straight line is clear. `Replanner` watches for
the stall — for STALL_STEPS control periods running, a commanded step the end effector
does not follow while a joint sits at its limit — and then plans (`Kinematics`): a
multi-start IK finds the arm's other postures at the same end-effector position, a
kinematic rollout of the straight line along the commanded direction says how far each
gets, and where the arm's own posture is stuck and another gets clearly further, the
controller moves in joint space (a straight line between two configurations within the
joint ranges stays within them) to the nearest of the postures that get (nearly) as
far, as fast as the actuators go, until it nears it, then resumes the Cartesian step.

It sees only the actions, never the goal. Its state is a function of the recent
actions and end-effector positions, and one move (at most MOVE_MAX_S) once planned; it
is cleared when the simulation's time goes back (every reset). Measured on every arm:
docs/benchmarks.md, "Leaving local minima".
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from reacher.sim.controllers.base import Actuation, solve3
from reacher.sim.physics import end_effector_ids, write_end_effector_jacobian

# The stall: the end effector moved less than STALL_PROGRESS of a commanded step of at
# least STALL_COMMAND × the largest, for STALL_STEPS periods running, while a joint sits
# within LIMIT_MARGIN of its range from a limit.
STALL_PROGRESS, STALL_COMMAND, STALL_STEPS, LIMIT_MARGIN = 0.1, 0.5, 3, 0.02
# The plan: the rest posture and CANDIDATES postures drawn once (seed 0) within the
# joint ranges, plus the present one with each joint's sign flipped, each solved for
# the end effector's position by damped least squares (IK_ITERATIONS, counted within
# IK_TOLERANCE m); postures within SAME_RAD of one found already are not rolled out again.
CANDIDATES, IK_ITERATIONS, IK_TOLERANCE, SAME_RAD = 12, 20, 0.01, 0.2
# A move is planned only where the arm's own rollout gets less than OWN_STUCK largest
# steps (else the local step is slow, not stuck) and another gets GAIN_MIN steps
# further; of the postures that get FAR_SHARE of the furthest, the one whose largest
# joint moves least wins.
OWN_STUCK, GAIN_MIN, FAR_SHARE = 6.0, 2.0, 0.9
# The move: the joints' targets along the straight joint-space line at MOVE_RATE × the
# end-effector speed / the arm's reach (rad/s, the largest joint; servos and motors then
# go as fast as their limits allow), until every joint is within MOVE_DONE rad of the
# posture (the arm is then in that posture's basin and the Cartesian step takes over:
# measured, 0.05 / 0.2 / 0.35 / 0.5 / 1 rad gave +0 / +16 / +16 / +18 / +13 scripted
# reaches of 1,560 against 0.05, docs/benchmarks.md) or MOVE_MAX_S; after a plan that
# found nothing, no other for QUIET_S.
MOVE_RATE, MOVE_DONE, MOVE_MAX_S, QUIET_S = 8.0, 0.5, 1.5, 0.5


class Replanner:
    """`step(dx, q)`: None while the local step is fine, else the joint target of a move."""

    def __init__(self, drive: Actuation, rest: np.ndarray, period: float, max_step: float):
        self.physics = drive.physics
        self.period, self.max_step = period, max_step
        self.kinematics = Kinematics(drive, rest, max_step)
        self.margin = LIMIT_MARGIN * (drive.q_high - drive.q_low)  # inf for unlimited joints
        self.low, self.high = drive.q_low, drive.q_high
        self.move_step = MOVE_RATE * max_step / self.kinematics.reach
        self.moves = self.plans = 0  # since construction (for tests and benchmarks)
        # The clock and the end effector's position, read every period: a view of the
        # position (a slice where its sensor's values are contiguous, as they are).
        self._data = self.physics.data
        adr = np.asarray(self.physics.arm.end_effector_adr)
        contiguous = len(adr) == 3 and bool(np.all(np.diff(adr) == 1))
        self._ee = (self._data.sensordata[int(adr[0]):int(adr[0]) + 3] if contiguous else None)
        self.clear()

    def clear(self) -> None:
        """Forget the episode: no stall counted, no move under way."""
        self.time = -1.0
        self.last_ee: list[float] | None = None
        self.last_dx: list[float] | None = None
        self.stalled = 0
        self.goal: np.ndarray | None = None
        self.move_left = 0
        self.quiet_until = 0.0

    def step(self, dx: list[float], q: np.ndarray) -> np.ndarray | None:
        """Called every period with the commanded displacement and the joint positions:
        the joint goal of the move under way (or just planned), else None."""
        t = self._data.time
        if t <= self.time:  # the clock went back: a reset, a new episode
            self.clear()
        self.time = t
        ee = (self._ee if self._ee is not None else self.physics.end_effector_pos()).tolist()
        if self.goal is not None:
            self.move_left -= 1
            if self.move_left > 0 and float(np.abs(self.goal - q).max()) >= MOVE_DONE:
                return self.goal
            self.goal = None
            self.last_ee, self.last_dx = ee, dx
            return None
        last_ee, last_dx = self.last_ee, self.last_dx
        self.last_ee, self.last_dx = ee, dx
        if last_dx is None:
            return None
        x, y, z = last_dx
        if max(abs(x), abs(y), abs(z)) < STALL_COMMAND * self.max_step:
            self.stalled = 0
            return None
        moved = (ee[0] - last_ee[0]) * x + (ee[1] - last_ee[1]) * y + (ee[2] - last_ee[2]) * z
        if moved >= STALL_PROGRESS * (x * x + y * y + z * z) or not self.at_limit(q):
            self.stalled = 0
            return None
        self.stalled += 1
        if self.stalled < STALL_STEPS or t < self.quiet_until:
            return None
        self.stalled = 0
        self.plans += 1
        goal = self.kinematics.plan(self.physics.data.qpos, q, np.array(ee), np.array(dx))
        if goal is None:
            self.quiet_until = t + QUIET_S
            return None
        self.goal, self.move_left = goal, int(MOVE_MAX_S / self.period)
        self.moves += 1
        return goal

    def at_limit(self, q: np.ndarray) -> bool:
        return bool(np.any((q - self.low < self.margin) | (self.high - q < self.margin)))

    def toward(self, goal: np.ndarray, q: np.ndarray) -> np.ndarray:
        """This period's joint targets on the straight joint-space line to `goal`."""
        delta = goal - q
        largest = float(np.abs(delta).max())
        if largest > self.move_step:
            delta *= self.move_step / largest
        return q + delta


class Kinematics:
    """The plan, on a scratch copy of the model's data (the simulation is not touched)."""

    def __init__(self, drive: Actuation, rest: np.ndarray, max_step: float):
        physics = drive.physics
        model, arm = physics.model, physics.arm
        self.model, self.data = model, mujoco.MjData(model)
        self.qpos, self.dof = drive.qpos, drive.dof
        self.low, self.high = drive.q_low, drive.q_high
        self.site, self.body = end_effector_ids(model, arm.end_effector)
        self.jacp = np.zeros((3, model.nv))
        self.reach = float(arm.reach_m)
        self.max_step = max_step
        self.damping = 1e-4 * max(1.0, self.reach ** 2)
        low = np.where(np.isfinite(self.low), self.low, -math.pi)
        high = np.where(np.isfinite(self.high), self.high, math.pi)
        rng = np.random.default_rng(0)
        self.starts = [rest.copy()] + [rng.uniform(low, high) for _ in range(CANDIDATES)]
        # The rollout's points along the line: one largest step apart for the first four,
        # then √2 further each, out to the widest the workspace can be.
        self.distances, k = [], 1.0
        while k * max_step <= 2 * self.reach:
            self.distances.append(k * max_step)
            k = k + 1 if k < 4 else k * math.sqrt(2)

    def plan(self, qpos: np.ndarray, q: np.ndarray, p0: np.ndarray,
             direction: np.ndarray) -> np.ndarray | None:
        """The posture to move to from `q` (the whole state `qpos`), its end effector at
        `p0` and commanded along `direction`; None where none is clearly better."""
        norm = float(np.linalg.norm(direction))
        if norm == 0:
            return None
        d = direction / norm
        self.data.qpos[:] = qpos
        own = self.rollout(q, p0, d)
        if own >= OWN_STUCK * self.max_step:
            return None
        found, seen = [], [q]
        flips = [np.where(np.arange(len(q)) == i, -q, q) for i in range(len(q))]
        for start in self.starts + flips:
            posture = self.solve(start, p0)
            if posture is None or any(float(np.abs(posture - o).max()) < SAME_RAD for o in seen):
                continue
            seen.append(posture)
            found.append((self.rollout(posture, p0, d), float(np.abs(posture - q).max()), posture))
        if not found:
            return None
        furthest = max(f[0] for f in found)
        if furthest < own + GAIN_MIN * self.max_step:
            return None
        return min((f for f in found if f[0] >= FAR_SHARE * furthest), key=lambda f: f[1])[2]

    def solve(self, start: np.ndarray, goal: np.ndarray) -> np.ndarray | None:
        """A posture within the joint ranges whose end effector is at `goal`, found from
        `start`; None if not within IK_TOLERANCE."""
        q = start.copy()
        for _ in range(IK_ITERATIONS):
            q, error = self.ik_step(q, goal)
            if error < IK_TOLERANCE / 4:
                return q
        return q if self.ik_step(q, goal)[1] < IK_TOLERANCE else None

    def rollout(self, q: np.ndarray, p0: np.ndarray, d: np.ndarray) -> float:
        """How far along `d` from `p0` the straight line is followed from posture `q`."""
        done = 0.0
        for s in self.distances:
            goal = p0 + s * d
            for _ in range(3):
                q, _ = self.ik_step(q, goal)
            if self.ik_step(q, goal)[1] > max(IK_TOLERANCE, (s - done) / 2):
                return done
            done = s
        return done

    def ik_step(self, q: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, float]:
        """One damped-least-squares step towards `goal` from `q`, joints that would pass a
        limit handing it over to the others (as the servo IK does); and the error at `q`."""
        m, d = self.model, self.data
        d.qpos[self.qpos] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        write_end_effector_jacobian(m, d, self.site, self.body, self.jacp)
        x = d.site_xpos[self.site] if self.site >= 0 else d.xpos[self.body]
        J = self.jacp[:, self.dof]
        ex, ey, ez = (goal - x).tolist()
        new = q + J.T @ np.array(solve3((J @ J.T).tolist(), self.damping, (ex, ey, ez)))
        blocked = (new < self.low) | (new > self.high)
        if blocked.any():
            free = J * ~blocked
            new = q + free.T @ np.array(solve3((free @ free.T).tolist(), self.damping, (ex, ey, ez)))
            np.clip(new, self.low, self.high, out=new)
        return new, math.sqrt(ex * ex + ey * ey + ez * ez)
