"""reacher.ddpg.networks, reacher.ddpg.agent and reacher.ddpg.update: the networks, the normaliser and one
DDPG/TD3 update.

The update's maths is checked on `Agent.update_autograd`, where the critic's regression
target can be read back from the update itself: the critic loss is Σ_members mean_batch
(Q − y)², so ∂loss/∂Q = 2(Q − y)/B and y = Q − (B/2)·∂loss/∂Q (a forward hook keeps the Q
the update computed and its gradient). `Agent.update`, the hand-derived gradients of
reacher.ddpg.update, is then checked to take the same steps, option by option.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from reacher.ddpg.agent import Agent
from reacher.ddpg.networks import Actor, Critic, EnsembleLinear, RunningNorm

OBS, ACT = 6, 2


def _agent(**changes) -> Agent:
    """A small agent whose normaliser has seen data, so the update must apply it."""
    torch.manual_seed(0)
    agent = Agent(OBS, ACT, **_kwargs(**changes))
    agent.update_normaliser(np.random.default_rng(0).normal(1.0, 2.0, (200, OBS)))
    return agent


def _kwargs(**changes) -> dict:
    return {"hidden_sizes": (32, 32), **changes}


def _batch(n: int = 64, seed: int = 0) -> list[torch.Tensor]:
    """obs, action, reward, next_obs, terminated; every other row terminated."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, OBS, generator=g) * 2 + 1, torch.rand(n, ACT, generator=g) * 2 - 1,
            torch.randn(n, generator=g), torch.randn(n, OBS, generator=g) * 2 + 1,
            (torch.arange(n) % 2 == 0).to(torch.get_default_dtype())]


def _regression_targets(agent: Agent, batch) -> tuple[torch.Tensor, dict]:
    """Run one update; return the y each critic member was regressed to, (members, batch)."""
    outputs = []

    def keep(module, args, output):
        if output.requires_grad:
            output.retain_grad()
        outputs.append(output)

    handle = agent.critic.register_forward_hook(keep)
    try:
        metrics = agent.update_autograd(*batch)
    finally:
        handle.remove()
    q = outputs[0]  # the critic step's Q(s, a); later calls belong to the actor step
    return (q - q.grad * q.shape[1] / 2).detach(), metrics


