"""The actor and critic networks, and the running observation normaliser they share."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            # In place: a linear layer's backward needs its input, not its output.
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """μ(s): observation → action in [-1, 1]."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.net = mlp([obs_dim, *hidden, act_dim])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied in one batched matmul (for twin critics)."""

    def __init__(self, n: int, in_features: int, out_features: int):
        super().__init__()
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (k, batch, in) → (k, batch, out)
        k = x.shape[0]  # the first k members: the actor step needs only Q1
        if k == self.weight.shape[0]:  # a slice's backward would copy every gradient once more
            return torch.baddbmm(self.bias, x, self.weight)
        return torch.baddbmm(self.bias[:k], x, self.weight[:k])


class EnsembleLayerNorm(nn.Module):
    """Layer normalisation with each member's own gain and bias (for EnsembleLinear's outputs)."""

    def __init__(self, n: int, features: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, features))
        self.bias = nn.Parameter(torch.zeros(n, 1, features))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (k, batch, features), the first k members
        k = x.shape[0]
        return torch.addcmul(self.bias[:k], F.layer_norm(x, x.shape[-1:], eps=self.eps), self.weight[:k])


class Critic(nn.Module):
    """Q(s, a), as `n_critics` independent networks evaluated together: shape (n_critics, batch).

    With `layernorm`, each hidden layer's output is layer-normalised before its relu, which
    keeps the critic's features bounded as its targets move (Ball et al. 2023, "Efficient
    online RL with offline data"; BRO and SimBa build on it); the weights stay where they
    were in the state dict (`layers.i`), the norms are `norms.i`."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], n_critics: int = 1,
                 layernorm: bool = False):
        super().__init__()
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.n_critics = n_critics
        self.layers = nn.ModuleList(EnsembleLinear(n_critics, a, b) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(EnsembleLayerNorm(n_critics, h) for h in hidden) if layernorm else None

    def forward(self, obs: torch.Tensor, action: torch.Tensor, members: int | None = None) -> torch.Tensor:
        x = torch.cat([obs, action], dim=-1).expand(members or self.n_critics, -1, -1)
        for i, layer in enumerate(self.layers[:-1]):
            x = layer(x)
            if self.norms is not None:
                x = self.norms[i](x)
            x = x.relu_()  # in place, as in `mlp`
        return self.layers[-1](x).squeeze(-1)


class FlatParameters:
    """The parameters of online networks and of their targets, as views into one tensor.

    Row 0 of `data` (2, n) holds every online parameter, row 1 its target at the same
    offset, and `grad` (n,) the online gradients. The modules keep their parameters (now
    views), so their `forward`, `state_dict` and `load_state_dict` work as before; but one
    kernel can now step a whole network's Adam (reacher.ddpg.adam.FlatAdam) and average every
    target at once (Polyak: `data[1].lerp_(data[0], tau)`). `spans[i]` is where the
    parameters of `online[i]` lie in a row."""

    def __init__(self, online: list[nn.Module], targets: list[nn.Module]):
        params = [p for m in online for p in m.parameters()]
        target_params = [p for m in targets for p in m.parameters()]
        assert [p.shape for p in params] == [p.shape for p in target_params]
        n = sum(p.numel() for p in params)
        self.data = torch.empty(2, n, dtype=params[0].dtype, device=params[0].device)
        self.grad = torch.zeros(n, dtype=self.data.dtype, device=self.data.device)
        self.spans: list[slice] = []
        offset = 0
        for module, target in zip(online, targets):
            start = offset
            for p, t in zip(module.parameters(), target.parameters()):
                size = p.numel()
                for row, q in ((0, p), (1, t)):
                    view = self.data[row, offset:offset + size].view_as(q)
                    view.copy_(q.detach())
                    q.data = view
                # The gradient a hand-derived update writes is also what autograd would leave.
                p.grad = self.grad[offset:offset + size].view_as(p)
                offset += size
            self.spans.append(slice(start, offset))


class RunningNorm(nn.Module):
    """Observation normaliser: (x − mean) / std from all observations seen, clipped to ±5.

    Statistics are buffers, so they travel with the checkpoint; they are updated from
    numpy on the collecting side and never by gradients."""

    def __init__(self, dim: int, clip: float = 5.0, eps: float = 1e-4):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("scale", torch.ones(dim))  # 1/std, float32 for the forward pass
        self.register_buffer("shift", torch.zeros(dim))
        self.clip, self.eps = clip, eps

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Merge a batch (n, dim) into the statistics (parallel variance formula)."""
        batch = batch.to(torch.float64)
        n = batch.shape[0]
        mean, var = batch.mean(0), batch.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + var * n + delta.square() * self.count * n / total) / total)
        self.count.copy_(total)
        self.scale.copy_((1.0 / torch.sqrt(self.var + self.eps)).float())
        self.shift.copy_(self.mean.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.shift) * self.scale).clamp(-self.clip, self.clip)


class NumpyPolicy:
    """The actor behind its normaliser, evaluated in numpy on views of the torch tensors.

    Acting is one observation at a time, where torch's per-op dispatch dominates: this
    costs a quarter to a fifth of `actor(norm(x))` (docs/benchmarks.md, section 2). The
    arrays share memory with the parameters and buffers, which the optimiser, the
    normaliser and `load_state_dict` all update in place, so the policy is always
    current and nothing is copied. CPU tensors only."""

    def __init__(self, actor: Actor, norm: nn.Module):
        linears = [m for m in actor.net if isinstance(m, nn.Linear)]
        self.layers = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in linears]
        self.norm = (norm.shift.numpy(), norm.scale.numpy(), norm.clip) if isinstance(norm, RunningNorm) else None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        if self.norm is not None:
            shift, scale, clip = self.norm
            x = np.clip((x - shift) * scale, -clip, clip)
        for weight, bias in self.layers[:-1]:
            x = np.maximum(x @ weight + bias, 0.0)
        weight, bias = self.layers[-1]
        return np.tanh(x @ weight + bias)
