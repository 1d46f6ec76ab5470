"""Export a trained policy to run without reacher: an ONNX file and a JSON sidecar.

The ONNX file is the actor with the observation normaliser folded in:
``observation`` (float32, batch × n) → ``action`` (float32, batch × m, in [-1, 1]).
The graph is written node by node from the weights (Sub, Mul, Clip, then Gemm and
Relu per layer, then Tanh), which needs only the ``onnx`` package: torch's own exporter
needs onnxscript (torch ≥ 2.9) or is its deprecated TorchScript path. Before anything
is written, onnxruntime runs the graph on observations from real episodes and must give
the torch policy's actions within `TOLERANCE`.

The sidecar (``FILE.json`` beside ``FILE.onnx``) says what a controller outside reacher
must feed in and do with what comes out: the observation layout with names and units
(and the MuJoCo names to compute it from), each actuator's ctrlrange and how the action
maps onto it, the control period, the arm file's name and sha256, the end effector, the
success radius and the goal-observation layout. ``examples/onnx_reach.py`` runs it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reacher.errors import ExportError

FORMAT = "reacher-policy/1"
OPSET = 17  # onnxruntime ≥ 1.14 and most embedded runtimes read it
IR_VERSION = 8  # the IR of opset 17, so older runtimes load the file too
TOLERANCE = 1e-5  # largest |onnxruntime − torch| accepted, per action value
INSTALL_HINT = "pip install 'reacher[export]' (or: pip install onnx onnxruntime)"


@dataclass
class Exported:
    onnx: Path
    sidecar: Path
    max_difference: float  # largest |onnxruntime − torch| over the check's observations
    checked: int  # observations the check ran


def sidecar_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".json")


def export_policy(run: str | Path, out: str | Path, overwrite: bool = False) -> Exported:
    """Write the policy of `run` (run dir or checkpoint) to `out` (``.onnx``) and its
    sidecar beside it. Refuses to replace existing files unless `overwrite`; writes
    nothing at all when anything is wrong."""
    onnx, ort = _modules()
    out = Path(out)
    sidecar = sidecar_path(out)
    _check_out(out, sidecar, overwrite)

    from reacher.run.policy import load_policy
    from reacher.task.goal import flatten

    policy = load_policy(run)
    delay = getattr(policy.config, "action_delay_steps", 0)
    if delay:
        # Such a policy also reads its last actions (reacher.task.randomize.ActionHistory),
        # state a plain-MuJoCo loop would have to keep; the sidecar does not describe it.
        raise ExportError(f"run {run}: trained with action_delay_steps = {delay}, its policy reads its "
                          f"last {delay} actions too, which an export does not describe yet; "
                          f"export a run trained with action_delay_steps = 0")
    env = policy.make_env()
    try:
        model = actor_graph(policy.agent, onnx)
        observations = _rollout_observations(policy, env, flatten)
        max_difference = _check_against_torch(model, policy.agent, observations, ort)
        onnx_bytes = model.SerializeToString()
        info = describe(policy, env, onnx_bytes)
    finally:
        env.close()

    from reacher.files import remove_temporaries, replacing_together

    # Both files or neither: each is written to a temporary file, and both are renamed only
    # once both are complete, so a full disk leaves the older pair as it was (and a retry
    # finds nothing of this one in its way). The sidecar names the ONNX file's hash, so a
    # pair torn by a crash between the two renames is still told apart from a matching one.
    for path in (out, sidecar):
        remove_temporaries(path.parent, of=path.name)  # what a killed export left
    with replacing_together(out, sidecar) as (onnx_tmp, sidecar_tmp):
        onnx_tmp.write(onnx_bytes)
        sidecar_tmp.write((json.dumps(info, indent=1) + "\n").encode("utf-8"))
    return Exported(out, sidecar, max_difference, len(observations))


def _modules():
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise ExportError(f"reacher export needs the '{err.name}' package: {INSTALL_HINT}") from None
    return onnx, onnxruntime


def _check_out(out: Path, sidecar: Path, overwrite: bool) -> None:
    if out.suffix != ".onnx":
        raise ExportError(f"{out}: an export's file name must end in .onnx "
                          f"(its sidecar {out.stem}.json goes beside it)")
    parent = out.parent
    if not parent.is_dir():
        raise ExportError(f"cannot write {out}: folder {parent} does not exist"
                          if not parent.exists() else f"cannot write {out}: {parent} is not a folder")
    for path in (out, sidecar):
        if path.is_dir():
            raise ExportError(f"cannot write {path}: it is a folder")
        if path.exists() and not overwrite:
            raise ExportError(f"{path} exists: pass --force to replace it, or choose another --out")


# --- the graph ------------------------------------------------------------------------

def actor_graph(agent, onnx):
    """The ONNX model of ``tanh(actor(clip((obs − mean) / std)))`` from the agent's weights."""
    from onnx import TensorProto, helper, numpy_helper
    from torch import nn

    from reacher.ddpg.networks import RunningNorm

    layers = list(agent.actor.net)
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    expected = [nn.Linear, *[k for _ in linears[1:] for k in (nn.ReLU, nn.Linear)]]
    if [type(m) for m in layers] != expected:
        raise ExportError(f"the actor's layers ({', '.join(type(m).__name__ for m in layers)}) "
                          "are not the Linear/ReLU stack this exporter writes")
    weights, nodes = [], []

    def constant(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    x = "observation"
    if isinstance(agent.norm, RunningNorm):  # the same operations, in the same order, as torch
        norm = agent.norm
        nodes += [
            helper.make_node("Sub", [x, constant("obs_mean", norm.shift.numpy())], ["centred"]),
            helper.make_node("Mul", ["centred", constant("obs_inv_std", norm.scale.numpy())], ["scaled"]),
            helper.make_node("Clip", ["scaled", constant("clip_low", -norm.clip),
                                      constant("clip_high", norm.clip)], ["normalised"]),
        ]
        x = "normalised"
    for i, linear in enumerate(linears):
        w = constant(f"layer{i}.weight", linear.weight.detach().cpu().numpy())  # (out, in)
        b = constant(f"layer{i}.bias", linear.bias.detach().cpu().numpy())
        nodes.append(helper.make_node("Gemm", [x, w, b], [f"linear{i}"], transB=1))
        x = f"linear{i}"
        if i < len(linears) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"hidden{i}"]))
            x = f"hidden{i}"
    nodes.append(helper.make_node("Tanh", [x], ["action"]))
    obs_dim, act_dim = linears[0].in_features, linears[-1].out_features
    graph = helper.make_graph(
        nodes, "reacher_actor",
        [helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", obs_dim])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", act_dim])],
        initializer=weights)
    model = helper.make_model(graph, producer_name="reacher", opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def _rollout_observations(policy, env, flatten, episodes: int = 2) -> np.ndarray:
    """Observations the policy meets: its own deterministic episodes (flat layout)."""
    from reacher.run.evaluation import EVAL_SEED

    seen = []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        done = False
        while not done:
            seen.append(flatten(obs))
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            done = terminated or truncated or len(seen) >= 2000  # envs without a time limit
    return np.asarray(seen, dtype=np.float32)


def session(model_bytes: bytes, ort):
    """A single-threaded onnxruntime session, as on a controller's one core."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def torch_actions(agent, observations: np.ndarray) -> np.ndarray:
    """The trained policy's actions, computed by torch (``actor(norm(obs))``)."""
    import torch

    with torch.no_grad():
        return agent.actor(agent.norm(torch.as_tensor(observations, dtype=torch.float32))).numpy()


def _check_against_torch(model, agent, observations: np.ndarray, ort) -> float:
    ours = session(model.SerializeToString(), ort).run(["action"], {"observation": observations})[0]
    difference = float(np.abs(ours - torch_actions(agent, observations)).max())
    if not difference <= TOLERANCE:
        raise ExportError(f"the ONNX graph differs from the torch policy by {difference:.3g} "
                          f"(more than {TOLERANCE:g}); nothing was written")
    return difference


# --- the sidecar ----------------------------------------------------------------------

def describe(policy, env, onnx_bytes: bytes) -> dict:
    """The sidecar's content: everything a controller needs besides the weights."""
    import reacher
    from reacher.task.env import ReachEnv
    from reacher.task.goal import KEYS, flat_size, is_goal_space

    config, meta = policy.config, policy.checkpoint.metadata
    obs_dim, act_dim = int(meta["obs_dim"]), int(meta["act_dim"])
    info = {
        "format": FORMAT,
        "reacher_version": reacher.__version__,
        "onnx": {"sha256": hashlib.sha256(onnx_bytes).hexdigest(), "opset": OPSET,
                 "ir_version": IR_VERSION,
                 "input": {"name": "observation", "dtype": "float32", "shape": ["batch", obs_dim]},
                 "output": {"name": "action", "dtype": "float32", "shape": ["batch", act_dim],
                            "range": [-1.0, 1.0]}},
        "run": {"checkpoint": str(policy.checkpoint.path), "env_steps": meta.get("env_steps"),
                "seed": config.seed},
        "env": config.env or None,
    }
    reach = env.unwrapped
    if isinstance(reach, ReachEnv):
        info.update(reach_description(reach, config))
        if policy.trained_arm_sha256:  # the arm trained on, which the file may no longer be
            info["arm"]["sha256"] = policy.trained_arm_sha256
    else:
        info["observation"] = {"size": obs_dim, "parts": None,
                               "note": "the env's own observation, flattened; see its documentation"}
        low, high = (np.broadcast_to(b, (act_dim,)).astype(float).tolist()
                     for b in (reach.action_space.low, reach.action_space.high))
        info["action"] = {"size": act_dim, "scaling": "env_action = low + (action + 1) / 2 * (high - low)",
                          "low": low, "high": high}
        dt = getattr(reach, "dt", None)
        info["control"] = {"period_s": float(dt) if dt is not None else None}
    goal_obs = is_goal_space(env.observation_space)
    info["goal_observation"] = {
        "used": goal_obs,
        "flatten": ([*KEYS, "achieved_goal - desired_goal"] if goal_obs else None),
        "note": ("the policy reads the flat layout: concatenate the Dict's parts in this order"
                 if goal_obs else "the env's observation is already flat"),
    }
    if flat_size(env.observation_space) != obs_dim:  # make_env checked it; a second look is free
        raise ExportError(f"checkpoint {policy.checkpoint.path}: observation size {obs_dim} does not "
                          f"match its env's {flat_size(env.observation_space)}")
    return info


def reach_description(env, config) -> dict:
    """The sidecar's arm, end effector, observation, action, control and success entries
    for a ReachEnv: its observation layout's parts (`reacher.task.observation`), named
    from the arm's joints."""
    import mujoco

    from reacher.run.arms import arm_digest
    from reacher.sim.arm import is_position_servo, position_servos

    arm, model = env.arm, env.model

    joints = [{"name": name, "type": "hinge" if hinge else "slide",
               "qpos_adr": int(qadr), "dof_adr": int(vadr),
               "sample_range": [float(lo), float(hi)]}
              for name, hinge, qadr, vadr, lo, hi in zip(arm.joint_names, arm.hinge, arm.qpos_adr,
                                                        arm.qvel_adr, arm.joint_low, arm.joint_high)]
    layout = env.observation_layout  # the rows of ReachEnv's observation table, in order
    parts = []
    for values in layout.parts:
        entry = {"part": values.part.key, "start": values.start, "size": len(values.names),
                 "unit": values.part.unit, "names": list(values.names)}
        if values.joints is not None:
            entry["joints"] = list(values.joints)
        parts.append(entry)
    size, ee = layout.size, arm.end_effector
    ee_is_site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, ee) >= 0
    servos = is_position_servo(model)
    # With servo_speed > 0 a position servo's action moves its target from where the joint is.
    offset = set(position_servos(model).tolist()) if config.servo_speed > 0 else set()
    actuators = []
    for i, name in enumerate(arm.actuator_names):
        on_joint = model.actuator_trntype[i] == mujoco.mjtTrn.mjTRN_JOINT
        kind = ("position servo" if servos[i] else
                "motor" if model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_NONE else "general")
        actuators.append({
            "name": name, "joint": model.joint(int(model.actuator_trnid[i, 0])).name if on_joint else None,
            "kind": kind, "gear": float(model.actuator_gear[i, 0]),
            "ctrlrange": [float(arm.ctrl_low[i]), float(arm.ctrl_high[i])],
            "mode": "offset" if i in offset else "absolute",
        })
    arm_path = Path(arm.source)
    timing = env.timing
    return {
        "arm": {"name": arm.name, "file": arm_path.name,
                "sha256": arm_digest(arm_path),
                "joints": joints},
        "end_effector": {"name": ee, "type": "site" if ee_is_site else "body",
                         "position": f"MjData.site('{ee}').xpos" if ee_is_site else
                                     f"MjData.body('{ee}').xipos (the body's centre of mass)",
                         "frame": "world"},
        "observation": {"size": size, "dtype": "float32", "parts": parts, "names": layout.names,
                        "units": layout.units,
                        "note": "positions after the control period's physics steps, with kinematics "
                                "recomputed (mj_kinematics or mj_forward after mj_step)"},
        "action": _action_description(env, config, actuators),
        "control": {"period_s": timing.control_period_s, "timestep_s": timing.timestep_s,
                    "physics_steps_per_action": timing.frame_skip,
                    "episode_s": timing.episode_s, "episode_steps": timing.episode_steps},
        "success_radius_m": env.success_radius,
    }


