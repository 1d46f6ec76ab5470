"""Model error on purpose: each episode on a perturbed arm, with sensor noise and latency.

A policy trained on one exact model has never seen the errors a real robot or a user's
edited model has. `wrap` puts a ReachEnv inside `Randomized`, which at every reset
restores the compiled model's nominal parameters and then perturbs them:

    link masses   each body's mass and inertia (one factor for both: the same shape,
                  denser or lighter), a factor from [1 - mass, 1 + mass] per body
    damping       each arm joint's damping, a factor per degree of freedom
    friction      each geom's friction and each arm joint's frictionloss, a factor per
                  geom and per degree of freedom (a frictionless model, like two_link,
                  stays frictionless)
    gain          each actuator's gain, a factor per actuator; for a position servo its
                  bias stiffness too, so it still pulls towards its control
    delay         every action is applied k control steps late, k from 0..max drawn per
                  episode; the first k steps of an episode apply the zero action; the
                  reward's effort term charges the action given at that step
    history       with a delay of up to K > 0 steps, the observation also carries the
                  last K actions given (`ActionHistory`): what a delayed controller
                  needs to know which of its actions are still on their way
    obs noise     Gaussian noise of std ``obs_noise_std`` on the arm's own state in
                  every observation (the parts of `reacher.task.observation` before the
                  goals: cos/sin, slide positions, velocities)

The four model factors are fractions of the file's own values; noise and delay are
absolute. Everything is drawn from the env's own ``np_random`` right after its reset,
so a seeded reset gives the same perturbation, and a resumed training run (which
restores that generator from its checkpoint) continues exactly as it would have.

Observation noise never touches the fingertip, the target or their difference: the
achieved goal stays the true fingertip position, so the reward, ``compute_reward``
and hindsight relabelling (which reads the achieved slice of stored observations)
all agree on what was reached. It models noisy joint sensors, not a wrong target.

The action history is what the policy itself knows, so it is exact (never noisy), and
it is part of the policy's observation wherever that policy runs: a run trained with
``action_delay_steps = K`` needs `as_trained` around every env it acts in, its nominal
evaluation included; a run trained without a delay never sees the history, even when it
is evaluated with one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, fields, replace

import gymnasium as gym
import mujoco
import numpy as np

from reacher.config import RANDOMISATION_FIELDS, Config, check_randomisation
from reacher.sim.arm import Arm, position_servos

# reacher.task.env is not imported here: its make_env calls `wrap`, so this module must load
# without it. An arm env is recognised by what this module uses of it.


@dataclass(frozen=True)
class Ranges:
    """How far each episode's model may stray from the nominal one (all 0: not at all).
    Field names are the Config / config.toml keys."""

    randomize_mass: float = 0.0
    randomize_damping: float = 0.0
    randomize_friction: float = 0.0
    randomize_gain: float = 0.0
    obs_noise_std: float = 0.0
    action_delay_steps: int = 0

    def __post_init__(self):
        check_randomisation(asdict(self))

    @classmethod
    def from_config(cls, config: Config) -> "Ranges":
        return cls(**{name: getattr(config, name) for name in RANDOMISATION_FIELDS})

    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict:
        return asdict(self)


# What `reacher evaluate --randomize` perturbs when no ranges are given. Typical errors of
# a model identified from CAD and data sheets, and of a 50 Hz control loop:
# - mass ±20 %: cables, fasteners and payloads CAD leaves out;
# - damping and friction ±30 %: the least well identified parameters, and they drift
#   with temperature and wear;
# - gain ±20 %: motor constants and amplifier calibration vary by that much;
# - obs noise 0.005: about 0.3° on an angle's cos/sin, and a little on the velocities
#   (which a real arm differentiates from encoders, so they are the noisier part);
# - delay 0–1 steps: up to 20 ms of sensing-to-actuation latency on a 0.02-s period,
#   what a USB or EtherCAT loop with a Python policy in it commonly adds.
DEFAULT_RANGES = Ranges(randomize_mass=0.2, randomize_damping=0.3, randomize_friction=0.3,
                        randomize_gain=0.2, obs_noise_std=0.005, action_delay_steps=1)


@dataclass(frozen=True)
class Perturbation:
    """One episode's draw: the factors applied to the nominal model, and the delay."""

    mass: np.ndarray  # per body in `Randomized.bodies`
    damping: np.ndarray  # per degree of freedom in `Randomized.dofs`
    friction_geom: np.ndarray  # per geom
    friction_dof: np.ndarray  # per degree of freedom in `Randomized.dofs`
    gain: np.ndarray  # per actuator
    delay_steps: int


