"""reacher.ddpg.replay: the ring buffer, episode bookkeeping, and hindsight relabelling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import reacher  # noqa: F401  (registers the environments)
from reacher.config import Config
from reacher.ddpg.replay import ReplayBuffer, n_step, relabel
from reacher.run.training import Training
from reacher.task.env import ReachEnv


def _filled(capacity: int, n: int, obs_dim: int = 3, act_dim: int = 2) -> ReplayBuffer:
    """A buffer after `n` adds; transition k has obs = k, action = −k, reward = 10k, next_obs = k+1
    and is terminated when k is a multiple of 3, so every stored value says which add it was."""
    buffer = ReplayBuffer(obs_dim, act_dim, capacity)
    for k in range(n):
        buffer.add(np.full(obs_dim, k), np.full(act_dim, -k), 10.0 * k, np.full(obs_dim, k + 1),
                   k % 3 == 0)
    return buffer


def _assert_holds(state: dict, ks) -> None:
    ks = np.asarray(ks)
    np.testing.assert_array_equal(state["obs"][:, 0], ks)
    np.testing.assert_array_equal(state["action"][:, 0], -ks)
    np.testing.assert_array_equal(state["reward"], 10.0 * ks)
    np.testing.assert_array_equal(state["next_obs"][:, 0], ks + 1)
    np.testing.assert_array_equal(state["terminated"], (ks % 3 == 0).astype(np.float32))


# --- the ring buffer ------------------------------------------------------------------------------

def test_wrap_around_drops_the_oldest():
    buffer = _filled(capacity=5, n=8)
    assert len(buffer) == buffer.size == 5
    assert buffer.pos == 3
    _assert_holds(buffer.state_dict(), range(3, 8))  # oldest first


def test_terminated_is_stored_as_given():
    buffer = ReplayBuffer(2, 1, 4)
    for flag in (True, False, 1, 0):
        buffer.add(np.zeros(2), np.zeros(1), 0.0, np.zeros(2), flag)
    np.testing.assert_array_equal(buffer.terminated, [1, 0, 1, 0])
    assert buffer.terminated.dtype == np.float32


@pytest.mark.parametrize("n", [7, 13])  # part full, and full after wrapping
def test_uniform_sampling_covers_every_stored_index_and_no_empty_slot(n):
    buffer = _filled(capacity=10, n=n)
    rng = np.random.default_rng(0)
    idx = np.concatenate([buffer.sample_indices(256, rng) for _ in range(40)])
    stored = min(n, 10)
    assert idx.min() >= 0 and idx.max() < stored
    counts = np.bincount(idx, minlength=stored)
    assert (counts > 0).all()
    expected = len(idx) / stored  # ~1000 per index: a 15% band is more than 4 standard deviations
    assert np.abs(counts - expected).max() < 0.15 * expected
    # Every sampled row holds a transition that was added (obs ≥ the first kept add).
    assert (buffer.batch(idx)["obs"][:, 0] >= n - stored).all()


def test_end_episode_counts_the_transitions_that_follow():
    buffer = _filled(capacity=8, n=3)
    buffer.end_episode()
    np.testing.assert_array_equal(buffer.future[:3], [2, 1, 0])
    for _ in range(2):
        buffer.add(np.zeros(3), np.zeros(2), 0.0, np.zeros(3), False)
    # An episode in progress has no future counts yet: relabelling uses its own step.
    np.testing.assert_array_equal(buffer.future[3:5], [0, 0])
    buffer.end_episode()
    np.testing.assert_array_equal(buffer.future[:5], [2, 1, 0, 1, 0])


def test_end_episode_across_the_wrap_boundary():
    buffer = _filled(capacity=5, n=3)
    buffer.end_episode()
    for _ in range(4):  # slots 3, 4, 0, 1
        buffer.add(np.zeros(3), np.zeros(2), 0.0, np.zeros(3), False)
    buffer.end_episode()
    np.testing.assert_array_equal(buffer.future[[3, 4, 0, 1]], [3, 2, 1, 0])
    assert buffer.future[2] == 0  # the old episode's last transition is untouched


def test_an_episode_longer_than_the_buffer_counts_only_what_is_kept():
    buffer = _filled(capacity=5, n=7)
    buffer.end_episode()
    state = buffer.state_dict()
    _assert_holds(state, range(2, 7))
    np.testing.assert_array_equal(state["future"], [4, 3, 2, 1, 0])


def test_adding_over_a_slot_clears_its_future_count():
    buffer = _filled(capacity=3, n=3)
    buffer.end_episode()
    buffer.add(np.zeros(3), np.zeros(2), 0.0, np.zeros(3), False)
    np.testing.assert_array_equal(buffer.future, [0, 1, 0])


# --- state_dict round trip ------------------------------------------------------------------------

@pytest.mark.parametrize("capacity", [5, 12])
def test_state_dict_round_trip(capacity):
    source = _filled(capacity=5, n=8)
    source.end_episode()
    source.add(np.full(3, 8), np.full(2, -8), 80.0, np.full(3, 9), False)  # an episode in progress
    state = source.state_dict()
    restored = ReplayBuffer(3, 2, capacity)
    restored.load_state_dict(state)
    assert len(restored) == 5 and restored.pos == 5 % capacity
    again = restored.state_dict()
    assert again.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(again[key], state[key], err_msg=key)
    _assert_holds(again, range(4, 9))
    # The episode in progress continues where it was: one transition so far, then two more.
    restored.add(np.full(3, 9), np.full(2, -9), 90.0, np.full(3, 10), False)
    restored.end_episode()
    np.testing.assert_array_equal(restored.state_dict()["future"][-2:], [1, 0])
    # Sampling sees only what was restored (and the one added since).
    idx = restored.sample_indices(500, np.random.default_rng(1))
    assert idx.max() < len(restored)


def test_load_into_a_smaller_buffer_keeps_the_newest():
    source = _filled(capacity=10, n=10)
    source.end_episode()
    small = ReplayBuffer(3, 2, 4)
    small.load_state_dict(source.state_dict())
    assert len(small) == 4 and small.pos == 0
    state = small.state_dict()
    _assert_holds(state, range(6, 10))
    np.testing.assert_array_equal(state["future"], [3, 2, 1, 0])


def test_load_refuses_other_sizes():
    state = _filled(capacity=5, n=5).state_dict()
    with pytest.raises(ValueError, match="obs"):
        ReplayBuffer(4, 2, 5).load_state_dict(state)


# --- hindsight relabelling on a real episode --------------------------------------------------------

def _reach_buffer(capacity: int, episodes: int, seed: int = 0):
    """Random-action episodes of ReachEnv in a buffer small enough to wrap, with the episode
    number and step of every slot (bookkeeping the test keeps on its own)."""
    env = ReachEnv("two_link", max_episode_steps=20)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    buffer = ReplayBuffer(obs_dim, act_dim, capacity)
    episode_of = np.full(capacity, -1)
    step_of = np.full(capacity, -1)
    rng = np.random.default_rng(seed)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        done, step = False, 0
        while not done:
            action = rng.uniform(-1, 1, act_dim)
            next_obs, reward, terminated, truncated, _ = env.step(action.astype(np.float32))
            episode_of[buffer.pos], step_of[buffer.pos] = episode, step
            buffer.add(obs, action, reward, next_obs, terminated)
            obs, done, step = next_obs, terminated or truncated, step + 1
        buffer.end_episode()
    return env.goal_layout, buffer, episode_of, step_of


@pytest.fixture(scope="module")
def reach_buffer():
    # 4 episodes of 20 in 50 slots: the oldest episode is partly overwritten, one wraps.
    return _reach_buffer(capacity=50, episodes=4)


def _copy(batch: dict) -> dict:
    return {k: v.copy() for k, v in batch.items()}


def test_stored_rewards_follow_the_layouts_reward(reach_buffer):
    """Relabelling recomputes rewards with ``layout.reward``: on the real targets it must
    give what the env gave, or relabelled rows would be on another scale."""
    layout, buffer, _, _ = reach_buffer
    distance = np.linalg.norm(buffer.next_obs[:, layout.delta], axis=1)
    np.testing.assert_allclose(layout.reward(distance, buffer.action), buffer.reward, rtol=1e-5, atol=1e-6)


def test_relabel_with_fraction_one_uses_a_later_fingertip_of_the_same_episode(reach_buffer):
    layout, buffer, episode_of, step_of = reach_buffer
    idx = np.tile(np.arange(len(buffer)), 8)
    original = buffer.batch(idx)
    before = {name: getattr(buffer, name).copy() for name in ("obs", "next_obs", "reward")}
    batch = relabel(_copy(original), buffer, idx, layout, 1.0, np.random.default_rng(3))

    # Every row's target changed (a fingertip never sits exactly on the original target).
    assert (batch["obs"][:, layout.desired] != original["obs"][:, layout.desired]).any(axis=1).all()
    offsets = []
    for row, i in enumerate(idx):
        goal = batch["obs"][row, layout.desired]
        same_episode = np.flatnonzero((episode_of == episode_of[i]) & (step_of >= step_of[i]))
        match = [j for j in same_episode
                 if np.array_equal(buffer.next_obs[j, layout.achieved], goal)]
        assert match, f"row {row}: target is no later fingertip of its episode"
        offsets.append(step_of[match[0]] - step_of[i])
    # Offsets range over the whole future, including the transition's own next state.
    assert min(offsets) == 0 and max(offsets) >= 15

    for key in ("obs", "next_obs"):
        part, old = batch[key], original[key]
        np.testing.assert_array_equal(part[:, layout.desired], batch["obs"][:, layout.desired])
        np.testing.assert_allclose(part[:, layout.delta],
                                   part[:, layout.achieved] - part[:, layout.desired], atol=1e-6)
        # Only the target parts change: joints and fingertip are what happened.
        keep = np.ones(part.shape[1], bool)
        keep[layout.desired] = keep[layout.delta] = False
        np.testing.assert_array_equal(part[:, keep], old[:, keep])
    distance = np.linalg.norm(batch["next_obs"][:, layout.achieved] - batch["next_obs"][:, layout.desired],
                              axis=1)
    np.testing.assert_allclose(batch["reward"], layout.reward(distance, original["action"]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(batch["action"], original["action"])
    np.testing.assert_array_equal(batch["terminated"], original["terminated"])
    for name, array in before.items():  # the buffer itself is never rewritten
        np.testing.assert_array_equal(getattr(buffer, name), array)


def test_relabel_last_step_of_an_episode_uses_its_own_next_fingertip(reach_buffer):
    layout, buffer, _, _ = reach_buffer
    last = np.flatnonzero((buffer.future[:len(buffer)] == 0))
    batch = relabel(buffer.batch(last), buffer, last, layout, 1.0, np.random.default_rng(0))
    np.testing.assert_array_equal(batch["obs"][:, layout.desired], buffer.next_obs[last, layout.achieved])
    # The goal was reached: distance 0, so the reward is only the action's cost.
    np.testing.assert_allclose(batch["reward"], layout.reward(np.zeros(len(last)), buffer.action[last]),
                               rtol=1e-6)


def test_relabel_fraction_zero_changes_nothing(reach_buffer):
    layout, buffer, _, _ = reach_buffer
    idx = np.arange(len(buffer))
    original = buffer.batch(idx)
    batch = relabel(_copy(original), buffer, idx, layout, 0.0, np.random.default_rng(0))
    for key in original:
        np.testing.assert_array_equal(batch[key], original[key], err_msg=key)


def test_relabel_fraction_half_changes_about_half(reach_buffer):
    layout, buffer, _, _ = reach_buffer
    idx = np.tile(np.arange(len(buffer)), 40)
    original = buffer.batch(idx)
    batch = relabel(_copy(original), buffer, idx, layout, 0.5, np.random.default_rng(0))
    changed = (batch["obs"][:, layout.desired] != original["obs"][:, layout.desired]).any(axis=1)
    assert abs(changed.mean() - 0.5) < 0.05


# --- through the training loop --------------------------------------------------------------------

def _small(**changes) -> Config:
    return Config(**{"steps": 100, "warmup_steps": 1000, "batch_size": 8, "hidden_sizes": (8,),
                     "threads": 1, **changes})


def test_truncation_is_not_stored_as_termination(tmp_path):
    """ReachEnv never terminates; its time limit truncates. Training must store those
    transitions with terminated = 0 so the critic still bootstraps from them."""
    training = Training(_small(max_episode_steps=5), tmp_path / "run", progress=False)
    obs, _ = training.env.reset(seed=0)
    done_at = []
    for step in range(10):
        obs, done = training._collect(obs, training._action(obs), [obs])
        if done:
            done_at.append(step)
            training._end_episode([obs])
            obs, _ = training.env.reset()
    assert done_at == [4, 9]  # both episodes ended by the time limit
    assert len(training.buffer) == 10
    np.testing.assert_array_equal(training.buffer.terminated[:10], 0.0)
    np.testing.assert_array_equal(training.buffer.future[:10], [4, 3, 2, 1, 0] * 2)
    training.metrics.close()


class _EndsAtStepThree(gym.Env):
    """Terminates (a real terminal state) at its third step; the time limit is 10."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        return np.full(2, float(self.t)), 1.0, self.t == 3, False, {}


