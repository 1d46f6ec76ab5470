"""What the camera sees: complete a user's arm so that its video reads clearly.

Published robot models are often written for a larger scene (Menagerie's ``scene.xml``
adds the floor, light and sky) or for collision checking only (geoms in group 3,
which MuJoCo hides by default). `complete_scene` adds to the compiled copy whatever
of that the file lacks, sized from the arm's workspace so that a 2 m arm and a 10 cm
arm look alike on screen:

  * geoms of the arm in hidden groups are moved to a shown one, when no geom of the
    arm would be visible otherwise (`show_hidden_geoms`, on the compiled model);
  * a floor, a light and a sky, when the file has none; the floor is visual only
    (no contacts), so the arm's physics is unchanged: under the base of an arm that
    has a fixed one (translucent if the arm can reach below it), else below the arm
    and its whole workspace;
  * the ``top`` and ``angled`` cameras, aimed at the centre of the workspace from a
    distance at which the whole workspace — every target — fits in the frame;
  * the goal marker, when reacher added it, scaled with the arm's reach.

Nothing here changes dynamics: groups, colours, cameras, lights, textures and
contact-free geoms are all invisible to the simulation.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

VIDEO_CAMERAS = ("top", "angled")
SHOWN_GROUPS = (0, 1, 2)  # mjvOption's default geomgroup shows these and hides 3-5
CAMERA_FOVY_DEG = 45.0
TARGET_RADIUS_PER_REACH = 0.04  # 8 mm on a 20 cm arm, 8 cm on a 2 m one
_MIN_TARGET_RADIUS_M = 0.004
_ANGLED_DIRECTION = np.array([0.55, -0.7, 0.55])  # from the workspace centre: front right, above


def complete_scene(spec: mujoco.MjSpec, model: mujoco.MjModel, workspace: np.ndarray,
                   base: np.ndarray, reach: float, added_target: str | None,
                   unique_name) -> list[str]:
    """Add to ``spec`` what the video needs and ``model`` (the compiled spec) lacks.

    ``workspace`` holds sampled fingertip positions (n × 3), ``base`` the arm's base,
    ``reach`` the furthest fingertip distance from it; ``added_target`` is the goal
    body reacher added (None when the file has its own); ``unique_name(spec, wanted)``
    gives a name that does not clash with the file's. Returns what was added, in words
    (for ``reacher inspect``); the caller recompiles when the list is not empty.
    """
    added = []
    scale = max(reach, 0.02)
    if not _has_floor(model):
        floor_z, see_through = _floor_height(model, workspace, scale)
        _add_floor(spec, workspace, base, floor_z, see_through, scale, unique_name)
        added.append(f"visual-only floor at z = {floor_z:.3g} m (no contacts"
                     + ("; translucent: the arm can reach below it)" if see_through else ")"))
    if model.nlight == 0:
        _add_light(spec, workspace, scale, unique_name)
        added.append("light")
    if not any(model.tex_type[i] == mujoco.mjtTexture.mjTEXTURE_SKYBOX for i in range(model.ntex)):
        spec.add_texture(name=unique_name(spec, "sky"), type=mujoco.mjtTexture.mjTEXTURE_SKYBOX,
                         builtin=mujoco.mjtBuiltin.mjBUILTIN_GRADIENT, rgb1=[0.32, 0.42, 0.55],
                         rgb2=[0.05, 0.07, 0.10], width=256, height=256)
        added.append("sky")
    missing = [c for c in VIDEO_CAMERAS if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c) < 0]
    if missing:
        _add_cameras(spec, missing, workspace, base, scale)
        added.append(f"camera{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if added_target is not None:
        radius = target_radius(reach)
        for geom in spec.body(added_target).geoms:
            # The file's default class may hide geoms (group 3) or colour them.
            geom.size = [radius, 0, 0]
            geom.group = 0
            geom.material = ""
    return added


def target_radius(reach: float) -> float:
    """Radius of the goal marker reacher adds: a fixed share of the reach."""
    return max(_MIN_TARGET_RADIUS_M, TARGET_RADIUS_PER_REACH * reach)


# --- what is there -----------------------------------------------------------------------

def _arm_geoms(model: mujoco.MjModel) -> np.ndarray:
    """Geoms on bodies that move with the arm or hold it (not the world, not mocap bodies)."""
    body = model.geom_bodyid
    return np.flatnonzero((body > 0) & (model.body_mocapid[body] < 0))


def show_hidden_geoms(model: mujoco.MjModel) -> bool:
    """Move the arm's geoms to group 0 when all of them are in groups MuJoCo hides by
    default (collision-only models use group 3); returns whether it did. Groups only
    select what is drawn, so the physics is unchanged. Applied to the final compiled
    model (a recompile would undo it)."""
    geoms = _arm_geoms(model)
    if len(geoms) == 0 or np.isin(model.geom_group[geoms], SHOWN_GROUPS).any():
        return False
    model.geom_group[geoms] = 0
    invisible = geoms[model.geom_rgba[geoms, 3] == 0]
    model.geom_rgba[invisible] = [0.7, 0.7, 0.72, 1.0]
    return True


def _has_floor(model: mujoco.MjModel) -> bool:
    return bool((model.geom_type == mujoco.mjtGeom.mjGEOM_PLANE).any())


def _floor_height(model: mujoco.MjModel, workspace: np.ndarray, scale: float) -> tuple[float, bool]:
    """Where the floor goes, and whether targets can lie below it.

    An arm with a fixed base (geoms on bodies welded to the world, as robot models
    have) stands on the floor: it goes under the base. Such an arm may still reach
    below it — the file has no floor to stop it — so the floor is then made
    translucent, and targets under it stay in view. An arm without a fixed base gets
    the floor just below itself and its whole workspace."""
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    geoms = _arm_geoms(model)
    # A base may be a body welded to the world or geoms of the world body itself.
    body = model.geom_bodyid
    fixed = np.flatnonzero((model.body_weldid[body] == 0) & (model.body_mocapid[body] < 0)
                           & (model.geom_type != mujoco.mjtGeom.mjGEOM_PLANE))
    margin = 0.02 * scale
    if len(fixed):
        floor = min(_lowest_point(model, data, i) for i in fixed)
        return float(floor), bool(workspace[:, 2].min() < floor - margin)
    lows = [workspace[:, 2].min()] + [_lowest_point(model, data, i) for i in geoms]
    return float(min(lows) - margin), False


def _lowest_point(model: mujoco.MjModel, data: mujoco.MjData, geom: int) -> float:
    """The lowest corner of a geom's bounding box (local centre and half-sizes)."""
    up = data.geom_xmat[geom].reshape(3, 3)[2]
    centre, half = model.geom_aabb[geom, :3], model.geom_aabb[geom, 3:]
    return float(data.geom_xpos[geom, 2] + up @ centre - np.abs(up) @ half)


