"""Learning benchmark: reacher's defaults beside Stable-Baselines3's strongest setups, in one run.

For each arm, train reacher with its defaults on --seeds (3 by default), then the
peers on --sb3-seeds, all on the *same* env (reacher's two-link arm unless --arms
says otherwise), evaluated the same way: --episodes deterministic episodes (50) every
--eval-every steps (1000), success = fingertip within 2 cm at the episode's last step.
Evaluation time is excluded from every training clock. Prints a table, each method's
seconds and steps to 95 % and the ratios to reacher's median, and saves a plot of
success against training seconds.

The peers (--peers, any of sac-her, td3-her, ddpg):
  * sac-her: SB3 SAC with HerReplayBuffer ('future', 4 goals) and RL Zoo's FetchReach
    hyperparameters: gamma 0.95, learning rate 1e-3, batch 256, buffer 1e6,
    learning_starts 1000; SB3's defaults otherwise;
  * td3-her: SB3 TD3 with the same settings and Gaussian action noise 0.2;
  * ddpg: SB3 DDPG, its defaults plus Gaussian action noise 0.1, on the flat observation
    (the peer of earlier runs of this benchmark).
The HER peers run on reacher's goal-observation mode (``goal_observation=True``), whose
compute_reward is the env's own reward; SB3 keeps each transition's info for it
(copy_info_dict). --sb3-normalize adds RL Zoo's observation normalisation (VecNormalize).
A peer run stops at 95 %, after --sb3-budget training seconds or after --sb3-steps steps.

    python scripts/bench_learning.py                        # two_link: reacher 3 seeds, both HER peers seed 0
    python scripts/bench_learning.py --arms three_link --seeds 0,1,2 --sb3-seeds 0,1
    python scripts/bench_learning.py --seeds 0 --peers td3-her --sb3-budget 20 --episodes 5   # a smoke test
    python scripts/bench_learning.py --sb3-seeds '' --seeds 0 \
        --arms examples/arms/panda.xml@attachment_site,examples/arms/gen3.xml@pinch_site,examples/arms/xarm7.xml@attachment_site
    python scripts/bench_learning.py --gym-reacher          # reacher on Gymnasium's Reacher-v5

Needs stable-baselines3 for the peers (the ``test`` and ``bench`` extras install it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import reacher  # noqa: F401  (registers the envs, picks the GL backend)
from reacher.config import Config
from reacher.evaluate import evaluate
from reacher.metrics import read_metrics
from reacher.train import Training

GOAL = 0.95
PEERS = ("sac-her", "td3-her", "ddpg")
COLOURS = {"reacher": "#1f6fb4", "sb3-sac-her": "#d9453b", "sb3-td3-her": "#e89a2c", "sb3-ddpg": "#7a7a7a"}


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


def reach_env(arm: str, goal_observation: bool):
    """reacher's env for an arm given as NAME or FILE[@END_EFFECTOR]."""
    import gymnasium as gym

    path, _, end_effector = arm.partition("@")
    return gym.make("reacher/Reach-v0", arm=path, end_effector=end_effector or "fingertip",
                    goal_observation=goal_observation)


def make_peer(peer: str, arm: str, seed: int, normalize: bool):
    """The SB3 model of a peer, on a new env; returns (model, predict, goal_mode): predict maps
    an observation of a separate evaluation env to the deterministic action."""
    from stable_baselines3 import DDPG, SAC, TD3, HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    goal_mode = peer != "ddpg"
    env = DummyVecEnv([lambda: reach_env(arm, goal_mode)])
    if normalize:
        env = VecNormalize(env, norm_obs=True, norm_reward=False)
    n = env.action_space.shape[0]

    def noise(std):
        return NormalActionNoise(np.zeros(n), std * np.ones(n))

    common = dict(seed=seed, device="cpu", verbose=0)
    if peer == "ddpg":
        model = DDPG("MlpPolicy", env, action_noise=noise(0.1), **common)
    else:
        zoo = dict(gamma=0.95, learning_rate=1e-3, batch_size=256, buffer_size=1_000_000, learning_starts=1000,
                   replay_buffer_class=HerReplayBuffer,
                   # The reward charges the action's effort, which reaches compute_reward in info.
                   replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future",
                                             copy_info_dict=True))
        if peer == "sac-her":
            model = SAC("MultiInputPolicy", env, **zoo, **common)
        else:
            model = TD3("MultiInputPolicy", env, action_noise=noise(0.2), **zoo, **common)

    def predict(obs):
        if normalize:
            obs = env.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    return model, predict, goal_mode


