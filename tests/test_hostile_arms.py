"""Generated hostile arm files (issue 16): each one loads into an arm whose numbers are
all usable, or fails with one `ArmFileError` line naming the file. Never a traceback of
another type, never a hang.

Property-based with Hypothesis: arms whose physical parameters are drawn from NaN,
infinities, negatives, zero, tiny and huge values besides sane ones; arms with parts
missing; nesting up to and beyond what MuJoCo parses; files cut short or garbled.
Derandomised and without an example database, so every run tries the same files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import write_arm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reacher.errors import ArmFileError
from reacher.sim.arm import load_arm
from reacher.tools.inspection import format_report, inspect_arm

# A slow load on a busy machine takes a second; ten is a hang.
SETTINGS = dict(deadline=10_000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Numbers as a file may write them: NaN and infinity in MuJoCo's and Python's spellings,
# "1e999" (which overflows to infinity), negatives, zero, and sizes no arm has.
HOSTILE = st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "-1",
                           "-1e-9", "0", "1e-300", "1e-12", "1e12", "1e30", "-1e30", "1e300"])


# Every number of the template arm, with the value that makes it a working arm.
SANE = {"timestep": "0.01", "gravity_z": "-9.81", "damping": "1", "armature": "0.1",
        "frictionloss": "0", "stiffness": "0", "density": "300", "size": "0.01",
        "length": "0.1", "range_lo": "-2", "range_hi": "2", "gear": "10", "ctrl_lo": "-1",
        "ctrl_hi": "1", "kp": "20", "mass": "0.1", "tip": "0.1"}


@st.composite
def arm_fields(draw) -> dict:
    """The sane arm with one to three of its numbers replaced: by a hostile value or by
    any finite float (a few changes at a time, so that most arms get as far as loading
    and each hostile value is met in a working arm)."""
    names = draw(st.lists(st.sampled_from(sorted(SANE)), min_size=1, max_size=3, unique=True))
    values = st.one_of(HOSTILE, st.floats(-1e6, 1e6, allow_nan=False).map(repr))
    return SANE | {name: draw(values) for name in names}


def arm_text(f: dict, joints: int = 2) -> str:
    """A chain of `joints` hinges, a motor on each and a position servo on the first,
    every number taken from `f` as written."""
    body = f'<site name="fingertip" pos="{f["tip"]} 0 0" size="0.01"/>'
    for i in reversed(range(joints)):
        axis = "0 0 1" if i % 2 == 0 else "0 1 0"
        body = (f'<body name="link{i}" pos="{f["length"] if i else 0} 0 0">'
                f'<joint name="j{i}" axis="{axis}" range="{f["range_lo"]} {f["range_hi"]}"/>'
                f'<geom type="capsule" fromto="0 0 0 {f["length"]} 0 0"/>'
                f'<geom type="sphere" size="0.01" mass="{f["mass"]}"/>{body}</body>')
    motors = "".join(f'<motor name="m{i}" joint="j{i}" gear="{f["gear"]}"/>' for i in range(joints))
    return f"""<mujoco model="hostile">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{f["timestep"]}" gravity="0 0 {f["gravity_z"]}"/>
  <default>
    <joint damping="{f["damping"]}" armature="{f["armature"]}" frictionloss="{f["frictionloss"]}"
           stiffness="{f["stiffness"]}"/>
    <geom size="{f["size"]}" density="{f["density"]}" contype="0" conaffinity="0"/>
    <motor ctrlrange="{f["ctrl_lo"]} {f["ctrl_hi"]}"/>
  </default>
  <worldbody>{body}</worldbody>
  <actuator>{motors}<position name="servo" joint="j0" kp="{f["kp"]}"/></actuator>
