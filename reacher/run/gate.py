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

from reacher.run.evaluation import EVAL_SEED, VALIDATION_SEED, Evaluation, evaluate

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


# --- the gate applied to a run ------------------------------------------------------------------

class Gate:
    """A run's evaluations under the rule above: each periodic one with the confirmation of
    its policy when it nominates it, the policy kept (its actor and normaliser, as the
    checkpoint's ``policy``), and the final evaluation of that kept policy.

    `stopped` says a signal asked the run to stop: an evaluation it cuts short returns None,
    with nothing changed, and a resumed run does it again, the same."""

    def __init__(self, config, agent, env, stopped):
        self.config, self.agent, self.env, self.stopped = config, agent, env, stopped
        self.kept_policy: dict | None = None  # of state.best

    def measure(self, episodes: int, seed: int) -> Evaluation | None:
        """The agent's policy on `episodes` episodes from `seed`; None when a signal cut it short."""
        return evaluate(self.agent.act, self.env, episodes, seed, stop=self.stopped)

    def periodic(self, state) -> tuple[Evaluation, list[Evaluation]] | None:
        """A periodic evaluation and, when it reaches success_target in a success-gated
        run, the confirmations of the same policy, on fresh validation blocks; records in
        `state` (a `TrainingState`) what they decided and keeps the better policy."""
        c = self.config
        block = state.periodic_evals
        seed = lambda k: VALIDATION_SEED + (block + k) * c.eval_episodes  # noqa: E731  fresh blocks
        result, confirmations = self.measure(c.eval_episodes, seed(0)), []
        if result is not None and not c.steps and (result.success_rate or 0.0) >= c.success_target:
            for k in range(c.success_evals):
                left = (c.success_evals - k) * c.eval_episodes
                if not still_possible(confirmations, left, c.success_target):
                    break
                confirmations.append(self.measure(c.eval_episodes, seed(1 + k)))
                if confirmations[-1] is None:
                    return None
        if result is None:
            return None
        state.periodic_evals += 1 + len(confirmations)
        state.confirmed = bool(confirmations) and confirmed(confirmations, c.success_target)
        state.success_streak = len(confirmations) if state.confirmed else 0
        measured = pooled([result, *confirmations])  # the policy on all its episodes
        if state.confirmed or state.best is None or rank(measured) > rank(Evaluation(**state.best["evaluation"])):
            self.keep(state, measured)
        return result, confirmations

    def keep(self, state, measured: Evaluation) -> None:
        """Keep a copy of the policy just evaluated as the one the run writes."""
        agent = self.agent.state_dict()
        self.kept_policy = {"actor": agent["actor"], "norm": agent["norm"]}
        state.best = {"step": state.env_steps, "evaluation": measured.as_dict()}

    def final(self) -> Evaluation | None:
        """The kept policy on the final evaluation's episodes (EVAL_SEED, which nothing was
        selected on). The agent's own weights (what a resumed run trains on from here) are
        put back afterwards."""
        episodes = self.config.final_eval_episodes
        if self.kept_policy is None:
            return self.measure(episodes, EVAL_SEED)
        last = self.agent.state_dict()
        self.agent.load_state_dict(self.kept_policy, policy_only=True)
        try:
            return self.measure(episodes, EVAL_SEED)
        finally:
            self.agent.load_state_dict(last, policy_only=True)


def describe_confirmation(confirmations: list[Evaluation], passed: bool) -> str:
    wins = sum(map(successes, confirmations))
    n = sum(r.episodes for r in confirmations)
    verdict = "confirmed" if passed else "not confirmed, training goes on"
    return (f"  confirmation: {wins}/{n} fresh episodes, lower bound "
            f"{100 * lower_bound(wins, n):.1f} % ({100 * CONFIDENCE:g} %): {verdict}")


def unconfirmable(config) -> str | None:
    """A warning when success_target cannot be confirmed on the episodes the gate has."""
    n = config.success_evals * config.eval_episodes
    if config.steps or lower_bound(n, n) >= config.success_target:
        return None
    return (f"warning: success_target {config.success_target:g} cannot be confirmed on "
            f"success_evals x eval_episodes = {n} episodes (all {n} successes show at "
            f"most {100 * lower_bound(n, n):.1f} % with {100 * CONFIDENCE:g} % "
            f"confidence): the run will go on to max_steps")
