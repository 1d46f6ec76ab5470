"""The flat observation of a reacher arm: its parts in order, with their names and units.

This is the one description of the layout. `reacher.task.reach.ReachTask` fills an
observation by it, `ReachEnv`'s docstring shows its table (`table`), randomisation's
sensor noise covers its `state` (`reacher.task.randomize`) and the export sidecar lists
its parts, named from the arm's joints (`reacher.tools.export`).

The goal parts end the layout: fingertip, target and their difference, so the arm's own
state is everything before them (what a goal observation's ``observation`` holds, see
`reacher.task.goal`), and `GoalLayout`'s slices are the last three parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from reacher.sim.arm import Arm

XYZ = ("x", "y", "z")


@dataclass(frozen=True)
class Part:
    """One row of the layout, as the env's docstring shows it."""

    key: str  # the sidecar's "part"
    what: str
    size: str  # in words: n_hinge, n_joints, 3
    unit: str  # the sidecar's "unit" of each of its values


PARTS = (
    Part("cos_hinge_angle", "cos of each hinge angle", "n_hinge", "1"),
    Part("sin_hinge_angle", "sin of each hinge angle", "n_hinge", "1"),
    Part("slide_position", "position of each slide", "n_slide", "m"),
    Part("joint_velocity", "velocity of every joint", "n_joints", "rad/s or m/s"),
    Part("end_effector_velocity", "fingertip velocity (world), ``ee`` control only", "3", "m/s"),
    Part("end_effector_position", "fingertip position (world)", "3", "m"),
    Part("target_position", "target position (world)", "3", "m"),
    Part("end_effector_minus_target", "fingertip − target", "3", "m"),
)
GOAL_PARTS = ("end_effector_position", "target_position", "end_effector_minus_target")


@dataclass(frozen=True)
class Values:
    """One part of one arm's observation: where it sits and what each value is."""

    part: Part
    start: int
    names: tuple[str, ...]  # one per value: cos(shoulder), fingertip.x, ...
    units: tuple[str, ...]  # one per value (a velocity's is rad/s or m/s by its joint)
    joints: tuple[str, ...] | None  # the joints it is about, in order (None: not per joint)

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + len(self.names))


@dataclass(frozen=True)
class ObservationLayout:
    """The flat observation of one arm (with or without the fingertip's velocity)."""

    parts: tuple[Values, ...]

    @property
    def size(self) -> int:
        return self.parts[-1].slice.stop

    def __getitem__(self, key: str) -> slice:
        """The slice of the part named `key` (an empty one when this arm has no such values)."""
        for values in self.parts:
            if values.part.key == key:
                return values.slice
        raise KeyError(key)

    @property
    def state(self) -> slice:
        """The arm's own state: everything before the goal parts."""
        return slice(0, self[GOAL_PARTS[0]].start)

    @property
    def names(self) -> list[str]:
        return [name for values in self.parts for name in values.names]

    @property
    def units(self) -> list[str]:
        return [unit for values in self.parts for unit in values.units]


def observation_layout(arm: Arm, end_effector_velocity: bool) -> ObservationLayout:
    """The layout of `arm`'s observation; `end_effector_velocity` when the controller
    needs the fingertip's velocity observed (``ee`` control)."""
    hinges = tuple(j for j, h in zip(arm.joint_names, arm.hinge) if h)
    slides = tuple(j for j, h in zip(arm.joint_names, arm.hinge) if not h)
    joints, ee = tuple(arm.joint_names), arm.end_effector
    rows = {  # key -> the names of its values, and the joints they are about
        "cos_hinge_angle": ([f"cos({j})" for j in hinges], hinges),
        "sin_hinge_angle": ([f"sin({j})" for j in hinges], hinges),
        "slide_position": ([f"{j}.pos" for j in slides], slides),
        "joint_velocity": ([f"{j}.vel" for j in joints], joints),
        "end_effector_velocity": ([f"{ee}.v{a}" for a in XYZ] if end_effector_velocity else [], None),
        "end_effector_position": ([f"{ee}.{a}" for a in XYZ], None),
        "target_position": ([f"target.{a}" for a in XYZ], None),
        "end_effector_minus_target": ([f"({ee}-target).{a}" for a in XYZ], None),
    }
    velocity_units = tuple("rad/s" if h else "m/s" for h in arm.hinge)
    parts, start = [], 0
    for part in PARTS:
        names, about = rows[part.key]
        if part.key == "end_effector_velocity" and not end_effector_velocity:
            continue
        units = velocity_units if part.key == "joint_velocity" else (part.unit,) * len(names)
        parts.append(Values(part, start, tuple(names), units, about))
        start += len(names)
    return ObservationLayout(tuple(parts))


def table() -> str:
    """The layout as the env's docstring shows it: a Markdown table, one row per part."""
    rows = [("part", "size", "unit"), *((p.what, p.size, "" if p.unit == "1" else p.unit) for p in PARTS)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows[1:])])