def test_termination_is_stored_as_termination(tmp_path):
    gym.register("test-replay/EndsAtStepThree-v0", entry_point=_EndsAtStepThree, max_episode_steps=10)
    try:
        training = Training(_small(env="test-replay/EndsAtStepThree-v0"), tmp_path / "run",
                            progress=False)
        obs, _ = training.env.reset(seed=0)
        for _ in range(6):
            obs, done = training._collect(obs, training._action(obs), [obs])
            if done:
                training._end_episode([obs])
                obs, _ = training.env.reset()
        np.testing.assert_array_equal(training.buffer.terminated[:6], [0, 0, 1, 0, 0, 1])
        training.metrics.close()
    finally:
        del gym.registry["test-replay/EndsAtStepThree-v0"]


# --- n-step returns ----------------------------------------------------------------------------------

def _episodes(lengths, terminal_at=(), open_last=False) -> ReplayBuffer:
    """Episodes of the given lengths, transition k: obs = k, reward = 1 + k, next_obs = k + 1;
    `terminal_at` are the transitions stored as terminated; the last episode is left open
    (still being collected) with `open_last`."""
    buffer = ReplayBuffer(1, 1, 64)
    k = 0
    for e, length in enumerate(lengths):
        for _ in range(length):
            buffer.add([k], [0.0], 1.0 + k, [k + 1], k in terminal_at)
            k += 1
        if not (open_last and e == len(lengths) - 1):
            buffer.end_episode()
    return buffer