def _add_floor(spec, workspace, base, floor_z, see_through, scale, unique_name) -> None:
    grid = spec.add_texture(name=unique_name(spec, "floor_grid"), type=mujoco.mjtTexture.mjTEXTURE_2D,
                            builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, rgb1=[0.42, 0.45, 0.50],
                            rgb2=[0.36, 0.39, 0.44], mark=mujoco.mjtMark.mjMARK_EDGE,
                            markrgb=[0.30, 0.33, 0.37], width=256, height=256)
    material = spec.add_material(name=unique_name(spec, "floor"),
                                 reflectance=0.0 if see_through else 0.05,
                                 rgba=[1, 1, 1, 0.6 if see_through else 1])
    # One checker square per 1/4 of the reach (texrepeat is per unit length with texuniform).
    material.texuniform = True
    material.texrepeat = [2.0 / scale, 2.0 / scale]
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = grid.name
    centre = _centre(workspace, base)
    half = 2.5 * scale
    spec.worldbody.add_geom(name=unique_name(spec, "floor"), type=mujoco.mjtGeom.mjGEOM_PLANE,
                            pos=[centre[0], centre[1], floor_z], size=[half, half, 0.01 * scale],
                            material=material.name, contype=0, conaffinity=0, group=0)


def _add_light(spec, workspace, scale, unique_name) -> None:
    top = workspace.mean(axis=0) + [0.6 * scale, -0.6 * scale, 4.0 * scale]
    spec.worldbody.add_light(name=unique_name(spec, "light"), pos=top,
                             dir=[-0.15, 0.15, -1.0], diffuse=[0.7, 0.7, 0.7],
                             specular=[0.1, 0.1, 0.1], castshadow=True, cutoff=50)


# --- cameras -------------------------------------------------------------------------------

def _centre(workspace: np.ndarray, base: np.ndarray) -> np.ndarray:
    points = np.vstack([workspace, base])
    return (points.min(axis=0) + points.max(axis=0)) / 2


def _add_cameras(spec, names, workspace, base, scale) -> None:
    """Cameras aimed at the workspace centre from far enough that a sphere around every
    sampled target and the base (plus a margin for the marker) fits in the field of view."""
    centre = _centre(workspace, base)
    points = np.vstack([workspace, base])
    radius = float(np.linalg.norm(points - centre, axis=1).max()) + 0.1 * scale
    distance = radius / math.sin(math.radians(CAMERA_FOVY_DEG / 2))
    for name in names:
        cam_name = name  # MuJoCo names are unique per kind: a light may be called "top" too
        if name == "top":
            spec.worldbody.add_camera(name=cam_name, pos=centre + [0, 0, distance],
                                      fovy=CAMERA_FOVY_DEG)
            continue
        offset = _ANGLED_DIRECTION / np.linalg.norm(_ANGLED_DIRECTION) * distance
        forward = -offset / np.linalg.norm(offset)
        x_axis = np.cross(forward, [0, 0, 1.0])
        x_axis /= np.linalg.norm(x_axis)
        y_axis = np.cross(-forward, x_axis)
        frame = np.column_stack([x_axis, y_axis, -forward])  # a camera looks along its -z
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, frame.flatten())
        spec.worldbody.add_camera(name=cam_name, pos=centre + offset, quat=quat,
                                  fovy=CAMERA_FOVY_DEG)
