"""The controllers on their own, without learning, across many arms.

For each arm (the built-ins, examples/arms/*.xml and the test arms of tests/conftest.py):

  ee scripted   a proportional policy through ``control="ee"``: each action moves the end
                effector straight at the target (action = (target − ee) / the most one
                action moves, clipped to [-1, 1]); the share of episodes that end within
                2 cm, and the median final distance. This is the baseline a learned
                ``ee`` policy is compared with, and what `reacher.sim.fit.control_for`
                was chosen from.
  hold          ``control="joint_delta"`` with zero actions for 1 s from a random start:
                the largest joint drift (rad or m), i.e. how well it holds against gravity.

    python scripts/bench_controllers.py [--episodes 50] [--episode-s 1 2] [--arms panda,gen3]
"""

from __future__ import annotations

import argparse
import runpy
import tempfile
from pathlib import Path

import numpy as np

from reacher.errors import ControlError
from reacher.task.env import ReachEnv

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {"four_link": "tip", "spatial_arm": "fingertip", "long_arm": "hand", "tiny_arm": "tip_link",
            "servo_arm": "tool", "panda": "attachment_site", "gen3": "pinch_site",
            "xarm7": "attachment_site", "iiwa14": "attachment_site", "ur5e": "wrist_3_link",
            "iiwa14_torque": "attachment_site"}


def arms(directory: Path) -> list[tuple[str, str, str]]:
    """(label, path or built-in name, end effector) of every arm measured."""
    out = [("two_link", "two_link", "fingertip"), ("three_link", "three_link", "fingertip")]
    out += [(name, str(ROOT / "examples" / "arms" / f"{name}.xml"), ee) for name, ee in EXAMPLES.items()]
    cases = runpy.run_path(str(ROOT / "tests" / "conftest.py"))["ARM_CASES"]
    for case in cases.values():
        path = directory / f"{case.name}.xml"
        path.write_text(case.xml)
        out.append((f"test:{case.name}", str(path), case.end_effector))
    return out


def scripted_ee(arm: str, ee: str, episodes: int, episode_s: float) -> tuple[float, float]:
    env = ReachEnv(arm, ee, control="ee", episode_s=episode_s)
    step = env.controller.max_step
    final = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        for _ in range(env.max_episode_steps):
            obs, _, _, _, info = env.step(np.clip(-obs[-3:] / step, -1.0, 1.0))
        final.append(info["distance"])
    final = np.array(final)
    return float(np.mean(final <= env.success_radius)), float(np.median(final))


def hold(arm: str, ee: str, episodes: int = 5) -> float:
    env = ReachEnv(arm, ee, control="joint_delta", episode_s=1.0)
    worst = 0.0
    for seed in range(episodes):
        env.reset(seed=seed)
        start = env.data.qpos[env.arm.qpos_adr].copy()
        for _ in range(env.max_episode_steps):
            env.step(np.zeros(env.action_space.shape))
        worst = max(worst, float(np.abs(env.data.qpos[env.arm.qpos_adr] - start).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--episode-s", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--arms", default="", help="comma-separated labels to measure (default: all)")
    args = parser.parse_args()
    wanted = set(filter(None, args.arms.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        header = "".join(f"{f'ee {s:g} s':>16}" for s in args.episode_s)
        print(f"{'arm':<18}{header}{'hold drift':>14}   (ee: success, median final cm)")
        for label, arm, ee in arms(Path(tmp)):
            if wanted and label not in wanted:
                continue
            cells = []
            for seconds in args.episode_s:
                try:
                    share, median = scripted_ee(arm, ee, args.episodes, seconds)
                    cells.append(f"{100 * share:>7.0f} % {100 * median:5.2f}")
                except ControlError as err:
                    cells.append(f"{'n/a':>14}")
                    reason = str(err)
            try:
                drift = f"{hold(arm, ee):>14.4f}"
            except ControlError as err:
                drift, reason = f"{'n/a':>14}", str(err)
            line = f"{label:<18}" + "".join(f"{c:>16}" for c in cells) + drift
            print(line + (f"   {reason}" if "n/a" in line else ""))


if __name__ == "__main__":
    main()
