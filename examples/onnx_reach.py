"""Run a policy exported by `reacher export` in a plain MuJoCo loop: no reacher, no torch.

    python examples/onnx_reach.py POLICY.onnx ARM.xml [EPISODES]

POLICY.json must lie beside POLICY.onnx, and ARM.xml must be the arm file the policy was
trained on (the sidecar records its sha256). Each episode draws a target as reacher
does (the end effector at a random joint configuration), starts the arm at another,
runs the policy for the sidecar's episode length and prints how close it ended.
Needs mujoco, numpy and onnxruntime only.
"""

import hashlib
import json
import sys

import mujoco
import numpy as np
import onnxruntime

policy_file, arm_file = sys.argv[1], sys.argv[2]
episodes = int(sys.argv[3]) if len(sys.argv) > 3 else 10
spec = json.load(open(policy_file.removesuffix(".onnx") + ".json"))
if hashlib.sha256(open(arm_file, "rb").read()).hexdigest() != spec["arm"]["sha256"]:
    sys.exit(f"{arm_file} is not the arm file the policy was trained on ({spec['arm']['file']})")
if [p["part"] for p in spec["observation"]["parts"]] != [
        "cos_hinge_angle", "sin_hinge_angle", "slide_position", "joint_velocity",
        "end_effector_position", "target_position", "end_effector_minus_target"]:
    sys.exit("this script builds another observation layout than the sidecar's")
action_spec = spec["action"]
if action_spec["controller"] != "joint" or any(a["mode"] != "absolute" for a in action_spec["actuators"]):
    sys.exit("this script writes actions to the actuators as absolute controls only "
             "(trained with control 'joint' and servo_speed 0)")

m = mujoco.MjModel.from_xml_path(arm_file)
d = mujoco.MjData(m)
policy = onnxruntime.InferenceSession(policy_file, providers=["CPUExecutionProvider"])

# Everything by name, as the sidecar gives it.
joints = spec["arm"]["joints"]
qpos = [m.joint(j["name"]).qposadr[0] for j in joints]
hinge = [m.joint(j["name"]).qposadr[0] for j in joints if j["type"] == "hinge"]
slide = [m.joint(j["name"]).qposadr[0] for j in joints if j["type"] == "slide"]
dof = [m.joint(j["name"]).dofadr[0] for j in joints]
low, high = np.array([j["sample_range"] for j in joints]).T
ctrl = [m.actuator(a["name"]).id for a in action_spec["actuators"]]
ctrl_low, ctrl_high = np.array([a["ctrlrange"] for a in action_spec["actuators"]]).T
ee = spec["end_effector"]
tip = (lambda: d.site(ee["name"]).xpos) if ee["type"] == "site" else (lambda: d.body(ee["name"]).xipos)
control = spec["control"]
rng = np.random.default_rng(0)

successes = 0
for episode in range(episodes):
    mujoco.mj_resetData(m, d)
    d.qpos[qpos] = rng.uniform(low, high)  # the target: where the end effector is in some pose
    mujoco.mj_kinematics(m, d)
    target = tip().copy()
    d.qpos[qpos] = rng.uniform(low, high)  # the start: another pose, at rest
    mujoco.mj_forward(m, d)
    for _ in range(control["episode_steps"]):
        q = d.qpos
        obs = np.concatenate([np.cos(q[hinge]), np.sin(q[hinge]), q[slide], d.qvel[dof],
                              tip(), target, tip() - target])
        action = policy.run(None, {"observation": obs[None].astype(np.float32)})[0][0]
        d.ctrl[ctrl] = (ctrl_high + ctrl_low) / 2 + (ctrl_high - ctrl_low) / 2 * np.clip(action, -1, 1)
        mujoco.mj_step(m, d, nstep=control["physics_steps_per_action"])
        mujoco.mj_kinematics(m, d)  # mj_step leaves positions of sites one physics step behind
    distance = float(np.linalg.norm(tip() - target))
    successes += distance <= spec["success_radius_m"]
    print(f"episode {episode}: final distance {100 * distance:.2f} cm")
print(f"success {successes}/{episodes} within {100 * spec['success_radius_m']:g} cm")
