"""The training configuration's fields: the `Config` dataclass, its bounds and its checks.

Each field's ``help`` is its documentation: it is what ``reacher train --help`` prints
and what docs/configuration.md lists.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

from reacher.config.values import coerce, short
from reacher.errors import ConfigError

# Bounds that keep a mistyped value from ending in an allocation failure or an overflow
# deep inside numpy or torch are all in reacher.limits, the one place sizes are bounded.
from reacher.limits import (
    MAX_BUFFER,
    MAX_EPISODE_S,
    MAX_EPISODE_STEPS,
    MAX_FRAME_SKIP,
    MAX_HIDDEN_WEIGHTS,
    MAX_INT,
    MAX_LAYERS,
    MAX_SEED,
    MAX_THREADS,
    MAX_UPDATES_PER_STEP,
    MAX_WIDTH,
    config_size_problem,
)

MAX_LEARNING_RATE = 1.0
MAX_REWARD_WEIGHT = 1e6


def setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class Config:
    # --- the task ----------------------------------------------------------------------
    arm: str = setting("two_link", "built-in arm (two_link, three_link) or path to an MJCF file")
    end_effector: str = setting("fingertip", "site or body of the arm whose position must reach the target")
    env: str = setting("", "a registered Gymnasium id to train on instead of an arm (e.g. Pendulum-v1)")
    control_period_s: float = setting(0.02, "seconds of simulated time between actions (reaching "
                                             "env); physics steps per action follow from the arm's timestep")
    episode_s: float = setting(0.0, "seconds of simulated time per episode (reaching env; 0: the arm's, "
                                     "see reacher inspect: 1 s, or what its ee controller needs)")
    max_episode_steps: int = setting(0, "steps per episode; overrides episode_s (0: from episode_s)")
    frame_skip: int = setting(0, "physics steps per action; overrides control_period_s "
                                 "(0: from control_period_s)")
    ctrl_cost_weight: float = setting(0.05, "reward: weight of the squared action")
    precision_weight: float = setting(1.0, "reward: depth of the precision bowl around the target")
    precision_scale_m: float = setting(0.02, "reward: width of the precision bowl (m)")
    servo_speed: float = setting(0.0, "position servos: 0 makes an action an absolute joint target; above 0, "
                                      "an offset from the joint's position of at most this speed x "
                                      "control_period_s (rad/s or m/s)")
    control: str = setting("auto", "what an action means: joint (each actuator's control), joint_delta "
                                   "(move joint targets), ee (move the end effector in xyz) or auto "
                                   "(per arm, see reacher inspect)")
    ee_speed: float = setting(1.25, "ee control: the most an action moves the end effector, in m/s "
                                    "(x control_period_s per action)")
    joint_rate: float = setting(1.25, "joint_delta control: the most an action moves a joint target, "
                                      "in rad/s or m/s (x control_period_s per action)")
    success_radius: float = setting(0.02, "an episode succeeds when it ends this close to the target (m)")
    goal_observation: bool = setting(False, "Dict observations (observation, achieved_goal, desired_goal) "
                                            "as HER libraries expect; the agent reads the same values")
    # --- training loop -----------------------------------------------------------------
    steps: int = setting(0, "environment steps to train for exactly (0: until success_target is met, "
                            "at most max_steps)")
    max_steps: int = setting(0, "cap on environment steps when steps is 0 (0: 25,000 per action "
                                "dimension, scaled with the workspace in success radii: reacher/run/settings.py)")
    success_target: float = setting(0.95, "when steps is 0, stop once a policy whose evaluation reaches "
                                          "this success rate shows it with 95 percent confidence ...")
    success_evals: int = setting(3, "... on this many more evaluations of it, on fresh episodes "
                                    "(reacher.run.gate)")
    seed: int = setting(0, "seed for networks, noise, replay sampling and environments")
    warmup_steps: int = setting(1_000, "uniformly random actions before learning starts")
    updates_per_step: float = setting(1.0, "gradient updates per environment step")
    batch_size: int = setting(256, "transitions per gradient update")
    buffer_size: int = setting(1_000_000, "replay capacity; the oldest transitions are dropped")
    hindsight_fraction: float = setting(0.8, "share of sampled transitions relabelled with a target the "
                                             "fingertip reached later in the episode (0 disables)")
    # --- agent -------------------------------------------------------------------------
    hidden_sizes: tuple[int, ...] = setting((), "hidden layer widths of actor and critic (empty: two "
                                                 "layers, 128 wide for up to 2 actuators, 256 beyond)")
    actor_lr: float = setting(1e-3, "actor Adam learning rate")
    critic_lr: float = setting(1e-3, "critic Adam learning rate")
    gamma: float = setting(0.95, "discount factor")
    tau: float = setting(0.01, "Polyak averaging rate of the target networks")
    twin_critics: bool = setting(False, "TD3: two critics, regress to the smaller target")
    policy_delay: int = setting(1, "TD3: critic updates per actor update")
    target_noise: float = setting(0.0, "TD3: std of the target-policy smoothing noise (0 disables)")
    target_noise_clip: float = setting(0.5, "TD3: clip of the target-policy smoothing noise")
    n_step: int = setting(1, "bootstrap the critic's target after this many rewards (n-step returns; "
                             "1: one-step)")
    critic_layernorm: bool = setting(False, "layer-normalise the critic's hidden layers (updates then "
                                            "run through autograd, slower)")
    teacher_weight: float = setting(1.0, "ee control: weight in the actor's loss of the squared distance from its action to the teacher's on every replayed state; the teacher is the proportional policy clip((target - end effector) / (ee_speed x control_period_s), -1, 1) (0: off; other controls have none: 0)")
    teacher_decay_updates: int = setting(0, "... teacher_weight falls linearly to 0 over this many agent updates (0: it stays)")
    normalize_obs: bool = setting(True, "normalise observations with running mean and std")
    noise: str = setting("gaussian", "exploration noise: gaussian or ou (Ornstein-Uhlenbeck)")
    noise_scale: float = setting(0.2, "exploration noise std, in units of the action range's half-width")
    noise_final_scale: float = setting(0.05, "noise std reached after noise_decay_steps (linear decay)")
    noise_decay_steps: int = setting(0, "steps over which the noise decays (0: steps if set, else "
                                        "8,000 per action dimension, scaled as max_steps)")
    ou_theta: float = setting(0.15, "OU noise mean-reversion rate")
    # --- randomisation (reacher.task.randomize: per-episode model error; all 0 = off) --------
    randomize_mass: float = setting(0.0, "each episode, scale each link's mass and inertia by a factor drawn "
                                         "from [1 - X, 1 + X] (0.2: 0.8 to 1.2; below 1)")
    randomize_damping: float = setting(0.0, "each episode, scale each joint's damping by a factor drawn from "
                                            "[1 - X, 1 + X] (below 1)")
    randomize_friction: float = setting(0.0, "each episode, scale each geom's friction and each joint's "
                                             "frictionloss by a factor drawn from [1 - X, 1 + X] (below 1)")
    randomize_gain: float = setting(0.0, "each episode, scale each actuator's gain (a position servo's "
                                         "stiffness with it) by a factor drawn from [1 - X, 1 + X] (below 1)")
    obs_noise_std: float = setting(0.0, "std of Gaussian noise added to the joint-state part of each "
                                        "observation (its own units: cos/sin, m, rad/s); never to the "
                                        "fingertip or target")
    action_delay_steps: int = setting(0, "each episode, apply every action k control steps late, k drawn "
                                         "from 0..N")
    # --- evaluation, checkpoints, hardware ---------------------------------------------
    eval_every: int = setting(2_000, "environment steps between deterministic evaluations")
    eval_episodes: int = setting(50, "episodes per periodic evaluation")
    final_eval_episodes: int = setting(100, "episodes of the evaluation at the end of training")
    checkpoint_every: int = setting(5_000, "environment steps between checkpoints")
    device: str = setting("cpu", "torch device: cpu or cuda")
    threads: int = setting(0, "torch threads (0: auto: one, or two while timed updates find the second core free)")

    def __post_init__(self):
        # Python callers get what the CLI and config files get: each value converted to its
        # field's type as they convert it ("false" is false, [32, 32] a tuple), or refused
        # with the same message; a value of another type never reaches a run.
        for name, kind in field_types().items():
            setattr(self, name, coerce(name, getattr(self, name), kind))
        self.validate()

    def validate(self) -> None:
        """Raise `ConfigError` naming the first bad field."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
        positive = ("control_period_s", "precision_scale_m", "success_radius", "success_evals",
                    "batch_size", "buffer_size", "actor_lr", "critic_lr", "policy_delay", "n_step",
                    "eval_every", "eval_episodes", "final_eval_episodes", "checkpoint_every")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        non_negative = ("episode_s", "servo_speed", "max_episode_steps", "frame_skip", "max_steps", "noise_decay_steps", "seed", "steps", "warmup_steps", "updates_per_step", "ctrl_cost_weight",
                        "precision_weight", "target_noise", "target_noise_clip", "noise_scale",
                        "noise_final_scale", "threads", "teacher_weight", "teacher_decay_updates")
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be zero or positive, got {getattr(self, name)!r}")
        # An episode is one reach: seconds of simulated time. The bounds are far beyond any
        # reaching task (10 min simulated; a million steps, 5.5 h at 50 Hz) and refuse only
        # values that make every evaluation episode, and so the run, never end.
        if self.episode_s > MAX_EPISODE_S:
            raise ConfigError(f"episode_s must be at most {MAX_EPISODE_S:g} (s of simulated time per "
                              f"episode), got {self.episode_s!r}")
        if self.control_period_s > MAX_EPISODE_S:
            raise ConfigError(f"control_period_s must be at most {MAX_EPISODE_S:g} (s of simulated time per "
                              f"action), got {self.control_period_s!r}")
        if self.frame_skip > MAX_FRAME_SKIP:
            raise ConfigError(f"frame_skip must be at most {MAX_FRAME_SKIP:,} (physics steps per action), "
                              f"got {self.frame_skip!r}")
        if self.max_episode_steps > MAX_EPISODE_STEPS:
            raise ConfigError(f"max_episode_steps must be at most {MAX_EPISODE_STEPS:,}, got "
                              f"{self.max_episode_steps!r}")
        # An Adam step of lr moves each weight by about lr: above 1 the networks diverge to
        # inf at once, which surfaced as "action contains NaN" naming no setting.
        for name in ("actor_lr", "critic_lr"):
            if getattr(self, name) > MAX_LEARNING_RATE:
                raise ConfigError(f"{name} must be at most {MAX_LEARNING_RATE:g} (Adam's step size), "
                                  f"got {getattr(self, name)!r}")
        # Reward (or loss) weights of 1e308 overflow to inf in a sum, and the targets to NaN.
        for name in ("ctrl_cost_weight", "precision_weight", "teacher_weight"):
            if getattr(self, name) > MAX_REWARD_WEIGHT:
                raise ConfigError(f"{name} must be at most {MAX_REWARD_WEIGHT:g} (a reward or loss weight), "
                                  f"got {getattr(self, name)!r}")
        if not 0 < self.ou_theta <= 1:
            raise ConfigError(f"ou_theta must be within (0, 1], got {self.ou_theta!r}")
        if not 0 <= self.hindsight_fraction <= 1:
            raise ConfigError(f"hindsight_fraction must be within [0, 1], got {self.hindsight_fraction!r}")
        if not 0 < self.gamma < 1:
            raise ConfigError(f"gamma must be within (0, 1), got {self.gamma!r}")
        if not 0 < self.tau <= 1:
            raise ConfigError(f"tau must be within (0, 1], got {self.tau!r}")
        if self.control not in ("auto", "joint", "joint_delta", "ee"):
            raise ConfigError(f"control must be auto, joint, joint_delta or ee, got {self.control!r}")
        for name in ("ee_speed", "joint_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.noise not in ("gaussian", "ou"):
            raise ConfigError(f"noise must be 'gaussian' or 'ou', got {self.noise!r}")
        device_problem = check_device_name(self.device)
        if device_problem:
            raise ConfigError(device_problem)
        if not 0 < self.success_target <= 1:
            raise ConfigError(f"success_target must be within (0, 1], got {self.success_target!r}")
        if any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes must be positive widths, got {self.hidden_sizes!r}")
        check_randomisation({name: getattr(self, name) for name in RANDOMISATION_FIELDS})
        self._check_sizes()

    def _check_sizes(self) -> None:
        """The integer bounds above, each naming its field and the bound."""
        if self.seed >= MAX_SEED:
            raise ConfigError(f"seed must be below 2**62 (numpy and torch seed with 64-bit integers), "
                              f"got {self.seed!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INT:
                raise ConfigError(f"{f.name} must be at most 2**63 - 1 (a 64-bit integer), got {value!r}")
        if self.updates_per_step > MAX_UPDATES_PER_STEP:
            raise ConfigError(f"updates_per_step must be at most {MAX_UPDATES_PER_STEP}, got "
                              f"{self.updates_per_step!r}")
        if self.threads > MAX_THREADS:
            raise ConfigError(f"threads must be at most {MAX_THREADS}, got {self.threads!r}")
        if self.batch_size > MAX_BUFFER:
            raise ConfigError(f"batch_size must be at most {MAX_BUFFER:,}, got {self.batch_size!r}")
        if self.buffer_size > MAX_BUFFER:
            raise ConfigError(f"buffer_size must be at most {MAX_BUFFER:,} transitions (the replay "
                              f"buffer is allocated up front), got {self.buffer_size!r}")
        hidden = self.hidden_sizes
        if len(hidden) > MAX_LAYERS or any(h > MAX_WIDTH for h in hidden):
            raise ConfigError(f"hidden_sizes must be at most {MAX_LAYERS} layers of at most {MAX_WIDTH:,} "
                              f"units, got {short(hidden)}")
        weights = sum(a * b for a, b in zip(hidden, hidden[1:]))
        if weights > MAX_HIDDEN_WEIGHTS:
            raise ConfigError(f"hidden_sizes {short(hidden)} make {weights:,} weights between hidden "
                              f"layers, more than the {MAX_HIDDEN_WEIGHTS:,} (1 GiB per network) memory allows")
        problem = config_size_problem(self)
        if problem:
            raise ConfigError(problem)

    def replace(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity (taskset, a batch scheduler's cpuset)
    and its cgroup's CPU quota (a container's --cpus), not the machine's count, which
    made ``taskset -c 0`` runs use two threads on one core."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" (no quota) or "QUOTA PERIOD" in microseconds
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def check_device_name(device) -> str | None:
    """What is wrong with a torch device's name ('cpu', 'cuda', 'cuda:N'), or None; whether
    this machine has it is `reacher.run.policy.check_device`'s question."""
    if isinstance(device, str) and re.fullmatch(r"cpu|cuda(:[0-9]{1,4})?", device):
        return None
    return f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {short(device)}"


# Fractions of a nominal value: a factor 1 ± X must stay positive (a mass or a gain of
# zero is no model at all), so X < 1.
FRACTION_FIELDS = ("randomize_mass", "randomize_damping", "randomize_friction", "randomize_gain")
RANDOMISATION_FIELDS = (*FRACTION_FIELDS, "obs_noise_std", "action_delay_steps")


def check_randomisation(values: dict) -> None:
    """Raise `ConfigError` naming the first randomisation range that cannot be used."""
    for name in FRACTION_FIELDS:
        value = values[name]
        if not 0 <= value < 1:
            raise ConfigError(f"{name} must be a fraction within [0, 1) (0.2 means ±20 %), got {value!r}")
    if not values["obs_noise_std"] >= 0 or not math.isfinite(values["obs_noise_std"]):
        raise ConfigError(f"obs_noise_std must be zero or positive, got {values['obs_noise_std']!r}")
    if not values["action_delay_steps"] >= 0:
        raise ConfigError(f"action_delay_steps must be zero or positive, got {values['action_delay_steps']!r}")


def saved_base() -> Config:
    """What a saved, fully resolved config (a run's config.toml, a checkpoint's) is read
    over: a run saved before a field existed ran as that value, which may not be today's
    default (before ``control`` existed every arm was driven by ``joint`` control, and
    before ``teacher_weight`` no actor cloned the ``ee`` controller)."""
    return Config(control="joint", teacher_weight=0.0)


def fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Config))


FIELDS_BY_NAME = {f.name: f for f in dataclasses.fields(Config)}


@functools.cache
def field_types() -> dict[str, type]:
    """Each field's name and type (``tuple[int, ...]`` for a list of integers)."""
    return typing.get_type_hints(Config)


def field_type(f: dataclasses.Field) -> type:
    return field_types()[f.name]


