"""`reacher inspect`: what reacher sees in an arm file, and what will hamper learning.

`inspect_arm` loads the arm exactly as training would (`reacher.sim.arm.load_arm`) and
reports the joints, actuators, end effector, timing, workspace and gravity it found,
what it added to the model, and warnings, each with the change to the file that
fixes it. It also steps the model (`reacher.sim.probes`): a couple of simulated seconds
of random actions, so that physics that blows up is found before training, not during
it, and timed servo moves. `format_report` writes that for people; `ArmReport.as_dict`
for ``--json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from reacher.errors import ArmFileError
from reacher.sim.arm import Arm, is_position_servo, load_arm
from reacher.sim.controllers.base import max_joint_torques
from reacher.sim.fit import control_for, episode_fit
from reacher.sim.probes import (
    SERVO_MAX_S,
    SERVO_MOVES,
    first_blow_up,
    p90,
    servo_move_times,
    worst_gravity,
)
from reacher.sim.timing import CONTROL_PERIOD_S, ControlTiming, control_timing
from reacher.tools.inspect_episode import episode_problems

_WEAK_SHARE = 0.9  # gravity needing more than this share of an actuator's force: a warning


@dataclass(frozen=True)
class ArmWarning:
    """Something about the arm that will hamper learning, and the change that fixes it."""

    problem: str
    fix: str


@dataclass(frozen=True)
class ArmReport:
    """Everything `reacher inspect` prints, as plain data."""

    source: str
    model_name: str
    end_effector: str
    end_effector_kind: str  # "site" or "body"
    joints: list[dict]
    actuators: list[dict]
    timestep_s: float
    integrator: str
    gravity: list[float]
    control_period_s: float
    frame_skip: int
    control_hz: float
    episode_s: float
    episode_steps: int
    workspace_radius_m: float
    base: list[float]
    planar: bool
    added: list[str]
    # Servo arms only (else None): the share of sampled moves that end within 2 cm within
    # SERVO_MAX_S, commanding the goal pose, and the time by which 90 % do (None if never).
    servo_settled_share: float | None
    servo_settle_s: float | None
    warnings: list[ArmWarning] = field(default_factory=list)
    control: str = ""  # what --control auto picks for this arm, and why
    control_reason: str = ""
    episode_reason: str = ""  # why the episode lasts what it does (reacher.sim.fit)

    def as_dict(self) -> dict:
        return asdict(self)


def inspect_arm(arm: str | Path, end_effector: str = "fingertip",
                control_period_s: float = CONTROL_PERIOD_S, episode_s: float = 0.0,
                frame_skip: int | None = None, episode_steps: int | None = None) -> ArmReport:
    """Load ``arm`` as training would and describe it; raises `ArmFileError` (one line)
    for a file that cannot be used, or timing its timestep cannot honour. An
    ``episode_s`` of 0 is training's default for this arm (`reacher.run.settings`)."""
    loaded = load_arm(arm, end_effector)
    model = loaded.model
    fitted, episode_reason = episode_fit(loaded) if not episode_s else (episode_s, "as given")
    try:
        timing = control_timing(model.opt.timestep, control_period_s,
                                fitted, frame_skip, episode_steps)
    except ValueError as err:  # a setting that this arm's timestep cannot honour
        raise ArmFileError(loaded.source, str(err)) from None
    axes = _joint_axes(model)
    joints = [_joint(model, name, axes) for name in loaded.joint_names]
    actuators = [_actuator(model, i) for i in range(model.nu)]
    ee_kind = "site" if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, end_effector) >= 0 \
        else "body"
    times = servo_move_times(loaded)
    share = None if times is None else float(np.isfinite(times).mean())
    settle = None if times is None else p90(times)
    settle = settle if settle is not None and math.isfinite(settle) else None
    warnings = (_stability_warnings(loaded, timing)
                + _timing_warnings(timing) + _joint_warnings(loaded, joints, actuators)
                + _actuator_warnings(loaded, actuators) + _gravity_warnings(loaded, actuators)
                + _episode_warnings(loaded, timing, times))
    return ArmReport(
        source=loaded.source, model_name=_model_name(model), end_effector=end_effector,
        end_effector_kind=ee_kind, joints=joints, actuators=actuators,
        timestep_s=float(model.opt.timestep),
        integrator=mujoco.mjtIntegrator(model.opt.integrator).name.removeprefix("mjINT_").lower(),
        gravity=[float(g) for g in model.opt.gravity],
        control_period_s=timing.control_period_s, frame_skip=timing.frame_skip,
        control_hz=timing.control_hz, episode_s=timing.episode_s,
        episode_steps=timing.episode_steps, workspace_radius_m=float(loaded.reach_m),
        base=[float(v) for v in loaded.base_pos], planar=loaded.planar,
        added=list(loaded.added), servo_settled_share=share, servo_settle_s=settle,
        warnings=warnings, **dict(zip(("control", "control_reason"), control_for(loaded))),
        episode_reason=episode_reason if not episode_steps else "as given (max_episode_steps)",
    )


