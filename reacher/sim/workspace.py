"""The arm's workspace: where its end effector can be, and how far from its base it reaches.

`load_arm` samples joint configurations within the limits and asks `Kinematics` where
the end effector is for each; `max_reach` refines the furthest samples by gradient
ascent on the distance from the base, with MuJoCo's Jacobian, since sampling alone
falls a few millimetres short. The reach sizes the scene, the target's marker and the
success criteria's scale.
"""

from __future__ import annotations

import mujoco
import numpy as np


def world_pos(model: mujoco.MjModel, body_id: int) -> np.ndarray:
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    return data.xpos[body_id].copy()


class Kinematics:
    """Fingertip position, and its distance from a point with that distance's gradient,
    for joint positions q, on a scratch MjData."""

    def __init__(self, model, joint_names, ee_sensor: str, end_effector: str, ee_type):
        self.model, self.data = model, mujoco.MjData(model)
        self.qadr = np.array([model.joint(n).qposadr[0] for n in joint_names])
        self.dofadr = np.array([model.joint(n).dofadr[0] for n in joint_names])
        self.sadr = model.sensor(ee_sensor).adr[0]
        ee_id = mujoco.mj_name2id(model, ee_type, end_effector)
        self.body = model.site_bodyid[ee_id] if ee_type == mujoco.mjtObj.mjOBJ_SITE else ee_id
        self.jacp = np.zeros((3, model.nv))

    def position(self, q: np.ndarray) -> np.ndarray:
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_sensorPos(self.model, self.data)
        return self.data.sensordata[self.sadr:self.sadr + 3].copy()

    def distance(self, q: np.ndarray, point: np.ndarray) -> tuple[float, np.ndarray]:
        """‖fingertip − point‖ and its gradient with respect to q (hinge and slide joints
        have one qpos and one dof each, so the position Jacobian's columns are it). The
        Jacobian is taken at the point the sensor reads (a body's sensor reads its centre
        of mass, not its frame's origin)."""
        tip = self.position(q)
        offset = tip - point
        mujoco.mj_comPos(self.model, self.data)
        mujoco.mj_jac(self.model, self.data, self.jacp, None, tip, self.body)
        r = float(np.linalg.norm(offset))
        grad = self.jacp[:, self.dofadr].T @ offset / r if r > 0 else np.zeros(len(q))
        return r, grad


def max_reach(kinematics: Kinematics, configs, points, base, low, high,
               starts: int = 8) -> float:
    """Furthest fingertip distance from the base: the best samples, each refined by
    projected gradient ascent within the joint limits (sampling alone falls a few mm
    short). The gradient comes from MuJoCo's Jacobian, so one refinement costs a few
    hundred kinematics passes whatever the number of joints (coordinate ascent, which
    this replaced, needed tens of thousands on a 40-joint chain)."""
    distance = np.linalg.norm(points - base, axis=1)
    best = float(distance.max())
    for i in np.argsort(distance)[-starts:]:
        best = max(best, _ascend(kinematics, configs[i], base, low, high))
    return best


_ASCENT_STEPS = 1000
_ASCENT_TOL = 1e-10  # a step moving no joint further than this (rad or m) has converged


def _ascend(kinematics: Kinematics, q: np.ndarray, base, low, high) -> float:
    """Local maximum of the distance from `base`, from q. Barzilai–Borwein steps (the
    step length is learnt from the last two gradients, which copes with a long chain's
    badly scaled directions) along the gradient less what pushes against a limit; a
    step that does not increase the distance is retried four times shorter."""
    q = np.clip(q, low, high)
    r, grad = kinematics.distance(q, base)
    grad = _free(grad, q, low, high)
    alpha = 0.1 / max(float(np.abs(grad).max()), 1e-12)
    for _ in range(_ASCENT_STEPS):
        trial = np.clip(q + alpha * grad, low, high)
        moved = trial - q
        if np.abs(moved).max() < _ASCENT_TOL:
            break
        r_trial, g_trial = kinematics.distance(trial, base)
        if not r_trial > r:
            alpha /= 4
            continue
        g_trial = _free(g_trial, trial, low, high)
        curvature = -float(moved @ (g_trial - grad))
        alpha = float(moved @ moved) / curvature if curvature > 0 else 2 * alpha
        q, r, grad = trial, r_trial, g_trial
    return r


def _free(grad: np.ndarray, q: np.ndarray, low, high) -> np.ndarray:
    """The gradient without its components that push a joint at a limit past it."""
    return np.where(((q <= low) & (grad < 0)) | ((q >= high) & (grad > 0)), 0.0, grad)