</mujoco>
"""


def loads_or_names_the_file(path: Path) -> None:
    """The property: an arm with every number usable, or one line naming the file."""
    try:
        arm = load_arm(path)
    except ArmFileError as err:
        message = str(err)
        assert message.startswith(f"arm file {path}: "), message
        assert "\n" not in message and len(message) < 1000, message
        return
    model = arm.model
    assert math.isfinite(arm.reach_m) and arm.reach_m >= 0
    assert np.isfinite(arm.base_pos).all()
    assert np.isfinite(arm.joint_low).all() and np.isfinite(arm.joint_high).all()
    assert np.isfinite(arm.ctrl_low).all() and np.isfinite(arm.ctrl_high).all()
    assert math.isfinite(model.opt.timestep) and model.opt.timestep > 0
    for array in (model.actuator_gear, model.actuator_gainprm, model.dof_damping,
                  model.dof_armature, model.body_mass, model.geom_size, model.opt.gravity):
        assert np.isfinite(array).all()


def test_the_template_itself_loads(tmp_path):
    """The sane values make a working arm, so what the properties find is the hostile part."""
    arm = load_arm(write_arm(tmp_path, "sane", arm_text(SANE)))
    assert arm.n_joints == 2 and arm.n_actuators == 3


@settings(max_examples=60, **SETTINGS)
@given(fields=arm_fields(), joints=st.integers(1, 4))
def test_hostile_numbers(tmp_path_factory, fields, joints):
    path = write_arm(tmp_path_factory.mktemp("numbers"), "arm", arm_text(fields, joints))
    loads_or_names_the_file(path)


@settings(max_examples=12, **SETTINGS)
@given(fields=arm_fields())
def test_what_loads_is_inspected_without_a_traceback(tmp_path_factory, fields):
    """`reacher inspect` steps the physics of whatever loads: finite but extreme values
    (a 1e6 gear, a 1e-12 timestep's neighbours) end in a report, perhaps with warnings."""
    path = write_arm(tmp_path_factory.mktemp("inspect"), "arm", arm_text(fields))
    try:
        report = inspect_arm(path)
    except ArmFileError as err:
        assert str(err).startswith(f"arm file {path}: ") and "\n" not in str(err)
        return
    assert format_report(report).startswith(f"arm {path}")


# Edits that leave parts out or break the file's structure, applied to a sane arm.
def _drop(tag: str):
    def edit(text: str) -> str:
        start = text.index(f"<{tag}")
        end = text.index(f"</{tag}>") + len(f"</{tag}>") if f"</{tag}>" in text else \
            text.index(">", start) + 1
        return text[:start] + text[end:]
    return edit


STRUCTURE_EDITS = {
    "no actuators": _drop("actuator"),
    "no worldbody": _drop("worldbody"),
    "no default": _drop("default"),
    "no option": _drop("option"),
    "no fingertip": lambda t: t.replace('name="fingertip"', 'name="elsewhere"'),
    "no joints": lambda t: t.replace('<joint name="j0"', '<site name="j0"').replace(
        '<joint name="j1"', '<site name="j1"'),
    "actuator on a missing joint": lambda t: t.replace('joint="j1"', 'joint="nowhere"'),
    "unknown attribute": lambda t: t.replace("<geom ", '<geom wobble="3" ', 1),
    "unknown element": lambda t: t.replace("<worldbody>", "<worldbody><gizmo/>"),
    "free joint": lambda t: t.replace('axis="0 0 1"', 'type="free"', 1),
    "three numbers for a range": lambda t: t.replace('range="-2 2"', 'range="-2 2 3"', 1),
    "a word for a number": lambda t: t.replace('gear="10"', 'gear="ten"', 1),
    "empty numbers": lambda t: t.replace('range="-2 2"', 'range=""', 1),
    "not mujoco": lambda t: t.replace("<mujoco", "<robot", 1).replace("</mujoco>", "</robot>"),
    "include of a missing file": lambda t: t.replace("<worldbody>", '<include file="gone.xml"/><worldbody>'),
    "mesh from a missing file": lambda t: t.replace(
        '<geom type="sphere" size="0.01"', '<geom type="mesh" mesh="m"', 1).replace(
        "<worldbody>", '<asset><mesh name="m" file="gone.stl"/></asset><worldbody>'),
}


@settings(max_examples=40, **SETTINGS)
@given(edits=st.lists(st.sampled_from(sorted(STRUCTURE_EDITS)), min_size=1, max_size=3, unique=True),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_missing_and_broken_parts(tmp_path_factory, edits, cut):
    text = arm_text(SANE)
    for edit in edits:
        try:
            text = STRUCTURE_EDITS[edit](text)
        except ValueError:  # the part is already gone
            pass
    if cut is not None:  # a file cut short, as by a full disk
        text = text[:int(cut * len(text))]
    path = write_arm(tmp_path_factory.mktemp("parts"), "arm", text)
    loads_or_names_the_file(path)


@settings(max_examples=15, **SETTINGS)
@given(data=st.binary(max_size=300))
def test_garbage_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("garbage") / "arm.xml"
    path.write_bytes(data)
    loads_or_names_the_file(path)


def _nested(depth: int, joints_every: int) -> str:
    """`depth` bodies, each inside the last, a hinge on every `joints_every`-th."""
    opening = ['<body pos="0.01 0 0">'
               + (f'<joint name="j{i}" axis="0 0 1"/>' if i % joints_every == 0 else "")
               + '<geom size="0.005"/>' for i in range(depth)]
    body = "".join(opening) + '<site name="fingertip" pos="0.01 0 0"/>' + "</body>" * depth
    motors = "".join(f'<motor joint="j{i}"/>' for i in range(0, depth, joints_every))
    return f"<mujoco><worldbody>{body}</worldbody><actuator>{motors}</actuator></mujoco>"


@pytest.mark.parametrize("depth, joints_every", [(400, 50), (2000, 100), (100_000, 1000)])
def test_deep_nesting_loads_or_is_refused_quickly(tmp_path, depth, joints_every):
    """Bodies nested deeper than MuJoCo parses are refused as soon as the depth is seen,
    without a RecursionError from the checks that walk the file first."""
    path = write_arm(tmp_path, f"deep{depth}", _nested(depth, joints_every))
    loads_or_names_the_file(path)
    if depth > 500:
        with pytest.raises(ArmFileError, match="more than 500 deep"):
            load_arm(path)
    else:
        assert load_arm(path).n_joints == depth // joints_every


@settings(max_examples=10, **SETTINGS)
@given(size=st.sampled_from(["1e9", "1e11", "1e30", "1e-30", "0"]),
       where=st.sampled_from(["size", "length", "tip"]))
def test_huge_and_vanishing_sizes(tmp_path_factory, size, where):
    fields = SANE | {where: size}
    path = write_arm(tmp_path_factory.mktemp("sizes"), "arm", arm_text(fields))
    loads_or_names_the_file(path)
