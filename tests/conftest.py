"""Arm files for the tests, written into temporary directories.

Each arm is an MJCF string plus what the tests need to know about its geometry
(`ArmCase`). They are deliberately unlike the built-ins: another end-effector
name, a body as end effector, a spatial arm under gravity, names that clash with
the ones reacher adds. None of them has a floor, light or camera: reacher adds
them (see reacher.sim.scene).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import reacher  # noqa: F401  (selects the GL backend before mujoco is imported)

# Stable physics for every test arm: a 0.01 s step, some damping and armature, small gears.
_HEADER = """
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.01" integrator="implicitfast"/>
  <default>
    <joint type="hinge" axis="0 0 1" damping="0.5" armature="0.05"/>
    <geom type="capsule" size="0.01" contype="0" conaffinity="0" density="300"/>
    <motor ctrlrange="-1 1" gear="5"/>
  </default>
"""

# Links 0.06, 0.05, 0.04, 0.03 m; the site `tip` sits 0.035 m past the last joint.
FOUR_LINK_XML = f"""<mujoco model="four_link">{_HEADER}
  <worldbody>
    <body name="link1" pos="0 0 0.02">
      <joint name="j1"/>
      <geom fromto="0 0 0 0.06 0 0"/>
      <body name="link2" pos="0.06 0 0">
        <joint name="j2" range="-2.5 2.5"/>
        <geom fromto="0 0 0 0.05 0 0"/>
        <body name="link3" pos="0.05 0 0">
          <joint name="j3" range="-2.5 2.5"/>
          <geom fromto="0 0 0 0.04 0 0"/>
          <body name="link4" pos="0.04 0 0">
            <joint name="j4" range="-2.5 2.5"/>
            <geom fromto="0 0 0 0.03 0 0"/>
            <site name="tip" pos="0.035 0 0" size="0.01"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="m1" joint="j1"/>
    <motor name="m2" joint="j2"/>
    <motor name="m3" joint="j3"/>
    <motor name="m4" joint="j4"/>
  </actuator>
</mujoco>
"""

# Yaw about z, then shoulder and elbow pitch about y: the fingertip leaves every plane.
# Both pitch joints lift links against gravity, so the arm sags unless driven.
SPATIAL_XML = """<mujoco model="spatial">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.01" gravity="0 0 -9.81" integrator="implicitfast"/>
  <default>
    <joint type="hinge" damping="1" armature="0.1"/>
    <geom type="capsule" size="0.01" contype="0" conaffinity="0" density="300"/>
    <motor ctrlrange="-1 1" gear="10"/>
  </default>
  <worldbody>
    <light pos="0 0 1" dir="0 0 -1"/>
    <body name="turntable" pos="0 0 0.3">
      <joint name="yaw" axis="0 0 1"/>
      <geom type="cylinder" size="0.02 0.01"/>
      <body name="upper_arm">
        <joint name="shoulder" axis="0 1 0" range="-1.5 1.5"/>
        <geom fromto="0 0 0 0.1 0 0"/>
        <body name="forearm" pos="0.1 0 0">
          <joint name="elbow" axis="0 1 0" range="-2.5 2.5"/>
          <geom fromto="0 0 0 0.08 0 0"/>
          <site name="fingertip" pos="0.09 0 0" size="0.01"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="yaw" joint="yaw"/>
    <motor name="shoulder" joint="shoulder"/>
    <motor name="elbow" joint="elbow"/>
  </actuator>
</mujoco>
"""

# The end effector is the body `hand` (its frame origin, 0.07 m past the elbow); no sites.
BODY_HAND_XML = f"""<mujoco model="body_hand">{_HEADER}
  <worldbody>
    <body name="upper" pos="0 0 0.05">
      <joint name="shoulder"/>
      <geom fromto="0 0 0 0.08 0 0"/>
      <body name="lower" pos="0.08 0 0">
        <joint name="elbow" range="-2.8 2.8"/>
        <geom fromto="0 0 0 0.07 0 0"/>
        <body name="hand" pos="0.07 0 0">
          <geom type="sphere" size="0.015"/>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder"/>
    <motor name="elbow" joint="elbow"/>
  </actuator>
</mujoco>
"""

# Names reacher would like to use are taken: a decorative geom `target` (not a mocap
# body), a site `target_pos`, a frame sensor `shoulder_pos` that is no joint sensor,
# and a jointvel sensor under a name of the file's own, which reacher should reuse.
CLASHING_XML = f"""<mujoco model="clashing">{_HEADER}
  <worldbody>
    <geom name="target" type="box" pos="0.3 0.3 0.01" size="0.02 0.02 0.01" rgba="0 1 0 1"/>
    <body name="upper" pos="0 0 0.02">
      <joint name="shoulder"/>
      <geom fromto="0 0 0 0.1 0 0"/>
      <site name="target_pos" pos="0.05 0 0.01" size="0.005"/>
      <body name="lower" pos="0.1 0 0">
        <joint name="elbow" range="-2.8 2.8"/>
        <geom fromto="0 0 0 0.08 0 0"/>
        <site name="fingertip" pos="0.09 0 0" size="0.01"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder"/>
    <motor name="elbow" joint="elbow"/>
  </actuator>
  <sensor>
    <framepos name="shoulder_pos" objtype="site" objname="target_pos"/>
    <jointvel name="elbow_speed" joint="elbow"/>
  </sensor>
