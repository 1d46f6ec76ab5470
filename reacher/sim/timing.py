"""Control timing in seconds: how often the policy acts and how long an episode lasts.

An arm file fixes its physics timestep (MuJoCo's default is 0.002 s, which most
published robot models keep; the built-ins use 0.01 s). The task is stated in
seconds instead — a control period and an episode length — and the number of
physics steps per control step (``frame_skip``) is derived from the file's timestep,
so the same settings mean the same simulated time for every arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reacher.limits import MAX_EPISODE_S

CONTROL_PERIOD_S = 0.02  # 50 Hz: fast enough for reaching, slow enough to learn from
EPISODE_S = 1.0

# A requested period this close to a whole number of timesteps counts as exact.
_EXACT = 1e-6


@dataclass(frozen=True)
class ControlTiming:
    """The timing an environment runs with, derived by `control_timing`."""

    timestep_s: float  # the arm file's physics timestep
    frame_skip: int  # physics steps per control step
    episode_steps: int  # control steps per episode
    requested_period_s: float  # what was asked for; the period actually used may differ

    @property
    def control_period_s(self) -> float:
        return self.frame_skip * self.timestep_s

    @property
    def episode_s(self) -> float:
        return self.episode_steps * self.control_period_s

    @property
    def control_hz(self) -> float:
        return 1.0 / self.control_period_s

    @property
    def note(self) -> str | None:
        """A sentence for the user when the requested period had to be rounded."""
        if math.isclose(self.control_period_s, self.requested_period_s, rel_tol=_EXACT):
            return None
        return (f"control period {self.requested_period_s:g} s is not a whole number of the arm's "
                f"{self.timestep_s:g}-s timesteps; using {self.control_period_s:g} s "
                f"({self.frame_skip} timestep{'s' if self.frame_skip > 1 else ''})")


def control_timing(timestep_s: float, control_period_s: float = CONTROL_PERIOD_S,
                   episode_s: float = EPISODE_S, frame_skip: int | None = None,
                   episode_steps: int | None = None) -> ControlTiming:
    """Derive frame_skip and the episode's step count from seconds.

    ``frame_skip`` and ``episode_steps``, when given, override the derivation (the
    older, step-counted way of saying the same thing). A period that is not a whole
    number of timesteps is rounded to the nearest one (see `ControlTiming.note`); one
    shorter than half a timestep cannot be honoured and raises ``ValueError``.
    """
    if not timestep_s > 0:
        raise ValueError(f"the arm's timestep must be positive, got {timestep_s!r}")
    for name, value in (("control_period_s", control_period_s), ("episode_s", episode_s)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    for name, value in (("frame_skip", frame_skip), ("max_episode_steps", episode_steps)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    derived = frame_skip is None
    if derived:
        ratio = control_period_s / timestep_s
        if ratio < 0.5:
            raise ValueError(f"control_period_s {control_period_s:g} s is shorter than the arm's "
                             f"timestep {timestep_s:g} s; use at least {timestep_s:g} s")
        frame_skip = max(1, round(ratio))
        requested = control_period_s
    else:
        requested = frame_skip * timestep_s  # an explicit frame_skip is exact by definition
    period = frame_skip * timestep_s
    if period > MAX_EPISODE_S:  # one action longer than the longest episode: every step would hang
        asked = f"control_period_s {control_period_s:g}" if derived else f"frame_skip {frame_skip}"
        raise ValueError(f"{asked} makes each action {period:g} s of simulated time (the arm's timestep "
                         f"is {timestep_s:g} s); at most {MAX_EPISODE_S:g} s, an episode's limit")
    if episode_steps is None:
        episode_steps = max(1, round(episode_s / period))
    return ControlTiming(float(timestep_s), int(frame_skip), int(episode_steps), float(requested))
