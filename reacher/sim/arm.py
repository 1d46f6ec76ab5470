"""What the arm is: load an MJCF arm, check it, and complete it for reaching.

`load_arm` takes a built-in name (``two_link``, ``three_link``) or a path to an
MJCF file and returns an `Arm`: the compiled MjModel plus the names and sensor
addresses the environment needs. The user's file is never modified; anything it
lacks — joint sensors, a target, cameras — is added to the compiled copy through
``mujoco.MjSpec``, under names that do not clash with the file's own.

Conventions (all optional except joints and actuators):
  * the end effector is a site or body named ``fingertip`` (or ``end_effector=``);
  * a mocap body named ``target`` is used as the goal marker if present;
  * cameras named ``top`` and ``angled`` are used for video if present.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import mujoco
import numpy as np

from reacher.errors import ArmFileError, printable
from reacher.sim.armfile import (  # noqa: F401 (BUILTIN_ARMS, builtin_path: the arm's API)
    BUILTIN_ARMS,
    builtin_path,
    compile_spec,
    read_spec,
    resolve_arm_path,
)
from reacher.sim.checks import model_problem
from reacher.sim.scene import complete_scene, show_hidden_geoms, target_radius
from reacher.sim.workspace import Kinematics, max_reach, world_pos

TARGET_NAME = "target"
_WORKSPACE_SAMPLES = 512


@dataclass(frozen=True)
class Arm:
    """A compiled arm ready for reaching, with everything referred to by name.

    Sensor addresses index ``MjData.sensordata``: the environment's observation is
    read from them rather than from ``qpos``/``qvel`` directly.
    """

    name: str
    source: str
    model: mujoco.MjModel
    joint_names: tuple[str, ...]
    hinge: np.ndarray  # bool per joint: hinge (angle, observed as cos/sin) or slide
    actuator_names: tuple[str, ...]
    ctrl_low: np.ndarray
    ctrl_high: np.ndarray
    end_effector: str
    target_mocap: int  # index into MjData.mocap_pos
    joint_pos_adr: np.ndarray  # sensordata index of each joint's position
    joint_vel_adr: np.ndarray
    end_effector_adr: np.ndarray  # three sensordata indices: fingertip xyz (world)
    target_adr: np.ndarray
    qpos_adr: np.ndarray  # qpos index of each joint, for setting configurations
    qvel_adr: np.ndarray
    joint_low: np.ndarray  # the range joint configurations are sampled from
    joint_high: np.ndarray
    planar: bool  # every reachable fingertip position lies in one horizontal plane
    reach_m: float  # furthest fingertip distance from the arm's base (m)
    base_pos: np.ndarray
    cameras: tuple[str, ...]
    added: tuple[str, ...] = ()  # what reacher added to the file's model, in words

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def n_actuators(self) -> int:
        return len(self.actuator_names)

    def random_configuration(self, rng: np.random.Generator) -> np.ndarray:
        """Joint positions drawn uniformly within the joint limits."""
        return rng.uniform(self.joint_low, self.joint_high)

    def fingertip_at(self, data: mujoco.MjData, joint_pos: np.ndarray) -> np.ndarray:
        """End-effector position for the given joint positions (overwrites ``data``)."""
        data.qpos[self.qpos_adr] = joint_pos
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_sensorPos(self.model, data)
        return data.sensordata[self.end_effector_adr].copy()


def load_arm(arm: str | Path = "two_link", end_effector: str = "fingertip") -> Arm:
    """Load, check and complete an arm; raises `ArmFileError` on anything unusable."""
    path = resolve_arm_path(arm)
    spec = read_spec(path)
    _check_joints_and_actuators(spec, path)
    ee_type = _find_end_effector(spec, path, end_effector)
    _name_joints(spec)
    n_sensors = len(spec.sensors)
    sensors = _add_missing_sensors(spec, end_effector, ee_type)
    had_target = any(b.name == TARGET_NAME and b.mocap for b in spec.bodies)
    target_body = _ensure_target(spec)
    sensors["target"] = _add_sensor(
        spec, "target_pos", mujoco.mjtSensor.mjSENS_FRAMEPOS, mujoco.mjtObj.mjOBJ_BODY, target_body
    )
    # MuJoCo warns as it compiles some of what model_problem refuses (a singular inertia
    # from negative armature): held back until the model passes, so a refusal is one line.
    with warnings.catch_warnings(record=True) as compile_warnings:
        warnings.simplefilter("always")
        model = compile_spec(spec, path)
    problem = model_problem(model)
    if problem:
        raise ArmFileError(path, problem)
    for warning in compile_warnings:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    joint_names = tuple(j.name for j in spec.joints)
    low, high = _sampling_ranges(model, joint_names, path)
    kinematics = Kinematics(model, joint_names, sensors["end_effector"], end_effector, ee_type)
    rng = np.random.default_rng(0)
    configs = rng.uniform(low, high, size=(_WORKSPACE_SAMPLES, len(joint_names)))
    fingertips = np.array([kinematics.position(q) for q in configs])
    base = world_pos(model, model.joint(joint_names[0]).bodyid[0])
    reach = max_reach(kinematics, configs, fingertips, base, low, high)
    scene_added = complete_scene(spec, model, fingertips, base, reach,
                                 None if had_target else target_body, _unique_name)
    if scene_added or not had_target:
        model = compile_spec(spec, path)
    if show_hidden_geoms(model):
        scene_added.append("shows the arm's geoms in hidden groups (nothing else of it is visible)")
    added = [f"{len(spec.sensors) - n_sensors} sensors (joint positions and velocities, "
             "end effector and target positions)"]
    if not had_target:
        added.append(f"goal marker '{target_body}' (radius {100 * target_radius(reach):.2g} cm)")
    arm = _describe(path, model, joint_names, sensors, end_effector, target_body, low, high,
                    fingertips, reach, base)
    return replace(arm, added=tuple(added + scene_added))


# --- what an arm needs -----------------------------------------------------------------

def _check_joints_and_actuators(spec: mujoco.MjSpec, path: Path) -> None:
    joints = list(spec.joints)
    if not joints:
        raise ArmFileError(path, "has no joints; an arm needs hinge or slide joints")
    for i, joint in enumerate(joints):
        if joint.type in (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_BALL):
            kind = "free" if joint.type == mujoco.mjtJoint.mjJNT_FREE else "ball"
            name = joint.name or f"#{i}"
            raise ArmFileError(path, f"joint '{name}' is a {kind} joint; only hinge and slide "
                                     "joints are supported")
    if not list(spec.actuators):
        raise ArmFileError(path, "has no actuators; add a <motor> per joint under <actuator>")


def _find_end_effector(spec: mujoco.MjSpec, path: Path, name: str) -> mujoco.mjtObj:
    site = next((s for s in spec.sites if s.name == name), None)
    body = site.parent if site is not None else next(
        (b for b in spec.bodies if b.name == name and b.name != "world"), None)
    if body is not None:
        _check_moved_by_the_arm(body, path, name)
        return mujoco.mjtObj.mjOBJ_SITE if site is not None else mujoco.mjtObj.mjOBJ_BODY
    sites = ", ".join(s.name for s in spec.sites if s.name) or "none"
    bodies = ", ".join(b.name for b in spec.bodies if b.name and b.name != "world") or "none"
    raise ArmFileError(path, f"has no site or body named '{printable(name)}' for the end effector "
                             f"(sites: {printable(sites)}; bodies: {printable(bodies)})")


def _check_moved_by_the_arm(body, path: Path, name: str) -> None:
    """An end effector the arm's joints cannot move (the mocap target, which reacher moves
    itself, or what is fixed to the world) would be "reached" by learning nothing."""
    chain = body
    while chain.name != "world" and not chain.mocap and not chain.joints:
        chain = chain.parent
    if chain.mocap:
        raise ArmFileError(path, f"end effector '{printable(name)}' is on the mocap body '{printable(chain.name)}', "
                                 "which reacher moves as the target; name a site or body of the arm")
    if chain.name == "world":
        raise ArmFileError(path, f"end effector '{printable(name)}' is fixed to the world: no joint moves "
                                 "it; name a site or body of the arm")


# --- completing the model --------------------------------------------------------------

def _all_names(spec: mujoco.MjSpec) -> set[str]:
    groups = (spec.bodies, spec.joints, spec.geoms, spec.sites, spec.cameras, spec.lights,
              spec.actuators, spec.sensors, spec.materials, spec.textures, spec.meshes)
    return {e.name for group in groups for e in group if e.name}


def _unique_name(spec: mujoco.MjSpec, wanted: str, taken: set[str] | None = None) -> str:
    """`wanted`, or a variant of it that no element of the spec has. Pass `taken` (the
    spec's names, kept up to date here) when naming many elements: collecting the names
    afresh for each would make loading quadratic in the number of joints."""
    if taken is None:
        taken = _all_names(spec)
    name = wanted
    i = 1
    while name in taken:
        name = f"reacher_{wanted}_{i}"
        i += 1
    taken.add(name)
    return name


def _name_joints(spec: mujoco.MjSpec) -> None:
    taken = _all_names(spec)
    for i, joint in enumerate(spec.joints):
        if not joint.name:
            joint.name = _unique_name(spec, f"joint{i}", taken)


def _add_sensor(spec, wanted: str, kind, objtype, objname: str,
                taken: set[str] | None = None) -> str:
    name = _unique_name(spec, wanted, taken)
    spec.add_sensor(name=name, type=kind, objtype=objtype, objname=objname)
    return name


def _add_missing_sensors(spec: mujoco.MjSpec, end_effector: str, ee_type) -> dict:
    """Reuse the file's jointpos/jointvel sensors where present, add the rest."""
    existing = {(s.type, s.objname): s.name for s in spec.sensors if s.name}
    taken = _all_names(spec)
    joint_obj = mujoco.mjtObj.mjOBJ_JOINT
    sensors: dict = {"pos": [], "vel": []}
    for joint in spec.joints:
        for key, kind, suffix in (("pos", mujoco.mjtSensor.mjSENS_JOINTPOS, "pos"),
                                  ("vel", mujoco.mjtSensor.mjSENS_JOINTVEL, "vel")):
            name = existing.get((kind, joint.name))
            if name is None:
                name = _add_sensor(spec, f"{joint.name}_{suffix}", kind, joint_obj, joint.name,
                                   taken)
            sensors[key].append(name)
    sensors["end_effector"] = _add_sensor(
        spec, f"{end_effector}_pos", mujoco.mjtSensor.mjSENS_FRAMEPOS, ee_type, end_effector,
        taken)
    return sensors


def _ensure_target(spec: mujoco.MjSpec) -> str:
    """Name of the mocap body that marks the goal; added if the file has none."""
    for body in spec.bodies:
        if body.name == TARGET_NAME and body.mocap:
            return body.name
    name = _unique_name(spec, TARGET_NAME)
    body = spec.worldbody.add_body(name=name, mocap=True)
    body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.012, 0, 0],
                  rgba=[0.9, 0.15, 0.2, 0.85], contype=0, conaffinity=0, mass=0)
    return name


