"""Learning benchmark: reacher's defaults beside the strongest off-the-shelf setups, in one run.

For each arm, train reacher with its defaults on --seeds (3 by default), then each peer
on --sb3-seeds (the same seeds unless told otherwise), all on the *same* env (reacher's
two-link arm unless --arms says otherwise, built from the same Config) and measured the
same way: --episodes deterministic episodes (50) every --eval-every steps (1000), the
k-th evaluation on the same block of validation episodes for every method (reacher's
own periodic seeds), success = fingertip within 2 cm at the episode's last step.
reacher's own final evaluation (its "success" column) is on --final-episodes (100), as
the goals are stated. Evaluation time is excluded from every training clock. Prints a
table, each method's seconds and steps to 95 %, the ratios to reacher's median and to
the fastest peer, and saves a plot of success against training seconds.

The peers (--peers; all but ddpg by default):
  * sac-her: SB3 SAC with HerReplayBuffer ('future', 4 goals) and RL Zoo's FetchReach
    hyperparameters: gamma 0.95, learning rate 1e-3, batch 256, buffer 1e6,
    learning_starts 1000, observations normalised; SB3's defaults otherwise (256×256);
  * td3-her: SB3 TD3 with the same settings and Gaussian action noise 0.2;
  * tqc-her: sb3-contrib TQC + HER with RL Zoo's PandaReach / FetchReach entry: the same
    settings with 64×64 networks and one critic network (n_critics=1);
  * crossq: sb3-contrib CrossQ with the same goal-task settings (RL Zoo has no CrossQ
    entry for a goal env) and CrossQ's own defaults otherwise (BatchRenorm, no target
    networks, policy delay 3, 256×256 actor, 1024×1024 critics). sb3-contrib 2.9.x has
    no MultiInputPolicy for CrossQ (its update concatenates observation tensors), so it
    takes no Dict observations and so no HerReplayBuffer: it then runs on reacher's
    flat observation without HER, the closest configuration, labelled
    ``sb3-crossq-flat`` (``sb3-crossq-her`` once a release accepts goal observations);
  * ddpg: SB3 DDPG, its defaults plus Gaussian action noise 0.1, on the flat observation
    (the peer of earlier runs of this benchmark).
The HER peers run on reacher's goal-observation mode (``goal_observation=True``), whose
compute_reward is the env's own reward, with HerReplayBuffer's defaults otherwise
(copy_info_dict=False; see HER_COPY_INFO_DICT). Observations are normalised as RL Zoo's
``normalize: True`` does (VecNormalize; --no-sb3-normalize turns it off). RL Zoo's
setting also scales rewards; --sb3-norm-reward adds that, off by default so that the
figures stay comparable with docs/benchmarks.md section 3. A peer run stops at 95 %,
after --sb3-budget training seconds or after --sb3-steps steps.

    python scripts/bench_learning.py                        # two_link: reacher and the four peers, seeds 0,1,2
    python scripts/bench_learning.py --arms three_link --seeds 0,1,2 --sb3-seeds 0,1
    python scripts/bench_learning.py --seeds 0 --peers td3-her --sb3-budget 20 --episodes 5   # a smoke test
    python scripts/bench_learning.py --sb3-seeds '' --seeds 0 \
        --arms examples/arms/panda.xml@attachment_site,examples/arms/gen3.xml@pinch_site,examples/arms/xarm7.xml@attachment_site
    python scripts/bench_learning.py --gym-reacher          # reacher on Gymnasium's Reacher-v5

Needs stable-baselines3 for the peers and sb3-contrib for tqc-her and crossq (the
``bench`` extra installs both); a peer whose package is missing is refused before
anything trains.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import reacher  # noqa: F401  (registers the envs, picks the GL backend)
from reacher.config import Config
from reacher.run.envs import make_env
from reacher.run.evaluation import VALIDATION_SEED, evaluate
from reacher.run.metrics import read_metrics
from reacher.run.training import Training

GOAL = 0.95
# Each peer and the modules it needs, in the order they run.
PEERS = {"sac-her": ("stable_baselines3",), "td3-her": ("stable_baselines3",),
         "tqc-her": ("stable_baselines3", "sb3_contrib"), "crossq": ("stable_baselines3", "sb3_contrib"),
         "ddpg": ("stable_baselines3",)}
DEFAULT_PEERS = "sac-her,td3-her,tqc-her,crossq"
PIP_NAMES = {"stable_baselines3": "stable-baselines3", "sb3_contrib": "sb3-contrib"}
# Whether HerReplayBuffer keeps each step's info for compute_reward. False is SB3's default,
# as RL Zoo runs it; goal mode's reward reads no info. True is for an env whose
# compute_reward needs the info (reacher's did before the goal reward dropped the effort).
HER_COPY_INFO_DICT = False
# RL Zoo's goal-task settings (FetchReach, PandaReach), shared by every goal peer.
ZOO = dict(gamma=0.95, learning_rate=1e-3, batch_size=256, buffer_size=1_000_000, learning_starts=1000)
COLOURS = {"reacher": "#1f6fb4", "sb3-sac-her": "#d9453b", "sb3-td3-her": "#e89a2c", "sb3-tqc-her": "#8e44ad",
           "sb3-crossq-her": "#2a9d5c", "sb3-crossq-flat": "#2a9d5c", "sb3-ddpg": "#7a7a7a"}


@dataclass
class Curve:
    method: str
    arm: str
    seed: int
    points: list = field(default_factory=list)  # periodic: (train_seconds, steps, success, distance, return)
    total_wall: float = 0.0
    final_evaluation: tuple | None = None  # reacher's own final evaluation, same layout

    def first(self, success: float) -> tuple[float, int] | None:
        """When a periodic evaluation first reached `success` (the same evaluations for every
        method: reacher's final one, on other episodes, has no counterpart in the peers)."""
        for seconds, steps, rate, *_ in self.points:
            if rate is not None and rate >= success:
                return seconds, steps
        return None

    @property
    def final(self):
        return self.final_evaluation or self.points[-1]


def arm_config(arm: str, **fields) -> Config:
    """reacher's Config for an arm given as NAME or FILE[@END_EFFECTOR] (e.g.
    examples/arms/panda.xml@attachment_site); a Gymnasium ``env`` in `fields` wins."""
    config = Config(**fields)
    if config.env:
        return config
    path, _, end_effector = arm.partition("@")
    return config.replace(arm=path, **({"end_effector": end_effector} if end_effector else {}))


def run_reacher(arm: str, seed: int, eval_every: int, episodes: int, workdir: Path,
                final_episodes: int | None = None, **overrides) -> Curve:
    config = arm_config(arm, seed=seed, eval_every=eval_every, eval_episodes=episodes,
                        final_eval_episodes=final_episodes or episodes, checkpoint_every=10 ** 9, **overrides)
    run_dir = workdir / f"reacher-{Path(arm.partition('@')[0]).stem}-{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)
    t0 = time.perf_counter()
    outcome = Training(config, run_dir, progress=False).run()
    if outcome.interrupted_by:  # training caught the signal; the benchmark stops too
        raise SystemExit(f"interrupted by {outcome.interrupted_by}")
    curve = Curve("reacher", arm, seed, total_wall=time.perf_counter() - t0)
    rows = read_metrics(run_dir / "metrics.csv")
    # A row's clocks are both read before its own evaluation runs (reacher.run.training's _log):
    # wall_time less eval_time, the evaluations before it, is training time alone.
    points = [(row["wall_time"] - row["eval_time"], row["step"], row["success_rate"],
               row["mean_final_distance"], row["mean_return"]) for row in rows]
    *curve.points, curve.final_evaluation = points  # the last row is the final evaluation
    # A run that stops on success stops at the step of the periodic evaluation that
    # nominated its policy (so reached the goal there), and metrics.csv keeps one row a
    # step: the final evaluation's row replaced that one. Put the step back as a point.
    replaced = not curve.points or curve.final_evaluation[1] > curve.points[-1][1]
    if outcome.stop_reason == "success" and replaced:
        seconds, steps, _, *rest = curve.final_evaluation
        curve.points.append((seconds, steps, GOAL, *rest))
    return curve


def reach_env(arm: str, goal_observation: bool):
    """The env reacher trains on for `arm` (same Config, so same episode length, reward
    and success radius), in goal-observation mode or not."""
    return make_env(arm_config(arm, goal_observation=goal_observation))


def missing_modules(peers: list[str]) -> dict[str, list[str]]:
    """Module -> the peers that need it, for modules that are not installed."""
    missing: dict[str, list[str]] = {}
    for peer in peers:
        for module in PEERS[peer]:
            if importlib.util.find_spec(module) is None:
                missing.setdefault(module, []).append(peer)
    return missing


def crossq_takes_goals() -> bool:
    """Whether this sb3-contrib's CrossQ accepts Dict observations (and so HER)."""
    from sb3_contrib import CrossQ

    return "MultiInputPolicy" in CrossQ.policy_aliases


@dataclass
class Peer:
    """A peer ready to train: `predict` maps an observation of a separate evaluation env
    (`goal_mode` says which kind) to the deterministic action, normalised as in training."""
    method: str
    model: object
    predict: Callable[[np.ndarray], np.ndarray]
    goal_mode: bool


def make_peer(peer: str, arm: str, seed: int, normalize: bool = True, norm_reward: bool = False,
              **hyperparameters) -> Peer:
    """The model of a peer (see the module docstring for its settings), on a new env;
    `hyperparameters` replace the peer's own (a test's small buffer, say)."""
    from stable_baselines3 import DDPG, SAC, TD3, HerReplayBuffer
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r} (choose from {', '.join(PEERS)})")
    goal_mode = peer.endswith("-her") or (peer == "crossq" and crossq_takes_goals())
    env = DummyVecEnv([lambda: reach_env(arm, goal_mode)])
    if normalize:
        env = VecNormalize(env, norm_obs=True, norm_reward=norm_reward, gamma=ZOO["gamma"])
    n = env.action_space.shape[0]

    def noise(std):
        return NormalActionNoise(np.zeros(n), std * np.ones(n))

    her = dict(replay_buffer_class=HerReplayBuffer,
               replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future",
                                         copy_info_dict=HER_COPY_INFO_DICT)) if goal_mode else {}
    policy = "MultiInputPolicy" if goal_mode else "MlpPolicy"

    def build(algorithm, **settings):
        return algorithm(policy, env, **{**settings, "seed": seed, "device": "cpu", "verbose": 0,
                                         **hyperparameters})

    method = f"sb3-{peer}"
    if peer == "ddpg":
        model = build(DDPG, action_noise=noise(0.1))
    elif peer == "sac-her":
        model = build(SAC, **ZOO, **her)
    elif peer == "td3-her":
        model = build(TD3, action_noise=noise(0.2), **ZOO, **her)
    elif peer == "tqc-her":
        from sb3_contrib import TQC

        model = build(TQC, policy_kwargs=dict(net_arch=[64, 64], n_critics=1), **ZOO, **her)
    else:
        from sb3_contrib import CrossQ

        model = build(CrossQ, **ZOO, **her)
        method = "sb3-crossq-her" if goal_mode else "sb3-crossq-flat"

    def predict(obs):
        if normalize:
            obs = env.normalize_obs(obs)
        return model.predict(obs, deterministic=True)[0]

    return Peer(method, model, predict, goal_mode)