class Randomized(gym.Wrapper):
    """A ReachEnv (possibly inside Gymnasium's wrappers) whose every episode runs on a
    perturbed model, with delayed actions and noisy joint observations; see the module
    docstring. ``perturbation`` is the current episode's draw (None before a reset).

    The wrapped env must own its model: envs sharing one `Arm` would share the
    perturbations too."""

    def __init__(self, env: gym.Env, ranges: Ranges):
        super().__init__(env)
        reach = env.unwrapped
        if not isinstance(getattr(reach, "arm", None), Arm) or not hasattr(reach, "observation_layout"):
            raise ValueError(f"randomisation needs a reacher arm env, not {type(reach).__name__} "
                             f"(set the randomize_* fields, obs_noise_std and action_delay_steps to 0)")
        self.ranges = ranges
        model = self.model = reach.model
        self._data = reach.data
        # The links: bodies with mass, except the world and mocap bodies (the target).
        self.bodies = np.flatnonzero((model.body_mass > 0) & (model.body_mocapid < 0)
                                     & (np.arange(model.nbody) > 0))
        arm = reach.arm
        joints = [model.joint(name).id for name in arm.joint_names]
        self.dofs = model.jnt_dofadr[joints]
        self._servos = position_servos(model)
        self._nominal = {name: getattr(model, name).copy() for name in (
            "body_mass", "body_inertia", "dof_damping", "geom_friction", "dof_frictionloss",
            "actuator_gainprm", "actuator_biasprm")}
        # Noise on the arm's own state: the observation layout's parts before the goals.
        self._state = reach.observation_layout.state
        self._queue: deque = deque()
        self._zero_action = np.zeros(env.action_space.shape, env.action_space.dtype)
        self.perturbation: Perturbation | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        # Drawn after the reset, from the generator it has just (re)seeded: the same seed
        # gives the same episode start and the same perturbation.
        self.perturbation = self._draw(self.unwrapped.np_random)
        self._apply(self.perturbation)
        self._queue = deque([self._zero_action] * self.perturbation.delay_steps)
        return self._noisy(obs), info

    def step(self, action):
        if self.perturbation is None:
            raise gym.error.ResetNeeded("call reset before step")
        if self._queue:  # checked now, not k steps later when the env would see it
            a = np.asarray(action, dtype=np.float64)
            if a.shape != self._zero_action.shape or not np.isfinite(a).all():
                raise ValueError(f"action must be {self._zero_action.shape[0]} finite values "
                                 f"(one per actuator), got {action!r}")
        given = np.array(action, copy=True)
        self._queue.append(given)
        applied = self._queue.popleft()
        obs, reward, terminated, truncated, info = self.env.step(applied)
        if applied is not given and "physics_error" not in info:
            # The reward charges the effort of the action given now, not of the one the
            # delay applies: the policy pays for what it decides, and hindsight replay,
            # which recomputes rewards from the stored (given) actions, agrees with it.
            effort = _effort(given)
            reward = self.unwrapped.reward_fn.from_effort(info["distance"], effort)
            if "effort" in info:
                info["effort"] = effort
        return self._noisy(obs), reward, terminated, truncated, info

    def _draw(self, rng: np.random.Generator) -> Perturbation:
        # Every factor is drawn whatever the ranges, so the stream of draws, and with it
        # every later episode, does not depend on which ranges are on.
        r, m = self.ranges, self.model
        factor = lambda x, n: 1.0 + x * rng.uniform(-1.0, 1.0, n)  # noqa: E731
        return Perturbation(mass=factor(r.randomize_mass, len(self.bodies)),
                            damping=factor(r.randomize_damping, len(self.dofs)),
                            friction_geom=factor(r.randomize_friction, m.ngeom),
                            friction_dof=factor(r.randomize_friction, len(self.dofs)),
                            gain=factor(r.randomize_gain, m.nu),
                            delay_steps=int(rng.integers(0, r.action_delay_steps + 1)))

    def _apply(self, p: Perturbation) -> None:
        """The nominal model times this episode's factors (never the last episode's, so
        nothing drifts across resets)."""
        m, nominal = self.model, self._nominal
        for name, value in nominal.items():
            getattr(m, name)[:] = value
        m.body_mass[self.bodies] *= p.mass
        m.body_inertia[self.bodies] *= p.mass[:, None]
        m.dof_damping[self.dofs] *= p.damping
        m.geom_friction[:] *= p.friction_geom[:, None]
        m.dof_frictionloss[self.dofs] *= p.friction_dof
        m.actuator_gainprm[:, 0] *= p.gain
        # A servo's force is kp·ctrl − kp·q: scaling both keeps its target where it was.
        m.actuator_biasprm[self._servos, 1] *= p.gain[self._servos]
        mujoco.mj_forward(m, self._data)

    def _noisy(self, obs):
        std = self.ranges.obs_noise_std
        if not std:
            return obs
        rng = self.unwrapped.np_random
        if isinstance(obs, dict):
            state = obs["observation"]
            return {**obs, "observation": state + rng.normal(0.0, std, state.shape)}
        noisy = obs.copy()
        noisy[self._state] += rng.normal(0.0, std, self._state.stop)
        return noisy


