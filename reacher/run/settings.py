"""Settings that adapt to the arm, so a user's own arm learns without tuning.

A Config field left at its "auto" value (0, "auto", or an empty ``hidden_sizes``: the
file format's way to say "not set") is resolved here, once, before any environment or
agent is built: `for_arm` reads the loaded arm (its controller and episode length, from
`reacher.sim.fit`; its action dimensions; its workspace), `resolve` applies the rules.
The rules were chosen by measuring across arms (docs/benchmarks.md, "Any arm"), never
for one file. The resolved values are what a run records in config.toml, so a resumed
or re-evaluated run uses exactly them.

The environment and the agent take plain keyword arguments, never a Config:
`env_kwargs`, `randomization` and `agent_kwargs` are the one place where a Config becomes
them, with None (the argument's own default) for a field still left unset.
"""

from __future__ import annotations

import math

from reacher.config import RANDOMISATION_FIELDS, Config
from reacher.sim.arm import Arm
from reacher.sim.fit import control_for, episode_seconds
from reacher.task.env import ReachEnv
from reacher.task.randomize import Ranges

# Budgets: the cap on a success-gated run and the horizon of the noise decay, per action
# dimension, for an arm whose workspace spans REFERENCE_REACH success radii (two_link's,
# three_link's and four_link's 0.21 m over 2 cm), scaled linearly with that span; see
# `budget_scale`. Measured with the default 2-cm radius (docs/benchmarks.md section 4),
# runs stopped on success after, per action dimension:
#   two_link     R 10.5  2 dims  5-7k    (10-14k steps, 5 seeds)
#   three_link   R 10.5  3 dims  7-11k   (22-32k, 3 seeds)
#   four_link    R 10.5  4 dims  11k     (44k)
#   tiny_arm     R  4.4  3 dims  2.7k    (8k): less than half the span, a third the steps
# and at the old flat cap of 25k per actuator the larger workspaces stalled below the bar
# with their curves still improving: long_arm (R 100, 2 dims) 34 % and 3.6 cm at 50k,
# servo_arm (R 32, ee: 3 dims) 82 % at 100k. Steps grow with the span (tiny_arm to
# three_link: 2.4x the span, 3.4x the steps), so the cap does too: the three R 10.5 arms
# keep about 25k per dimension (2-5x what they use); long_arm gets 476k, servo_arm 229k.
# The law is linear for want of more points: the two stalled arms were not rerun to
# success, so their caps are the rule's extrapolation, not a measurement.
MAX_STEPS_PER_ACTION_DIM = 25_000
NOISE_DECAY_STEPS_PER_ACTION_DIM = 8_000
REFERENCE_REACH = 10.5  # workspace radius / success radius of the reference arms
# Below half the reference span a run's fixed costs (warm-up, the first evaluations and
# the confirmation of the success gate) dominate, so the budgets stop shrinking there.
MIN_BUDGET_SCALE = 0.5
# Two hidden layers; wider once there are more joints to coordinate.
NARROW, WIDE = 128, 256
WIDE_FROM_ACTUATORS = 3
# Torch threads when `threads` is 0: the count an auto run starts on, and keeps unless
# `reacher.run.threads` measures two to be faster. One: on an idle 2-core machine a second
# thread makes a 7-DOF run up to 1.5x faster, but as soon as any other process wants a
# core, even one at nice 19, the two threads wait on each other at every matmul and the
# run slows to a tenth (docs/benchmarks.md, "Cost per learning step").
AUTO_THREADS = 1


def torch_threads(threads: int) -> int:
    """The torch threads a run starts on: `threads`, or AUTO_THREADS for 0 (auto, which
    `reacher.run.threads` may then raise to two while the second core is free)."""
    return threads or AUTO_THREADS


def budget_scale(reach_m: float | None, success_radius: float) -> float:
    """How much larger than the reference arms' the task's workspace is, in success radii
    (1 when the reach is unknown: a Gymnasium env that is not an arm)."""
    if not reach_m or success_radius <= 0:
        return 1.0
    return max(MIN_BUDGET_SCALE, reach_m / success_radius / REFERENCE_REACH)


def resolve(config: Config, n_actuators: int, episode_s: float | None = None,
            control: str | None = None, reach_m: float | None = None) -> Config:
    """The config with every auto field replaced by its value for this many action
    dimensions ``n_actuators`` (an ``ee`` controller has 3 whatever the arm's joints),
    ``reach_m`` (the arm's workspace radius, see `budget_scale`), ``episode_s`` (the
    length the environment chose, see `episode_seconds`) and ``control`` (the controller
    it chose, see `control_for`); `teacher_weight` becomes 0 unless that control is ``ee``."""
    changes = {}
    if config.control == "auto" and control:
        changes["control"] = control
    if not config.episode_s and episode_s:
        changes["episode_s"] = float(episode_s)
    if not config.hidden_sizes:
        width = WIDE if n_actuators >= WIDE_FROM_ACTUATORS else NARROW
        changes["hidden_sizes"] = (width, width)
    scale = budget_scale(reach_m, config.success_radius)
    if not config.max_steps:
        changes["max_steps"] = int(round(MAX_STEPS_PER_ACTION_DIM * n_actuators * scale, -3))
    if not config.noise_decay_steps:
        changes["noise_decay_steps"] = config.steps or int(
            round(NOISE_DECAY_STEPS_PER_ACTION_DIM * n_actuators * scale, -3))
    # The cloning term's teacher is the ``ee`` controller's proportional policy (the end
    # effector's offset from the target over the most it moves per action); a joint or
    # torque action, or a task that is not an arm, has none, and runs without the term.
    if config.teacher_weight and control != "ee":
        changes["teacher_weight"] = 0.0
    return config.replace(**changes) if changes else config