def test_n_step_sums_discounted_rewards_and_bootstraps_from_the_nth_state():
    buffer, gamma = _episodes([5, 4]), 0.9
    idx = np.array([0, 2, 3, 4, 5])  # episode 1 (truncated, not terminated): 0..4; episode 2: 5..8
    batch = n_step(buffer.batch(idx), buffer, idx, 3, gamma)
    # Row 0: r0 + γr1 + γ²r2, then Q′ at next_obs of transition 2, discounted γ³.
    np.testing.assert_allclose(batch["reward"], [1 + 0.9 * 2 + 0.81 * 3, 3 + 0.9 * 4 + 0.81 * 5,
                                                 4 + 0.9 * 5, 5, 6 + 0.9 * 7 + 0.81 * 8], rtol=1e-6)
    # The window stops at the episode's end: a truncated episode still bootstraps there.
    np.testing.assert_array_equal(batch["next_obs"][:, 0], [3, 5, 5, 5, 8])
    np.testing.assert_allclose(batch["discount"], [gamma ** 3, gamma ** 3, gamma ** 2, gamma, gamma ** 3],
                               rtol=1e-6)
    np.testing.assert_array_equal(batch["terminated"], 0)
    np.testing.assert_array_equal(batch["obs"][:, 0], idx)  # the state and action stay the first


