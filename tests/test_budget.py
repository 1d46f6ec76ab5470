"""The training budget: exactly `steps` when given, else until success is met (or a cap)."""

from __future__ import annotations

import pytest

from reacher.config import Config
from reacher.run import settings as adapt
from reacher.run.metrics import read_metrics
from reacher.run.training import Training
from reacher.sim import fit

SMALL = dict(warmup_steps=100, batch_size=16, hidden_sizes=(16, 16), eval_every=200, eval_episodes=2,
             final_eval_episodes=2, checkpoint_every=10_000, threads=1)


def test_success_gate_stops_once_the_policy_is_confirmed(tmp_path):
    # Every episode succeeds within a 10-m radius: the step-200 evaluation nominates its policy,
    # and its 2 x 2 confirmation episodes bound the rate at 0.60 (95 %), above the target 0.5.
    config = Config(steps=0, max_steps=5_000, success_radius=10.0, success_target=0.5, success_evals=2,
                    **SMALL)
    outcome = Training(config, tmp_path / "run", progress=False).run()
    assert outcome.stop_reason == "success"
    assert outcome.env_steps == 200
    assert ("success confirmed at step 200: at least 50 % with 95 % confidence on 2 fresh evaluations"
            in outcome.describe_stop(config))
    steps = [row["step"] for row in read_metrics(tmp_path / "run" / "metrics.csv")]
    # One periodic evaluation; the final one, at its step, replaces its row (one row per step).
    assert steps == [200]


def test_success_gate_gives_up_at_the_cap(tmp_path):
    config = Config(steps=0, max_steps=600, success_radius=1e-9, **SMALL)
    outcome = Training(config, tmp_path / "run", progress=False).run()
    assert outcome.stop_reason == "max_steps" and outcome.env_steps == 600
    assert "hit max_steps (600)" in outcome.describe_stop(config)


def test_fixed_steps_ignore_success(tmp_path):
    config = Config(steps=600, success_radius=10.0, **SMALL)
    outcome = Training(config, tmp_path / "run", progress=False).run()
    assert outcome.stop_reason == "steps" and outcome.env_steps == 600


@pytest.mark.parametrize("actuators, width", [(1, 128), (2, 128), (3, 256), (7, 256)])
def test_auto_fields_scale_with_actuators(actuators, width):
    resolved = adapt.resolve(Config(), actuators)
    assert resolved.hidden_sizes == (width, width)
    assert resolved.max_steps == adapt.MAX_STEPS_PER_ACTION_DIM * actuators
    assert resolved.noise_decay_steps == adapt.NOISE_DECAY_STEPS_PER_ACTION_DIM * actuators
    # What the user set is kept; a fixed budget is also the noise horizon.
    kept = adapt.resolve(Config(hidden_sizes=(32,), max_steps=7, steps=900), actuators)
    assert (kept.hidden_sizes, kept.max_steps, kept.noise_decay_steps) == ((32,), 7, 900)


def test_budgets_scale_with_the_workspace_in_success_radii():
    two_link = adapt.resolve(Config(), 2, reach_m=0.21)  # the reference span: 0.21 m / 2 cm
    assert (two_link.max_steps, two_link.noise_decay_steps) == (50_000, 16_000)
    long_arm = adapt.resolve(Config(), 2, reach_m=2.0)  # ~10x the span, ~10x the budget
    assert long_arm.max_steps == 476_000 and long_arm.noise_decay_steps == 152_000
    # Only the ratio counts: twice the reach at twice the radius is the same task.
    assert adapt.resolve(Config(success_radius=0.04), 2, reach_m=0.42).max_steps == 50_000
    # A tiny workspace keeps half the reference budget; an ee controller's 3 dims count as 3.
    assert adapt.resolve(Config(), 3, reach_m=0.01).max_steps == 38_000  # 37,500 to the thousand
    # --max-steps, --steps and --noise-decay-steps still win.
    kept = adapt.resolve(Config(max_steps=7, noise_decay_steps=5), 2, reach_m=2.0)
    assert (kept.max_steps, kept.noise_decay_steps) == (7, 5)
    assert adapt.resolve(Config(steps=900), 2, reach_m=2.0).noise_decay_steps == 900


