"""Settings are resolved once (reacher.run.settings); what is built below the run gets
plain values, never the training Config."""

from __future__ import annotations

import sys

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
