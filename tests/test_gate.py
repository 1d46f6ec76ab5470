"""The success gate (reacher.run.gate): a run stops on success only when the policy it keeps is
confirmed on fresh episodes, and the policy it writes is the best one evaluated."""

from __future__ import annotations

import hashlib

import pytest
import torch

from reacher.config import Config
from reacher.run import checkpoint as ckpt
from reacher.run import gate
from reacher.run.evaluation import EVAL_SEED, Evaluation
from reacher.run.metrics import read_metrics
from reacher.run.policy import load_policy
from reacher.run.training import Training

SMALL = dict(warmup_steps=100, batch_size=16, hidden_sizes=(16, 16), eval_every=100, eval_episodes=50,
             final_eval_episodes=100, checkpoint_every=10_000, threads=1)


def test_the_wilson_bound_needs_147_of_150_for_95_percent():
    assert gate.lower_bound(147, 150) >= 0.95 > gate.lower_bound(146, 150)
    assert gate.lower_bound(100, 100) == pytest.approx(100 / (100 + 1.6448536 ** 2))  # n / (n + z²)
    assert gate.lower_bound(48, 50) < 0.95  # one 96 % evaluation proves little
    assert gate.lower_bound(0, 10) == 0.0


def _digest(agent) -> str:
    return hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in agent.actor.parameters())).hexdigest()


def _scripted(monkeypatch, rates):
    """Evaluations that report the next of `rates` (periodic and confirmation ones; the
    final one reports 1.0), recording the seed and the actor's weights each one ran."""

    calls = []

    def fake(policy, env, episodes, seed, **kwargs):
        rate = 1.0 if seed == EVAL_SEED else rates[min(len(calls), len(rates) - 1)]
        calls.append((seed, _digest(policy.__self__), rate))
        return Evaluation(rate, 0.05 * (1 - rate), -1.0, episodes)

    monkeypatch.setattr(gate, "evaluate", fake)
    return calls


def test_a_lucky_evaluation_does_not_stop_the_run(tmp_path, monkeypatch):
    # 98 % nominates the policy; the same policy at 90 % on fresh episodes fails at once
    # (45/50 can no longer reach the bound), and training goes on to the cap.
    calls = _scripted(monkeypatch, [0.98, 0.90, 0.5])
    config = Config(steps=0, max_steps=400, **SMALL)
    outcome = Training(config, tmp_path / "run", progress=False).run()
    assert outcome.stop_reason == "max_steps" and outcome.env_steps == 400
    assert calls[0][1] == calls[1][1]  # the confirmation measured the nominated policy
    assert len({seed for seed, _, _ in calls}) == len(calls)  # every evaluation on fresh episodes
    assert len(calls) == 2 + 2 + 1  # step 100 with one confirmation, steps 200 and 300, the final


def test_a_confirmed_policy_stops_the_run(tmp_path, monkeypatch):
    calls = _scripted(monkeypatch, [0.5, 0.98, 1.0, 1.0, 0.98])
    config = Config(steps=0, max_steps=1_000, **SMALL)
    outcome = Training(config, tmp_path / "run", progress=False).run()
    assert outcome.stop_reason == "success" and outcome.env_steps == 200
    assert len({digest for _, digest, _ in calls[1:]}) == 1  # nominated, confirmed and finally measured
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.csv")] == [100, 200]


def test_the_kept_policy_is_the_best_evaluated(tmp_path, monkeypatch):
    # A fixed 500-step run evaluated at 100..400: the step-200 policy is the best.
    calls = _scripted(monkeypatch, [0.4, 0.9, 0.6, 0.8])
    config = Config(steps=500, **SMALL)
    training = Training(config, tmp_path / "run", progress=False)
    training.run()
    periodic, final = calls[:-1], calls[-1]
    assert len(periodic) == 4 and final[0] == EVAL_SEED
    assert final[1] == periodic[1][1]  # the final evaluation measured step 200's policy
    saved = ckpt.load(tmp_path / "run")
    assert saved.metadata["best"]["step"] == 200
    assert _digest(training.agent) != final[1]  # the agent (what --resume trains on) is the last step's
    assert _digest(load_policy(tmp_path / "run").agent) == final[1]  # what evaluate, render, export load
    actor = training.agent.actor.state_dict()
    assert all(torch.equal(v, actor[k]) for k, v in saved.model["agent"]["actor"].items())


def test_a_policy_that_failed_its_confirmation_is_ranked_by_all_its_episodes(tmp_path, monkeypatch):
    # Step 100 nominates at 96 % and measures 80 % on fresh episodes (pooled 88 %); step
    # 200 measures 92 %. Ranked by its nominating evaluation alone (selected for being
    # high), step 100's policy would be kept.
    calls = _scripted(monkeypatch, [0.96, 0.80, 0.92, 0.5])
    config = Config(steps=0, max_steps=300, **SMALL)
    outcome = Training(config, tmp_path / "run", progress=False).run()
    assert outcome.stop_reason == "max_steps"
    best = ckpt.load(tmp_path / "run").metadata["best"]
    assert best["step"] == 200
    assert calls[-1][1] == calls[2][1]  # the final evaluation measured step 200's policy


def test_pooled_weights_every_episode_alike():
    result = gate.pooled([Evaluation(0.96, 0.01, -2.0, 50), Evaluation(0.80, 0.03, -4.0, 150)])
    assert result.episodes == 200
    assert result.success_rate == pytest.approx(0.84) and result.mean_final_distance == pytest.approx(0.025)
    assert result.mean_return == pytest.approx(-3.5)
    assert gate.pooled([Evaluation(None, None, -1.0, 10)]).success_rate is None