def test_a_run_resolves_its_budget_from_its_arm(tmp_path):
    from conftest import FOUR_LINK_XML  # links 0.06 + 0.05 + 0.04 + 0.035 = 0.185 m

    path = tmp_path / "four.xml"
    path.write_text(FOUR_LINK_XML)
    # joint control: one action per joint (auto would drive this 4-motor arm through ee, 3 actions)
    config = Config(arm=str(path), end_effector="tip", control="joint", **SMALL)
    training = Training(config, tmp_path / "run", progress=False)
    reach = training.env.unwrapped.arm.reach_m
    expected = int(round(adapt.MAX_STEPS_PER_ACTION_DIM * 4 * max(0.5, reach / 0.02 / 10.5), -3))
    assert training.config.max_steps == expected != 100_000


def test_settings_are_resolved_before_the_envs_and_agent_are_built(tmp_path, monkeypatch):
    """Nothing is read back from a built env: the envs get the resolved control and
    episode length, the agent plain keyword arguments, and the action dimensions the
    settings counted are the env's."""
    from conftest import FOUR_LINK_XML

    import reacher.run.training as train_module

    path = tmp_path / "four.xml"
    path.write_text(FOUR_LINK_XML)
    built = []
    real_env, real_agent = train_module.make_env, train_module.Agent
    monkeypatch.setattr(train_module, "make_env", lambda config, **kw: built.append(config) or real_env(config, **kw))
    monkeypatch.setattr(train_module, "Agent", lambda *a, **kw: built.append(kw) or real_agent(*a, **kw))
    training = Training(Config(arm=str(path), end_effector="tip", **SMALL), tmp_path / "run", progress=False)
    try:
        *envs, agent = built
        assert len(envs) == 2 and all(c.control == "ee" and c.episode_s == fit.EPISODE_S for c in envs)
        assert all(c == training.config for c in envs)
        assert agent == adapt.agent_kwargs(training.config, training.env) and agent["hidden_sizes"] == (16, 16)
        assert agent["teacher_weight"] == 1.0  # under ee, with the columns and scale read from the env
        arm = training.env.unwrapped.arm
        for control in ("ee", "joint"):
            env = real_env(training.config.replace(control=control), arm=arm)
            assert env.action_space.shape == (adapt.action_dims(control, arm),)
    finally:
        training.open_run_dir.close()


def test_servo_driven_arms_get_longer_episodes(tmp_path):
    from test_collision import ARM

    from reacher.config import Config
    from reacher.run.envs import make_env

    path = tmp_path / "servo.xml"
    path.write_text(ARM)
    assert make_env(Config(arm=str(path), end_effector="tip")).timing.episode_s == fit.SERVO_EPISODE_S
    assert make_env(Config()).timing.episode_s == fit.EPISODE_S  # two_link: torque motors
    assert make_env(Config(arm=str(path), end_effector="tip", episode_s=0.5)).max_episode_steps == 25


def test_the_gate_never_sees_the_final_evaluations_episodes(tmp_path, monkeypatch):
    from reacher.run import gate
    from reacher.run.evaluation import EVAL_SEED

    seen = []
    real = gate.evaluate

    def spy(policy, env, episodes, seed, **kwargs):
        seen.append(range(seed, seed + episodes))
        return real(policy, env, episodes, seed, **kwargs)

    monkeypatch.setattr(gate, "evaluate", spy)
    config = Config(steps=0, max_steps=5_000, success_radius=10.0, success_target=0.5, success_evals=3,
                    **SMALL)
    Training(config, tmp_path / "run", progress=False).run()
    *periodic, final = seen
    assert len(periodic) == 4 and final.start == EVAL_SEED  # one evaluation, three confirmations
    blocks = [set(r) for r in periodic]
    assert all(not (a & b) for i, a in enumerate(blocks) for b in blocks[i + 1:])  # fresh episodes
    assert all(not (b & set(final)) for b in blocks)  # disjoint from the final evaluation