@torch.no_grad()
def _target_q(agent: Agent, next_obs: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Every target critic member's Q′(s′, μ′(s′)), (members, batch), computed by hand."""
    s = agent.norm(next_obs)
    a = agent.actor_target(s)
    if noise is not None:
        a = (a + noise).clamp(-1.0, 1.0)
    return agent.critic_target(s, a)


def _params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def _all_differ(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(not torch.equal(x, y) for x, y in zip(a, b))


# --- networks ----------------------------------------------------------------------------------------

def test_ensemble_linear_equals_independent_linear_layers():
    torch.manual_seed(0)
    ensemble = EnsembleLinear(2, 5, 3)
    layers = [nn.Linear(5, 3) for _ in range(2)]
    with torch.no_grad():
        for k, layer in enumerate(layers):
            layer.weight.copy_(ensemble.weight[k].T)
            layer.bias.copy_(ensemble.bias[k, 0])
    x = torch.randn(2, 7, 5)
    out = ensemble(x)
    assert out.shape == (2, 7, 3)
    for k, layer in enumerate(layers):
        torch.testing.assert_close(out[k], layer(x[k]))
    # The first k members only, and members are independent under gradients too.
    torch.testing.assert_close(ensemble(x[:1]), out[:1])
    out[0].sum().backward()
    assert ensemble.weight.grad[0].abs().sum() > 0
    assert torch.count_nonzero(ensemble.weight.grad[1]) == 0
    assert torch.count_nonzero(ensemble.bias.grad[1]) == 0


def test_ensemble_members_are_initialised_independently_like_nn_linear():
    torch.manual_seed(0)
    ensemble = EnsembleLinear(2, 400, 300)
    assert not torch.equal(ensemble.weight[0], ensemble.weight[1])
    bound = 1 / np.sqrt(400)
    assert ensemble.weight.abs().max() <= bound and ensemble.weight.abs().max() > 0.99 * bound
    assert ensemble.weight.std().item() == pytest.approx(bound / np.sqrt(3), rel=0.02)


def test_twin_critic_equals_two_single_critics():
    torch.manual_seed(0)
    twin = Critic(OBS, ACT, (16, 16), n_critics=2)
    singles = [Critic(OBS, ACT, (16, 16)) for _ in range(2)]
    with torch.no_grad():
        for k, single in enumerate(singles):
            for mine, theirs in zip(single.layers, twin.layers):
                mine.weight.copy_(theirs.weight[k:k + 1])
                mine.bias.copy_(theirs.bias[k:k + 1])
    obs, action = torch.randn(9, OBS), torch.rand(9, ACT) * 2 - 1
    q = twin(obs, action)
    assert q.shape == (2, 9)
    for k, single in enumerate(singles):
        torch.testing.assert_close(q[k], single(obs, action)[0])
    torch.testing.assert_close(twin(obs, action, members=1), q[:1])


def test_actor_output_is_within_the_action_range():
    torch.manual_seed(0)
    actor = Actor(OBS, ACT, (16,))
    out = actor(torch.randn(100, OBS) * 1e4)
    assert out.shape == (100, ACT) and out.abs().max() <= 1.0


def test_running_norm_matches_numpy_over_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal([0.0, 5.0, -300.0], [1.0, 0.01, 50.0], (n, 3)) for n in (1, 7, 300, 2, 50)]
    norm = RunningNorm(3)
    for b in batches:
        norm.update(torch.as_tensor(b))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), everything.mean(0), rtol=1e-10)
    np.testing.assert_allclose(norm.var.numpy(), everything.var(0), rtol=1e-8)
    assert norm.count.item() == len(everything)
    x = torch.as_tensor(everything[:20], dtype=torch.float32)
    expected = ((everything[:20] - everything.mean(0)) / np.sqrt(everything.var(0) + norm.eps)).clip(-5, 5)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-4, atol=1e-4)
    # Statistics are buffers (saved with the model), never trained.
    assert list(norm.parameters()) == []
    assert {"mean", "var", "count"} <= set(norm.state_dict())


def test_running_norm_constant_dimension_stays_finite_and_clipped():
    norm = RunningNorm(2)
    for _ in range(3):
        norm.update(torch.tensor([[4.0, 1.0], [4.0, 2.0], [4.0, 3.0]]))
    assert norm.var[0].item() == 0.0
    out = norm(torch.tensor([[4.0, 2.0], [4.1, 2.0], [-1e6, 2.0], [float(2 ** 60), 2.0]]))
    assert torch.isfinite(out).all()
    assert out[0, 0].item() == 0.0
    assert out[1:, 0].abs().max().item() == 5.0  # 0.1 / √eps = 10 standard deviations: clipped


def test_running_norm_starts_as_identity():
    x = torch.randn(4, 3)
    torch.testing.assert_close(RunningNorm(3)(x), x)


# --- soft update -------------------------------------------------------------------------------------

@pytest.mark.parametrize("hand", [True, False], ids=["hand", "autograd"])
@pytest.mark.parametrize("tau", [0.005, 0.3, 1.0])
def test_targets_move_by_polyak_averaging_after_the_actor_step(tau, hand):
    agent = _agent(tau=tau, policy_delay=2)
    modules = (agent.actor, agent.critic)
    targets = (agent.actor_target, agent.critic_target)
    update = agent.update if hand else agent.update_autograd
    before = [p for m in targets for p in _params(m)]
    update(*_batch(seed=1))  # no actor step yet: the targets stay
    _assert_same([p for m in targets for p in _params(m)], before)
    update(*_batch(seed=2))
    for new, old, online in zip([p for m in targets for p in m.parameters()], before,
                                [p for m in modules for p in m.parameters()]):
        expected = (1 - tau) * old.double() + tau * online.detach().double()
        torch.testing.assert_close(new.detach().double(), expected, rtol=0, atol=1e-7)


# --- the critic step ---------------------------------------------------------------------------------