def train_peer(peer: Peer, arm: str, seed: int, eval_every: int, episodes: int, budget_s: float,
               max_steps: int, threads: int) -> Curve:
    """Train until 95 %, `budget_s` training seconds or `max_steps`, evaluating every
    `eval_every` steps exactly as reacher's training does its periodic evaluations."""
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(threads or os.cpu_count() or 1)  # after SB3's own setup, as reacher's Training does
    eval_env = reach_env(arm, peer.goal_mode)
    curve = Curve(peer.method, arm, seed)

    class Evaluator(BaseCallback):
        def _on_training_start(self):
            self.start = time.perf_counter()
            self.eval_time = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % eval_every and self.num_timesteps < max_steps:
                return True
            t0 = time.perf_counter()
            # The k-th evaluation sees the episodes reacher's k-th periodic evaluation sees.
            result = evaluate(peer.predict, eval_env, episodes, VALIDATION_SEED + len(curve.points) * episodes)
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
    peer.model.learn(total_timesteps=max_steps, callback=Evaluator())
    curve.total_wall = time.perf_counter() - t0
    eval_env.close()
    return curve


def run_sb3(peer: str, arm: str, seed: int, eval_every: int, episodes: int, budget_s: float,
            max_steps: int, normalize: bool, threads: int, norm_reward: bool = False) -> Curve:
    return train_peer(make_peer(peer, arm, seed, normalize, norm_reward), arm, seed, eval_every, episodes,
                      budget_s, max_steps, threads)


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
        lower_bounds = {}  # peer -> seconds it took at least to reach the goal
        for method in dict.fromkeys(c.method for c in curves if c.arm == arm):
            runs = [c for c in curves if c.arm == arm and c.method == method]
            theirs = median_to_goal(runs)
            line = f"  {method:<16} {len(runs)} seed(s): "
            if theirs is None:
                longest = max(c.final[0] for c in runs)
                best = max((p[2] for c in runs for p in c.points if p[2] is not None), default=0.0)
                line += f"not reached by the median seed (longest run {longest:.0f} s, best {100 * best:.0f} %)"
                if mine is not None and method != "reacher":
                    line += f"; ratio ≥ {longest / mine[0]:.1f}× reacher's"
            else:
                line += f"{theirs[0]:.1f} s, {theirs[1]:,.0f} steps"
                if mine is not None and method != "reacher":
                    line += f"  → {theirs[0] / mine[0]:.1f}× reacher's seconds, {theirs[1] / mine[1]:.1f}× its steps"
            if method != "reacher":
                lower_bounds[method] = (theirs[0], False) if theirs else (max(c.final[0] for c in runs), True)
            print(line)
        if mine is not None and lower_bounds:
            # The yardstick: reacher against the fastest peer of this same run.
            # A peer stopped below the goal only bounds its time from below.
            method, (seconds, censored) = min(lower_bounds.items(), key=lambda kv: kv[1][0])
            if not censored:
                print(f"  fastest peer: {method}, {seconds:.1f} s → reacher {seconds / mine[0]:.1f}× ahead")
            else:
                line = (f"  fastest peer: not known ({method} stopped below {100 * GOAL:.0f} % at {seconds:.0f} s), "
                        f"so reacher ≥ {seconds / mine[0]:.1f}× ahead")
                reached = {m: s for m, (s, c) in lower_bounds.items() if not c}
                if reached:
                    method, seconds = min(reached.items(), key=lambda kv: kv[1])
                    line += f"; fastest to reach it: {method}, {seconds:.1f} s ({seconds / mine[0]:.1f}×)"
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
                    color=COLOURS.get(c.method), alpha=0.8, label=label)
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


