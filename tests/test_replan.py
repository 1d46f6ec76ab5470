"""The `ee` controller's global step (reacher.sim.controllers.replan): where the local step
stalls at a joint limit, the arm moves in joint space to another posture and gets there."""

from __future__ import annotations

import numpy as np
import pytest
from test_controllers import _example

from reacher.task.env import ReachEnv

# Starts and targets where the local step alone stalls with a joint at its limit
# (measured: scripted seeds of docs/benchmarks.md, "Leaving local minima"): a planar
# 3-joint torque arm and a 3-joint spatial one (operational-space control), a 7-joint
# torque arm, and servo arms of 4 and 7 joints (differential IK).
STALLS = [("three_link", "fingertip", 1012, 1.0), ("spatial_arm", "fingertip", 2004, 1.0),
          ("iiwa14_torque", "attachment_site", 2006, 2.5), ("servo_arm", "tool", 1001, 2.0),
          ("panda", "attachment_site", 2038, 2.0)]


def _arm(name: str, end_effector: str) -> tuple[str, str]:
    return (name, end_effector) if name == "three_link" else _example(name)


def _scripted(env: ReachEnv, seed: int) -> tuple[float, np.ndarray]:
    """The proportional policy for one episode: the final distance, and the joints' and
    the end effector's positions at every step, side by side."""
    obs, _ = env.reset(seed=seed)
    step, path = env.controller.max_step, []
    for _ in range(env.max_episode_steps):
        obs, _, _, _, info = env.step(np.clip(-obs[-3:] / step, -1.0, 1.0))
        path.append(np.concatenate([env.controller.drive.positions(), env.physics.end_effector_pos()]))
    return info["distance"], np.array(path)


@pytest.mark.parametrize("name, end_effector, seed, seconds", STALLS)
def test_a_stall_at_a_joint_limit_is_left_by_another_posture(name, end_effector, seed, seconds):
    env = ReachEnv(*_arm(name, end_effector), control="ee", episode_s=seconds)
    control = env.controller
    replanner = control.law.replan
    control.law.replan = None  # the local step alone: it stalls with a joint at its limit
    distance, path = _scripted(env, seed)
    assert distance > 2 * env.success_radius
    q, ee = path[:, :-3], path[:, -3:]  # stalled: a joint at its limit, the end effector still
    assert replanner.at_limit(q[-1]) and np.ptp(ee[-10:], axis=0).max() < 0.01
    control.law.replan = replanner  # with the global step: there
    moves = replanner.moves
    distance, path = _scripted(env, seed)
    assert distance <= env.success_radius and replanner.moves > moves


def test_a_move_under_way_ends_with_the_episode():
    env = ReachEnv("three_link", "fingertip", control="ee", episode_s=1.0)
    replanner = env.controller.replanner
    obs, _ = env.reset(seed=1012)
    step = env.controller.max_step
    while replanner.goal is None:
        obs, *_ = env.step(np.clip(-obs[-3:] / step, -1.0, 1.0))
    drive = env.controller.drive  # the posture moved to lies within the joint ranges
    assert np.all(replanner.goal >= drive.q_low) and np.all(replanner.goal <= drive.q_high)
    env.reset(seed=0)
    env.step(np.zeros(3))
    assert replanner.goal is None and replanner.stalled == 0


@pytest.mark.parametrize("name", ["three_link", "panda"])
def test_without_a_stall_nothing_is_planned(name):
    # Zero actions (hold) and a free reach from the rest posture: the local step alone.
    env = ReachEnv(*_arm(name, "fingertip"), control="ee")
    replanner = env.controller.replanner
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(env.max_episode_steps):
            env.step(np.zeros(3))
    assert replanner.moves == 0
