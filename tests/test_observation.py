"""reacher.task.observation: the one description of the flat observation, which the env
fills, its docstring shows, randomisation's noise covers and the export sidecar lists."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from reacher.task.env import ReachEnv
from reacher.task.observation import PARTS, table

PANDA = Path(__file__).resolve().parent.parent / "examples" / "arms" / "panda.xml"


def _rebuilt(env: ReachEnv) -> np.ndarray:
    """The observation computed from MuJoCo by the layout's part keys and joint names alone."""
    model, data, arm = env.model, env.data, env.arm
    qpos = lambda names: data.qpos[[model.joint(n).qposadr[0] for n in names]]  # noqa: E731
    tip = data.site(arm.end_effector).xpos.copy()
    target = data.mocap_pos[arm.target_mocap]
    jac = np.zeros((3, model.nv))
    mujoco.mj_jacSite(model, data, jac, None, data.site(arm.end_effector).id)
    values = {
        "cos_hinge_angle": lambda v: np.cos(qpos(v.joints)),
        "sin_hinge_angle": lambda v: np.sin(qpos(v.joints)),
        "slide_position": lambda v: qpos(v.joints),
        "joint_velocity": lambda v: data.qvel[[model.joint(n).dofadr[0] for n in v.joints]],
        "end_effector_velocity": lambda v: jac @ data.qvel,
        "end_effector_position": lambda v: tip,
        "target_position": lambda v: target,
        "end_effector_minus_target": lambda v: tip - target,
    }
    return np.concatenate([values[v.part.key](v) for v in env.observation_layout.parts])


@pytest.mark.parametrize("arm, end_effector, control, velocity", [
    ("two_link", "fingertip", "joint", False), (PANDA, "attachment_site", "ee", True)], ids=["two_link", "panda_ee"])
def test_the_env_observes_what_its_layout_says(arm, end_effector, control, velocity):
    env = ReachEnv(arm, end_effector, control=control)
    layout = env.observation_layout
    assert layout.size == env.observation_space.shape[0] == len(layout.names) == len(layout.units)
    assert ("end_effector_velocity" in [v.part.key for v in layout.parts]) is velocity
    goals = env.goal_layout
    assert (goals.achieved, goals.desired, goals.delta) == (
        layout["end_effector_position"], layout["target_position"], layout["end_effector_minus_target"])
    assert layout.state == slice(0, goals.achieved.start)
    obs, _ = env.reset(seed=1)
    np.testing.assert_allclose(obs, _rebuilt(env), rtol=0, atol=1e-12)
    for _ in range(3):
        obs, *_ = env.step(np.full(env.action_space.shape, 0.5, np.float32))
        np.testing.assert_allclose(obs, _rebuilt(env), rtol=0, atol=1e-9)
    env.close()


def test_the_env_docstring_shows_the_layouts_table():
    assert table() in ReachEnv.__doc__.replace("\n    ", "\n")
    rows = [line for line in table().splitlines()[2:]]
    assert [row.split("|")[1].strip() for row in rows] == [p.what for p in PARTS]
