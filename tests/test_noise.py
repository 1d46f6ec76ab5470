"""reacher.ddpg.noise: Gaussian and Ornstein-Uhlenbeck exploration noise, and the noise schedule."""

from __future__ import annotations

import numpy as np
import pytest

from reacher.ddpg.noise import (
    GaussianNoise,
    OrnsteinUhlenbeckNoise,
    make_noise,
    scheduled_scale,
)


def _draws(noise, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([noise(rng) for _ in range(n)])


def test_gaussian_std_is_scale_and_mean_zero():
    draws = _draws(GaussianNoise(act_dim=4, scale=0.3), 50_000)
    assert draws.shape == (50_000, 4)
    np.testing.assert_allclose(draws.std(axis=0), 0.3, rtol=0.02)
    np.testing.assert_allclose(draws.mean(axis=0), 0.0, atol=0.01)
    # Independent across steps and dimensions.
    assert abs(np.corrcoef(draws[:-1, 0], draws[1:, 0])[0, 1]) < 0.02
    assert abs(np.corrcoef(draws[:, 0], draws[:, 1])[0, 1]) < 0.02


def test_ou_reverts_to_zero_geometrically_without_noise():
    theta = 0.15
    noise = OrnsteinUhlenbeckNoise(act_dim=2, scale=0.0, theta=theta)
    noise.x = np.array([5.0, -3.0])
    draws = _draws(noise, 30)
    expected = np.array([5.0, -3.0]) * (1 - theta) ** np.arange(1, 31)[:, None]
    np.testing.assert_allclose(draws, expected, rtol=1e-12)


def test_ou_is_temporally_correlated():
    theta = 0.15
    draws = _draws(OrnsteinUhlenbeckNoise(act_dim=8, scale=0.2, theta=theta), 50_000, seed=1)[1000:]
    lag1 = np.mean([np.corrcoef(draws[:-1, d], draws[1:, d])[0, 1] for d in range(8)])
    assert lag1 == pytest.approx(1 - theta, abs=0.01)


def test_ou_stationary_std_is_close_to_scale_at_the_default_theta():
    """Within 5%: what the config's help ("noise std") promises at θ = 0.15. The exact
    discrete-time value is scale / √(1 − θ/2), 4% above scale; see the strict test below."""
    draws = _draws(OrnsteinUhlenbeckNoise(act_dim=8, scale=0.2, theta=0.15), 40_000, seed=2)[500:]
    assert draws.std() == pytest.approx(0.2, rel=0.05)
    assert abs(draws.mean()) < 0.01


@pytest.mark.parametrize("theta", [0.15, 0.5, 1.0])
def test_ou_stationary_std_is_scale(theta):
    """The docstring: "`scale` is the stationary std", so both noises share one knob."""
    draws = _draws(OrnsteinUhlenbeckNoise(act_dim=8, scale=0.2, theta=theta), 40_000, seed=3)[500:]
    assert draws.std() == pytest.approx(0.2, rel=0.015)


def test_ou_reset_zeros_the_state():
    noise = OrnsteinUhlenbeckNoise(act_dim=3, scale=0.5)
    _draws(noise, 20)
    assert np.abs(noise.x).sum() > 0
    noise.reset()
    np.testing.assert_array_equal(noise.x, np.zeros(3))
    # After reset the process starts over: the same draws as a fresh one.
    np.testing.assert_array_equal(_draws(noise, 5, seed=7),
                                  _draws(OrnsteinUhlenbeckNoise(act_dim=3, scale=0.5), 5, seed=7))


def test_ou_state_dict_round_trip_continues_the_same_path():
    noise = OrnsteinUhlenbeckNoise(act_dim=2, scale=0.3)
    _draws(noise, 10)
    copy = OrnsteinUhlenbeckNoise(act_dim=2, scale=0.3)
    copy.load_state_dict(noise.state_dict())
    np.testing.assert_array_equal(_draws(noise, 5, seed=9), _draws(copy, 5, seed=9))


def test_ou_draws_are_copies():
    noise = OrnsteinUhlenbeckNoise(act_dim=2, scale=0.3)
    rng = np.random.default_rng(0)
    first = noise(rng)
    first[:] = 100.0  # the caller adds to it in place; the process must not follow
    assert np.abs(noise.x).max() < 10


def test_make_noise():
    assert isinstance(make_noise("gaussian", 2, 0.1), GaussianNoise)
    ou = make_noise("ou", 2, 0.1, theta=0.3)
    assert isinstance(ou, OrnsteinUhlenbeckNoise) and ou.theta == 0.3
    with pytest.raises(ValueError, match="unknown noise 'pink'"):
        make_noise("pink", 2, 0.1)


def test_scheduled_scale_decays_linearly_between_the_endpoints():
    assert scheduled_scale(0.3, 0.1, 0, 1000) == 0.3
    assert scheduled_scale(0.3, 0.1, 1000, 1000) == pytest.approx(0.1)
    assert scheduled_scale(0.3, 0.1, 500, 1000) == pytest.approx(0.2)
    assert scheduled_scale(0.3, 0.1, 250, 1000) == pytest.approx(0.25)
    # Clamped outside [0, total], and a zero total means "already at the end".
    assert scheduled_scale(0.3, 0.1, 5000, 1000) == pytest.approx(0.1)
    assert scheduled_scale(0.3, 0.1, -5, 1000) == 0.3
    assert scheduled_scale(0.3, 0.1, 0, 0) == 0.3
    assert scheduled_scale(0.3, 0.1, 1, 0) == pytest.approx(0.1)
    # Constant when start equals end (the default config).
    assert {scheduled_scale(0.2, 0.2, s, 100) for s in range(0, 101, 10)} == {0.2}
