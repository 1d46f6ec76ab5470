"""reacher.sim.scene: a user's arm is completed so that its video reads clearly, at any scale,
without any change to its physics."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from conftest import write_arm

from reacher.sim.arm import load_arm
from reacher.sim.scene import TARGET_RADIUS_PER_REACH, VIDEO_CAMERAS
from reacher.task.env import ReachEnv


def spatial_arm_xml(length_m: float, group: int = 0, timestep: float = 0.01) -> str:
    """A 3-DOF arm under gravity on a fixed base, links of ``length_m / 2``, every geom
    (through the default class) in ``group``; no floor, light, sky, camera or target."""
    s = length_m
    half = s / 2
    return f"""<mujoco model="arm_{s:g}m">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{timestep}" integrator="implicitfast"/>
  <default>
    <joint type="hinge" damping="{20 * s ** 3:g}" armature="{s ** 3:g}"/>
    <geom type="capsule" size="{0.05 * s:g}" group="{group}" contype="0" conaffinity="0"/>
    <motor ctrlrange="-1 1" gear="{300 * s ** 4 + 2:g}"/>
  </default>
  <worldbody>
    <body name="base" pos="0 0 {0.2 * s:g}">
      <geom type="cylinder" size="{0.075 * s:g} {0.1 * s:g}" pos="0 0 {-0.1 * s:g}"/>
      <body name="turntable">
        <joint name="yaw" axis="0 0 1"/>
        <geom type="sphere" size="{0.06 * s:g}"/>
        <body name="upper">
          <joint name="shoulder" axis="0 1 0" range="-1.4 1.4"/>
          <geom fromto="0 0 0 {half:g} 0 0"/>
          <body name="fore" pos="{half:g} 0 0">
            <joint name="elbow" axis="0 1 0" range="-2.6 2.6"/>
            <geom fromto="0 0 0 {half:g} 0 0"/>
            <site name="tip" pos="{half:g} 0 0"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="yaw"/><motor joint="shoulder"/><motor joint="elbow"/></actuator>