@pytest.mark.parametrize("twin", [False, True])
def test_critic_target_bootstraps_only_non_terminated_rows(twin):
    agent = _agent(twin_critics=twin, gamma=0.9)
    with torch.no_grad():  # offset Q′ so bootstrapping is unmistakable in the target
        agent.critic_target.layers[-1].bias += 2.0
    batch = _batch()
    reward, next_obs, terminated = batch[2], batch[3], batch[4]
    next_q = _target_q(agent, next_obs).min(dim=0).values
    assert next_q.abs().min() > 0.5
    y, _ = _regression_targets(agent, batch)
    assert y.shape == (2 if twin else 1, len(reward))
    for member in y:  # every member regresses to the same target
        done, going = terminated == 1, terminated == 0
        torch.testing.assert_close(member[done], reward[done], rtol=0, atol=1e-5)
        torch.testing.assert_close(member[going], reward[going] + 0.9 * next_q[going], rtol=0, atol=1e-5)


def test_twin_critic_target_is_the_smaller_member():
    agent = _agent(twin_critics=True)
    with torch.no_grad():  # same output bias, so which member is smaller depends on the row
        agent.critic_target.layers[-1].bias[1] = agent.critic_target.layers[-1].bias[0]
    batch = _batch(n=256)
    both = _target_q(agent, batch[3])
    first_is_smaller = both[0] < both[1]
    assert 0.1 < first_is_smaller.float().mean() < 0.9  # the min picks each member on some rows
    y, _ = _regression_targets(agent, batch)
    going = batch[4] == 0
    expected = batch[2] + agent.hyper.gamma * both.min(dim=0).values
    torch.testing.assert_close(y[0][going], expected[going], rtol=0, atol=1e-5)
    assert not torch.allclose(y[0][going], (batch[2] + agent.hyper.gamma * both[0])[going], atol=1e-3)


def test_target_policy_noise_is_clipped_and_smooths_the_target():
    agent = _agent(twin_critics=True, target_noise=0.4, target_noise_clip=0.5)
    batch = _batch(n=256)
    torch.manual_seed(123)  # the update draws the smoothing noise first, and nothing else
    noise = (torch.randn(256, ACT) * 0.4).clamp(-0.5, 0.5)
    assert (noise.abs() == 0.5).any()  # the clip is exercised
    going = batch[4] == 0
    noisy = batch[2] + agent.hyper.gamma * _target_q(agent, batch[3], noise).min(0).values
    clean = batch[2] + agent.hyper.gamma * _target_q(agent, batch[3]).min(0).values
    torch.manual_seed(123)
    y, _ = _regression_targets(agent, batch)
    torch.testing.assert_close(y[0][going], noisy[going], rtol=0, atol=1e-5)
    assert (y[0][going] - clean[going]).abs().max() > 1e-3


def test_no_target_noise_means_a_deterministic_target():
    agent = _agent()
    twin = copy.deepcopy(agent)
    batch = _batch()
    torch.manual_seed(1)
    y1, _ = _regression_targets(agent, batch)
    torch.manual_seed(2)
    y2, _ = _regression_targets(twin, batch)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)


def test_reported_critic_loss_and_mean_q():
    agent = _agent(twin_critics=True)
    batch = _batch()
    with torch.no_grad():
        q = agent.critic(agent.norm(batch[0]), batch[1])
    y, metrics = _regression_targets(agent, batch)
    torch.testing.assert_close(metrics["critic_loss"], (q - y).square().mean(1).sum())
    torch.testing.assert_close(metrics["mean_q"], q.mean())


