"""Adam for small networks: torch's fused kernel, called without `Optimizer.step`'s Python.

At the default 2×128 networks one `torch.optim.Adam(fused=True).step()` costs about
90 µs on this project's CPU, of which the kernel itself is about 30 µs; the rest is
per-call bookkeeping (hooks, group lookups, state initialisation checks). An update
takes two steps, so that bookkeeping was a tenth of it. `FusedAdam.descend` runs the
same kernel with the same arguments on cached lists, so parameters, moments and step
counts — and `state_dict` — are exactly those of `torch.optim.Adam(fused=True)`.
"""

from __future__ import annotations

import torch


class FusedAdam(torch.optim.Adam):
    """`torch.optim.Adam(fused=True)` (one parameter group, no weight decay) with a fast step.

    `descend(loss)` = zero the gradients, backpropagate `loss` to this optimiser's
    parameters only (other leaves in the graph get no gradient), and take one Adam step.
    """

    def __init__(self, params, lr: float):
        super().__init__(params, lr=lr, fused=True)
        self._state: tuple[list, list, list] | None = None  # exp_avg, exp_avg_sq, step

    def descend(self, loss: torch.Tensor) -> None:
        group = self.param_groups[0]
        params = group["params"]
        for p in params:
            p.grad = None
        loss.backward(inputs=params)
        if self._state is None:
            self._state = self._initial_state()
        exp_avgs, exp_avg_sqs, steps = self._state
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [],
                           steps, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=0.0,
                           eps=group["eps"], amsgrad=False, maximize=False)

    def _initial_state(self) -> tuple[list, list, list]:
        """The state torch's Adam creates on its first step, or the one loaded into it."""
        params = self.param_groups[0]["params"]
        for p in params:
            if p not in self.state or not self.state[p]:
                self.state[p] = {"step": torch.zeros((), dtype=torch.float32, device=p.device),
                                 "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                                 "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        states = [self.state[p] for p in params]
        return ([s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [s["step"] for s in states])

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._state = None  # loading replaces the state tensors: look them up again

    def __setstate__(self, state: dict) -> None:  # copies and unpickling: their own tensors
        super().__setstate__(state)
        self._state = None
