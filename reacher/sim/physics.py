"""The running arm: one MjData stepped in control periods, and what controllers ask of it.

`reacher.sim.arm` loads and checks the model; this module runs it. `Physics` owns the
simulation state and answers model-level questions by name — where the end effector
is, its Jacobian, the gravity and Coriolis forces, the mass matrix — so that the
controllers (`reacher.sim.controllers`) and the task (`reacher.task.reach`) never index MuJoCo's
arrays themselves. The readers take an optional index (a slice or an index array, as
numpy takes it) so that a controller reads just the joints it drives. It also notices when the simulation blows up.
"""

from __future__ import annotations

import mujoco
import numpy as np

from reacher.sim.arm import Arm

# MuJoCo counts these warnings when it finds NaN/inf or huge values, and then resets
# the state itself; mj_resetData (every reset) clears the counts.
_BADQPOS, _BADQVEL, _BADQACC = (int(w) for w in (mujoco.mjtWarning.mjWARN_BADQPOS,
                                                 mujoco.mjtWarning.mjWARN_BADQVEL,
                                                 mujoco.mjtWarning.mjWARN_BADQACC))


class Physics:
    """An arm's simulation: `advance` one control period, then read the state by name."""

    def __init__(self, arm: Arm, frame_skip: int):
        self.arm = arm
        self.model = arm.model
        self.data = mujoco.MjData(self.model)
        self.frame_skip = int(frame_skip)
        # Seconds per control period: every controller's steps and gains are per period.
        self.control_period_s = self.frame_skip * self.model.opt.timestep
        self._split_steps = self.model.opt.integrator != mujoco.mjtIntegrator.mjINT_RK4
        # The end effector is a site or a body; Jacobians are asked of that object.
        self._ee_site, self._ee_body = end_effector_ids(self.model, arm.end_effector)
        # Views of the state that controllers read every period: the bindings build a new
        # view on every attribute access, which costs as much as the arithmetic on a small arm.
        self._qpos, self._qvel = self.data.qpos, self.data.qvel
        self._qfrc_bias, self._ctrl = self.data.qfrc_bias, self.data.ctrl
        # Bodies with MuJoCo's `gravcomp` have (part of) their weight carried by the
        # simulator itself (qfrc_gravcomp, as a passive force or through the actuators
        # with `actuatorgravcomp`): a controller that added all of gravity again would
        # compensate it twice and push the arm up.
        self._gravcomp = self.data.qfrc_gravcomp if self.model.body_gravcomp.any() else None
        self._jacp = np.zeros((3, self.model.nv))
        self._mass = np.zeros((self.model.nv, self.model.nv))

    def reset(self) -> None:
        mujoco.mj_resetData(self.model, self.data)

    def forward(self) -> None:
        """Recompute everything derived from the state (after setting qpos by hand)."""
        mujoco.mj_forward(self.model, self.data)

    def advance(self) -> None:
        """`frame_skip` physics steps, leaving positions, velocities and sensors fresh.

        mj_step computes sensors *before* integrating, so after it they lag the state
        by one substep. Splitting it as mj_step2 then mj_step1 (dm_control's trick)
        leaves them in sync at no extra cost; RK4 does not support the split, so it
        pays for an extra mj_forward instead."""
        m, d = self.model, self.data
        if self._split_steps:
            for _ in range(self.frame_skip):
                mujoco.mj_step2(m, d)
                mujoco.mj_step1(m, d)
        else:
            mujoco.mj_step(m, d, nstep=self.frame_skip)
            mujoco.mj_forward(m, d)

    def unstable(self) -> bool:
        """Whether MuJoCo found NaN/inf or huge values since the last reset (it then
        resets the state itself, so the episode is no longer the one that was played)."""
        warnings = self.data.warning.number
        return bool(warnings.any() and (warnings[_BADQPOS] or warnings[_BADQVEL]
                                        or warnings[_BADQACC]))

    # --- what controllers read ------------------------------------------------------------

    def end_effector_pos(self) -> np.ndarray:
        """The end effector's world position (m), from its sensor."""
        return self.data.sensordata[self.arm.end_effector_adr]

    def end_effector_jacobian(self, dofs=slice(None)) -> np.ndarray:
        """d(end-effector xyz)/d(qvel) at the current state, (3, nv), or its columns
        `dofs` (positions must be fresh, as they are after `advance` or mj_forward)."""
        write_end_effector_jacobian(self.model, self.data, self._ee_site, self._ee_body, self._jacp)
        return self._jacp[:, dofs]

    def bias_forces(self, dofs=slice(None)) -> np.ndarray:
        """Gravity, Coriolis and centrifugal forces per dof (``qfrc_bias``) less the
        gravity MuJoCo compensates itself (bodies' `gravcomp`): what a controller adds to
        hold the arm still (gravity compensation)."""
        if self._gravcomp is None:
            return self._qfrc_bias[dofs]
        return self._qfrc_bias[dofs] - self._gravcomp[dofs]

    def mass_matrix(self, block=slice(None)) -> np.ndarray:
        """The joint-space inertia matrix (nv, nv), armature included, or the `block`
        of it that ``np.ix_(dofs, dofs)`` names."""
        mujoco.mj_fullM(self.model, self.data, self._mass)
        return self._mass[block]

    def solve_mass(self, out: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """M⁻¹·rhs for each row of `rhs` (k, nv), into `out`, from the factorisation MuJoCo
        already made this step (no inverse formed)."""
        mujoco.mj_solveM(self.model, self.data, out, rhs)
        return out

    def mul_mass(self, out: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """M·vec (nv), into `out`."""
        mujoco.mj_mulM(self.model, self.data, out, vec)
        return out

    def joint_positions(self, qpos=None) -> np.ndarray:
        """Joint positions at the qpos addresses `qpos`, by default the arm's joints'."""
        return self._qpos[self.arm.qpos_adr if qpos is None else qpos]

    def joint_velocities(self, dofs=None) -> np.ndarray:
        """Joint velocities at `dofs`, by default the arm's joints'."""
        return self._qvel[self.arm.qvel_adr if dofs is None else dofs]

    def time(self) -> float:
        """Simulated seconds since the last reset."""
        return self.data.time

    def set_controls(self, ctrl) -> None:
        """Write every actuator's control (MuJoCo clamps a limited one to its ctrlrange)."""
        self._ctrl[:] = ctrl


def end_effector_ids(model: mujoco.MjModel, name: str) -> tuple[int, int]:
    """The end effector's (site id, body id): a site's id and -1, or -1 and a body's."""
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name)
    return site, (mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name) if site < 0 else -1)


def write_end_effector_jacobian(model: mujoco.MjModel, data: mujoco.MjData, site: int, body: int,
                                jacp: np.ndarray) -> None:
    """The end effector's positional Jacobian (3, nv) into `jacp`, from `data`'s positions:
    of the site `site`, or where that is -1 of the body `body` (`end_effector_ids`)."""
    if site >= 0:
        mujoco.mj_jacSite(model, data, jacp, None, site)
    else:
        mujoco.mj_jacBody(model, data, jacp, None, body)