class ActionHistory(gym.Wrapper):
    """A reacher arm env (possibly randomised) whose observation also carries the last
    ``steps`` actions given to it, oldest first, each clipped to [-1, 1] as the env
    applies it, and zeros before the episode's first ones:

        flat    state, a[t-K] … a[t-1], fingertip, target, fingertip − target
        Dict    ``observation`` = state, a[t-K] … a[t-1]; both goals unchanged

    With a delay of k ≤ K steps the last k of them are still queued, and a[t-k] is the
    action the arm is executing now. The history goes before the goal values, in the
    state part, so the goals keep ending the flat layout: ``goal_layout`` is the
    env's, shifted by the history's size (read it from this wrapper, e.g. with
    ``env.get_wrapper_attr("goal_layout")``, to relabel this env's observations)."""

    def __init__(self, env: gym.Env, steps: int):
        super().__init__(env)
        reach = env.unwrapped
        if not hasattr(reach, "goal_layout") or not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"an action history needs a reacher arm env, not {type(reach).__name__} "
                             f"(set action_delay_steps to 0)")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"action history steps must be a positive whole number, got {steps!r}")
        self.steps = int(steps)
        self._history = np.zeros((self.steps, int(np.prod(env.action_space.shape))))
        layout = reach.goal_layout
        self._at = layout.achieved.start  # the state part ends here
        extra = self._history.size
        shift = lambda s: slice(s.start + extra, s.stop + extra)  # noqa: E731
        self.goal_layout = replace(layout, achieved=shift(layout.achieved), desired=shift(layout.desired),
                                   delta=shift(layout.delta))
        space = env.observation_space
        box = lambda n: gym.spaces.Box(-np.inf, np.inf, (n,), np.float64)  # noqa: E731
        if isinstance(space, gym.spaces.Dict):
            self.observation_space = gym.spaces.Dict(
                {**space.spaces, "observation": box(space["observation"].shape[0] + extra)})
        else:
            self.observation_space = box(space.shape[0] + extra)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._history[:] = 0.0
        return self._observe(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        # Recorded once the env has taken it: a refused action leaves the history as it was.
        self._history[:-1] = self._history[1:]
        self._history[-1] = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs):
        history = self._history.reshape(-1)
        if isinstance(obs, dict):
            return {**obs, "observation": np.concatenate([obs["observation"], history])}
        return np.concatenate([obs[:self._at], history, obs[self._at:]])


def _effort(action) -> float:
    """‖a‖² of the clipped action, computed as ReachEnv.step does (bit for bit)."""
    clipped = [min(max(v, -1.0), 1.0) for v in np.asarray(action, dtype=np.float64).reshape(-1).tolist()]
    return sum(v * v for v in clipped)


def wrap(env: gym.Env, config: Config | Ranges, history_steps: int | None = None) -> gym.Env:
    """`env` randomised as `config`'s ranges say, its observation carrying the last
    `history_steps` actions (default: the ranges' ``action_delay_steps``); unchanged
    when both are 0 (the default) or when it is wrapped so already."""
    ranges = config if isinstance(config, Ranges) else Ranges.from_config(config)
    steps = ranges.action_delay_steps if history_steps is None else history_steps
    if ranges.any() and not _wrapped_in(env, Randomized):
        env = Randomized(env, ranges)
    if steps and not _wrapped_in(env, ActionHistory):
        env = ActionHistory(env, steps)
    return env


def as_trained(env: gym.Env, config: Config | Ranges) -> gym.Env:
    """`env` (nominal) observed as a policy trained with `config` (or its `Ranges`) observes
    it: with the action history when it trained with an action delay, otherwise unchanged."""
    return wrap(env, Ranges(), history_steps=config.action_delay_steps)


def _wrapped_in(env: gym.Env, kind: type) -> bool:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, kind):
            return True
        env = env.env
    return False


def nominal(config: Config) -> Config:
    """`config` with every randomisation range 0."""
    return config.replace(**{name: 0 for name in RANDOMISATION_FIELDS})
