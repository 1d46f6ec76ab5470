"""The DDPG agent: deterministic actor, critic regression, Polyak-averaged targets.

TD3's three changes are options (`Config.twin_critics`, `policy_delay`,
`target_noise`); with them off this is textbook DDPG (Lillicrap et al. 2016).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from reacher.adam import FusedAdam
from reacher.config import Config
from reacher.networks import Actor, Critic, NumpyPolicy, RunningNorm


class Agent:
    """Four verbs: `act`, `update`, `state_dict`, `load_state_dict`."""

    def __init__(self, obs_dim: int, act_dim: int, config: Config, device: str = "cpu"):
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.config = config
        self.device = torch.device(device)
        hidden = tuple(config.hidden_sizes)
        self.norm = (RunningNorm(obs_dim) if config.normalize_obs else nn.Identity()).to(self.device)
        self.actor = Actor(obs_dim, act_dim, hidden).to(self.device)
        self.critic = Critic(obs_dim, act_dim, hidden, 2 if config.twin_critics else 1).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = FusedAdam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = FusedAdam(self.critic.parameters(), lr=config.critic_lr)
        self.updates = 0
        # Walking the module tree costs more than a small layer's maths: list once.
        self._params = [*self.actor.parameters(), *self.critic.parameters()]
        self._target_params = [*self.actor_target.parameters(), *self.critic_target.parameters()]
        self._numpy_policy = self._make_numpy_policy()

    def _make_numpy_policy(self) -> NumpyPolicy | None:
        return NumpyPolicy(self.actor, self.norm) if self.device.type == "cpu" else None

    # The numpy policy holds views of this agent's tensors: a copy must make its own.
    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "_numpy_policy"}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._numpy_policy = self._make_numpy_policy()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) in [-1, 1] for one observation or a batch."""
        if self._numpy_policy is not None:
            return self._numpy_policy(obs)
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            return self.actor(self.norm(x)).cpu().numpy()

    def observe(self, obs: np.ndarray) -> None:
        """Fold observations (n, obs_dim) into the normaliser's running statistics."""
        if isinstance(self.norm, RunningNorm):
            self.norm.update(torch.as_tensor(np.atleast_2d(obs), device=self.device))

    def update(self, obs, action, reward, next_obs, terminated) -> dict[str, torch.Tensor]:
        """One gradient step on a batch of tensors; returns losses and mean Q (as tensors)."""
        c = self.config
        obs, next_obs = self.norm(obs), self.norm(next_obs)

        # Critic: regress Q(s, a) to r + γ(1 − terminated)·Q′(s′, μ′(s′)).
        with torch.no_grad():
            next_action = self.actor_target(next_obs)
            if c.target_noise > 0:
                noise = (torch.randn_like(next_action) * c.target_noise).clamp(
                    -c.target_noise_clip, c.target_noise_clip)
                next_action = (next_action + noise).clamp(-1.0, 1.0)
            next_q = self.critic_target(next_obs, next_action)
            next_q = next_q.min(dim=0).values if c.twin_critics else next_q[0]
            target = reward + c.gamma * (1.0 - terminated) * next_q
        q = self.critic(obs, action)
        critic_loss = (q - target).square().mean(dim=1).sum()
        self.critic_opt.descend(critic_loss)
        self.updates += 1
        metrics = {"critic_loss": critic_loss.detach(), "mean_q": q.detach().mean()}

        # Actor: ascend Q1(s, μ(s)). `descend` backpropagates to the actor's weights only,
        # so autograd computes no gradients for the critic's, only through it to the action.
        if self.updates % c.policy_delay == 0:
            actor_loss = -self.critic(obs, self.actor(obs), members=1).mean()
            self.actor_opt.descend(actor_loss)
            soft_update(self._target_params, self._params, c.tau)
            metrics["actor_loss"] = actor_loss.detach()
        return metrics

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "norm": self.norm.state_dict(), "updates": self.updates,
        }

    def load_state_dict(self, state: dict, policy_only: bool = False) -> None:
        self.actor.load_state_dict(state["actor"])
        self.norm.load_state_dict(state["norm"])
        if policy_only:
            return
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.updates = int(state["updates"])


@torch.no_grad()
def soft_update(target, source, tau: float) -> None:
    """Polyak averaging: θ′ ← (1 − τ)·θ′ + τ·θ, for every parameter at once.
    `target` and `source` are modules or (faster, in the update) their parameter lists."""
    if isinstance(target, nn.Module):
        target, source = list(target.parameters()), list(source.parameters())
    torch._foreach_lerp_(target, source, tau)
