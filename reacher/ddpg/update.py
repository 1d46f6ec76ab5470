"""The DDPG/TD3 update with its gradients derived by hand: a few large kernels, no autograd.

Through autograd, one update at the default sizes was some 585 small dispatcher calls
(building the graph, walking it back, per-parameter optimiser and averaging loops) around
a dozen matmuls that do the work. Here the update is written as those matmuls. For a
linear layer z = x·W + b followed by h = relu(z), with dz = ∂loss/∂z:

    dW = xᵀ·dz        db = Σ_batch dz        dx = dz·Wᵀ        dz_before = dx ⊙ [x > 0]

(x > 0 exactly where the previous layer's z > 0, since x = relu(z)). The losses are

    critic   Σ_members mean_batch (Q − y)²   so   ∂/∂Q  = 2(Q − y)/B
    actor    −mean_batch Q1(s, μ(s))         so   ∂/∂Q1 = −1/B, taken back through Q1 to
             the action only (the critic's weights get no gradient here), then through
             tanh (∂a/∂z = 1 − a²) and the actor's layers; with a teacher, the actor's loss
             adds w·mean_batch |a − a_T|², so ∂/∂a gains 2w(a − a_T)/B before the tanh
             (a_T from the raw observation, `Agent.teacher_action`).

Gradients are written straight into the flat gradient buffer, each network then takes one
fused Adam step (reacher.ddpg.adam.FlatAdam), and every target moves with one lerp over the
flat parameters (reacher.ddpg.networks.FlatParameters). The maths is `Agent.update_autograd`'s,
to float rounding (tests/test_agent.py compares the two).
"""

from __future__ import annotations

import torch
from torch import nn

from reacher.ddpg.networks import FlatParameters, RunningNorm

_relu_backward = torch.ops.aten.threshold_backward.grad_input  # dx ⊙ [x > 0], into a buffer
_tanh_backward = torch.ops.aten.tanh_backward.default          # da ⊙ (1 − a²)


def _views(row: torch.Tensor, span: slice, module: nn.Module) -> list[torch.Tensor]:
    """Views of `row` (a flat parameter or gradient row) shaped as `module`'s parameters.
    Plain tensors, not Parameters: nothing done with them is recorded by autograd."""
    tensors, offset = [], span.start
    for p in module.parameters():
        tensors.append(row[offset:offset + p.numel()].view(p.shape))
        offset += p.numel()
    return tensors


class _Buffers:
    """What one MLP computes on a batch of one size, allocated once: its input `x` (the
    caller writes it), every layer's output, and the gradients flowing back between layers.
    Kept, because at these sizes a fresh tensor's allocation and first touch cost as much
    as the kernel that fills it; the transposed views, because making a view costs as
    much as a small kernel."""

    def __init__(self, mlp: "_Mlp", batch: int):
        like = {"dtype": mlp.w[0].dtype, "device": mlp.w[0].device}
        widths = [w.shape[-1] for w in mlp.w]
        self.x = torch.empty(batch, mlp.w[0].shape[-2], **like)
        self.outputs = [torch.empty(*mlp.lead, batch, n, **like) for n in widths]
        self.inputs = [self.x.expand(*mlp.lead, *self.x.shape), *self.outputs[:-1]]
        self.inputs_t = [x.transpose(-1, -2) for x in self.inputs]
        self.grads = [torch.empty_like(x) for x in self.inputs]  # ∂loss/∂inputs[i], i ≥ 1


class _Mlp:
    """An MLP's linear layers as views: weights seen as (in, out) for x·W, with their
    gradients. `ensemble` layers are EnsembleLinear's, (members, in, out) on inputs
    (members, B, in); the others nn.Linear's, stored (out, in), on inputs (B, in)."""

    def __init__(self, params: list[torch.Tensor], grads: list[torch.Tensor] | None, ensemble: bool):
        weights, self.b = params[0::2], params[1::2]
        self.w = weights if ensemble else [w.t() for w in weights]
        self.w_t = [w.transpose(-1, -2) for w in self.w]
        if grads is not None:
            self.grad_w = grads[0::2] if ensemble else [g.t() for g in grads[0::2]]
            self.grad_b = grads[1::2]
        self.ensemble = ensemble
        self.lead = tuple(self.w[0].shape[:1]) if ensemble else ()
        self.affine = torch.baddbmm if ensemble else torch.addmm
        self.matmul = torch.bmm if ensemble else torch.mm
        self._buffers: dict[int, _Buffers] = {}

    def buffers(self, batch: int) -> _Buffers:
        if batch not in self._buffers:
            self._buffers[batch] = _Buffers(self, batch)
        return self._buffers[batch]

    def forward(self, ws: _Buffers) -> torch.Tensor:
        """The last layer's output (no activation) from the input in `ws.x`."""
        last = len(self.w) - 1
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            self.affine(b, ws.inputs[i], w, out=ws.outputs[i])
            if i < last:
                ws.outputs[i].relu_()
        return ws.outputs[-1]

    def backward(self, dz: torch.Tensor, ws: _Buffers) -> None:
        """Every layer's weight and bias gradients, from dz = ∂loss/∂(last output)."""
        for i in reversed(range(len(self.w))):
            self.matmul(ws.inputs_t[i], dz, out=self.grad_w[i])
            torch.sum(dz, -2, keepdim=self.ensemble, out=self.grad_b[i])
            if i:
                dz = self._back(dz, ws, i)

    def input_grad(self, dz: torch.Tensor, ws: _Buffers, columns: slice) -> torch.Tensor:
        """∂loss/∂(these columns of the input), from dz; no weight gradients."""
        for i in reversed(range(1, len(self.w))):
            dz = self._back(dz, ws, i)
        return self.matmul(dz, self.w_t[0][..., columns])

    def _back(self, dz: torch.Tensor, ws: _Buffers, i: int) -> torch.Tensor:
        """∂loss/∂(layer i−1's output before relu), from dz at layer i's output."""
        dx = ws.grads[i]
        self.matmul(dz, self.w_t[i], out=dx)
        return _relu_backward(dx, ws.inputs[i], 0, grad_input=dx)