</mujoco>
"""


@pytest.fixture(scope="module")
def scaled_arms(tmp_path_factory):
    """The same arm at 2 m and at 10 cm, both with collision-only (group 3) geoms."""
    directory = tmp_path_factory.mktemp("scaled")
    return {s: load_arm(write_arm(directory, f"arm_{s}", spatial_arm_xml(s, group=3)), "tip")
            for s in (2.0, 0.1)}


def arm_geoms(model):
    body = model.geom_bodyid
    return np.flatnonzero((body > 0) & (model.body_mocapid[body] < 0))


def project(model, data, camera: str, points: np.ndarray) -> np.ndarray:
    """Points → camera image coordinates in [-1, 1] (both axes; a square image)."""
    cam = model.camera(camera).id
    local = (points - data.cam_xpos[cam]) @ data.cam_xmat[cam].reshape(3, 3)
    assert (local[:, 2] < 0).all(), "a point behind the camera"
    half = np.tan(np.radians(model.cam_fovy[cam]) / 2)
    return local[:, :2] / (-local[:, 2:3] * half)


def workspace_samples(arm, n: int = 300) -> np.ndarray:
    rng = np.random.default_rng(1)
    data = mujoco.MjData(arm.model)
    return np.array([arm.fingertip_at(data, arm.random_configuration(rng)) for _ in range(n)])


# --- hidden groups, floor, light, sky ---------------------------------------------------------

def test_collision_only_arm_is_shown(scaled_arms):
    model = scaled_arms[2.0].model
    assert (model.geom_group[arm_geoms(model)] == 0).all()
    assert any("hidden groups" in line for line in scaled_arms[2.0].added)


def test_visible_geoms_keep_their_groups(tmp_path):
    xml = spatial_arm_xml(0.5).replace('<geom type="sphere"', '<geom group="3" type="sphere"')
    model = load_arm(write_arm(tmp_path, "mixed", xml), "tip").model
    groups = model.geom_group[arm_geoms(model)]
    assert sorted(set(groups)) == [0, 3]


def test_floor_light_and_sky_are_added_and_the_floor_has_no_contacts(scaled_arms):
    for arm in scaled_arms.values():
        model = arm.model
        floors = np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE)
        assert len(floors) == 1 and model.nlight == 1
        assert (model.tex_type == mujoco.mjtTexture.mjTEXTURE_SKYBOX).sum() == 1
        assert model.geom_contype[floors[0]] == model.geom_conaffinity[floors[0]] == 0
        # Under the fixed base (its foot at z = 0), not half a reach lower.
        assert abs(model.geom_pos[floors[0], 2]) < 1e-6


def test_floor_goes_below_the_workspace_of_an_arm_without_a_fixed_base(tmp_path):
    xml = spatial_arm_xml(1.0).replace(
        '<geom type="cylinder" size="0.075 0.1" pos="0 0 -0.1"/>', "")
    arm = load_arm(write_arm(tmp_path, "floating", xml), "tip")
    floor = arm.model.geom_pos[arm.model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE][0]
    assert floor[2] < workspace_samples(arm)[:, 2].min()


def test_completion_does_not_change_the_physics(tmp_path):
    """Same controls, same trajectory, with and without what reacher adds."""
    path = write_arm(tmp_path, "plain", spatial_arm_xml(0.5, group=3, timestep=0.002))
    raw = mujoco.MjModel.from_xml_path(str(path))
    arm = load_arm(path, "tip")
    runs = []
    for model in (raw, arm.model):
        data = mujoco.MjData(model)
        data.qpos[:3] = [0.3, -1.2, 2.0]  # folded down, through the floor's height
        for t in range(500):
            data.ctrl[:] = np.sin([t / 50, t / 70, t / 90])
            mujoco.mj_step(model, data)
        assert data.ncon == 0
        runs.append(data.qpos[:3].copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_builtin_scene_is_left_as_it_is():
    for name in ("two_link", "three_link"):
        arm = load_arm(name)
        raw = mujoco.MjModel.from_xml_path(arm.source)
        assert (arm.model.ngeom, arm.model.nlight, arm.model.ncam, arm.model.ntex) == \
               (raw.ngeom, raw.nlight, raw.ncam, raw.ntex)
        np.testing.assert_array_equal(arm.model.geom_size, raw.geom_size)
        np.testing.assert_array_equal(arm.model.geom_group, raw.geom_group)


# --- cameras and the target -------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2.0, 0.1])
@pytest.mark.parametrize("camera", VIDEO_CAMERAS)
def test_cameras_frame_every_target_and_the_base(scaled_arms, scale, camera):
    arm = scaled_arms[scale]
    data = mujoco.MjData(arm.model)
    mujoco.mj_forward(arm.model, data)
    points = np.vstack([workspace_samples(arm), arm.base_pos])
    image = project(arm.model, data, camera, points)
    margin = arm.reach_m * TARGET_RADIUS_PER_REACH  # the marker must fit too
    assert np.abs(image).max() < 1 - margin / arm.reach_m / 3
    assert np.abs(image).max() > 0.6, "the workspace fills too little of the frame"


def test_a_2m_and_a_10cm_arm_look_the_same(scaled_arms):
    """Same configuration → same place in the image, and same marker size relative to reach."""
    big, small = scaled_arms[2.0], scaled_arms[0.1]
    q = np.array([0.4, -0.3, 1.1])
    seen = []
    for arm in (big, small):
        data = mujoco.MjData(arm.model)
        tip = arm.fingertip_at(data, q)
        mujoco.mj_forward(arm.model, data)
        seen.append(np.vstack([project(arm.model, data, c, tip[None]) for c in VIDEO_CAMERAS]))
        radius = arm.model.geom_size[arm.model.body_mocapid[arm.model.geom_bodyid] >= 0][0, 0]
        assert radius == pytest.approx(TARGET_RADIUS_PER_REACH * arm.reach_m)
    np.testing.assert_allclose(seen[0], seen[1], atol=1e-3)


def test_target_is_shown_even_when_the_default_class_hides_geoms(scaled_arms):
    model = scaled_arms[0.1].model
    target_geoms = np.flatnonzero(model.body_mocapid[model.geom_bodyid] >= 0)
    assert (model.geom_group[target_geoms] == 0).all()


@pytest.mark.slow
@pytest.mark.parametrize("scale", [2.0, 0.1])
def test_rendered_frame_shows_arm_and_target(scaled_arms, scale):
    env = ReachEnv(scaled_arms[scale], render_mode="rgb_array", width=96, height=96, camera="top")
    env.reset(seed=0, options={"target": scaled_arms[scale].base_pos + [0.6 * scale, 0, 0]})
    image = env.render().astype(int)
    env.close()
    red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
    grey_arm = (np.abs(image - image.mean(axis=2, keepdims=True)).max(axis=2) < 12) & \
               (image.mean(axis=2) < 70)  # the arm's dark grey against the lighter floor
    assert red.sum() >= 4, "the target marker is not visible"
    assert grey_arm.sum() >= 20, "the arm is not visible"


def test_a_frame_too_large_for_opengl_is_named_not_blamed_on_the_install():
    """Wider than any OpenGL framebuffer: the error names the size and the backend's limit,
    and the model is left able to render (issue 16: this read 'install EGL')."""
    from reacher.errors import RenderError
    from reacher.sim.rendering import make_renderer

    arm = load_arm("two_link")
    with pytest.raises(RenderError) as excinfo:
        make_renderer(arm.model, 64, 100_000)
    message = str(excinfo.value)
    assert "100000×64 px" in message and "smaller" in message
    assert "install" not in message and "\n" not in message
    renderer = make_renderer(arm.model, 64, 64)
    assert renderer.render().shape == (64, 64, 3)
    renderer.close()