</mujoco>
"""

# A slide joint (a carriage on a rail along x, ±0.1 m) under one hinged link.
SLIDER_XML = f"""<mujoco model="slider">{_HEADER}
  <worldbody>
    <body name="carriage" pos="0 0 0.02">
      <joint name="rail" type="slide" axis="1 0 0" range="-0.1 0.1" damping="5"/>
      <geom type="box" size="0.02 0.02 0.01"/>
      <body name="link">
        <joint name="swing"/>
        <geom fromto="0 0 0 0.1 0 0"/>
        <site name="fingertip" pos="0.1 0 0" size="0.01"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="rail" joint="rail"/>
    <motor name="swing" joint="swing"/>
  </actuator>
</mujoco>
"""

# A two-link arm whose motors take -2..4: action -1 → -2, 0 → 1, 1 → 4.
ASYMMETRIC_CTRL_XML = f"""<mujoco model="asymmetric">{_HEADER}
  <worldbody>
    <body name="upper" pos="0 0 0.02">
      <joint name="shoulder"/>
      <geom fromto="0 0 0 0.1 0 0"/>
      <body name="lower" pos="0.1 0 0">
        <joint name="elbow" range="-2.8 2.8"/>
        <geom fromto="0 0 0 0.1 0 0"/>
        <site name="fingertip" pos="0.1 0 0"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="shoulder" joint="shoulder" ctrlrange="-2 4"/>
    <motor name="elbow" joint="elbow" ctrlrange="-2 4"/>
  </actuator>
</mujoco>
"""


@dataclass(frozen=True)
class ArmCase:
    """One test arm: its MJCF, its end effector and its geometry, known by hand."""

    name: str
    xml: str
    end_effector: str
    ee_kind: str  # "site" or "body"
    planar: bool
    base_pos: tuple[float, float, float]  # world position of the first joint's body
    reach_m: float  # furthest the end effector can be from base_pos


ARM_CASES = {
    "four_link": ArmCase("four_link", FOUR_LINK_XML, "tip", "site", True, (0, 0, 0.02),
                         0.06 + 0.05 + 0.04 + 0.035),
    "spatial": ArmCase("spatial", SPATIAL_XML, "fingertip", "site", False, (0, 0, 0.3),
                       0.1 + 0.09),
    "body_hand": ArmCase("body_hand", BODY_HAND_XML, "hand", "body", True, (0, 0, 0.05),
                         0.08 + 0.07),
    "clashing": ArmCase("clashing", CLASHING_XML, "fingertip", "site", True, (0, 0, 0.02),
                        0.1 + 0.09),
    "slider": ArmCase("slider", SLIDER_XML, "fingertip", "site", True, (0, 0, 0.02), 0.1 + 0.1),
}


def write_arm(directory: Path, name: str, xml: str) -> Path:
    """Write `xml` to ``directory/name.xml`` and return the path."""
    path = Path(directory) / f"{name}.xml"
    path.write_text(xml, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def arm_dir(tmp_path_factory) -> Path:
    """A directory holding every arm of ARM_CASES, written once per test session."""
    directory = tmp_path_factory.mktemp("arms")
    for case in ARM_CASES.values():
        write_arm(directory, case.name, case.xml)
    return directory


@pytest.fixture(params=sorted(ARM_CASES))
def arm_case(request, arm_dir) -> tuple[ArmCase, Path]:
    """Each test arm in turn, with the path of its file."""
    case = ARM_CASES[request.param]
    return case, arm_dir / f"{case.name}.xml"


@pytest.fixture
def four_link_path(arm_dir) -> Path:
    return arm_dir / "four_link.xml"


@pytest.fixture
def spatial_path(arm_dir) -> Path:
    return arm_dir / "spatial.xml"


@pytest.fixture
def body_hand_path(arm_dir) -> Path:
    return arm_dir / "body_hand.xml"


@pytest.fixture
def clashing_path(arm_dir) -> Path:
    return arm_dir / "clashing.xml"


@pytest.fixture
def asymmetric_ctrl_path(tmp_path) -> Path:
    return write_arm(tmp_path, "asymmetric", ASYMMETRIC_CTRL_XML)


def end_effector_pos(env, case_or_name: ArmCase | str, kind: str = "site") -> np.ndarray:
    """World position of the end effector read straight from MjData, not from sensors."""
    if isinstance(case_or_name, ArmCase):
        name, kind = case_or_name.end_effector, case_or_name.ee_kind
    else:
        name = case_or_name
    data = env.unwrapped.data
    return (data.site(name).xpos if kind == "site" else data.body(name).xpos).copy()
