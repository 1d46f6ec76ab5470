"""Learning benchmark: reacher's defaults beside Stable-Baselines3 DDPG, in one run.

For each arm and seed, train with reacher's defaults and evaluate 100 deterministic
episodes (success = final distance ≤ 2 cm); then train SB3 DDPG (its defaults plus
Gaussian action noise 0.1, as its docs suggest) on the *same* env and evaluate it
the same way. Both are evaluated every --eval-every steps; evaluation time is
excluded from the training clock of both. Prints a table, the time-to-95 % ratio,
and saves a plot of success against training seconds under docs/.

    python scripts/bench_learning.py                       # two_link, 5 seeds, SB3 on seed 0
    python scripts/bench_learning.py --arms three_link --seeds 0,1,2
    python scripts/bench_learning.py --sb3-seeds '' --seeds 0 \
        --arms examples/arms/panda.xml@attachment_site,examples/arms/gen3.xml@pinch_site,examples/arms/xarm7.xml@attachment_site
    python scripts/bench_learning.py --gym-reacher          # reacher on Gymnasium's Reacher-v5

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for the SB3 side.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import reacher  # noqa: F401  (registers the envs, picks the GL backend)
from reacher.config import Config
from reacher.evaluate import evaluate
from reacher.metrics import read_metrics
from reacher.train import Training

GOAL = 0.95


@dataclass
class Curve:
    method: str
    arm: str
    seed: int
    points: list = field(default_factory=list)  # (train_seconds, steps, success, distance, return)
    total_wall: float = 0.0

    def first(self, success: float) -> tuple[float, int] | None:
        for seconds, steps, rate, *_ in self.points:
            if rate is not None and rate >= success:
                return seconds, steps
        return None

    @property
    def final(self):
        return self.points[-1]


def run_reacher(arm: str, seed: int, eval_every: int, episodes: int, workdir: Path, **overrides) -> Curve:
    config = Config(seed=seed, eval_every=eval_every, eval_episodes=episodes,
                    final_eval_episodes=episodes, checkpoint_every=10 ** 9, **overrides)
    if not config.env:  # ARM or ARM@END_EFFECTOR, e.g. examples/arms/panda.xml@attachment_site
        path, _, end_effector = arm.partition("@")
        config = config.replace(arm=path, **({"end_effector": end_effector} if end_effector else {}))
    run_dir = workdir / f"reacher-{Path(arm.partition('@')[0]).stem}-{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    outcome = Training(config, run_dir, progress=False).run()
    if outcome.interrupted_by:  # training caught the signal; the benchmark stops too
        raise SystemExit(f"interrupted by {outcome.interrupted_by}")
    curve = Curve("reacher", arm, seed, total_wall=time.perf_counter() - t0)
    for row in read_metrics(run_dir / "metrics.csv"):
        curve.points.append((row["wall_time"] - row["eval_time"], row["step"], row["success_rate"],
                             row["mean_final_distance"], row["mean_return"]))
    return curve


def run_sb3(arm: str, seed: int, eval_every: int, episodes: int, budget_s: float) -> Curve:
    import gymnasium as gym
    from stable_baselines3 import DDPG
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise

    path, _, end_effector = arm.partition("@")
    env = gym.make("reacher/Reach-v0", arm=path, end_effector=end_effector or "fingertip")
    eval_env = gym.make("reacher/Reach-v0", arm=path, end_effector=end_effector or "fingertip")
    n = env.action_space.shape[0]
    model = DDPG("MlpPolicy", env, action_noise=NormalActionNoise(np.zeros(n), 0.1 * np.ones(n)),
                 seed=seed, device="cpu", verbose=0)
    curve = Curve("sb3-ddpg", arm, seed)

    class Evaluator(BaseCallback):
        def _on_training_start(self):
            self.start = time.perf_counter()
            self.eval_time = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every:
                return True
            t0 = time.perf_counter()
            result = evaluate(lambda obs: model.predict(obs, deterministic=True)[0], eval_env, episodes)
            now = time.perf_counter()
            self.eval_time += now - t0
            seconds = t0 - self.start - (self.eval_time - (now - t0))
            curve.points.append((seconds, self.num_timesteps, result.success_rate,
                                 result.mean_final_distance, result.mean_return))
            print(f"    sb3 {arm} seed {seed}: {self.num_timesteps:>7,} steps {seconds:7.1f} s  "
                  f"success {100 * result.success_rate:5.1f} %  distance "
                  f"{100 * result.mean_final_distance:.2f} cm", flush=True)
            return result.success_rate < GOAL and seconds < budget_s

    t0 = time.perf_counter()
    model.learn(total_timesteps=10 ** 7, callback=Evaluator())
    curve.total_wall = time.perf_counter() - t0
    return curve


def report(curves: list[Curve]) -> None:
    print("\n| method | arm | seed | env steps | train s | wall s | success | final distance | to 95 % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in curves:
        seconds, steps, rate, distance, _ = c.final
        hit = c.first(GOAL)
        to95 = f"{hit[0]:.1f} s ({hit[1]:,} steps)" if hit else "not reached"
        print(f"| {c.method} | {c.arm} | {c.seed} | {steps:,} | {seconds:.1f} | {c.total_wall:.1f} | "
              f"{100 * rate:.0f} % | {100 * distance:.2f} cm | {to95} |")
    for arm in sorted({c.arm for c in curves}):
        ours = [c for c in curves if c.arm == arm and c.method == "reacher"]
        sb3 = [c for c in curves if c.arm == arm and c.method == "sb3-ddpg"]
        if not ours:
            continue
        rates = [c.final[2] for c in ours]
        dists = [c.final[3] for c in ours]
        walls = [c.total_wall for c in ours]
        print(f"\n{arm}: reacher defaults over {len(ours)} seeds: success min {100 * min(rates):.0f} % "
              f"mean {100 * np.mean(rates):.1f} %, final distance max {100 * max(dists):.2f} cm "
              f"mean {100 * np.mean(dists):.2f} cm, wall max {max(walls):.1f} s mean {np.mean(walls):.1f} s")
        for s in sb3:
            theirs, mine = s.first(GOAL), next((c.first(GOAL) for c in ours if c.seed == s.seed), None)
            if mine is None:
                print(f"  seed {s.seed}: reacher did not reach 95 %; no ratio")
            elif theirs is None:
                print(f"  seed {s.seed}: SB3 did not reach 95 % in {s.final[0]:.0f} s "
                      f"(best {100 * max(p[2] for p in s.points):.0f} %); ratio ≥ "
                      f"{s.final[0] / mine[0]:.1f}× (reacher: {mine[0]:.1f} s)")
            else:
                print(f"  seed {s.seed}: time to 95 %: SB3 {theirs[0]:.1f} s, reacher {mine[0]:.1f} s "
                      f"→ {theirs[0] / mine[0]:.1f}× less wall time")


def plot(curves: list[Curve], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = sorted({c.arm for c in curves})
    fig, axes = plt.subplots(1, len(arms), figsize=(6.4 * len(arms), 4), dpi=110, squeeze=False)
    colours = {"reacher": "#1f6fb4", "sb3-ddpg": "#d9453b"}
    for ax, arm in zip(axes[0], arms):
        seen = set()
        for c in (c for c in curves if c.arm == arm):
            label = None if c.method in seen else c.method
            seen.add(c.method)
            ax.plot([p[0] for p in c.points], [100 * p[2] for p in c.points], "-", marker=".",
                    color=colours[c.method], alpha=0.8, label=label)
        ax.axhline(100 * GOAL, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("training wall-clock seconds (2 CPU cores, evaluation excluded)")
        ax.set_ylabel("success rate (%), 100 episodes, 2 cm")
        ax.set_title(arm)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"\nplot: {out}")


def gym_reacher(seeds: list[int], steps: int, workdir: Path) -> None:
    """Reacher on Gymnasium's own Reacher-v5: env steps to mean return −5 and −3.75."""
    print("\nGymnasium Reacher-v5 (10 evaluation episodes every 1000 steps)")
    print("| seed | steps to −5 | steps to −3.75 | final return | train s |")
    print("|---|---|---|---|---|")
    for seed in seeds:
        c = run_reacher("Reacher-v5", seed, 1000, 10, workdir, env="Reacher-v5", steps=steps,
                        hindsight_fraction=0.0)
        to5 = next((p[1] for p in c.points if p[4] >= -5), None)
        to375 = next((p[1] for p in c.points if p[4] >= -3.75), None)
        print(f"| {seed} | {to5 or 'not reached'} | {to375 or 'not reached'} | {c.final[4]:.2f} | "
              f"{c.final[0]:.1f} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="two_link",
                        help="comma-separated arms, each a built-in name or FILE[@END_EFFECTOR]")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--sb3-seeds", default="0", help="seeds for SB3 ('' skips SB3)")
    parser.add_argument("--sb3-budget", type=float, default=600.0, help="SB3 training seconds per seed")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--plot", type=Path, default=Path("docs/learning.png"))
    parser.add_argument("--gym-reacher", action="store_true", help="also run on Gymnasium's Reacher-v5")
    parser.add_argument("--gym-reacher-steps", type=int, default=50_000)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    sb3_seeds = [int(s) for s in args.sb3_seeds.split(",") if s]
    curves = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for arm in args.arms.split(","):
            for seed in seeds:
                c = run_reacher(arm, seed, args.eval_every, args.episodes, workdir)
                curves.append(c)
                print(f"  reacher {arm} seed {seed}: {c.final[1]:,} steps, wall {c.total_wall:.1f} s, "
                      f"success {100 * c.final[2]:.0f} %, distance {100 * c.final[3]:.2f} cm", flush=True)
            for seed in sb3_seeds:
                curves.append(run_sb3(arm, seed, args.eval_every, args.episodes, args.sb3_budget))
        report(curves)
        plot(curves, args.plot)
        if args.gym_reacher:
            gym_reacher(seeds, args.gym_reacher_steps, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