class HandUpdate:
    """`Agent.update` for the agent's MLP actor and ensemble critic (any depth, widths and
    number of critics; every TD3 option), reading and writing the agent's flat parameters."""

    def __init__(self, agent):
        self.agent, c = agent, agent.hyper
        flat: FlatParameters = agent.flat
        actor_span, critic_span = flat.spans
        online, target = flat.data[0], flat.data[1]
        self.actor = _Mlp(_views(online, actor_span, agent.actor), _views(flat.grad, actor_span, agent.actor),
                          ensemble=False)
        self.actor_target = _Mlp(_views(target, actor_span, agent.actor), None, ensemble=False)
        critic = _views(online, critic_span, agent.critic)
        self.critic = _Mlp(critic, _views(flat.grad, critic_span, agent.critic), ensemble=True)
        self.critic_target = _Mlp(_views(target, critic_span, agent.critic), None, ensemble=True)
        self.q1 = _Mlp([t[:1] for t in critic], None, ensemble=True)  # the actor ascends the first critic
        self.members = agent.critic.n_critics
        self.action_columns = slice(agent.obs_dim, agent.obs_dim + agent.act_dim)
        self.norm = agent.norm if isinstance(agent.norm, RunningNorm) else None
        self.gamma, self.tau = c.gamma, c.tau
        self.target_noise, self.target_noise_clip = c.target_noise, c.target_noise_clip

    def _normalise(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        n = self.norm  # RunningNorm.forward
        if n is None:
            return out.copy_(x)
        return torch.sub(x, n.shift, out=out).mul_(n.scale).clamp_(-n.clip, n.clip)

    def __call__(self, obs, action, reward, next_obs, terminated, discount, actor_step: bool) -> dict[str, torch.Tensor]:
        batch = obs.shape[0]
        actor, actor_target = self.actor.buffers(batch), self.actor_target.buffers(batch)
        critic, critic_target = self.critic.buffers(batch), self.critic_target.buffers(batch)
        s, next_s = self._normalise(obs, actor.x), self._normalise(next_obs, actor_target.x)

        # The regression target y = r + γ(1 − terminated)·min_members Q′(s′, μ′(s′) + noise)
        # (γᵐ, `discount`, after m rewards).
        next_a = self.actor_target.forward(actor_target).tanh_()
        if self.target_noise > 0:
            noise = torch.randn_like(next_a).mul_(self.target_noise)
            next_a.add_(noise.clamp_(-self.target_noise_clip, self.target_noise_clip)).clamp_(-1.0, 1.0)
        torch.cat([next_s, next_a], 1, out=critic_target.x)
        next_q = self.critic_target.forward(critic_target)
        next_q = next_q.amin(0) if self.members > 1 else next_q[0]
        going = torch.rsub(terminated, 1.0)
        if discount is None:
            y = torch.addcmul(reward.unsqueeze(1), going.unsqueeze(1), next_q, value=self.gamma)
        else:  # n-step returns: γᵐ per transition
            y = torch.addcmul(reward.unsqueeze(1), going.mul_(discount).unsqueeze(1), next_q)

        # The critic step.
        torch.cat([s, action], 1, out=critic.x)
        q = self.critic.forward(critic)
        error = q - y
        self.critic.backward(error * (2.0 / batch), critic)
        self.agent.critic_opt.step()
        metrics = {"critic_loss": error.square().sum() / batch, "mean_q": q.mean()}
        if not actor_step:
            return metrics

        # The actor step: −Q1(s, μ(s)) back to the action, then through tanh and the actor.
        a = self.actor.forward(actor).tanh_()
        q1_buffers = self.q1.buffers(batch)
        torch.cat([s, a], 1, out=q1_buffers.x)
        q1 = self.q1.forward(q1_buffers)
        da = self.q1.input_grad(torch.full_like(q1, -1.0 / batch), q1_buffers, self.action_columns)[0]
        weight = self.agent.teacher_weight()
        if weight:
            miss = a - self.agent.teacher_action(obs)
            da.add_(miss, alpha=2.0 * weight / batch)
        self.actor.backward(_tanh_backward(da, a), actor)
        self.agent.actor_opt.step()
        online, targets = self.agent.flat.data
        targets.lerp_(online, self.tau)
        metrics["actor_loss"] = -q1.mean() + weight * miss.square().sum() / batch if weight else -q1.mean()
        return metrics