def test_n_step_stops_at_termination():
    buffer = _episodes([6], terminal_at=(2,))  # as if the env had ended the episode at 2
    idx = np.array([0, 1, 2])
    batch = n_step(buffer.batch(idx), buffer, idx, 4, 0.5)
    np.testing.assert_allclose(batch["reward"], [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])
    np.testing.assert_array_equal(batch["terminated"], 1)
    np.testing.assert_array_equal(batch["next_obs"][:, 0], 3)


def test_n_step_of_the_open_episode_and_n_one_are_one_step():
    buffer = _episodes([3, 4], open_last=True)
    idx = np.array([3, 4, 1])
    batch = n_step(buffer.batch(idx), buffer, idx, 3, 0.9)
    one_step = buffer.batch(idx)
    np.testing.assert_allclose(batch["reward"][:2], one_step["reward"][:2])  # what follows is unknown
    np.testing.assert_allclose(batch["discount"][:2], 0.9)
    same = n_step(buffer.batch(idx), buffer, idx, 1, 0.9)
    for key in one_step:
        np.testing.assert_array_equal(same[key], one_step[key])


def test_n_step_after_hindsight_recomputes_rewards_for_the_new_target(reach_buffer):
    layout, buffer, episode_of, step_of = reach_buffer
    idx = np.flatnonzero(buffer.future[:len(buffer)] >= 2)[:20]  # windows of a full 3 steps
    gamma = 0.95
    relabelled = relabel(_copy(buffer.batch(idx)), buffer, idx, layout, 1.0, np.random.default_rng(0))
    batch = n_step(_copy(relabelled), buffer, idx, 3, gamma, layout)
    goal = relabelled["obs"][:, layout.desired]
    expected = np.zeros(len(idx))
    for j in range(3):
        rows = (idx + j) % buffer.capacity
        achieved = buffer.next_obs[rows][:, layout.achieved]
        effort = np.square(buffer.action[rows]).sum(axis=1)
        expected += gamma ** j * layout.reward.from_goals(achieved, goal, effort, exact=False)
    np.testing.assert_allclose(batch["reward"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch["reward"] - expected, 0, atol=1e-5)
    last = (idx + 2) % buffer.capacity
    np.testing.assert_array_equal(batch["next_obs"][:, layout.desired], goal)
    np.testing.assert_allclose(batch["next_obs"][:, layout.delta],
                               buffer.next_obs[last][:, layout.achieved] - goal, rtol=1e-6, atol=1e-7)
    # Without relabelling the stored rewards are summed as they are.
    plain = n_step(buffer.batch(idx), buffer, idx, 3, gamma, layout)
    stored = sum(gamma ** j * buffer.reward[(idx + j) % buffer.capacity] for j in range(3))
    np.testing.assert_allclose(plain["reward"], stored, rtol=1e-6)


def test_training_with_n_step_passes_n_step_targets_to_the_agent(tmp_path):
    training = Training(_small(max_episode_steps=5, n_step=3, gamma=0.5, warmup_steps=0, batch_size=8),
                        tmp_path / "run", progress=False)
    obs, _ = training.env.reset(seed=0)
    for _ in range(10):
        obs, done = training._collect(obs, training._action(obs), [obs])
        if done:
            training._end_episode([obs])
            obs, _ = training.env.reset()
    seen = {}
    training.agent.update = lambda *tensors: seen.update(tensors=tensors) or {}
    training._learn()
    # obs, action, reward, next_obs, terminated and the discount: windows of 3 within two
    # finished 5-step episodes, so γᵐ with m ∈ {1, 2, 3}.
    discount = seen["tensors"][5].tolist()
    assert len(seen["tensors"]) == 6 and set(discount) <= {0.5, 0.25, 0.125} and 0.125 in discount
    training.metrics.close()