def _action_description(env, config, actuators: list[dict]) -> dict:
    # The env's resolved controller where it has one ("auto" becomes a name), else the config's.
    controller = getattr(env, "control", None) or getattr(config, "control", "joint")
    period = env.timing.control_period_s
    action = {"size": int(env.action_space.shape[0]), "controller": controller, "actuators": actuators}
    if controller == "joint":
        step = config.servo_speed * period
        action.update({
            "absolute": "ctrl = low + (clip(action, -1, 1) + 1) / 2 * (high - low), "
                        "with [low, high] the actuator's ctrlrange",
            "offset": f"ctrl = clip(qpos[joint] + {step:g} * clip(action, -1, 1), low, high): "
                      f"servo_speed {config.servo_speed:g} x period {period:g} s",
            "note": "one value per actuator, in this order, written to MjData.ctrl by name"})
        return action
    # Another controller's action is a command its control law turns into actuator controls:
    # a loop outside reacher must run the same law (reacher/sim/controllers/) to use the policy.
    for entry in actuators:
        entry["mode"] = None
    controller_obj = getattr(env, "controller", None)
    action.update({
        "names": list(controller_obj.action_names()) if hasattr(controller_obj, "action_names") else None,
        "settings": {k: getattr(config, k) for k in ("ee_speed", "joint_rate", "servo_speed")
                     if hasattr(config, k)},
        "note": f"actions are commands of reacher's '{controller}' controller (reacher/sim/controllers/), "
                "which turns them into actuator controls every control period; they are not controls"})
    return action