# --- the actor step ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["update", "update_autograd"])
@pytest.mark.parametrize("twin", [False, True])
def test_actor_step_changes_only_the_actor_and_computes_no_critic_grads(twin, path):
    agent = _agent(twin_critics=twin)
    # The same agent, but this update skips the actor step (1 % 2 != 0): the critic step alone.
    critic_only = copy.deepcopy(agent)
    critic_only.hyper = agent.hyper.replace(policy_delay=2)
    actor_before, targets_before = _params(agent.actor), _params(agent.critic_target)
    calls = []
    for p in agent.critic.parameters():
        p.register_hook(lambda grad, p=p: calls.append(p))
    batch = _batch()

    metrics = getattr(agent, path)(*batch)
    getattr(critic_only, path)(*batch)

    # Each critic weight's gradient was computed once: in the critic step (by autograd,
    # or by hand, where autograd computes nothing); the actor step left it alone.
    assert len(calls) == (len(list(agent.critic.parameters())) if path == "update_autograd" else 0)
    for mine, alone in zip(agent.critic.parameters(), critic_only.critic.parameters()):
        torch.testing.assert_close(mine.grad, alone.grad, rtol=0, atol=0)
    _assert_same(_params(agent.critic), _params(critic_only.critic))
    assert all(p.requires_grad for p in agent.critic.parameters())  # unfrozen afterwards
    # The actor moved, along the gradient of −Q1(s, μ(s)) under the critic after its step.
    assert _all_differ(_params(agent.actor), actor_before)
    _assert_same(_params(critic_only.actor), actor_before)
    s = critic_only.norm(batch[0])
    expected_loss = -critic_only.critic(s, critic_only.actor(s))[0].mean()
    torch.testing.assert_close(metrics["actor_loss"], expected_loss.detach())
    expected_grads = torch.autograd.grad(expected_loss, list(critic_only.actor.parameters()))
    for p, g in zip(agent.actor.parameters(), expected_grads):
        torch.testing.assert_close(p.grad, g)
    # Then the targets moved toward the new networks.
    for new, old, online in zip(agent.critic_target.parameters(), targets_before,
                                agent.critic.parameters()):
        torch.testing.assert_close(new, torch.lerp(old, online.detach(), agent.hyper.tau))
    _assert_same(_params(critic_only.critic_target), targets_before)


@pytest.mark.parametrize("path", ["update", "update_autograd"])
def test_policy_delay_updates_actor_and_targets_every_second_update(path):
    agent = _agent(twin_critics=True, policy_delay=2)
    for n in range(1, 7):
        actor, critic, actor_target = _params(agent.actor), _params(agent.critic), _params(agent.actor_target)
        metrics = getattr(agent, path)(*_batch(seed=n))
        assert agent.updates == n
        assert _all_differ(_params(agent.critic), critic)  # the critic learns every update
        if n % 2 == 0:
            assert "actor_loss" in metrics
            assert _all_differ(_params(agent.actor), actor)
            assert _all_differ(_params(agent.actor_target), actor_target)
        else:
            assert "actor_loss" not in metrics
            _assert_same(_params(agent.actor), actor)
            _assert_same(_params(agent.actor_target), actor_target)


def test_targets_are_frozen_copies():
    agent = _agent(twin_critics=True)
    assert not any(p.requires_grad for p in agent.actor_target.parameters())
    assert not any(p.requires_grad for p in agent.critic_target.parameters())
    _assert_same(_params(agent.actor_target), _params(agent.actor))
    _assert_same(_params(agent.critic_target), _params(agent.critic))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(agent.actor.parameters(),
                                                             agent.actor_target.parameters()))


# --- acting and state ---------------------------------------------------------------------------------

