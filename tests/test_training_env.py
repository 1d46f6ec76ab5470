"""What training trains on: the training env (randomised when ranges are set), and a
nominal env for every evaluation."""

from __future__ import annotations

import numpy as np

from reacher.config import Config
from reacher.run.training import Training
from reacher.sim.arm import load_arm
from reacher.task.randomize import Randomized

SMALL = dict(warmup_steps=100, batch_size=16, hidden_sizes=(16, 16), eval_every=100, eval_episodes=2,
             final_eval_episodes=2, checkpoint_every=10_000, threads=1)


def test_randomised_training_perturbs_the_training_env_only(tmp_path):
    training = Training(Config(steps=300, randomize_mass=0.3, **SMALL), tmp_path / "run", progress=False)
    nominal = load_arm("two_link").model.body_mass.copy()
    masses = []
    real_reset = training.env.reset

    def spy(**kwargs):  # the masses each training episode runs on
        out = real_reset(**kwargs)
        masses.append(training.env.unwrapped.model.body_mass.copy())
        return out

    training.env.reset = spy
    outcome = training.run()
    assert outcome.stop_reason == "steps"
    assert isinstance(training.env, Randomized)
    assert len(masses) >= 2 and not np.allclose(masses[0], masses[1])
    assert all(not np.allclose(m, nominal) for m in masses)
    # Evaluations ran in between, on the nominal model.
    np.testing.assert_array_equal(training.eval_env.unwrapped.model.body_mass, nominal)


def test_without_ranges_the_training_env_is_nominal(tmp_path):
    training = Training(Config(steps=100, **SMALL), tmp_path / "run", progress=False)
    assert not isinstance(training.env, Randomized)
