"""The DDPG agent: deterministic actor, critic regression, Polyak-averaged targets.

TD3's three changes are options (``twin_critics``, ``policy_delay``,
``target_noise``); with them off this is textbook DDPG (Lillicrap et al. 2016).

`update` runs the gradients derived by hand (reacher.ddpg.update); `update_autograd` is the
same maths through autograd, kept as the reference the hand-derived one is tested against,
and used for what the hand-derived one does not cover (a layer-normalised critic).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from reacher.ddpg.adam import FlatAdam
from reacher.ddpg.networks import (
    Actor,
    Critic,
    FlatParameters,
    NumpyPolicy,
    RunningNorm,
)
from reacher.ddpg.update import HandUpdate


@dataclass(frozen=True)
class Hyperparameters:
    """What `update` reads from an agent, as the constructor took it."""

    gamma: float
    tau: float
    policy_delay: int
    twin_critics: bool
    target_noise: float
    target_noise_clip: float
    critic_layernorm: bool
    teacher_weight: float = 0.0
    teacher_decay_updates: int = 0
    teacher_columns: tuple[int, int] | None = None
    teacher_scale: float = 1.0

    def replace(self, **changes) -> "Hyperparameters":
        return dataclasses.replace(self, **changes)


class Agent:
    """Four verbs: `act`, `update`, `state_dict`, `load_state_dict` (and `update_normaliser`, fed
    the observations the agent sees).

    Its hyperparameters are keyword arguments (`reacher.run.settings.agent_kwargs` turns a
    training Config into them); the defaults are reacher's own (`reacher.config.Config`),
    with the wide network of its larger arms."""

    def __init__(self, obs_dim: int, act_dim: int, *, hidden_sizes: tuple[int, ...] = (256, 256),
                 actor_lr: float = 1e-3, critic_lr: float = 1e-3, gamma: float = 0.95, tau: float = 0.01,
                 twin_critics: bool = False, policy_delay: int = 1, target_noise: float = 0.0,
                 target_noise_clip: float = 0.5, critic_layernorm: bool = False,
                 normalize_obs: bool = True, device: str = "cpu", teacher_weight: float = 0.0,
                 teacher_decay_updates: int = 0, teacher_columns: tuple[int, int] | None = None,
                 teacher_scale: float = 1.0):
        self.obs_dim, self.act_dim = obs_dim, act_dim
        if teacher_weight and teacher_columns is None:
            raise ValueError("teacher_weight needs teacher_columns (where end effector - target is)")
        self.hyper = Hyperparameters(gamma, tau, policy_delay, twin_critics, target_noise,
                                     target_noise_clip, critic_layernorm, float(teacher_weight),
                                     int(teacher_decay_updates),
                                     None if teacher_columns is None else tuple(teacher_columns),
                                     float(teacher_scale))
        self.device = torch.device(device)
        hidden = tuple(hidden_sizes)
        self.norm = (RunningNorm(obs_dim) if normalize_obs else nn.Identity()).to(self.device)
        self.actor = Actor(obs_dim, act_dim, hidden).to(self.device)
        self.critic = Critic(obs_dim, act_dim, hidden, 2 if twin_critics else 1,
                             layernorm=critic_layernorm).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.flat = FlatParameters([self.actor, self.critic], [self.actor_target, self.critic_target])
        actor_span, critic_span = self.flat.spans
        self.actor_opt = FlatAdam(self.flat.data[0, actor_span], self.flat.grad[actor_span],
                                  list(self.actor.parameters()), lr=actor_lr)
        self.critic_opt = FlatAdam(self.flat.data[0, critic_span], self.flat.grad[critic_span],
                                   list(self.critic.parameters()), lr=critic_lr)
        self.updates = 0
        self._bind()

    def _bind(self) -> None:
        """The parts that hold views of this agent's tensors."""
        # The hand-derived gradients cover linear layers and relu; a layer-normalised
        # critic is updated through autograd.
        self._hand = None if self.hyper.critic_layernorm else HandUpdate(self)
        self._numpy_policy = NumpyPolicy(self.actor, self.norm) if self.device.type == "cpu" else None

    # Views do not survive a copy (a Parameter copies its data alone): a copy lays its
    # parameters out again and points its optimisers at them.
    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("_numpy_policy", "_hand", "flat")}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self.flat = FlatParameters([self.actor, self.critic], [self.actor_target, self.critic_target])
        for opt, module, span in ((self.actor_opt, self.actor, self.flat.spans[0]),
                                  (self.critic_opt, self.critic, self.flat.spans[1])):
            opt.rebind(self.flat.data[0, span], self.flat.grad[span], list(module.parameters()))
        self._bind()

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action(s) in [-1, 1] for one observation or a batch."""
        if self._numpy_policy is not None:
            return self._numpy_policy(obs)
        with torch.no_grad():
            x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            return self.actor(self.norm(x)).cpu().numpy()

    def update_normaliser(self, obs: np.ndarray) -> None:
        """Fold observations (n, obs_dim) into the normaliser's running statistics."""
        if isinstance(self.norm, RunningNorm):
            self.norm.update(torch.as_tensor(np.atleast_2d(obs), device=self.device))

    def teacher_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The teacher's actions for raw (unnormalised) observations (B, obs_dim): the
        proportional policy clip(−(end effector − target) / teacher_scale, −1, 1)."""
        start, stop = self.hyper.teacher_columns
        return (obs[:, start:stop] / -self.hyper.teacher_scale).clamp(-1.0, 1.0)

    def teacher_weight(self) -> float:
        """The cloning term's weight at this update (`updates` counts it already): constant,
        or falling linearly to 0 over teacher_decay_updates."""
        c = self.hyper
        if not c.teacher_weight or not c.teacher_decay_updates:
            return c.teacher_weight
        return c.teacher_weight * max(0.0, 1.0 - self.updates / c.teacher_decay_updates)

    def update(self, obs, action, reward, next_obs, terminated, discount=None) -> dict[str, torch.Tensor]:
        """One gradient step on a batch of tensors; returns losses and mean Q (as tensors).
        `discount`, per transition, replaces γ in the target (n-step returns: γᵐ)."""
        if self._hand is None:
            return self.update_autograd(obs, action, reward, next_obs, terminated, discount)
        self.updates += 1
        return self._hand(obs, action, reward, next_obs, terminated, discount,
                          actor_step=self.updates % self.hyper.policy_delay == 0)

    def update_autograd(self, obs, action, reward, next_obs, terminated, discount=None) -> dict[str, torch.Tensor]:
        """`update` through autograd: the reference for the hand-derived gradients."""
        c = self.hyper
        raw_obs, (obs, next_obs) = obs, (self.norm(obs), self.norm(next_obs))

        # Critic: regress Q(s, a) to r + γ(1 − terminated)·Q′(s′, μ′(s′)) (γᵐ after m rewards).
        with torch.no_grad():
            next_action = self.actor_target(next_obs)
            if c.target_noise > 0:
                noise = (torch.randn_like(next_action) * c.target_noise).clamp(
                    -c.target_noise_clip, c.target_noise_clip)
                next_action = (next_action + noise).clamp(-1.0, 1.0)
            next_q = self.critic_target(next_obs, next_action)
            next_q = next_q.min(dim=0).values if c.twin_critics else next_q[0]
            target = reward + (c.gamma if discount is None else discount) * (1.0 - terminated) * next_q
        q = self.critic(obs, action)
        critic_loss = (q - target).square().mean(dim=1).sum()
        self.critic_opt.descend(critic_loss)
        self.updates += 1
        metrics = {"critic_loss": critic_loss.detach(), "mean_q": q.detach().mean()}

        # Actor: ascend Q1(s, μ(s)), less w·mean |μ(s) − a_T(s)|² with the teacher's action
        # a_T. `descend` backpropagates to the actor's weights only, so autograd computes no
        # gradients for the critic's, only through it to the action.
        if self.updates % c.policy_delay == 0:
            action = self.actor(obs)
            actor_loss = -self.critic(obs, action, members=1).mean()
            if weight := self.teacher_weight():
                actor_loss = actor_loss + weight * (action - self.teacher_action(raw_obs)).square().sum(-1).mean()
            self.actor_opt.descend(actor_loss)
            online, targets = self.flat.data
            targets.lerp_(online, c.tau)
            metrics["actor_loss"] = actor_loss.detach()
        return metrics

    def state_dict(self) -> dict:
        """Copies, in the layout of torch modules and torch's Adam (as before flat parameters)."""
        def copied(module: nn.Module) -> dict:
            return {k: v.clone() for k, v in module.state_dict().items()}
        return {
            "actor": copied(self.actor), "critic": copied(self.critic),
            "actor_target": copied(self.actor_target), "critic_target": copied(self.critic_target),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "norm": copied(self.norm), "updates": self.updates,
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

