"""reacher.ddpg.adam.FlatAdam: exactly torch's fused Adam, stepped as one tensor, saved in its format."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reacher.config import Config
from reacher.ddpg.adam import FlatAdam
from reacher.ddpg.networks import FlatParameters


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))


def _flat(net: nn.Module, lr: float = 1e-2) -> tuple[FlatParameters, FlatAdam]:
    """`net`'s parameters laid out flat (with a target copy, as the agent does), and FlatAdam on them."""
    flat = FlatParameters([net], [copy.deepcopy(net)])
    return flat, FlatAdam(flat.data[0], flat.grad, list(net.parameters()), lr=lr)


def _loss(net: nn.Module, seed: int) -> torch.Tensor:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(seed))
    return (net(x) - 1.0).square().mean()


def _torch_step(net: nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    opt.zero_grad()
    _loss(net, seed).backward()
    opt.step()


def test_steps_and_state_equal_torch_fused_adam_bitwise():
    ours, theirs = _net(), _net()
    _, mine = _flat(ours)
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    assert mine.state_dict() == reference.state_dict()  # before the first step: no state yet
    for seed in range(4):
        mine.descend(_loss(ours, seed))
        _torch_step(theirs, reference, seed)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)
    state, expected = mine.state_dict(), reference.state_dict()
    assert state["param_groups"] == expected["param_groups"]
    assert state["state"].keys() == expected["state"].keys()
    for i, tensors in expected["state"].items():
        assert state["state"][i].keys() == tensors.keys()
        for name, value in tensors.items():
            assert torch.equal(state["state"][i][name], value), name
            assert state["state"][i][name].dtype == value.dtype


@pytest.mark.parametrize("lr", sorted({Config().actor_lr, Config().critic_lr, 1e-4}))
def test_every_step_of_a_long_run_equals_torch_adam(lr):
    """The guard on the kernel call: if a torch release changed what the functional fused Adam
    computes or how it counts steps, this fails at the first step that differs."""
    ours, theirs = _net(), _net()
    _, mine = _flat(ours, lr)
    reference = torch.optim.Adam(theirs.parameters(), lr=lr, fused=True)
    for seed in range(200):
        mine.descend(_loss(ours, seed))
        _torch_step(theirs, reference, seed)
        for a, b in zip(ours.parameters(), theirs.parameters()):
            assert torch.equal(a, b), f"step {seed + 1}"
    assert mine.state_dict()["state"][0]["step"] == reference.state_dict()["state"][0]["step"] == 200
    # The default (unfused) torch Adam is the textbook algorithm; the fused kernel rounds differently.
    plain = _net()
    textbook = torch.optim.Adam(plain.parameters(), lr=lr)
    for seed in range(200):
        _torch_step(plain, textbook, seed)
    for a, b in zip(ours.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_step_uses_the_gradient_written_into_the_flat_buffer():
    ours, theirs = _net(), _net()
    flat, mine = _flat(ours)
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    for seed in range(3):
        grads = torch.autograd.grad(_loss(ours, seed), list(ours.parameters()))
        flat.grad.copy_(torch.cat([g.reshape(-1) for g in grads]))  # as the hand-derived update does
        mine.step()
        _torch_step(theirs, reference, seed)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(a, b)


def test_loaded_and_copied_optimisers_continue_with_their_own_state():
    ours, theirs = _net(), _net()
    reference = torch.optim.Adam(theirs.parameters(), lr=1e-2, fused=True)
    for seed in range(3):
        _torch_step(theirs, reference, seed)
    _, mine = _flat(ours)
    mine.descend(_loss(ours, 99))  # state created here is then replaced by the load
    ours.load_state_dict(theirs.state_dict())
    mine.load_state_dict(copy.deepcopy(reference.state_dict()))  # a checkpoint of torch's Adam
    twin_net = copy.deepcopy(ours)
    _, twin = _flat(twin_net)
    twin.load_state_dict(mine.state_dict())  # FlatAdam's own state_dict copies: no sharing
    for seed in range(3, 6):
        mine.descend(_loss(ours, seed))
        twin.descend(_loss(twin_net, seed))
        _torch_step(theirs, reference, seed)
    for a, b, c in zip(ours.parameters(), theirs.parameters(), twin_net.parameters()):
        assert torch.equal(a, b) and torch.equal(c, b)


def test_load_refuses_a_state_for_other_parameters():
    _, mine = _flat(_net())
    other = torch.optim.Adam(nn.Linear(2, 2).parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="2 parameters"):
        mine.load_state_dict(other.state_dict())


def test_descend_leaves_other_leaves_without_gradients():
    torch.manual_seed(0)
    actor, critic = nn.Linear(3, 2), nn.Linear(5, 1)
    _, opt = _flat(actor)
    obs = torch.randn(4, 3)
    before = [p.detach().clone() for p in critic.parameters()]
    opt.descend(-critic(torch.cat([obs, actor(obs)], dim=1)).mean())
    assert all(p.grad is None for p in critic.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))
    assert all(p.grad.abs().sum() > 0 for p in actor.parameters())  # views of the flat gradient