def run_sb3(peer: str, arm: str, seed: int, eval_every: int, episodes: int, budget_s: float,
            max_steps: int, normalize: bool, threads: int) -> Curve:
    from stable_baselines3.common.callbacks import BaseCallback

    model, predict, goal_mode = make_peer(peer, arm, seed, normalize)
    torch.set_num_threads(threads or os.cpu_count() or 1)  # after SB3's own setup, as reacher's Training does
    eval_env = reach_env(arm, goal_mode)
    curve = Curve(f"sb3-{peer}", arm, seed)

    class Evaluator(BaseCallback):
        def _on_training_start(self):
            self.start = time.perf_counter()
            self.eval_time = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every and self.num_timesteps < max_steps:
                return True
            t0 = time.perf_counter()
            result = evaluate(predict, eval_env, episodes)
            now = time.perf_counter()
            self.eval_time += now - t0
            seconds = t0 - self.start - (self.eval_time - (now - t0))
            curve.points.append((seconds, self.num_timesteps, result.success_rate,
                                 result.mean_final_distance, result.mean_return))
            print(f"    {curve.method} {arm} seed {seed}: {self.num_timesteps:>7,} steps {seconds:7.1f} s  "
                  f"success {100 * result.success_rate:5.1f} %  distance "
                  f"{100 * result.mean_final_distance:.2f} cm", flush=True)
            return result.success_rate < GOAL and seconds < budget_s and self.num_timesteps < max_steps

    t0 = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=Evaluator())
    curve.total_wall = time.perf_counter() - t0
    eval_env.close()
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
        if ours:
            rates = [c.final[2] for c in ours]
            dists = [c.final[3] for c in ours]
            walls = [c.total_wall for c in ours]
            print(f"\n{arm}: reacher defaults over {len(ours)} seeds: success min {100 * min(rates):.0f} % "
                  f"mean {100 * np.mean(rates):.1f} %, final distance max {100 * max(dists):.2f} cm "
                  f"mean {100 * np.mean(dists):.2f} cm, wall max {max(walls):.1f} s mean {np.mean(walls):.1f} s")
        print(f"\n{arm}: time to {100 * GOAL:.0f} % (training seconds, evaluation excluded; median over seeds)")
        mine = median_to_goal(ours)
        for method in dict.fromkeys(c.method for c in curves if c.arm == arm):
            runs = [c for c in curves if c.arm == arm and c.method == method]
            theirs = median_to_goal(runs)
            line = f"  {method:<12} {len(runs)} seed(s): "
            if theirs is None:
                longest = max(c.final[0] for c in runs)
                best = max(p[2] for c in runs for p in c.points)
                line += f"not reached by the median seed (longest run {longest:.0f} s, best {100 * best:.0f} %)"
                if mine is not None and method != "reacher":
                    line += f"; ratio ≥ {longest / mine[0]:.1f}× reacher's"
            else:
                line += f"{theirs[0]:.1f} s, {theirs[1]:,.0f} steps"
                if mine is not None and method != "reacher":
                    line += f"  → {theirs[0] / mine[0]:.1f}× reacher's seconds, {theirs[1] / mine[1]:.1f}× its steps"
            print(line)


def median_to_goal(runs: list[Curve]) -> tuple[float, float] | None:
    """Median (seconds, steps) to the goal over runs, a run that never got there counting
    as infinitely slow; None when the median run did not get there."""
    hits = sorted((c.first(GOAL) or (np.inf, np.inf)) for c in runs)
    if not hits:
        return None
    seconds = float(np.median([h[0] for h in hits]))
    steps = float(np.median([h[1] for h in hits]))
    return None if not np.isfinite(seconds) else (seconds, steps)


def plot(curves: list[Curve], out: Path, len_episodes: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = sorted({c.arm for c in curves})
    fig, axes = plt.subplots(1, len(arms), figsize=(6.4 * len(arms), 4), dpi=110, squeeze=False)
    for ax, arm in zip(axes[0], arms):
        seen = set()
        for c in (c for c in curves if c.arm == arm):
            label = None if c.method in seen else c.method
            seen.add(c.method)
            ax.plot([p[0] for p in c.points], [100 * p[2] for p in c.points], "-", marker=".",
                    color=COLOURS[c.method], alpha=0.8, label=label)
        ax.axhline(100 * GOAL, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("training wall-clock seconds (2 CPU cores, evaluation excluded)")
        ax.set_ylabel(f"success rate (%), {len_episodes} episodes, 2 cm")
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
    parser.add_argument("--seeds", default="0,1,2", help="reacher's seeds ('' skips reacher)")
    parser.add_argument("--reacher-steps", type=int, default=0,
                        help="reacher's steps (0: its default, train until success)")
    parser.add_argument("--peers", default="sac-her,td3-her", help=f"SB3 peers, any of {', '.join(PEERS)}")
    parser.add_argument("--sb3-seeds", default="0", help="seeds for the SB3 peers ('' skips them)")
    parser.add_argument("--sb3-budget", type=float, default=600.0, help="SB3 training seconds per run at most")
    parser.add_argument("--sb3-steps", type=int, default=100_000, help="SB3 env steps per run at most")
    parser.add_argument("--sb3-normalize", action="store_true",
                        help="normalise the peers' observations (VecNormalize, as RL Zoo does for FetchReach)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for every method (0: all cores, reacher's default); 1 on a busy machine")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--plot", type=Path, default=Path("docs/learning.png"))
    parser.add_argument("--gym-reacher", action="store_true", help="also run on Gymnasium's Reacher-v5")
    parser.add_argument("--gym-reacher-steps", type=int, default=50_000)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    sb3_seeds = [int(s) for s in args.sb3_seeds.split(",") if s]
    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)} (choose from {', '.join(PEERS)})")
    if peers and sb3_seeds:
        try:
            import stable_baselines3  # noqa: F401
        except ImportError:
            parser.error("the SB3 peers need stable-baselines3: pip install -e '.[bench]' "
                         "(or pass --sb3-seeds '')")
    reacher_overrides = {"threads": args.threads, **({"steps": args.reacher_steps} if args.reacher_steps else {})}
    curves = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for arm in args.arms.split(","):
            for seed in seeds:
                c = run_reacher(arm, seed, args.eval_every, args.episodes, workdir, **reacher_overrides)
                curves.append(c)
                print(f"  reacher {arm} seed {seed}: {c.final[1]:,} steps, wall {c.total_wall:.1f} s, "
                      f"success {100 * c.final[2]:.0f} %, distance {100 * c.final[3]:.2f} cm", flush=True)
            for peer in peers:
                for seed in sb3_seeds:
                    curves.append(run_sb3(peer, arm, seed, args.eval_every, args.episodes, args.sb3_budget,
                                          args.sb3_steps, args.sb3_normalize, args.threads))
        if curves:
            report(curves)
            plot(curves, args.plot, args.episodes)
        if args.gym_reacher:
            gym_reacher(seeds, args.gym_reacher_steps, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