def teacher_kwargs(config: Config, env) -> dict:
    """Agent's keyword arguments for the cloning term (`resolve`: under ``ee`` only): its weight and
    decay, the observation's columns holding end effector − target (the flat layout's
    ``delta``, read from the outermost wrapper: an action history shifts it) and the most
    the controller moves the end effector per action, which turns that offset into the
    teacher's action. Empty while the term is off."""
    if not config.teacher_weight:
        return {}
    delta = env.get_wrapper_attr("goal_layout").delta
    return {"teacher_weight": config.teacher_weight, "teacher_decay_updates": config.teacher_decay_updates,
            "teacher_columns": (delta.start, delta.stop), "teacher_scale": float(env.unwrapped.controller.max_step)}


def action_dims(control: str, arm: Arm) -> int:
    """How many values an action of `control` has on this arm: the end effector's three
    (x, y, z) under ``ee``, one per actuator otherwise (`reacher.sim.controllers`)."""
    return 3 if control == "ee" else arm.n_actuators


def for_arm(config: Config, arm: Arm) -> Config:
    """The config with every auto field resolved for this loaded arm: its controller
    and episode length (`reacher.sim.fit`), then widths and budgets for the action
    dimensions that controller gives and the arm's workspace (`resolve`)."""
    control = config.control if config.control != "auto" else control_for(arm)[0]
    episode_s = config.episode_s or episode_seconds(arm)
    return resolve(config, action_dims(control, arm), episode_s, control=control, reach_m=arm.reach_m)


# The Config fields ReachEnv takes under the same names; `env_kwargs` adds the two whose
# unset spelling differs in the file format (control "auto", episode_s 0).
ENV_FIELDS = ("ee_speed", "joint_rate", "control_period_s", "frame_skip", "max_episode_steps",
              "servo_speed", "ctrl_cost_weight", "precision_weight", "precision_scale_m",
              "success_radius", "goal_observation")
AGENT_FIELDS = ("hidden_sizes", "actor_lr", "critic_lr", "gamma", "tau", "twin_critics", "policy_delay",
                "target_noise", "target_noise_clip", "critic_layernorm", "normalize_obs", "device")
UNSET_IN_FILE = {"frame_skip": 0, "max_episode_steps": 0}  # 0 in config.toml is None here


def env_kwargs(config: Config) -> dict:
    """ReachEnv's keyword arguments for a Config: an auto field is passed as None, which
    ReachEnv resolves for its arm the way `for_arm` does (the same `reacher.sim.fit`)."""
    kwargs = {name: getattr(config, name) for name in ENV_FIELDS}
    for name, unset in UNSET_IN_FILE.items():
        if kwargs[name] == unset:
            kwargs[name] = None
    kwargs["control"] = None if config.control == "auto" else config.control
    kwargs["episode_s"] = config.episode_s or None
    return kwargs


def randomization(config: Config) -> Ranges:
    """The randomisation wrappers' plain values (`reacher.task.randomize.wrap`; its
    ``action_delay_steps`` also tells `as_trained` the action history a policy observes)."""
    return Ranges(**{name: getattr(config, name) for name in RANDOMISATION_FIELDS})


def agent_kwargs(config: Config, env=None) -> dict:
    """Agent's keyword arguments for a Config (hidden_sizes left out while unset: the
    Agent's default); given the training env, the cloning term's too (`teacher_kwargs`).
    A loaded policy acts without it: the term only shapes the actor's updates."""
    kwargs = {name: getattr(config, name) for name in AGENT_FIELDS}
    if not kwargs["hidden_sizes"]:
        del kwargs["hidden_sizes"]
    return {**kwargs, **teacher_kwargs(config, env)} if env is not None else kwargs


def for_env(config: Config, env) -> Config:
    """The config resolved for a Gymnasium id (``config.env``), which is built first: the
    id, not the Config, decides its env, so its action dimensions (and for a reacher id
    its arm, controller and episode length) are read from what it built."""
    act_dim = int(math.prod(env.action_space.shape))
    reach = env.unwrapped
    if not isinstance(reach, ReachEnv):
        return resolve(config, act_dim)
    return resolve(config, act_dim, reach.timing.episode_s, control=reach.control, reach_m=reach.arm.reach_m)
