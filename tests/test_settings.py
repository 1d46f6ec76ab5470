"""Settings are resolved once (reacher.run.settings); what is built below the run gets
plain values, never the training Config."""

from __future__ import annotations

import sys
from pathlib import Path

from reacher.config import Config
from reacher.run.training import Training

SMALL = dict(warmup_steps=0, batch_size=8, hidden_sizes=(8, 8), eval_every=10**6, eval_episodes=1,
             final_eval_episodes=1, checkpoint_every=10**6, threads=1)


def _receivers_of_a_config(run) -> list[str]:
    """The reacher functions `run()` calls with a Config among their arguments."""
    seen = []

    def tracer(frame, event, arg):
        module = frame.f_globals.get("__name__", "")
        if event == "call" and module.startswith("reacher."):
            code = frame.f_code
            names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
            if any(isinstance(frame.f_locals.get(n), Config) for n in names):
                seen.append(f"{module}.{code.co_name}")

    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(None)
    return seen


def test_the_env_the_agent_and_the_simulation_never_receive_the_config(tmp_path):
    for i, config in enumerate([Config(steps=20, **SMALL), Config(steps=20, randomize_mass=0.1,
                                                                  action_delay_steps=1, **SMALL)]):
        training = []
        receivers = _receivers_of_a_config(lambda: training.append(Training(config, tmp_path / str(i),
                                                                            progress=False)))
        training[0].run()
        assert "reacher.run.settings.for_arm" in receivers  # resolved once, before anything is built
        below = [r for r in receivers if r.startswith(("reacher.sim.", "reacher.task.", "reacher.ddpg."))]
        assert below == []


# --- the cloning term's teacher (teacher_weight) --------------------------------------------

def test_teacher_reads_end_effector_minus_target_through_the_wrappers(tmp_path):
    """Under an action delay the observation carries the action history, which shifts the
    goal columns: the agent's teacher must still read end effector − target, scaled by the
    controller's most movement per action."""
    import numpy as np
    import torch

    four_link = str(Path(__file__).resolve().parent.parent / "examples" / "arms" / "four_link.xml")
    config = Config(arm=four_link, end_effector="tip", steps=20, teacher_weight=0.5, teacher_decay_updates=7,
                    action_delay_steps=2, ee_speed=0.5, **SMALL)
    training = Training(config, tmp_path / "run", progress=False)
    try:
        agent, task = training.agent, training.env.unwrapped.task
        assert agent.hyper.teacher_weight == 0.5 and agent.hyper.teacher_decay_updates == 7
        obs, _ = training.env.reset(seed=3)
        raw = task.observe()
        expected = np.clip((task.target - raw[task.goal_layout.achieved]) / (0.5 * config.control_period_s), -1, 1)
        got = agent.teacher_action(torch.as_tensor(np.atleast_2d(obs), dtype=torch.float32))[0]
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
        assert 0 < np.abs(expected).max()
    finally:
        training.env.close()
        training.eval_env.close()
        training.open_run_dir.close()


def test_teacher_weight_is_refused_where_there_is_no_teacher():
    import pytest

    from reacher.errors import ConfigError

    with pytest.raises(ConfigError, match="teacher_weight needs control ee.*joint"):
        Training(Config(arm="two_link", teacher_weight=1.0, steps=20, **SMALL), "/nonexistent/never", progress=False)
    with pytest.raises(ConfigError, match="teacher_weight needs control ee.*none"):
        Training(Config(env="Pendulum-v1", teacher_weight=1.0, steps=20, **SMALL), "/nonexistent/never",
                 progress=False)