def test_act_normalises_and_handles_one_or_many_observations():
    agent = _agent()
    obs = np.random.default_rng(1).normal(size=(5, OBS))
    many = agent.act(obs)
    assert many.shape == (5, ACT) and many.dtype == np.float32
    np.testing.assert_allclose(agent.act(obs[0]), many[0], rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        expected = agent.actor(agent.norm(torch.as_tensor(obs, dtype=torch.float32))).numpy()
    # Acting runs in numpy (reacher.ddpg.networks.NumpyPolicy): equal to float32 rounding.
    np.testing.assert_allclose(many, expected, rtol=1e-5, atol=1e-6)
    unnormalised = agent.actor(torch.as_tensor(obs, dtype=torch.float32)).detach().numpy()
    assert not np.allclose(many, unnormalised)


def test_act_follows_updates_normaliser_loads_and_copies():
    """The numpy policy reads the torch tensors in place: after an update, a normaliser
    update, a load_state_dict and in a deep copy it must still be the torch actor's."""
    agent = _agent()
    obs = np.random.default_rng(2).normal(1.0, 2.0, size=(7, OBS))

    def torch_act(a: Agent) -> np.ndarray:
        with torch.no_grad():
            return a.actor(a.norm(torch.as_tensor(obs, dtype=torch.float32))).numpy()

    before = agent.act(obs)
    for n in range(3):
        agent.update(*_batch(seed=n))
    agent.update_normaliser(np.random.default_rng(3).normal(-4.0, 0.5, (50, OBS)))
    after = agent.act(obs)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, torch_act(agent), rtol=1e-5, atol=1e-6)

    twin = copy.deepcopy(agent)
    fresh = _agent()
    agent.load_state_dict(fresh.state_dict())
    np.testing.assert_allclose(agent.act(obs), fresh.act(obs), rtol=0, atol=0)
    np.testing.assert_allclose(twin.act(obs), after, rtol=0, atol=0)  # the copy kept its own weights
    twin.update(*_batch(seed=9))
    np.testing.assert_allclose(twin.act(obs), torch_act(twin), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(agent.act(obs), fresh.act(obs), rtol=0, atol=0)


def test_state_dict_round_trip_continues_identically():
    agent = _agent(twin_critics=True, policy_delay=2)
    for n in range(3):
        agent.update(*_batch(seed=n))
    restored = Agent(OBS, ACT, **_kwargs(twin_critics=True, policy_delay=2))
    restored.load_state_dict(copy.deepcopy(agent.state_dict()))
    assert restored.updates == 3
    for _ in range(2):  # optimiser moments and the delay counter came along
        agent.update(*_batch(seed=9))
        restored.update(*_batch(seed=9))
    for name in ("actor", "critic", "actor_target", "critic_target"):
        _assert_same(_params(getattr(restored, name)), _params(getattr(agent, name)))


def test_policy_only_load_leaves_the_critic_alone():
    trained = _agent()
    trained.update(*_batch())
    fresh = Agent(OBS, ACT, **_kwargs())
    critic = _params(fresh.critic)
    fresh.load_state_dict(trained.state_dict(), policy_only=True)
    _assert_same(_params(fresh.actor), _params(trained.actor))
    _assert_same(_params(fresh.critic), critic)
    obs = np.random.default_rng(0).normal(size=(4, OBS))
    np.testing.assert_array_equal(fresh.act(obs), trained.act(obs))


# --- the hand-derived update against autograd -----------------------------------------------------

_OPTIONS = {
    "ddpg": {},
    "td3": {"twin_critics": True, "policy_delay": 2, "target_noise": 0.2, "target_noise_clip": 0.3},
    "three hidden layers, no normaliser": {"hidden_sizes": (16, 8, 12), "normalize_obs": False},
    # the cloning term (the teacher reads columns 2-3 of the raw observation; some clip)
    "teacher": {"teacher_weight": 1.5, "teacher_columns": (2, 4), "teacher_scale": 0.5},
    "teacher decaying, td3": {"teacher_weight": 2.0, "teacher_decay_updates": 5, "teacher_columns": (3, 5),
                              "teacher_scale": 3.0, "twin_critics": True, "policy_delay": 2,
                              "target_noise": 0.2},
}


def _both_paths(steps: int, **changes) -> tuple[Agent, Agent, list[dict], list[dict]]:
    """Two copies of one agent after `steps` updates on the same batches and noise draws,
    one by `update`, one by `update_autograd`; and each one's metrics."""
    hand = _agent(**changes)
    reference = copy.deepcopy(hand)
    hand_metrics, reference_metrics = [], []
    for n in range(steps):
        torch.manual_seed(100 + n)
        hand_metrics.append(hand.update(*_batch(seed=n)))
        torch.manual_seed(100 + n)
        reference_metrics.append(reference.update_autograd(*_batch(seed=n)))
    return hand, reference, hand_metrics, reference_metrics


@pytest.mark.parametrize("options", _OPTIONS, ids=list(_OPTIONS))
def test_hand_derived_update_takes_autograds_steps(options):
    """float32: parameters, targets, Adam moments and metrics after 6 updates agree with
    autograd's to float rounding (1e-5 relative, 1e-6 absolute)."""
    hand, reference, hand_metrics, reference_metrics = _both_paths(6, **_OPTIONS[options])
    untrained = _agent(**_OPTIONS[options])
    assert _all_differ(_params(hand.critic), _params(untrained.critic))
    assert _all_differ(_params(hand.actor_target), _params(untrained.actor_target))
    torch.testing.assert_close(hand.flat.data, reference.flat.data, rtol=1e-5, atol=1e-6)
    for opt in ("actor_opt", "critic_opt"):
        mine, theirs = getattr(hand, opt), getattr(reference, opt)
        torch.testing.assert_close(mine.exp_avg, theirs.exp_avg, rtol=1e-4, atol=1e-7)
        assert torch.equal(mine.steps, theirs.steps)
    for mine, theirs in zip(hand_metrics, reference_metrics):
        assert mine.keys() == theirs.keys()
        for key in mine:
            torch.testing.assert_close(mine[key], theirs[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", _OPTIONS, ids=list(_OPTIONS))
def test_hand_derived_gradients_equal_autograds_in_float64(options):
    """In float64 rounding all but vanishes: the gradients of one update, and the
    parameters after six, agree to 1e-9."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        hand, reference, _, _ = _both_paths(1, **{**_OPTIONS[options], "policy_delay": 1})
        assert hand.flat.grad.dtype == torch.float64 and hand.flat.grad.abs().max() > 0
        torch.testing.assert_close(hand.flat.grad, reference.flat.grad, rtol=1e-9, atol=1e-12)
        hand, reference, _, _ = _both_paths(6, **_OPTIONS[options])
        torch.testing.assert_close(hand.flat.data, reference.flat.data, rtol=1e-9, atol=1e-12)
    finally:
        torch.set_default_dtype(previous)


def test_hand_derived_update_handles_changing_batch_sizes():
    """Buffers are kept per batch size: alternating sizes must not mix them up."""
    hand, reference = _agent(), _agent()
    for n, size in enumerate([64, 32, 64, 17]):
        hand.update(*_batch(n=size, seed=n))
        reference.update_autograd(*_batch(n=size, seed=n))
    torch.testing.assert_close(hand.flat.data, reference.flat.data, rtol=1e-5, atol=1e-6)


def test_state_dict_is_a_copy_in_the_modules_layout():
    """Parameters live in one flat tensor, but a saved state holds only its own tensors, shaped
    and named as the modules' (checkpoints from before the flat layout load, and vice versa)."""
    agent = _agent(twin_critics=True)
    agent.update(*_batch())
    state = agent.state_dict()
    assert set(state["critic"]) == {f"layers.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    weight = state["actor"]["net.0.weight"]
    assert weight.shape == (32, OBS) and weight.untyped_storage().nbytes() == weight.numel() * 4
    saved = copy.deepcopy(state)
    agent.update(*_batch(seed=1))
    for name in ("actor", "critic", "actor_target", "critic_target"):
        for key, value in state[name].items():
            torch.testing.assert_close(value, saved[name][key], rtol=0, atol=0)
    torch.testing.assert_close(state["critic_opt"]["state"][0]["exp_avg"],
                               saved["critic_opt"]["state"][0]["exp_avg"], rtol=0, atol=0)


# --- the layer-normalised critic (an option) ----------------------------------------------------

def test_layernorm_critic_normalises_each_members_hidden_features():
    torch.manual_seed(0)
    critic = Critic(OBS, ACT, (32, 16), n_critics=2, layernorm=True)
    with torch.no_grad():
        critic.norms[0].weight[1] *= 3.0  # members keep their own gains
        critic.norms[0].bias[1] += 1.0
    features = []
    critic.norms[0].register_forward_hook(lambda m, args, out: features.append(out.clone()))  # before relu_
    batch = _batch(n=50)
    q = critic(batch[0], batch[1])
    assert q.shape == (2, 50)
    first, second = features[0][0], features[0][1]
    torch.testing.assert_close(first.mean(-1), torch.zeros(50), atol=1e-5, rtol=0)
    torch.testing.assert_close(first.var(-1, unbiased=False), torch.ones(50), atol=1e-3, rtol=0)
    torch.testing.assert_close(second.mean(-1), torch.ones(50), atol=1e-5, rtol=0)
    torch.testing.assert_close(second.var(-1, unbiased=False), torch.full((50,), 9.0), atol=1e-2, rtol=0)
    plain = Critic(OBS, ACT, (32, 16), n_critics=2)
    assert set(critic.state_dict()) - set(plain.state_dict()) == {
        f"norms.{i}.{p}" for i in range(2) for p in ("weight", "bias")}


def test_layernorm_critic_is_updated_through_autograd_and_saved():
    agent = _agent(critic_layernorm=True, twin_critics=True, policy_delay=2)
    reference = copy.deepcopy(agent)
    for n in range(4):
        metrics = agent.update(*_batch(seed=n))
        reference.update_autograd(*_batch(seed=n))
    assert "actor_loss" in metrics and agent.updates == 4
    _assert_same([agent.flat.data], [reference.flat.data])
    norms = [p for m in agent.critic.norms for p in m.parameters()]
    assert all(p.grad.abs().sum() > 0 for p in norms)  # the norms' gains and biases learn
    assert _all_differ(norms, [p for m in _agent(critic_layernorm=True, twin_critics=True).critic.norms
                               for p in m.parameters()])
    restored = Agent(OBS, ACT, **_kwargs(critic_layernorm=True, twin_critics=True, policy_delay=2))
    restored.load_state_dict(agent.state_dict())
    _assert_same(_params(restored.critic_target), _params(agent.critic_target))


@pytest.mark.parametrize("twin", [False, True])
def test_discount_per_transition_replaces_gamma_in_the_target(twin):
    """n-step returns pass γᵐ per transition; γ everywhere is the one-step update."""
    agent = _agent(twin_critics=twin, gamma=0.9)
    batch = _batch()
    gamma_everywhere = copy.deepcopy(agent)
    agent.update(*batch)
    gamma_everywhere.update(*batch, discount=torch.full((len(batch[0]),), 0.9))
    torch.testing.assert_close(agent.flat.data, gamma_everywhere.flat.data, rtol=1e-6, atol=1e-7)
    discount = 0.9 ** torch.randint(1, 4, (len(batch[0]),)).float()
    hand, reference = copy.deepcopy(agent), copy.deepcopy(agent)
    hand.update(*batch, discount=discount)
    reference.update_autograd(*batch, discount=discount)
    torch.testing.assert_close(hand.flat.data, reference.flat.data, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(hand.flat.data, gamma_everywhere.flat.data)


# --- the cloning term ---------------------------------------------------------------------------

_TEACHER = {"teacher_columns": (2, 4), "teacher_scale": 0.5}


def test_teacher_action_is_the_clipped_proportional_policy():
    agent = _agent(teacher_weight=1.0, **_TEACHER)
    obs = torch.tensor([[0.0, 9.0, 0.1, -0.2, 9.0, 9.0], [0.0, 0.0, 3.0, -3.0, 0.0, 0.0]])
    torch.testing.assert_close(agent.teacher_action(obs), torch.tensor([[-0.2, 0.4], [-1.0, 1.0]]))


def test_teacher_weight_decays_linearly_to_zero_and_stays_there():
    agent = _agent(teacher_weight=2.0, teacher_decay_updates=4, **_TEACHER)
    weights = []
    for n in range(6):
        agent.update(*_batch(seed=n))
        weights.append(agent.teacher_weight())
    assert weights == [1.5, 1.0, 0.5, 0.0, 0.0, 0.0]
    assert _agent(teacher_weight=2.0, **_TEACHER).teacher_weight() == 2.0


@pytest.mark.parametrize("path", ["update", "update_autograd"])
def test_cloning_term_pulls_the_actor_onto_the_teacher(path):
    """With the term dominant, 150 updates bring the actor's actions on the batch's
    states within a fraction of their start's distance to the teacher's; without it they
    do not move toward them."""
    def distance(agent, obs):
        with torch.no_grad():
            return (agent.actor(agent.norm(obs)) - agent.teacher_action(obs)).square().sum(-1).mean().item()

    batch = _batch(seed=3)
    far = {}
    for weight in (0.0, 50.0):
        agent = _agent(teacher_weight=weight, **_TEACHER)
        start = distance(agent, batch[0]) if weight else None
        for _ in range(150):
            getattr(agent, path)(*batch)
        far[weight] = distance(agent, batch[0])
    assert far[50.0] < 0.2 * start
    assert far[0.0] > 5 * far[50.0]


def test_teacher_weight_without_columns_is_refused():
    with pytest.raises(ValueError, match="teacher_columns"):
        Agent(OBS, ACT, hidden_sizes=(8, 8), teacher_weight=1.0)
