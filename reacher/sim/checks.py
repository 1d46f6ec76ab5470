"""Numbers in an arm file that make its physics meaningless, refused when it loads.

MuJoCo compiles an arm whose gear is NaN, whose damping is negative or whose
timestep is 1e-300 s. The simulation then blows up on its first step (and resets
itself, so training runs on one-step episodes without a word), or takes forever to
cover one control period. `load_arm` asks two questions before anything is built:

  * `xml_problem`, on the parsed file: a number written as NaN or infinity, named by
    element and attribute as the file spells them;
  * `model_problem`, on the compiled model (defaults and included files resolved):
    non-finite, negative or reversed values of the parameters that drive the
    dynamics, lengths beyond any arm, and a timestep too short to simulate.

Each returns one sentence naming the element at fault, or None. Values that are
merely unwise (a huge gear, a stiff servo) load; `reacher inspect` steps the model to
find out whether they blow up.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree

import mujoco
import numpy as np

# Below this, one 20-ms control step is over 2,000 physics steps: training would crawl
# (published models use 0.0005 to 0.01 s).
MIN_TIMESTEP_S = 1e-5
# MuJoCo's mjMAXVAL: a state this large is what it treats as a blow-up, so a parameter
# this large (a 1e30-m link, a 1e12 gear) cannot describe a working arm.
MAX_MAGNITUDE = 1e10

# Attributes whose values are names or words, never numbers (a body may be called "inf").
_TEXT_ATTRIBUTES = frozenset({
    "name", "class", "childclass", "prefix", "file", "key", "type", "mode", "joint", "joint1",
    "joint2", "jointinparent", "body", "body1", "body2", "site", "site1", "site2", "target",
    "material", "texture", "mesh", "hfield", "tendon", "actuator", "geom", "geom1", "geom2",
    "objname", "objtype", "refname", "reftype", "slidersite", "cranksite", "content_type",
})


def xml_problem(root: ElementTree.Element) -> str | None:
    """The first attribute written as NaN or infinity, as '<what> has <attr>="<value>"'."""
    stack = [(root, None)]
    while stack:  # not recursive: a deeply nested file must not overflow Python's stack
        element, parent = stack.pop()
        for attribute, value in element.attrib.items():
            if attribute not in _TEXT_ATTRIBUTES and _has_non_finite(value):
                return (f"{_describe(element, parent)} has {attribute}=\"{value}\": every "
                        "number in an arm file must be finite")
        stack.extend((child, element) for child in reversed(list(element)))
    return None


def _has_non_finite(value: str) -> bool:
    numbers = []
    for token in value.split():
        try:
            numbers.append(float(token))
        except ValueError:
            return False  # words, not numbers
    return any(not math.isfinite(x) for x in numbers)


def _describe(element: ElementTree.Element, parent: ElementTree.Element | None) -> str:
    name = element.get("name")
    if name:
        return f"{element.tag} '{name}'"
    if parent is not None and parent.tag == "default":
        cls = parent.get("class")
        return f"<{element.tag}> in <default{f' class={cls!r}' if cls else ''}>"
    if element.get("joint"):  # an unnamed actuator is known by its joint
        return f"<{element.tag}> on joint '{element.get('joint')}'"
    if parent is not None and parent.tag == "mujoco":
        return f"<{element.tag}>"
    if parent is not None and parent.get("name"):
        return f"a <{element.tag}> in {parent.tag} '{parent.get('name')}'"
    return f"a <{element.tag}>"


# (kind, model array, attribute as MJCF names it, rule): every value must be finite and
# within MAX_MAGNITUDE, and non-negative or an ordered range where the rule says so.
# Joint dof arrays are indexed by dof; hinge and slide joints (the only ones an arm may
# have) have one each. Lengths come before masses, which MuJoCo derives from them. A
# range whose low end is above its high end is refused even where the joint is
# unlimited: that is how autolimits reads it, silently dropping the limits meant.
_PARAMETERS = (
    ("joint", "jnt_stiffness", "stiffness", "non-negative"),
    ("joint", "dof_damping", "damping", "non-negative"),
    ("joint", "dof_armature", "armature", "non-negative"),
    ("joint", "dof_frictionloss", "frictionloss", "non-negative"),
    ("joint", "jnt_range", "range", "range"),
    ("geom", "geom_pos", "pos", "finite"),
    ("geom", "geom_size", "size", "finite"),
    ("site", "site_pos", "pos", "finite"),
    ("body", "body_pos", "pos", "finite"),
    ("body", "body_mass", "mass", "finite"),
    ("body", "body_inertia", "inertia", "finite"),
    ("actuator", "actuator_gear", "gear", "finite"),
    ("actuator", "actuator_gainprm", "gain", "finite"),
    ("actuator", "actuator_biasprm", "bias", "finite"),
    ("actuator", "actuator_ctrlrange", "ctrlrange", "range"),
    ("actuator", "actuator_forcerange", "forcerange", "range"),
)


def model_problem(model: mujoco.MjModel) -> str | None:
    """The first parameter of the compiled model that no working arm has, in words."""
    timestep = float(model.opt.timestep)
    if not (math.isfinite(timestep) and timestep >= MIN_TIMESTEP_S):
        return (f"timestep {timestep:g} s cannot be simulated: give <option timestep=\"...\"> "
                f"a value of at least {MIN_TIMESTEP_S:g} s (MuJoCo's default is 0.002 s)")
    gravity = np.asarray(model.opt.gravity)
    if not (np.isfinite(gravity).all() and np.abs(gravity).max() <= MAX_MAGNITUDE):
        return (f"<option> has gravity {_values(gravity)}: every component must be finite and "
                f"within {MAX_MAGNITUDE:g} m/s²")
    for kind, array, attribute, rule in _PARAMETERS:
        values = np.asarray(getattr(model, array), dtype=float)
        if values.size == 0:
            continue
        values = values.reshape(len(values), -1)
        problem = _first_bad(values, rule)
        if problem is not None:
            row, why = problem
            owner = int(model.dof_jntid[row]) if array.startswith("dof_") else row
            return f"{_name(model, kind, owner)} has {attribute} {_values(values[row])}{why}"
    return None


def _first_bad(values: np.ndarray, rule: str) -> tuple[int, str] | None:
    """(row, what is wrong) of the first row breaking `rule`, or None."""
    checks = [(~np.isfinite(values).all(axis=1), ": not a finite number"),
              (np.abs(np.nan_to_num(values)).max(axis=1, initial=0) > MAX_MAGNITUDE,
               f": beyond {MAX_MAGNITUDE:g}, which no working arm has")]
    if rule == "non-negative":
        checks.append(((values < 0).any(axis=1), ": must not be negative"))
    if rule == "range":
        checks.append((values[:, 0] > values[:, 1], ": its low end is above its high end"))
    rows = [(int(np.flatnonzero(bad)[0]), why) for bad, why in checks if bad.any()]
    return min(rows, key=lambda r: r[0]) if rows else None  # first row; first check on it


def _name(model: mujoco.MjModel, kind: str, index: int) -> str:
    objtype = {"joint": mujoco.mjtObj.mjOBJ_JOINT, "body": mujoco.mjtObj.mjOBJ_BODY,
               "geom": mujoco.mjtObj.mjOBJ_GEOM, "site": mujoco.mjtObj.mjOBJ_SITE,
               "actuator": mujoco.mjtObj.mjOBJ_ACTUATOR}[kind]
    name = mujoco.mj_id2name(model, objtype, index)
    if name:
        return f"{kind} '{name}'"
    body = {"geom": model.geom_bodyid, "site": model.site_bodyid}.get(kind)
    owner = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(body[index])) if body is not None else None
    return f"{kind} #{index}" + (f" of body '{owner}'" if owner else "")


def _values(values: np.ndarray) -> str:
    """The values as a file would write them; trailing zeros of a parameter vector
    (gear has six, gain ten) left out."""
    values = np.asarray(values, dtype=float).ravel()
    keep = len(values)
    while keep > 1 and values[keep - 1] == 0:
        keep -= 1
    return " ".join(f"{v:g}" for v in values[:keep])