# --- what the file has -----------------------------------------------------------------------

def _model_name(model: mujoco.MjModel) -> str:
    return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_MODEL, 0) or ""


def _joint(model: mujoco.MjModel, name: str, axes: np.ndarray) -> dict:
    j = model.joint(name)
    hinge = j.type[0] == mujoco.mjtJoint.mjJNT_HINGE
    return {"name": name, "type": "hinge" if hinge else "slide", "unit": "rad" if hinge else "m",
            "range": [float(v) for v in j.range] if j.limited[0] else None,
            "axis_world": axes[j.id].tolist(), "body": model.body(j.bodyid[0]).name,
            "dof": int(j.dofadr[0])}


def _joint_axes(model: mujoco.MjModel) -> np.ndarray:
    """Every joint's axis in world coordinates, in the model's reference pose."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    return data.xaxis.round(6)


def _actuator(model: mujoco.MjModel, i: int) -> dict:
    """Kind and strength of one actuator, read from the compiled model (where <motor>,
    <position>, <velocity> and <general> all become gain/bias parameters)."""
    gain, bias = model.actuator_gainprm[i], model.actuator_biasprm[i]
    gear = float(model.actuator_gear[i, 0])
    fixed_gain = model.actuator_gaintype[i] == mujoco.mjtGain.mjGAIN_FIXED
    affine = model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_AFFINE
    none = model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_NONE
    kind, params = "general", {"gainprm": gain[:3].tolist(), "biasprm": bias[:3].tolist()}
    if fixed_gain and none and gain[0] == 1:
        kind, params = "motor", {}
    elif is_position_servo(model)[i]:  # the same test that decides how the env drives it
        kind, params = "position", {"kp": float(gain[0]), "kv": float(-bias[2])}
    elif fixed_gain and affine and bias[0] == 0 and bias[1] == 0 and math.isclose(bias[2], -gain[0]):
        kind, params = "velocity", {"kv": float(gain[0])}
    trn = mujoco.mjtTrn(model.actuator_trntype[i])
    target = None
    if trn == mujoco.mjtTrn.mjTRN_JOINT:
        target = model.joint(model.actuator_trnid[i, 0]).name
    return {
        "name": model.actuator(i).name or f"actuator{i}", "kind": kind, "joint": target,
        "transmission": trn.name.removeprefix("mjTRN_").lower(), "gear": gear, **params,
        "ctrlrange": model.actuator_ctrlrange[i].tolist() if model.actuator_ctrllimited[i] else None,
        "forcerange": (model.actuator_forcerange[i].tolist()
                       if model.actuator_forcelimited[i] else None),
        # MuJoCo also limits force on the joint: all its actuators' together.
        "joint_forcerange": (model.jnt_actfrcrange[model.actuator_trnid[i, 0]].tolist()
                             if target is not None
                             and model.jnt_actfrclimited[model.actuator_trnid[i, 0]] else None),
    }


# --- warnings -------------------------------------------------------------------------------

def _stability_warnings(arm: Arm, timing: ControlTiming) -> list[ArmWarning]:
    """Whether the physics blows up under random actions (each held for a control period,
    as the env applies them, from random poses): MuJoCo then resets the state, and
    training would run on episodes cut short at every blow-up."""
    seconds, found = first_blow_up(arm, timing.frame_skip)
    if seconds is None:
        return []
    return [ArmWarning(
        f"arm {arm.source}: the simulation blew up {seconds:.2g} s into random actions "
        f"(MuJoCo found {found} that are NaN, infinite or huge, and reset the state): "
        "training would see episodes cut short at every blow-up",
        "lower the actuators' gear, gains or ctrlrange, add joint damping or armature, or "
        "shorten the timestep (the implicitfast integrator tolerates stiffer servos than Euler)")]


def _timing_warnings(timing: ControlTiming) -> list[ArmWarning]:
    if timing.note is None:
        return []
    return [ArmWarning(timing.note, "pick a control period that is a whole number of timesteps "
                                  "(--control-period-s), or set --frame-skip")]


def _joint_warnings(arm: Arm, joints: list[dict], actuators: list[dict]) -> list[ArmWarning]:
    out = []
    driven = {a["joint"] for a in actuators}
    for i, j in enumerate(joints):
        if j["name"] not in driven and not any(a["transmission"] != "joint" for a in actuators):
            out.append(ArmWarning(f"joint '{j['name']}' has no actuator: the policy cannot move or "
                                "hold it, so it swings freely",
                                f"add <motor joint=\"{j['name']}\" .../> (or a position servo) "
                                "under <actuator>, or remove the joint"))
        if j["type"] != "hinge" or j["range"] is not None or arm.planar:
            continue
        vertical = abs(abs(j["axis_world"][2]) - 1) < 1e-6
        if i == 0 and vertical:
            continue  # a turntable at the base may turn freely
        out.append(ArmWarning(f"hinge '{j['name']}' has no range on a spatial arm: targets are "
                              "drawn from its whole turn, including poses a real arm avoids "
                              "(links through each other or the floor)",
                              "give it range=\"lo hi\" (and limited=\"true\" without autolimits)"))
    return out


def _actuator_warnings(arm: Arm, actuators: list[dict]) -> list[ArmWarning]:
    out = []
    for a in actuators:
        if a["ctrlrange"] is not None:
            continue
        if a["kind"] == "position" and a["joint"] is not None:
            continue  # its control is a joint target: reacher maps actions onto the joint's range
        out.append(ArmWarning(f"actuator '{a['name']}' has no ctrlrange: reacher maps actions "
                              "to [-1, 1]", "give it ctrlrange=\"lo hi\" in the units it "
                              "expects (N·m for a motor with gear 1, m/s for a velocity servo)"))
    return out


def _gravity_warnings(arm: Arm, actuators: list[dict]) -> list[ArmWarning]:
    """Actuators that cannot hold their joint against gravity somewhere in the joint ranges.

    Gravity's torque on each joint is MuJoCo's bias force at zero velocity, taken at
    the worst of a few hundred configurations drawn as targets are."""
    model = arm.model
    if not np.any(model.opt.gravity):
        return []
    worst = worst_gravity(arm)
    torques = max_joint_torques(model, arm.ctrl_low, arm.ctrl_high)
    strength: dict[str, float] = {}
    for a, most in zip(actuators, torques.tolist()):
        if a["joint"] is not None:
            strength[a["joint"]] = strength.get(a["joint"], 0.0) + most
    out = []
    for name, most in strength.items():
        j = model.joint(name)
        if model.jnt_actfrclimited[j.id]:  # the joint's actuatorfrcrange bounds its actuators together
            most = min(most, float(np.abs(model.jnt_actfrcrange[j.id]).max()))
        needed = float(worst[j.dofadr[0]])
        if needed > _WEAK_SHARE * most:
            unit = "N·m" if j.type[0] == mujoco.mjtJoint.mjJNT_HINGE else "N"
            out.append(ArmWarning(
                f"joint '{name}': its actuators give at most {most:.3g} {unit}, but gravity "
                f"pulls with up to {needed:.3g} {unit} in some poses: the arm sags there and "
                "cannot reach targets that need them",
                "raise the actuator's gear, ctrlrange or forcerange (or kp for a servo), the "
                "joint's actuatorfrcrange if it has one, or "
                "make the links lighter"))
    return out


def _episode_warnings(arm: Arm, timing: ControlTiming, times: np.ndarray | None) -> list[ArmWarning]:
    return [ArmWarning(problem, fix) for problem, fix in episode_problems(arm, timing, times)]


# --- text ------------------------------------------------------------------------------------

def format_report(report: ArmReport) -> str:
    """The report as aligned text, warnings last."""
    r = report
    lines = [f"arm {r.source}" + (f"  (model \"{r.model_name}\")" if r.model_name else ""),
             f"  end effector   {r.end_effector_kind} '{r.end_effector}'",
             f"  joints ({len(r.joints)})"]
    width = max(len(j["name"]) for j in r.joints)
    for j in r.joints:
        rng = (f"[{j['range'][0]:.4g}, {j['range'][1]:.4g}] {j['unit']}" if j["range"]
               else "no range" + (" (samples [-π, π])" if j["type"] == "hinge" else ""))
        lines.append(f"    {j['name']:<{width}}  {j['type']:<5}  {rng}")
    lines.append(f"  actuators ({len(r.actuators)})")
    width = max(len(a["name"]) for a in r.actuators)
    for a in r.actuators:
        lines.append(f"    {a['name']:<{width}}  {_describe_actuator(a)}")
    g = ", ".join(f"{v:g}" for v in r.gravity)
    lines += [
        f"  physics        timestep {r.timestep_s:g} s, {r.integrator} integrator, gravity ({g}) m/s²",
        f"  control        every {r.control_period_s:g} s = {r.frame_skip} timestep"
        f"{'s' if r.frame_skip > 1 else ''} ({r.control_hz:.4g} Hz); episode {r.episode_s:g} s = "
        f"{r.episode_steps} steps" + (f" ({r.episode_reason})" if r.episode_reason else ""),
        *([f"  servo moves    {100 * r.servo_settled_share:.0f} % of {SERVO_MOVES} sampled moves "
            f"settle within 2 cm in {SERVO_MAX_S:g} s, 90 % by "
            + (f"{r.servo_settle_s:.2g} s" if r.servo_settle_s is not None else "never")]
          if r.servo_settled_share is not None else []),
        *([f"  controller     {r.control} (auto): {r.control_reason}"] if r.control else []),
        f"  workspace      radius {r.workspace_radius_m:.3g} m around the base at "
        f"({', '.join(f'{v:.3g}' for v in r.base)}); {'planar' if r.planar else 'spatial'}",
        "  reacher adds",
    ]
    lines += [f"    {item}" for item in r.added]
    if r.warnings:
        lines.append(f"warnings ({len(r.warnings)})")
        for w in r.warnings:
            lines += [f"  - {w.problem}", f"    fix: {w.fix}"]
    else:
        lines.append("no warnings")
    return "\n".join(lines)


def _describe_actuator(a: dict) -> str:
    on = f"on {a['joint']}" if a["joint"] else f"({a['transmission']} transmission)"
    kind = {"motor": f"motor, gear {a['gear']:g}",
            "position": f"position servo, kp {a.get('kp', 0):g}, kv {a.get('kv', 0):g}",
            "velocity": f"velocity servo, kv {a.get('kv', 0):g}"}.get(
        a["kind"], f"general, gain {a.get('gainprm')}, bias {a.get('biasprm')}")
    ctrl = (f"ctrl [{a['ctrlrange'][0]:.4g}, {a['ctrlrange'][1]:.4g}]" if a["ctrlrange"]
            else "ctrl unlimited (reacher uses [-1, 1])")
    force = (f"force [{a['forcerange'][0]:.4g}, {a['forcerange'][1]:.4g}]" if a["forcerange"]
             else "force unlimited" if not a.get("joint_forcerange") else "")
    if a.get("joint_forcerange"):
        lo, hi = a["joint_forcerange"]
        force += (", " if force else "") + f"joint force [{lo:.4g}, {hi:.4g}] (actuatorfrcrange)"
    return f"{kind} {on}; {ctrl}; {force}"
