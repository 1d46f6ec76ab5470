"""The success gate: when a success-gated run may say it succeeded, and which policy it keeps.

A periodic evaluation of 50 episodes swings by several points from one policy to the
next, so "≥ target on two evaluations in a row" stopped runs whose policy then measured
92-95 % on 100 fresh episodes (docs/benchmarks.md): each of those evaluations measured a
*different* policy, and the run stopped on the luckiest pair. The rule here:

1. A periodic evaluation whose success rate reaches ``success_target`` nominates its
   policy (the weights of that moment).
2. That same policy is evaluated again on ``success_evals`` × ``eval_episodes`` fresh
   episodes (seeds nothing was selected on, from the validation range).
3. The run stops on success only if a one-sided Wilson lower bound at ``CONFIDENCE``
   on the success rate of those confirmation episodes alone reaches ``success_target``.
   The nominating evaluation is left out of the bound: it was selected for being high.

So a run that says it succeeded has shown, with 95 % confidence, that its policy
succeeds on at least ``success_target`` of episodes like the evaluation's. With the
defaults (0.95, 3 × 50 episodes) that takes ≥ 147 of 150 successes. Confirmation stops
as soon as the bound can no longer be reached even if every remaining episode succeeds
(which only makes stopping rarer, never easier), so a nominated policy at 90 % costs
about one extra evaluation, not three.

The policy kept and written (the checkpoint's ``policy``, what `reacher evaluate`,
`render` and `export` read) is the best one evaluated: the confirmed one when the run
stops on success, else the one with the highest success rate (ties: the smaller final
distance; an env without success: the highest return). A nominated policy that failed
its confirmation is ranked by all the episodes it was measured on (`pooled`), not by
the evaluation that nominated it: that one was selected for being high (measured:
four_link nominated at 96 % kept that policy to the end, which then measured 82 % on
100 fresh episodes).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from reacher.run.evaluation import Evaluation

CONFIDENCE = 0.95  # of the one-sided lower bound a run must clear to stop on success


def successes(result: Evaluation) -> int:
    return round((result.success_rate or 0.0) * result.episodes)


def lower_bound(wins: int, episodes: int, confidence: float = CONFIDENCE) -> float:
    """One-sided Wilson score lower bound on a success rate from `wins` of `episodes`."""
    if episodes <= 0:
        return 0.0
    z = NormalDist().inv_cdf(confidence)
    p = wins / episodes
    centre = p + z * z / (2 * episodes)
    spread = z * math.sqrt(p * (1 - p) / episodes + z * z / (4 * episodes * episodes))
    return max(0.0, (centre - spread) / (1 + z * z / episodes))


def confirmed(results: list[Evaluation], target: float) -> bool:
    """Whether these confirmation evaluations of one policy clear the bound."""
    return lower_bound(sum(map(successes, results)), sum(r.episodes for r in results)) >= target


def still_possible(results: list[Evaluation], remaining_episodes: int, target: float) -> bool:
    """Whether the bound could still reach `target` if every remaining episode succeeded."""
    wins = sum(map(successes, results)) + remaining_episodes
    return lower_bound(wins, sum(r.episodes for r in results) + remaining_episodes) >= target


def pooled(results: list[Evaluation]) -> Evaluation:
    """Evaluations of one policy as one, each episode weighted alike."""
    n = sum(r.episodes for r in results)

    def mean(field: str) -> float | None:
        values = [getattr(r, field) for r in results]
        if any(v is None for v in values):
            return None
        return sum(v * r.episodes for v, r in zip(values, results)) / n

    return Evaluation(success_rate=mean("success_rate"), mean_final_distance=mean("mean_final_distance"),
                      mean_return=mean("mean_return"), episodes=n)


def rank(result: Evaluation) -> tuple:
    """Larger is better: success rate, then closeness; return where there is no success."""
    if result.success_rate is None:
        return (result.mean_return,)
    distance = result.mean_final_distance if result.mean_final_distance is not None else 0.0
    return (result.success_rate, -distance)
