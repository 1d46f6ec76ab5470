"""What a reset costs, in env steps: ReachEnv.reset beside ReachEnv.step on the same env.

A reset draws a target and a start pose free of collisions (`reacher.sim.collision`),
which can cost more than a step's physics. Both are timed in the same process, in
interleaved rounds (the machine is shared and noisy), and the median over rounds of
each round's ratio reported. Issue 16's goal: at most 20 env steps on the built-ins
and 50 on a 7-DOF arm.

    python scripts/bench_reset.py [--seconds 1] [--rounds 5] [--arms two_link three_link panda]

``panda`` (and ``gen3``, ``xarm7``) are the Menagerie robots in examples/arms/.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from reacher.task.env import ReachEnv

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"
# Example arms by short name: (file, end effector).
EXAMPLE_ARMS = {"panda": ("panda.xml", "attachment_site"), "gen3": ("gen3.xml", "pinch_site"),
                "xarm7": ("xarm7.xml", "attachment_site")}
GOALS = {"two_link": 20, "three_link": 20, "panda": 50, "gen3": 50, "xarm7": 50}


def make(arm: str) -> ReachEnv:
    if arm in EXAMPLE_ARMS:
        file, end_effector = EXAMPLE_ARMS[arm]
        return ReachEnv(EXAMPLES / file, end_effector)
    return ReachEnv(arm)


def _per_call(call, seconds: float, clock) -> float:
    """Seconds per call of `call`, over about `seconds` of `clock`."""
    n, start = 0, clock()
    while True:
        for _ in range(16):
            call()
        n += 16
        elapsed = clock() - start
        if elapsed >= seconds:
            return elapsed / n


def reset_cost(env: ReachEnv, seconds: float, rounds: int, seed: int = 0,
               clock=time.perf_counter) -> dict:
    """Reset time over step time, per round; and each in microseconds (medians). Tests
    pass ``clock=time.process_time``: CPU time, which other processes do not inflate."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, (1024, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=seed)
    i = [0]

    def step() -> None:
        i[0] = (i[0] + 1) % len(actions)
        env.step(actions[i[0]])

    steps, resets = [], []
    for _ in range(rounds):
        steps.append(_per_call(step, seconds / 2, clock))
        resets.append(_per_call(env.reset, seconds / 2, clock))
    ratios = [r / s for r, s in zip(resets, steps)]
    return {"ratio": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "step_us": 1e6 * statistics.median(steps), "reset_us": 1e6 * statistics.median(resets)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per round, steps and resets")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--arms", nargs="+", default=["two_link", "three_link", "panda"])
    args = parser.parse_args()
    print(f"{'arm':<12}{'step µs':>10}{'reset µs':>10}{'reset / step':>14}{'min':>8}{'max':>8}"
          f"{'goal':>7}")
    for arm in args.arms:
        env = make(arm)
        r = reset_cost(env, args.seconds, args.rounds)
        goal = GOALS.get(arm)
        print(f"{arm:<12}{r['step_us']:>10.1f}{r['reset_us']:>10.1f}{r['ratio']:>14.2f}"
              f"{r['min']:>8.2f}{r['max']:>8.2f}{'' if goal is None else f'≤ {goal}':>7}")
        env.close()


if __name__ == "__main__":
    main()