def fail(message: str) -> int:
    """One line on stderr, as reacher's CLI reports bad input; nothing has run yet."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="two_link",
                        help="comma-separated arms, each a built-in name or FILE[@END_EFFECTOR]")
    parser.add_argument("--seeds", default="0,1,2", help="reacher's seeds ('' skips reacher)")
    parser.add_argument("--reacher-steps", type=int, default=0,
                        help="reacher's steps (0: its default, train until success)")
    parser.add_argument("--peers", default=DEFAULT_PEERS, help=f"peers, any of {', '.join(PEERS)}")
    parser.add_argument("--sb3-seeds", default=None,
                        help="seeds for the peers (default: --seeds; '' skips the peers)")
    parser.add_argument("--sb3-budget", type=float, default=600.0, help="training seconds per peer run at most")
    parser.add_argument("--sb3-steps", type=int, default=100_000, help="env steps per peer run at most")
    parser.add_argument("--sb3-normalize", action=argparse.BooleanOptionalAction, default=True,
                        help="normalise the peers' observations (VecNormalize, as RL Zoo does for FetchReach)")
    parser.add_argument("--sb3-norm-reward", action="store_true",
                        help="also normalise the peers' rewards, as RL Zoo's normalize: True does")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads for every method (0: each one's default: one for reacher, all cores for the peers); 1 on a busy machine")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--final-episodes", type=int, default=100,
                        help="episodes of reacher's final evaluation (the goals are stated on 100)")
    parser.add_argument("--plot", type=Path, default=Path("docs/learning.png"))
    parser.add_argument("--gym-reacher", action="store_true", help="also run on Gymnasium's Reacher-v5")
    parser.add_argument("--gym-reacher-steps", type=int, default=50_000)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    sb3_seeds = seeds if args.sb3_seeds is None else [int(s) for s in args.sb3_seeds.split(",") if s]
    peers = [p for p in args.peers.split(",") if p] if sb3_seeds else []
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        return fail(f"--peers: unknown {', '.join(unknown)} (choose from {', '.join(PEERS)})")
    missing = missing_modules(peers)
    if missing:
        return fail("; ".join(f"{', '.join(needing)} need{'s' * (len(needing) == 1)} {PIP_NAMES[module]}, "
                              f"which is not installed" for module, needing in missing.items())
                    + ": pip install -e '.[bench]', or leave them out of --peers")
    if peers:
        from importlib.metadata import version

        print("  peers: " + ", ".join(f"{PIP_NAMES[m]} {version(PIP_NAMES[m])}"
                                      for m in dict.fromkeys(m for p in peers for m in PEERS[p])), flush=True)
    if "crossq" in peers and not crossq_takes_goals():
        print("  note: this sb3-contrib's CrossQ takes no Dict observations, so no HER: "
              "it runs on the flat observation without HER (sb3-crossq-flat)", flush=True)
    reacher_overrides = {"threads": args.threads, **({"steps": args.reacher_steps} if args.reacher_steps else {})}
    curves = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for arm in args.arms.split(","):
            for seed in seeds:
                c = run_reacher(arm, seed, args.eval_every, args.episodes, workdir, args.final_episodes,
                                **reacher_overrides)
                curves.append(c)
                print(f"  reacher {arm} seed {seed}: {c.final[1]:,} steps, wall {c.total_wall:.1f} s, "
                      f"success {100 * c.final[2]:.0f} %, distance {100 * c.final[3]:.2f} cm", flush=True)
            for peer in peers:
                for seed in sb3_seeds:
                    curves.append(run_sb3(peer, arm, seed, args.eval_every, args.episodes, args.sb3_budget,
                                          args.sb3_steps, args.sb3_normalize, args.threads, args.sb3_norm_reward))
        if curves:
            report(curves)
            plot(curves, args.plot, args.episodes)
        if args.gym_reacher:
            gym_reacher(seeds, args.gym_reacher_steps, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
