"""Learning from the controller it drives, measured: the cloning term (`teacher_weight`) and
what might keep it from collapsing.

For an arm driven through `ee`, the scripted proportional policy
a_T(s) = clip(−(end effector − target) / (ee_speed · control period), −1, 1) is a teacher;
`teacher_weight` w adds w · mean |μ(s) − a_T(s)|² to the actor's loss on every replayed state
(reacher.ddpg.update). Each variant is a full default `reacher train` run, success-gated
and capped by `--max-steps` (so that load does not change the result), one torch thread,
differing only in:

  default     no cloning term
  bc          teacher_weight = --weight
  decay       bc, and teacher_decay_updates = --decay: the weight falls linearly to 0
  qfilter     bc for the first --decay updates, then kept only where the critic rates the
              teacher's action above the actor's, Q1(s, a_T) > Q1(s, μ(s)) (the Q-filter of
              Nair et al. 2018, taking over once the critic has learnt)
  normalised  the term's gradient with respect to the action rescaled, per batch, to --weight
              times the norm of −mean Q's, so the balance does not move with Q's scale

`qfilter` and `normalised` are measured here only (an Agent subclass, its actor step through
autograd); `bc` and `decay` are the package's own fields. The version of this script before
the field existed (git history) measured the teacher's rollouts as warm-up and the target
actor as the kept policy (docs/benchmarks.md, "Learning from the controller").

    python scripts/bench_teacher.py [--arms panda gen3] [--seeds 0 1] [--max-steps 20000]
                                    [--variants default bc decay qfilter normalised]
                                    [--weight 1] [--decay 10000] [--out DIR]

Per run: steps at the first periodic evaluation ≥ 95 %, steps at the stop and why, and the
final 100-episode evaluation of the kept policy (success, mean final distance).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import torch

from reacher.config import Config
from reacher.ddpg.agent import Agent
from reacher.run.training import Training

ROOT = Path(__file__).resolve().parent.parent
ARMS = {"panda": (str(ROOT / "examples/arms/panda.xml"), "attachment_site"),
        "gen3": (str(ROOT / "examples/arms/gen3.xml"), "pinch_site"),
        "xarm7": (str(ROOT / "examples/arms/xarm7.xml"), "attachment_site"),
        "four_link": (str(ROOT / "examples/arms/four_link.xml"), "tip"),
        "servo_arm": (str(ROOT / "examples/arms/servo_arm.xml"), "tip"),
        "three_link": ("three_link", "fingertip")}
VARIANTS = ("default", "bc", "decay", "qfilter", "normalised")


class _AutogradActorStep(Agent):
    """The hand-derived critic step, then the actor step through autograd on
    −Q1(s, μ(s)) + λ · mean(mask · |μ(s) − a_T|²), λ and the mask from `_balance`."""

    def update(self, obs, action, reward, next_obs, terminated, discount=None):
        self.updates += 1
        metrics = self._hand(obs, action, reward, next_obs, terminated, discount, actor_step=False)
        s = self.norm(obs)
        a = self.actor(s)
        q = self.critic(s, a, members=1)[0]
        a_teacher = self.teacher_action(obs)
        miss = (a - a_teacher).square().sum(-1)
        weight, mask = self._balance(s, a, q, a_teacher, miss)
        loss = -q.mean() + weight * (mask * miss).mean()
        self.actor_opt.descend(loss)
        online, targets = self.flat.data
        targets.lerp_(online, self.hyper.tau)
        return {**metrics, "actor_loss": loss.detach()}


class QFilterAgent(_AutogradActorStep):
    """Cloning on every state for `hyper.teacher_decay_updates` updates, then only where the
    critic prefers the teacher's action."""

    def teacher_weight(self) -> float:
        return self.hyper.teacher_weight

    def _balance(self, s, a, q, a_teacher, miss):
        if self.updates <= self.hyper.teacher_decay_updates:
            return self.teacher_weight(), torch.ones_like(miss)
        with torch.no_grad():
            better = (self.critic(s, a_teacher, members=1)[0] > q).float().squeeze(-1)
        return self.teacher_weight(), better


class NormalisedAgent(_AutogradActorStep):
    """The cloning gradient (w.r.t. the action) scaled to teacher_weight × |∂(−mean Q)/∂a|."""

    def _balance(self, s, a, q, a_teacher, miss):
        grad_q, = torch.autograd.grad(-q.mean(), a, retain_graph=True)
        with torch.no_grad():
            grad_bc = 2.0 * (a - a_teacher) / a.shape[0]
            weight = self.teacher_weight() * grad_q.norm() / grad_bc.norm().clamp_min(1e-12)
        return weight, torch.ones_like(miss)


AGENTS = {"qfilter": QFilterAgent, "normalised": NormalisedAgent}


class Variant(Training):
    agent_class: type | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.agent_class is not None:  # same weights, same state; only the update differs
            self.agent.__class__ = self.agent_class


def changes(variant: str, weight: float, decay: int) -> dict:
    if variant == "default":
        return {}
    if variant in ("decay", "qfilter"):
        return {"teacher_weight": weight, "teacher_decay_updates": decay}
    return {"teacher_weight": weight}


def first_95(metrics: Path) -> int | None:
    """The step of the first periodic evaluation at 95 % or more (the last row is the final
    evaluation's, at the same step as the stop: left out)."""
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))[:-1]
    return next((int(r["step"]) for r in rows if r["success_rate"] and float(r["success_rate"]) >= 0.95), None)


def run(arm: str, seed: int, max_steps: int, variant: str, weight: float, decay: int,
        out: Path | None = None) -> dict:
    path, effector = ARMS[arm]
    config = Config(arm=path, end_effector=effector, seed=seed, max_steps=max_steps, threads=1,
                    control="ee", **changes(variant, weight, decay))
    cls = type(variant, (Variant,), {"agent_class": AGENTS.get(variant)})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_teacher_") as tmp:
        where = out / f"{arm}-s{seed}-{variant}" if out else Path(tmp) / "run"
        outcome = cls(config, where, progress=False).run()
        first = first_95(where / "metrics.csv")
    e = outcome.evaluation
    return {"success": e.success_rate, "distance": e.mean_final_distance, "first95": first,
            "steps": outcome.env_steps, "stop": outcome.stop_reason, "wall": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=["panda"], choices=list(ARMS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=20_000)
    parser.add_argument("--variants", nargs="+", default=["default", "bc"], choices=VARIANTS)
    parser.add_argument("--weight", type=float, default=1.0, help="teacher_weight of every variant but default")
    parser.add_argument("--decay", type=int, default=10_000, help="teacher_decay_updates (decay, qfilter)")
    parser.add_argument("--out", type=Path, help="keep each run's directory under this folder")
    args = parser.parse_args(argv)
    print(f"--max-steps {args.max_steps}, control ee, 1 thread, weight {args.weight:g}, decay {args.decay}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print("| arm | seed | variant | first ≥ 95 % eval (step) | steps at stop | stopped | success | "
          "distance cm | wall s |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for arm in args.arms:
        for seed in args.seeds:
            for variant in args.variants:
                r = run(arm, seed, args.max_steps, variant, args.weight, args.decay, args.out)
                first = f"{r['first95']:,}" if r["first95"] else "never"
                print(f"| {arm} | {seed} | {variant} | {first} | {r['steps']:,} | {r['stop']} | "
                      f"{100 * r['success']:.0f} % | {100 * r['distance']:.2f} | {r['wall']:.0f} |", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
