"""Whether an episode gives an arm time to reach, and if not, why: the part of `reacher
inspect` that times moves (reacher.sim.probes) and tells a short episode from moves that
are never made, and gravity sag or force limits from a local controller's limits."""

from __future__ import annotations

import math

import numpy as np

from reacher.sim import fit
from reacher.sim.arm import Arm
from reacher.sim.probes import (
    SERVO_MAX_S,
    SERVO_MOVES,
    ee_reach_times,
    p90,
    servo_move_times,
    without,
)
from reacher.sim.timing import ControlTiming


def _ee_episode_warnings(arm: Arm, timing: ControlTiming, times: np.ndarray) -> list[tuple[str, str]]:
    """For an arm that reaches through ``ee`` (whose servo targets lead by gravity): the
    sampled moves its controller does not make within the episode, timed as the episode
    rule times them, and why: too short an episode, or moves it never makes, told apart
    by timing those again without gravity and without force limits (else a local
    minimum: a joint limit, a singularity or the arm's own links in the way)."""
    if len(times) < fit.MIN_MOVES:  # a chain too long to time enough moves at load
        return []
    in_time = float((times <= timing.episode_s).mean())
    if in_time >= 0.9:
        return []
    made = times[np.isfinite(times)]
    problem = (f"an episode lasts {timing.episode_s:g} s, but ee control brings the end effector "
               f"within 2 cm in time on only {100 * in_time:.0f} % of {len(times)} sampled moves")
    needed = float(np.percentile(made, 90, method="inverted_cdf")) if len(made) else math.inf
    if math.isfinite(needed) and needed > timing.episode_s:
        return [(problem + f"; 90 % of those it makes take {needed:.2g} s",
                           f"train with --episode-s {math.ceil(needed):g} or more (or leave "
                           "episode_s unset: reacher then gives the arm the time its controller needs)")]
    never = ~np.isfinite(times)
    problem += f"; {100 * never.mean():.0f} % it does not make within {fit.MAX_FIT_S:g} s"
    for cause, changes, fix in (
            ("gravity", {"gravity": False}, "raise the actuators' force (kp, forcerange, gear) or "
             "let MuJoCo carry the links' weight with gravcomp=\"1\" on their bodies"),
            ("force limits", {"force_limits": False}, "raise the actuators' forcerange (or the "
             "joints' actuatorfrcrange), or lower the joints' damping")):
        again = ee_reach_times(without(arm, **changes), fit.EE_SPEED_M_S, timing.control_period_s,
                               max_s=fit.MAX_FIT_S)
        share = float(np.isfinite(again[never]).mean()) if len(again) == len(times) else 0.0
        if share >= 0.5:
            return [(problem + f" ({cause}: {100 * share:.0f} % of those are made "
                               f"without {cause}; a longer episode does not help)", fix)]
    return [(
        problem + " (neither gravity nor force limits: the local controller stops at a joint "
        "limit, a singularity or the arm's own links, from those starts)",
        "none needed to train: a policy learns at most the moves the controller makes; wider "
        "joint ranges, or <exclude> for link pairs that meet, let it make more")]


def episode_problems(arm: Arm, timing: ControlTiming, times: np.ndarray | None) -> list[tuple[str, str]]:
    """An episode too short for the servos to make a typical move under joint control
    (absolute servo targets, which do not lead by gravity), with the real cause:
    moves that settle but late want a longer episode; moves that never settle want the
    cause fixed (a longer episode would not help), told apart by timing the same moves
    without gravity (those that settle then are gravity sag), then without force limits
    (too weak), else contacts, friction or joint limits."""
    ee_times = fit.ee_move_times(arm)
    if ee_times is not None:
        return _ee_episode_warnings(arm, timing, ee_times)
    if times is None:
        return []
    in_time = float((times <= timing.episode_s).mean())
    if in_time >= 0.9:
        return []
    problem = (f"an episode lasts {timing.episode_s:g} s, but commanding the servos straight to a "
               f"target's pose brings the end effector within 2 cm in time for only "
               f"{100 * in_time:.0f} % of {SERVO_MOVES} sampled moves; ")
    settle = p90(times)
    if math.isfinite(settle):
        return [(problem + f"90 % take {settle:.2g} s",
                           f"train with --episode-s {math.ceil(settle):g} or more")]
    never = ~np.isfinite(times)
    weightless = servo_move_times(arm, gravity=False) if np.any(arm.model.opt.gravity) else times
    sag = float(np.isfinite(weightless[never]).mean())
    problem += f"{100 * never.mean():.0f} % do not settle within {SERVO_MAX_S:g} s"
    if sag >= 0.5:
        return [(
            problem + f" (gravity: {100 * sag:.0f} % of those settle with gravity off, so the "
            "servos sag short of the pose; a longer episode does not help)",
            "raise the servos' kp (and forcerange, if they are at it), or let MuJoCo carry "
            "the links' weight with gravcomp=\"1\" on their bodies")]
    unlimited = servo_move_times(arm, force_limits=False)
    if float(np.isfinite(unlimited[never]).mean()) >= 0.5:
        return [(
            problem + " (force limits: most of those settle without the servos' forcerange "
            "or the joints' actuatorfrcrange, so the servos are too weak to make the move "
            "in time, not just slow to settle)",
            "raise the servos' forcerange (or the joints' actuatorfrcrange), or lower their "
            "damping or armature")]
    return [(
        problem + " (neither gravity nor force limits: they do not settle without either; "
        "contacts, friction loss or joint limits stop them)",
        "check the arm's contacts (links that meet) and its joints' frictionloss")]
