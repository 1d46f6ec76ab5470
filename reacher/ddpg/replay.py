"""Experience replay: a preallocated numpy ring buffer, with hindsight relabelling.

Each transition is (obs, action, reward, next_obs, terminated). Time-limit
truncation is *not* termination: a truncated transition is stored with
terminated = 0 so its target still bootstraps from the next state.

For hindsight replay the buffer also remembers, per transition, how many later
transitions its episode holds (``future``); `relabel` uses it to swap the target
for a fingertip position reached later in the same episode.
"""

from __future__ import annotations

import numpy as np

_ARRAYS = ("obs", "action", "reward", "next_obs", "terminated", "future")


class ReplayBuffer:
    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, act_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.future = np.zeros(capacity, np.int64)
        self.pos = 0  # where the next transition goes
        self.size = 0
        self._episode_len = 0  # transitions of the episode in progress

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.future[i] = 0
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self._episode_len = min(self._episode_len + 1, self.capacity)

    def end_episode(self) -> None:
        """Record, for each transition of the finished episode, how many follow it."""
        n = self._episode_len
        idx = (self.pos - n + np.arange(n)) % self.capacity
        self.future[idx] = np.arange(n - 1, -1, -1)
        self._episode_len = 0

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.size, size=batch_size)

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {"obs": self.obs[idx], "action": self.action[idx], "reward": self.reward[idx],
                "next_obs": self.next_obs[idx], "terminated": self.terminated[idx]}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The stored part only, oldest first, so a restored buffer needs no padding."""
        n = self.size
        order = (self.pos - n + np.arange(n)) % self.capacity
        state = {name: getattr(self, name)[order] for name in _ARRAYS}
        state["episode_len"] = np.array(self._episode_len)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = len(state["obs"])
        if n > self.capacity:
            state = {k: (v[-self.capacity:] if v.ndim else v) for k, v in state.items()}
            n = self.capacity
        for name in _ARRAYS:
            target = getattr(self, name)
            if state[name].shape[1:] != target.shape[1:]:
                raise ValueError(f"replay array '{name}' has shape {state[name].shape[1:]} per "
                                 f"transition, expected {target.shape[1:]}")
            target[:n] = state[name]
        self.size = n
        self.pos = n % self.capacity
        self._episode_len = int(state["episode_len"])


def relabel(batch: dict, buffer: ReplayBuffer, idx: np.ndarray, layout, fraction: float,
            rng: np.random.Generator) -> dict:
    """Hindsight replay ("future" strategy): for a `fraction` of the batch, make the target
    the fingertip position reached at a random later step of the same episode, and
    recompute the observation's target parts and the reward from the stored fingertip.
    `layout` says where the goals sit in the flat observation and holds the reward
    (`reacher.task.goal.GoalLayout`, for reacher's arms and for any
    Gymnasium goal env)."""
    chosen = np.flatnonzero(rng.random(len(idx)) < fraction)
    if chosen.size == 0:
        return batch
    source = idx[chosen]
    offset = (rng.random(chosen.size) * (buffer.future[source] + 1)).astype(np.int64)
    goal = buffer.next_obs[(source + offset) % buffer.capacity, layout.achieved]
    for key in ("obs", "next_obs"):
        part = batch[key][chosen]
        part[:, layout.desired] = goal
        part[:, layout.delta] = part[:, layout.achieved] - goal
        batch[key][chosen] = part
    # The env's reward for the new goal, from the fingertip after the step: ReachEnv's
    # reward function, or another goal env's own compute_reward (reacher.task.goal.EnvReward).
    effort = np.square(batch["action"][chosen]).sum(axis=-1)
    batch["reward"][chosen] = layout.reward.from_goals(batch["next_obs"][chosen][:, layout.achieved], goal,
                                                       effort, exact=False)
    return batch


def n_step(batch: dict, buffer: ReplayBuffer, idx: np.ndarray, n: int, gamma: float, layout=None) -> dict:
    """Turn each sampled transition into an n-step one: reward Σ_{j<m} γʲ·r_{i+j}, next_obs
    and terminated those of transition i+m−1, and ``discount`` γᵐ for the bootstrap, where
    the window m ≤ n ends early at the episode's last stored transition or at a terminal one.
    A truncated episode's last transition bootstraps as before (only termination stops it);
    transitions of the episode still being collected keep m = 1 (what follows is unknown).

    With `layout` (goal observations), a row whose target differs from the stored one was
    relabelled (`relabel`, called first): its rewards along the window are recomputed for
    that target, and its next_obs gets it, as `relabel` does for one step."""
    rows = (idx[:, None] + np.arange(n)) % buffer.capacity  # (batch, n)
    in_episode = np.arange(n) < np.minimum(n, buffer.future[idx] + 1)[:, None]
    terminated = buffer.terminated[rows] * in_episode
    # A window stops after its first terminal transition.
    valid = in_episode & (np.cumsum(terminated, axis=1) - terminated == 0)
    rewards = buffer.reward[rows]
    last = rows[np.arange(len(idx)), valid.sum(axis=1) - 1]
    next_obs = buffer.next_obs[last]
    if layout is not None:
        goal = batch["obs"][:, layout.desired]
        moved = np.flatnonzero(np.any(goal != buffer.obs[idx][:, layout.desired], axis=1))
        if moved.size:
            r, g = rows[moved], np.repeat(goal[moved], n, axis=0)
            effort = np.square(buffer.action[r]).sum(axis=-1).reshape(-1)
            achieved = buffer.next_obs[r][..., layout.achieved].reshape(len(g), -1)
            rewards[moved] = layout.reward.from_goals(achieved, g, effort, exact=False).reshape(-1, n)
            part = next_obs[moved]
            part[:, layout.desired] = goal[moved]
            part[:, layout.delta] = part[:, layout.achieved] - goal[moved]
            next_obs[moved] = part
    powers = gamma ** np.arange(n)
    return {**batch, "reward": (rewards * powers * valid).sum(axis=1).astype(np.float32),
            "next_obs": next_obs, "terminated": buffer.terminated[last],
            "discount": (gamma ** valid.sum(axis=1)).astype(np.float32)}
