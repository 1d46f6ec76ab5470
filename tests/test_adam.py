"""reacher.adam.FusedAdam: exactly torch's fused Adam, stepped without Optimizer.step."""

from __future__ import annotations

import copy

import torch
from torch import nn

from reacher.adam import FusedAdam


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))


def _loss(net: nn.Module, seed: int) -> torch.Tensor:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(seed))
    return (net(x) - 1.0).square().mean()


def _torch_step(net: nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    opt.zero_grad()
    _loss(net, seed).backward()
    opt.step()


def test_steps_and_state_equal_torch_fused_adam_bitwise():
    ours, theirs = _net(), _net()
    mine = FusedAdam(ours.parameters(), lr=1e-2)
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    for seed in range(4):
        mine.descend(_loss(ours, seed))
        _torch_step(theirs, reference, seed)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    state, expected = mine.state_dict(), reference.state_dict()
    assert state["param_groups"] == expected["param_groups"]
    for i, tensors in expected["state"].items():
        for name, value in tensors.items():
            assert torch.equal(state["state"][i][name], value), name


def test_loaded_and_copied_optimisers_continue_with_their_own_state():
    ours, theirs = _net(), _net()
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    for seed in range(3):
        _torch_step(theirs, reference, seed)
    ours.load_state_dict(theirs.state_dict())
    mine = FusedAdam(ours.parameters(), lr=1e-2)
    mine.descend(_loss(ours, 99))  # state created here is then replaced by the load
    ours.load_state_dict(theirs.state_dict())
    mine.load_state_dict(copy.deepcopy(reference.state_dict()))  # torch's load shares tensors
    twin_net = copy.deepcopy(ours)
    twin = FusedAdam(twin_net.parameters(), lr=1e-2)
    twin.load_state_dict(copy.deepcopy(mine.state_dict()))
    for seed in range(3, 6):
        mine.descend(_loss(ours, seed))
        twin.descend(_loss(twin_net, seed))
        _torch_step(theirs, reference, seed)
    for a, b, c in zip(ours.parameters(), theirs.parameters(), twin_net.parameters()):
        assert torch.equal(a, b) and torch.equal(c, b)


def test_descend_leaves_other_leaves_without_gradients():
    torch.manual_seed(0)
    actor, critic = nn.Linear(3, 2), nn.Linear(5, 1)
    opt = FusedAdam(actor.parameters(), lr=1e-3)
    obs = torch.randn(4, 3)
    before = [p.detach().clone() for p in critic.parameters()]
    opt.descend(-critic(torch.cat([obs, actor(obs)], dim=1)).mean())
    assert all(p.grad is None for p in critic.parameters())
    assert all(p.grad is not None for p in actor.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))
