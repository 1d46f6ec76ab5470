"""The controllers on their own, without learning: a scripted policy through ``ee`` on any arm.

For each arm (``--arm FILE --end-effector E``, repeatable; by default the built-ins and
every example arm, with ``--test-arms`` also those of tests/conftest.py):

  ee scripted   a proportional policy through ``control="ee"`` with the arm's defaults:
                each action moves the end effector straight at the target (action =
                (target − ee) / the most one action moves, clipped to [-1, 1]); the share
                of episodes that end within 2 cm, and the median final distance, in the
                arm's default episode and in twice its length (``--episode-s`` for others).
                This is the ceiling a learnt ``ee`` policy starts from.
  hold          ``ee`` with zero actions for 5 s from a random collision-free start: the
                share of starts whose end effector drifts more than 2 cm (servo sag).

Seeds start at ``--seed`` (1000: not the 0-11 the tests were tuned on).

    python scripts/bench_controllers.py [--episodes 40] [--arm FILE --end-effector E]...
"""

from __future__ import annotations

import argparse
import platform
import runpy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reacher.errors import ControlError
from reacher.sim.arm import load_arm
from reacher.sim.fit import episode_seconds
from reacher.task.env import ReachEnv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {"four_link": "tip", "spatial_arm": "fingertip", "long_arm": "hand", "tiny_arm": "tip_link",
            "servo_arm": "tool", "panda": "attachment_site", "gen3": "pinch_site",
            "xarm7": "attachment_site", "iiwa14": "attachment_site", "ur5e": "wrist_3_link",
            "iiwa14_torque": "attachment_site"}
HOLD_S = 5.0
HOLD_DRIFT_M = 0.02


def default_arms(directory: Path, test_arms: bool) -> list[tuple[str, str, str]]:
    """(label, path or built-in name, end effector) of every arm measured by default."""
    out = [("two_link", "two_link", "fingertip"), ("three_link", "three_link", "fingertip")]
    out += [(name, str(ROOT / "examples" / "arms" / f"{name}.xml"), ee) for name, ee in EXAMPLES.items()]
    if test_arms:
        for case in runpy.run_path(str(ROOT / "tests" / "conftest.py"))["ARM_CASES"].values():
            path = directory / f"{case.name}.xml"
            path.write_text(case.xml)
            out.append((f"test:{case.name}", str(path), case.end_effector))
    return out


def scripted_ee(arm: str, ee: str, episodes: int, episode_s: float, seed: int) -> tuple[float, float]:
    """Share of episodes ending within the success radius, and the median final distance."""
    env = ReachEnv(arm, ee, control="ee", episode_s=episode_s)
    step = env.controller.max_step
    final = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        for _ in range(env.max_episode_steps):
            obs, _, _, _, info = env.step(np.clip(-obs[-3:] / step, -1.0, 1.0))
        final.append(info["distance"])
    final = np.array(final)
    return float(np.mean(final <= env.success_radius)), float(np.median(final))


def hold(arm: str, ee: str, starts: int, seed: int) -> float:
    """Share of random starts whose end effector drifts more than HOLD_DRIFT_M in HOLD_S
    of zero ``ee`` actions."""
    env = ReachEnv(arm, ee, control="ee", episode_s=HOLD_S)
    zero = np.zeros(3)
    drifted = 0
    for i in range(starts):
        env.reset(seed=seed + i)
        start = env.physics.end_effector_pos().copy()
        for _ in range(env.max_episode_steps):
            env.step(zero)
        drifted += np.linalg.norm(env.physics.end_effector_pos() - start) > HOLD_DRIFT_M
    return drifted / starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--episode-s", type=float, nargs="+", default=None,
                        help="episode lengths to measure (default: the arm's and twice it)")
    parser.add_argument("--arm", action="append", default=[], help="an MJCF file (repeatable)")
    parser.add_argument("--end-effector", action="append", default=[],
                        help="its end effector (one per --arm; default fingertip)")
    parser.add_argument("--arms", default="", help="comma-separated labels of the default arms")
    parser.add_argument("--test-arms", action="store_true", help="also tests/conftest.py's arms")
    parser.add_argument("--hold", type=int, default=10, help="random starts for the hold test (0: skip)")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    if len(args.end_effector) > len(args.arm):
        parser.error("--end-effector without an --arm before it")
    print(f"# {' '.join(sys.argv)}\n# {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.arm:
            ees = args.end_effector + ["fingertip"] * (len(args.arm) - len(args.end_effector))
            todo = [(Path(a).stem, a, e) for a, e in zip(args.arm, ees)]
        else:
            wanted = set(filter(None, args.arms.split(",")))
            todo = [a for a in default_arms(Path(tmp), args.test_arms) if not wanted or a[0] in wanted]
        print(f"{'arm':<18}{'episode':>9}{'ee success':>12}{'median cm':>11}{'hold >2 cm':>12}")
        for label, arm, ee in todo:
            default = episode_seconds(load_arm(arm, ee))
            lengths = args.episode_s or [default, 2 * default]
            try:
                drift = f"{100 * hold(arm, ee, args.hold, args.seed):>10.0f} %" if args.hold else ""
                for seconds in lengths:
                    share, median = scripted_ee(arm, ee, args.episodes, seconds, args.seed)
                    print(f"{label:<18}{seconds:>7.3g} s{100 * share:>10.0f} %{100 * median:>11.2f}{drift}",
                          flush=True)
                    drift = ""
            except ControlError as err:
                print(f"{label:<18}  n/a: {err}", flush=True)


if __name__ == "__main__":
    main()