# --- the compiled model ----------------------------------------------------------------

def _sampling_ranges(model, joint_names, path) -> tuple[np.ndarray, np.ndarray]:
    low, high = [], []
    for name in joint_names:
        j = model.joint(name)
        if j.limited[0]:
            lo, hi = j.range
        elif j.type[0] == mujoco.mjtJoint.mjJNT_HINGE:
            lo, hi = -math.pi, math.pi
        else:
            raise ArmFileError(path, f"slide joint '{name}' has no range; give it range=\"lo hi\" "
                                     "so targets can be sampled within reach")
        low.append(lo)
        high.append(hi)
    return np.array(low), np.array(high)


def is_position_servo(model: mujoco.MjModel) -> np.ndarray:
    """Per actuator, whether its force is a position servo's, kp·(ctrl − q) − kv·q̇:
    MuJoCo's <position>, or a <general> with a fixed gain and that affine bias."""
    kp, bias = model.actuator_gainprm[:, 0], model.actuator_biasprm
    return ((model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED)
            & (model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE)
            & (kp > 0) & (bias[:, 0] == 0) & np.isclose(bias[:, 1], -kp))


def position_servos(model: mujoco.MjModel) -> np.ndarray:
    """Indices of the position servos that drive a joint (their control is its target)."""
    on_joint = model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT
    return np.flatnonzero(is_position_servo(model) & on_joint)


