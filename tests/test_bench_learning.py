"""The learning benchmark's peers: each one builds, trains a few updates and is evaluated
the way reacher is, and a peer whose package is missing is refused before anything runs.

Learning itself is not tested here (tests/test_goal_sb3.py does that for TD3 + HER);
these runs are a few hundred steps, so a broken peer fails in seconds, not in the
benchmark an hour later.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import reacher  # noqa: F401  (registers the environments)
from reacher.run.evaluation import VALIDATION_SEED, evaluate
from reacher.run.metrics import read_metrics

pytest.importorskip("stable_baselines3",
                    reason="stable-baselines3 is not installed (it comes with: pip install -e '.[test]')")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_learning.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_learning", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
HAS_CONTRIB = importlib.util.find_spec("sb3_contrib") is not None
EPISODE_STEPS = 50  # two_link's 1-s episode
EVAL_EVERY = 60
EPISODES = 2
# RL Zoo's learning_starts (1000) would leave these tiny runs without a single update
# (after one full episode HER has something to relabel), and its 1e6-transition buffer
# takes seconds to set up; the settings that matter to the benchmark stay.
SMALL = dict(learning_starts=EPISODE_STEPS, buffer_size=1000, batch_size=32)


NEEDS_CONTRIB = pytest.mark.skipif(not HAS_CONTRIB, reason="sb3-contrib is not installed "
                                   "(it comes with: pip install -e '.[test]')")
PEER_PARAMS = [pytest.param(peer, marks=[NEEDS_CONTRIB] if "sb3_contrib" in modules else [], id=peer)
               for peer, modules in bench.PEERS.items()]


@pytest.mark.parametrize("peer", PEER_PARAMS)
def test_peer_trains_and_is_evaluated_like_reacher(peer):
    torch.set_num_threads(1)
    built = bench.make_peer(peer, "two_link", seed=0, **SMALL)
    curve = bench.train_peer(built, "two_link", 0, EVAL_EVERY, EPISODES, budget_s=600,
                             max_steps=2 * EVAL_EVERY, threads=1)

    assert built.model._n_updates > 0, "the peer never updated its networks"
    assert [p[1] for p in curve.points] == [EVAL_EVERY, 2 * EVAL_EVERY]
    for seconds, _, success, distance, _ in curve.points:
        assert seconds > 0 and 0 <= success <= 1 and 0 < distance < 1
    # The last evaluation is reacher's second periodic evaluation: the same episodes,
    # the same measure (a deterministic policy gives the same numbers again).
    again = evaluate(built.predict, bench.reach_env("two_link", built.goal_mode), EPISODES,
                     VALIDATION_SEED + EPISODES)
    assert curve.final[2:] == (again.success_rate, again.mean_final_distance, again.mean_return)


def test_goal_peers_get_goal_observations_and_her():
    from stable_baselines3 import HerReplayBuffer

    built = bench.make_peer("sac-her", "two_link", seed=0, buffer_size=1000)
    assert built.goal_mode and isinstance(built.model.replay_buffer, HerReplayBuffer)
    assert built.model.replay_buffer.copy_info_dict == bench.HER_COPY_INFO_DICT
    assert (built.model.gamma, built.model.batch_size, built.model.learning_starts) == (0.95, 256, 1000)


@NEEDS_CONTRIB
def test_tqc_has_rl_zoos_panda_reach_networks():
    built = bench.make_peer("tqc-her", "two_link", seed=0, buffer_size=1000)
    critic = built.model.critic
    assert built.goal_mode and critic.n_critics == 1
    widths = [m.out_features for m in built.model.actor.latent_pi if isinstance(m, torch.nn.Linear)]
    assert widths == [64, 64]


@NEEDS_CONTRIB
def test_crossq_label_says_whether_it_had_goals():
    built = bench.make_peer("crossq", "two_link", seed=0, buffer_size=1000)
    assert built.goal_mode == bench.crossq_takes_goals()
    assert built.method == ("sb3-crossq-her" if built.goal_mode else "sb3-crossq-flat")
    assert np.ndim(built.predict(bench.reach_env("two_link", built.goal_mode).reset(seed=0)[0])) == 1


def test_a_peer_without_its_package_is_refused_before_anything_trains(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sb3_contrib" else real(name, *a))

    def must_not_run(*args, **kwargs):
        raise AssertionError("trained before refusing the peer")

    monkeypatch.setattr(bench, "run_reacher", must_not_run)
    monkeypatch.setattr(bench, "run_sb3", must_not_run)
    assert bench.main(["--seeds", "0", "--peers", "sac-her,tqc-her,crossq"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "tqc-her, crossq" in err and "sb3-contrib" in err and "sac-her" not in err


def test_report_gives_reachers_ratio_to_the_fastest_peer(capsys):
    def curve(method, seed, seconds_to_goal, final_rate=0.96):
        return bench.Curve(method, "two_link", seed, [(seconds_to_goal / 2, 2000, 0.5, 0.05, -5.0),
                                                      (seconds_to_goal, 4000, final_rate, 0.01, -1.0)])

    ours = [curve("reacher", seed, s) for seed, s in enumerate((8.0, 10.0, 30.0))]  # median 10 s
    bench.report(ours + [curve("sb3-sac-her", 0, 60.0), curve("sb3-tqc-her", 0, 120.0)])
    assert "fastest peer: sb3-sac-her, 60.0 s → reacher 6.0× ahead" in capsys.readouterr().out
    # A peer stopped below 95 % sooner than the others reached it only bounds the ratio.
    bench.report(ours + [curve("sb3-sac-her", 0, 60.0), curve("sb3-crossq-flat", 0, 40.0, final_rate=0.5)])
    out = capsys.readouterr().out
    assert "reacher ≥ 4.0× ahead; fastest to reach it: sb3-sac-her, 60.0 s (6.0×)" in out


def test_reachers_time_to_goal_comes_from_its_periodic_evaluations(tmp_path):
    every = 2 * EPISODE_STEPS  # reacher evaluates between episodes
    curve = bench.run_reacher("two_link", 0, every, EPISODES, tmp_path, steps=2 * every, threads=1)
    # The periodic evaluations are the ones the peers have too; the final one (other
    # episodes, run after training) is kept apart, with its training seconds intact.
    assert [p[1] for p in curve.points] == [every]
    assert curve.final[1] == 2 * every
    # Training seconds leave out every evaluation run before them, and only those: a row's
    # clocks are both read before its own evaluation, so at the first none has run yet,
    # and the final row's eval_time is the first evaluation's time.
    first, final = read_metrics(next(tmp_path.glob("*/metrics.csv")))
    assert first["eval_time"] == 0 and final["eval_time"] > 0
    assert curve.points[0][0] == first["wall_time"]
    assert curve.final[0] == final["wall_time"] - final["eval_time"]
