"""Adam over parameters that live in one flat tensor: one fused kernel per step.

The agent keeps every parameter of a network as a view into one tensor (see
reacher.ddpg.networks.FlatParameters), so the whole network's Adam step is one call of torch's
functional fused Adam (`torch.optim.adam.adam(..., fused=True)`, the public function that
`torch.optim.Adam.step()` itself calls) on one tensor, instead of the optimiser walking its
parameters and their state one by one; `torch.optim.Adam.step()` spends more in that
bookkeeping than in the arithmetic at this project's network sizes. The arithmetic is the same
kernel with the same arguments, so parameters and moments are exactly those of
`torch.optim.Adam(fused=True)` (tests/test_adam.py, step for step), and `state_dict` is in its
format, so checkpoints written before this optimiser existed load into it.
"""

from __future__ import annotations

import torch
from torch.optim.adam import adam


class FlatAdam:
    """Adam (one group, no weight decay) on `flat`, a 1-d tensor whose gradient is `grad`.

    `params` are the per-parameter views of `flat`, in the order `state_dict` numbers them."""

    def __init__(self, flat: torch.Tensor, grad: torch.Tensor, params: list[torch.Tensor],
                 lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.flat, self.grad, self.params = flat, grad, list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(flat), torch.zeros_like(flat)
        self.steps = torch.zeros((), dtype=torch.float32, device=flat.device)
        # torch's own param_groups entry, so a saved state reads exactly like torch's Adam.
        probe = [torch.zeros(1, requires_grad=True) for _ in self.params]
        self._group = torch.optim.Adam(probe, lr=lr, betas=betas, eps=eps, fused=True).state_dict()["param_groups"][0]

    def step(self) -> None:
        """One Adam step from the gradient in `grad` (the step count advances inside)."""
        beta1, beta2 = self.betas
        adam([self.flat], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps], fused=True,
             lr=self.lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
             amsgrad=False, maximize=False)

    def descend(self, loss: torch.Tensor) -> None:
        """Backpropagate `loss` to `params` only (other leaves get no gradient) and step."""
        grads = torch.autograd.grad(loss, self.params)
        torch.cat([g.reshape(-1) for g in grads], out=self.grad)
        self.step()

    def rebind(self, flat: torch.Tensor, grad: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Step these tensors from now on (a copied agent's own), keeping the moments."""
        assert flat.shape == self.flat.shape == grad.shape
        self.flat, self.grad, self.params = flat, grad, list(params)

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        out, offset = [], 0
        for p in self.params:
            out.append(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return out

    def state_dict(self) -> dict:
        """torch.optim.Adam's format: per-parameter step and moments (copies), and the group."""
        group = {**self._group, "lr": self.lr, "betas": self.betas, "eps": self.eps}
        if self.steps.item() == 0:  # torch's Adam creates its state on the first step
            return {"state": {}, "param_groups": [group]}
        state = {i: {"step": self.steps.clone(), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
                 for i, (m, v) in enumerate(zip(self._views(self.exp_avg), self._views(self.exp_avg_sq)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state from `state_dict` (this class's or torch.optim.Adam's)."""
        group = state_dict["param_groups"][0]
        if len(state_dict["param_groups"]) != 1 or len(group["params"]) != len(self.params):
            raise ValueError(f"optimiser state holds {len(group['params'])} parameters in "
                             f"{len(state_dict['param_groups'])} groups, expected {len(self.params)} in 1")
        self.lr, self.betas, self.eps = group["lr"], tuple(group["betas"]), group["eps"]
        state = state_dict["state"]
        if not state:
            self.exp_avg.zero_(), self.exp_avg_sq.zero_(), self.steps.zero_()
            return
        for i, (m, v) in enumerate(zip(self._views(self.exp_avg), self._views(self.exp_avg_sq))):
            m.copy_(state[group["params"][i]]["exp_avg"])
            v.copy_(state[group["params"][i]]["exp_avg_sq"])
        # torch's Adam keeps one count per parameter; they advance together.
        self.steps.fill_(float(state[group["params"][0]]["step"]))
