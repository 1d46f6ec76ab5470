"""Learning from the controller it drives, measured: warm-up and evaluated policy variants.

For an arm driven through `ee`, the scripted proportional policy
action = clip((target − end effector) / (ee_speed · control period), −1, 1) (see
scripts/bench_controllers.py) is a teacher. Each variant is a `reacher train` run with the
defaults, steps-limited (`--steps`, so that load does not change the result), one torch
thread, differing only in:

  default   uniformly random warm-up actions; the online actor is evaluated and kept
  teacher   the warm-up's actions are the teacher's, plus the exploration noise
            (noise_scale), instead of uniform random ones
  target    the Polyak-averaged (target) actor is the evaluated and kept policy
  both      teacher and target
  qfilter   teacher, and a behaviour-cloning term on the actor, (μ(s) − teacher(s))², kept
            only where the critic rates the teacher's action above the actor's (the
            Q-filter of Nair et al. 2018); the teacher's action is a function of the
            observation, so it is there for every replayed (and relabelled) state
  bc        qfilter without the filter: the cloning term on every state
  bcnorm    bc with the Q term scaled as TD3+BC does (Fujimoto and Gu 2021):
            −(2.5 / mean|Q|)·mean Q + mean |μ(s) − a_T|², so the balance does not move with Q's scale

Variants are subclasses of reacher.run.training.Training made here; nothing in the package
changes. Each run prints its final evaluation (100 episodes of the kept policy).

    python scripts/bench_teacher.py [--arms panda three_link] [--seeds 0 1] [--steps 6000]
                                    [--variants default teacher target both qfilter bc bcnorm]
                                    [--control ee] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reacher.config import Config
from reacher.ddpg.agent import Agent
from reacher.ddpg.networks import NumpyPolicy
from reacher.run import gate, settings
from reacher.run.evaluation import evaluate
from reacher.run.training import Training

ROOT = Path(__file__).resolve().parent.parent
ARMS = {"panda": (str(ROOT / "examples/arms/panda.xml"), "attachment_site"),
        "three_link": ("three_link", "fingertip"),
        "four_link": (str(ROOT / "examples/arms/four_link.xml"), "tip"),
        "gen3": (str(ROOT / "examples/arms/gen3.xml"), "pinch_site"),
        "xarm7": (str(ROOT / "examples/arms/xarm7.xml"), "attachment_site")}


BC_WEIGHT = 1.0  # of the mean squared action error, beside −mean Q (Q is a few units here)


class QFilterAgent(Agent):
    """The default critic step, then an actor step through autograd on
    −Q1(s, μ(s)) + BC_WEIGHT · mean(1[Q1(s, a_T) > Q1(s, μ(s))] · |μ(s) − a_T|²)."""

    teacher = None  # raw observations (B, obs_dim) → the teacher's actions (B, act_dim)
    q_filter = True  # clone only where the critic prefers the teacher's action
    q_scale = None  # TD3+BC's alpha: the Q term is scaled by alpha / mean|Q|

    def update(self, obs, action, reward, next_obs, terminated, discount=None):
        self.updates += 1
        metrics = self._hand(obs, action, reward, next_obs, terminated, discount, actor_step=False)
        s = self.norm(obs)
        a = self.actor(s)
        q = self.critic(s, a, members=1)[0]
        with torch.no_grad():
            a_teacher = self.teacher(obs)
            better = (self.critic(s, a_teacher, members=1)[0] > q).float() if self.q_filter else torch.ones_like(q)
        scale = 1.0 if self.q_scale is None else self.q_scale / q.abs().mean().detach().clamp_min(1e-6)
        loss = -scale * q.mean() + BC_WEIGHT * (better * (a - a_teacher).square().sum(-1)).mean()
        self.actor_opt.descend(loss)
        online, targets = self.flat.data
        targets.lerp_(online, self.hyper.tau)
        return {**metrics, "actor_loss": loss.detach(), "teacher_better": better.mean()}


class Variant(Training):
    """Training with the teacher's warm-up, the target actor as the evaluated policy and/or
    the Q-filtered behaviour-cloning term."""

    teacher = False
    target = False
    qfilter = False  # the cloning term (QFilterAgent)
    q_filter = True  # ... kept only where the critic prefers the teacher
    q_scale = None  # ... beside a Q term scaled as TD3+BC's

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.qfilter:  # the same initial weights as the default agent's
            agent = QFilterAgent(self.obs_dim, self.act_dim, **settings.agent_kwargs(self.config))
            agent.load_state_dict(self.agent.state_dict())
            layout = self.env.get_wrapper_attr("goal_layout")
            step = self.env.unwrapped.controller.max_step
            agent.teacher = lambda obs: (-obs[:, layout.delta] / step).clamp(-1.0, 1.0)
            agent.q_filter = self.q_filter
            agent.q_scale = self.q_scale
            self.agent = agent
        # The gate evaluates (and keeps) this variant's agent, and with `target` its target actor.
        kept = self.gate.kept_policy
        self.gate = (TargetGate if self.target else gate.Gate)(self.config, self.agent, self.eval_env,
                                                               self.gate.stopped)
        self.gate.kept_policy = kept

    def _teacher_action(self, obs: np.ndarray) -> np.ndarray:
        layout = self.env.get_wrapper_attr("goal_layout")
        step = self.env.unwrapped.controller.max_step
        return np.clip(-np.ravel(obs)[layout.delta] / step, -1.0, 1.0)

    def _action(self, obs):
        if not (self.teacher and self.state.env_steps < self.config.warmup_steps):
            return super()._action(obs)
        # The warm-up acts with the teacher, plus the exploration noise, so the replay holds
        # more than the teacher's one line to each target.
        return np.clip(self._teacher_action(obs) + self.config.noise_scale * self.rng.standard_normal(self.act_dim),
                       -1.0, 1.0)


class TargetGate(gate.Gate):
    """The target actor as the evaluated and kept policy: periodic evaluations act with it,
    the kept copy is its weights (as "actor"), and the final evaluation runs that copy."""

    _final = False

    def measure(self, episodes, seed):
        if self._final:
            return super().measure(episodes, seed)
        policy = NumpyPolicy(self.agent.actor_target, self.agent.norm)
        return evaluate(policy, self.env, episodes, seed, stop=self.stopped)

    def keep(self, state, measured):
        super().keep(state, measured)
        self.kept_policy["actor"] = {k: v.clone() for k, v in self.agent.actor_target.state_dict().items()}

    def final(self):
        self._final = True
        try:
            return super().final()
        finally:
            self._final = False


def run(arm: str, seed: int, steps: int, variant: str, control: str | None, out: Path | None = None) -> tuple:
    path, effector = ARMS[arm]
    cls = type(variant, (Variant,), {"teacher": variant in ("teacher", "both", "qfilter", "bc", "bcnorm"),
                                     "target": variant in ("target", "both"),
                                     "qfilter": variant in ("qfilter", "bc", "bcnorm"), "q_filter": variant == "qfilter",
                                     "q_scale": 2.5 if variant == "bcnorm" else None})
    extra = {"control": control} if control else {}
    config = Config(arm=path, end_effector=effector, seed=seed, steps=steps, threads=1, **extra)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_teacher_") as run_dir:
        where = out / f"{arm}-s{seed}-{variant}" if out else Path(run_dir) / "run"
        outcome = cls(config, where, progress=False).run()
    e = outcome.evaluation
    return e.success_rate, e.mean_final_distance, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=["panda", "three_link"], choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--variants", nargs="+", default=["default", "teacher", "target", "both"],
                        choices=["default", "teacher", "target", "both", "qfilter", "bc", "bcnorm"])
    parser.add_argument("--control", default="ee", help="control for every arm (the teacher needs ee)")
    parser.add_argument("--out", type=Path, help="keep each run's directory under this folder")
    args = parser.parse_args(argv)
    print(f"--steps {args.steps}, control {args.control}, 1 thread; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"  {'arm':<11} {'seed':>4} {'variant':<8} {'success':>8} {'distance cm':>11} {'wall s':>7}", flush=True)
    for arm in args.arms:
        for seed in args.seeds:
            for variant in args.variants:
                success, distance, wall = run(arm, seed, args.steps, variant, args.control, args.out)
                print(f"  {arm:<11} {seed:>4} {variant:<8} {100 * success:7.0f}% {100 * distance:11.2f} {wall:7.0f}",
                      flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
