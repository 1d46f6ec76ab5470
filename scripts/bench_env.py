"""Environment steps per second: ReachEnv beside raw ``mujoco.mj_step`` on the same model.

For each arm the same compiled model (``env.unwrapped.model``) is stepped four ways,
``frame_skip`` physics steps per environment step, with random actions in [-1, 1] and a
reset every ``max_episode_steps``:

  raw loop      data.ctrl[:] = a; mj_step(model, data) frame_skip times
                (what Gymnasium's MujocoEnv does)
  raw nstep     data.ctrl[:] = a; mj_step(model, data, nstep=frame_skip)
  ReachEnv      env.unwrapped.step(a)
  gym.make      env.step(a) through gym.make's default wrappers

The machine is shared and noisy, so the four are measured in interleaved rounds and the
medians reported; "× raw loop" is the median over rounds of each round's own ratio.
The issue's goal: ReachEnv at least 0.5× the raw loop.

Then each controller's own cost per control step (its ``act``: Jacobian, solve,
gravity compensation) beside the physics it drives (``frame_skip`` substeps), timed
step by step in the same loop on a 7-DOF arm; the goal is a controller cost of at
most 25 % of the physics time.

    python scripts/bench_env.py [--seconds 2] [--rounds 5] [--arms two_link three_link]
                                [--controller-arm examples/arms/panda.xml:attachment_site]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import mujoco
import numpy as np

import reacher  # noqa: F401  (registers the environments)

_CHECK_EVERY = 64  # steps between clock reads, so reading the clock costs nothing
_N_ACTIONS = 4096  # pre-drawn random actions, shared by every variant


def _timed(step: Callable[[np.ndarray], None], actions: np.ndarray, seconds: float) -> float:
    """Call `step` over `actions` (cyclically) for about `seconds`; return steps per second."""
    n, i = 0, 0
    start = time.perf_counter()
    while True:
        for _ in range(_CHECK_EVERY):
            step(actions[i])
            i = (i + 1) % len(actions)
        n += _CHECK_EVERY
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def _env_stepper(env: gym.Env, seed: int, episode_steps: int) -> Callable[[np.ndarray], None]:
    """Step, resetting every `episode_steps` steps (or at truncation), like the raw loop."""
    env.reset(seed=seed)
    count = [0]

    def step(action: np.ndarray) -> None:
        count[0] += 1
        if env.step(action)[3] or count[0] == episode_steps:
            env.reset()
            count[0] = 0

    return step


def _raw_stepper(model: mujoco.MjModel, episode_steps: int, frame_skip: int,
                 nstep: bool) -> Callable[[np.ndarray], None]:
    data = mujoco.MjData(model)  # the env's own MjData stays untouched
    count = [0]

    def step_loop(action: np.ndarray) -> None:
        data.ctrl[:] = action
        for _ in range(frame_skip):
            mujoco.mj_step(model, data)
        count[0] += 1
        if count[0] == episode_steps:
            mujoco.mj_resetData(model, data)
            count[0] = 0

    def step_nstep(action: np.ndarray) -> None:
        data.ctrl[:] = action
        mujoco.mj_step(model, data, nstep=frame_skip)
        count[0] += 1
        if count[0] == episode_steps:
            mujoco.mj_resetData(model, data)
            count[0] = 0

    return step_nstep if nstep else step_loop


def bench(label: str, wrapped: gym.Env, unwrapped: gym.Env, seconds: float, rounds: int,
          env_name: str) -> dict[str, float]:
    """Interleaved rounds of the env (bare and through gym.make) and of raw mj_step on the
    same compiled model with the same substeps; prints medians, returns the ratios."""
    model, skip = unwrapped.model, unwrapped.frame_skip
    episode = wrapped.spec.max_episode_steps or 50
    actions = np.random.default_rng(0).uniform(-1, 1, (_N_ACTIONS, model.nu)).astype(np.float32)
    variants = {
        "raw loop": _raw_stepper(model, episode, skip, nstep=False),
        f"raw nstep={skip}": _raw_stepper(model, episode, skip, nstep=True),
        env_name: _env_stepper(unwrapped, 0, episode),
        "gym.make": _env_stepper(wrapped, 0, episode),
    }
    for step in variants.values():  # warm up caches and the env checker's first step
        _timed(step, actions, 0.1)

    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, step in variants.items():
            rates[name].append(_timed(step, actions, seconds))

    raw = rates["raw loop"]
    print(f"\n{label}: frame_skip={skip}, timestep={model.opt.timestep} s, integrator "
          f"{mujoco.mjtIntegrator(model.opt.integrator).name[6:]}, {rounds} rounds of {seconds:g} s each")
    print(f"  {'':<14}{'env steps/s':>12}{'min':>10}{'max':>10}{'× raw loop':>12}")
    ratios = {}
    for name, values in rates.items():
        ratios[name] = statistics.median(v / r for v, r in zip(values, raw))
        print(f"  {name:<14}{statistics.median(values):>12,.0f}{min(values):>10,.0f}"
              f"{max(values):>10,.0f}{ratios[name]:>12.2f}")
    wrapped.close()
    unwrapped.close()
    return ratios


def bench_arm(arm: str, seconds: float, rounds: int, frame_skip: int | None) -> None:
    from reacher.task.env import ReachEnv

    kwargs = {} if frame_skip is None else {"frame_skip": frame_skip}
    bench(arm, gym.make("reacher/Reach-v0", arm=arm, **kwargs), ReachEnv(arm, **kwargs),
          seconds, rounds, "ReachEnv")


def bench_controllers(arm: str, end_effector: str, steps: int) -> None:
    """Per control step: the controller's ``act`` against ``physics.advance``, medians."""
    from reacher.task.env import ReachEnv

    print(f"\ncontroller cost on {arm} ({end_effector}), {steps} control steps each, "
          "random actions, a reset every episode")
    print(f"  {'control':<12}{'act µs':>10}{'physics µs':>12}{'act / physics':>15}{'act mean µs':>13}"
          f"{'moves/plans':>12}")
    for control in ("joint", "joint_delta", "ee"):
        env = ReachEnv(arm, end_effector, control=control)
        actions = np.random.default_rng(0).uniform(-1, 1, (steps, *env.action_space.shape)).tolist()
        env.reset(seed=0)
        act_s, physics_s = [], []
        clock = time.perf_counter
        for i, action in enumerate(actions):
            if i % env.max_episode_steps == 0:
                env.reset()
            t0 = clock()
            env.controller.act(action)
            t1 = clock()
            env.physics.advance()
            t2 = clock()
            act_s.append(t1 - t0)
            physics_s.append(t2 - t1)
        act, physics = statistics.median(act_s), statistics.median(physics_s)
        # The mean counts ee's rare plans out of a stall (reacher.sim.controllers.replan).
        replanner = getattr(env.controller, "replanner", None)
        moves = f"{replanner.moves:>3}/{replanner.plans:<3}" if replanner is not None else f"{'':>7}"
        print(f"  {control:<12}{1e6 * act:>10.1f}{1e6 * physics:>12.1f}{act / physics:>14.0%}"
              f"{1e6 * statistics.fmean(act_s):>13.1f}{moves}")
    print("goal: controller ≤ 25 % of the physics time per control step on a 7-DOF arm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="length of one measurement, per variant and round (default 2)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds; medians are reported (default 5)")
    parser.add_argument("--arms", nargs="+", default=["two_link", "three_link"],
                        help="built-in names or MJCF paths (default: two_link three_link)")
    parser.add_argument("--frame-skip", type=int, default=None,
                        help="physics steps per env step (default: the env's own, 2)")
    parser.add_argument("--no-gymnasium", action="store_true",
                        help="skip the Gymnasium Reacher-v5 comparison")
    parser.add_argument("--controller-arm", default="examples/arms/panda.xml:attachment_site",
                        help="ARM:END_EFFECTOR whose controllers are timed ('' skips)")
    parser.add_argument("--controller-steps", type=int, default=2000,
                        help="control steps timed per controller (default 2000)")
    args = parser.parse_args()
    print(f"mujoco {mujoco.__version__}, gymnasium {gym.__version__}, numpy {np.__version__}")
    for arm in args.arms:
        bench_arm(arm, args.seconds, args.rounds, args.frame_skip)
    if not args.no_gymnasium:
        # For scale: Gymnasium's own Reacher, measured the same way in the same run.
        bench("Gymnasium Reacher-v5", gym.make("Reacher-v5"), gym.make("Reacher-v5").unwrapped,
              args.seconds, args.rounds, "Reacher-v5")
    print("\ngoal: ReachEnv ≥ 0.5× raw loop")
    if args.controller_arm:
        arm, _, end_effector = args.controller_arm.rpartition(":")
        bench_controllers(arm, end_effector, args.controller_steps)


if __name__ == "__main__":
    main()
