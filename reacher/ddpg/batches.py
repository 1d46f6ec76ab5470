"""A training batch from the replay buffer: sampled, relabelled with hindsight goals, and
turned into n-step returns, in that order; numpy arrays in, the agent's tensors out."""

from __future__ import annotations

import numpy as np
import torch

from reacher.ddpg.replay import ReplayBuffer, n_step, relabel

# The order `Agent.update` takes them in; "discount" only with n-step returns.
UPDATE_ARGUMENTS = ("obs", "action", "reward", "next_obs", "terminated", "discount")


def sample(buffer: ReplayBuffer, batch_size: int, rng: np.random.Generator, *, goal_layout=None,
           hindsight_fraction: float = 0.0, n: int = 1, gamma: float = 0.99) -> dict[str, np.ndarray]:
    """`batch_size` transitions drawn uniformly; with a `goal_layout` a `hindsight_fraction`
    of them get a goal reached later in their episode (`relabel`), and with `n` > 1 each
    becomes the return of up to `n` rewards with its discount γᵐ (`n_step`, over the
    relabelled goal)."""
    idx = buffer.sample_indices(batch_size, rng)
    batch = buffer.batch(idx)
    if goal_layout is not None:
        batch = relabel(batch, buffer, idx, goal_layout, hindsight_fraction, rng)
    if n > 1:
        batch = n_step(batch, buffer, idx, n, gamma, goal_layout)
    return batch


def as_tensors(batch: dict[str, np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """The batch as `Agent.update`'s positional arguments."""
    return [torch.from_numpy(batch[k]).to(device) for k in UPDATE_ARGUMENTS if k in batch]