def _control_ranges(model, joint_names, low, high) -> tuple[np.ndarray, np.ndarray]:
    """Each actuator's ctrlrange; [-1, 1] where the file gives none, except for a
    position servo, whose control is its joint's target position: there, the range the
    joint's configurations are drawn from (a continuous joint's [-π, π])."""
    ctrl_low = np.where(model.actuator_ctrllimited, model.actuator_ctrlrange[:, 0], -1.0)
    ctrl_high = np.where(model.actuator_ctrllimited, model.actuator_ctrlrange[:, 1], 1.0)
    index = {model.joint(n).id: i for i, n in enumerate(joint_names)}
    for a in position_servos(model):
        joint = index.get(int(model.actuator_trnid[a, 0]))
        if not model.actuator_ctrllimited[a] and joint is not None:
            ctrl_low[a], ctrl_high[a] = low[joint], high[joint]
    return ctrl_low, ctrl_high


def _sensor_adr(model, names) -> np.ndarray:
    return np.array([model.sensor(n).adr[0] for n in names], dtype=np.intp)


def _describe(path, model, joint_names, sensors, end_effector, target_body, low, high,
              fingertips, reach, base) -> Arm:
    hinge = np.array([model.joint(n).type[0] == mujoco.mjtJoint.mjJNT_HINGE for n in joint_names])
    act_names = tuple(model.actuator(i).name or f"actuator{i}" for i in range(model.nu))
    ctrl_low, ctrl_high = _control_ranges(model, joint_names, low, high)
    ee0 = model.sensor(sensors["end_effector"]).adr[0]
    tg0 = model.sensor(sensors["target"]).adr[0]
    cameras = tuple(model.camera(i).name for i in range(model.ncam) if model.camera(i).name)
    name = path.stem if path.suffix else str(path)
    return Arm(
        name=name,
        source=str(path),
        model=model,
        joint_names=joint_names,
        hinge=hinge,
        actuator_names=act_names,
        ctrl_low=ctrl_low.astype(np.float64),
        ctrl_high=ctrl_high.astype(np.float64),
        end_effector=end_effector,
        target_mocap=int(model.body(target_body).mocapid[0]),
        joint_pos_adr=_sensor_adr(model, sensors["pos"]),
        joint_vel_adr=_sensor_adr(model, sensors["vel"]),
        end_effector_adr=np.arange(ee0, ee0 + 3),
        target_adr=np.arange(tg0, tg0 + 3),
        qpos_adr=np.array([model.joint(n).qposadr[0] for n in joint_names], dtype=np.intp),
        qvel_adr=np.array([model.joint(n).dofadr[0] for n in joint_names], dtype=np.intp),
        joint_low=low,
        joint_high=high,
        planar=bool(np.ptp(fingertips[:, 2]) < 1e-6),
        reach_m=reach,
        base_pos=base,
        cameras=cameras,
    )
