"""Gradient updates per second of `Agent.update`, beside the machine's float32 matmul peak.

Three networks, each at 1 and 2 torch threads:

  default      Config()'s sizes (hidden_sizes, batch_size), plain DDPG
  2x256 DDPG   hidden (256, 256), batch 256
  2x256 TD3    the same with twin critics, policy_delay 2, target_noise 0.2

The observation and action sizes are those of Config()'s env (two_link: 15 and 2).

The arithmetic bound: square float32 matmuls (256, 512, 1024) give the peak GFLOP/s per
thread count, and the update's matmul FLOPs are counted layer by layer (biases, activations,
Adam and Polyak averaging are elementwise and left out). A linear layer (in → out) on a
batch B costs 2·B·in·out per forward, the same again for its weight gradient, and the same
again for its input gradient, which is skipped where the input is data:

  target        actor′ forward + critic′ forward (every member), no backward
  critic step   critic forward + weight grads + input grads (not the first layer's)
  actor step    actor forward + weight grads + input grads (not the first layer's)
                + Q1 forward + Q1 input grads down to the action (every layer),
                  but no critic weight grads: the critic is frozen meanwhile
                (once every policy_delay updates)

"critic unfrozen" times the same update with the critic left trainable during the actor
step, so autograd also computes Q1's weight gradients there (the update's results are
the same: they land in .grad and are cleared before the next critic step). The gain
column is what freezing saves.

The machine is shared and noisy, so every variant is measured in interleaved rounds and
the medians reported; the gain is the median over rounds of each round's own ratio.

    python scripts/bench_update.py [--quick] [--seconds 0.6] [--rounds 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from reacher import agent as agent_module
from reacher.agent import Agent
from reacher.config import Config
from reacher.env import make_env

_MATMUL_SIZES = (256, 512, 1024)
_N_BATCHES = 8  # pre-drawn batches, cycled, so sampling costs nothing


@dataclass(frozen=True)
class Variant:
    name: str
    config: Config = field(hash=False, compare=False)
    frozen: bool = True  # the critic frozen during the actor step (as Agent.update does)


def _mlp_flops(batch: int, sizes: list[int]) -> int:
    """Forward matmul FLOPs of an MLP with these layer widths."""
    return sum(2 * batch * i * o for i, o in zip(sizes, sizes[1:]))


def update_flops(obs_dim: int, act_dim: int, config: Config, frozen: bool = True) -> float:
    """Matmul FLOPs of one `Agent.update`, averaged over policy_delay updates."""
    b, hidden = config.batch_size, list(config.hidden_sizes)
    actor = [obs_dim, *hidden, act_dim]
    critic = [obs_dim + act_dim, *hidden, 1]
    members = 2 if config.twin_critics else 1
    fwd_a, fwd_c = _mlp_flops(b, actor), _mlp_flops(b, critic)
    # Input gradients skip the first layer where its input is data (obs, or obs ‖ action).
    in_grad_a, in_grad_c = _mlp_flops(b, actor[1:]), _mlp_flops(b, critic[1:])
    target = fwd_a + members * fwd_c
    critic_step = members * (fwd_c + fwd_c + in_grad_c)
    actor_step = (fwd_a + fwd_a + in_grad_a      # the actor: forward, weight and input grads
                  + fwd_c + fwd_c                # Q1: forward, input grads down to the action
                  + (0 if frozen else fwd_c))    # Q1's weight grads, when not frozen
    return target + critic_step + actor_step / config.policy_delay


@contextmanager
def _critic_left_trainable(agent: Agent):
    """Within this block, `Agent.update` does not freeze this agent's critic for the actor
    step, whether it freezes the module (critic.requires_grad_) or its parameters one by
    one (reacher.agent._set_requires_grad). `_check_grads` proves it took effect."""
    mine = {id(p) for p in agent.critic.parameters()}
    set_requires_grad = vars(agent_module).get("_set_requires_grad")
    agent.critic.requires_grad_ = lambda requires_grad=True: agent.critic
    if set_requires_grad is not None:
        agent_module._set_requires_grad = lambda params, flag: set_requires_grad(
            [p for p in params if id(p) not in mine], flag)
    try:
        yield
    finally:
        del agent.critic.requires_grad_
        if set_requires_grad is not None:
            agent_module._set_requires_grad = set_requires_grad


def _check_grads(agent: Agent, batch, frozen: bool) -> None:
    """Guard the comparison: one update with an actor step must reach each critic weight
    once (frozen: the critic step only) or twice (unfrozen: the actor step too)."""
    agent.updates = agent.config.policy_delay - 1  # the next update has an actor step
    calls = []
    handles = [p.register_hook(lambda g: calls.append(1)) for p in agent.critic.parameters()]
    agent.update(*batch)
    for h in handles:
        h.remove()
    expected = len(handles) * (1 if frozen else 2)
    if len(calls) != expected:
        raise RuntimeError(f"critic weight gradients computed {len(calls)} times, expected "
                           f"{expected}: the {'frozen' if frozen else 'unfrozen'} variant is not "
                           "what it claims (has Agent.update changed how it freezes the critic?)")


def _setup(variant: Variant, obs_dim: int, act_dim: int) -> tuple[Agent, list]:
    torch.manual_seed(0)
    agent = Agent(obs_dim, act_dim, variant.config)
    g = torch.Generator().manual_seed(0)
    b = variant.config.batch_size
    batches = [[torch.randn(b, obs_dim, generator=g), torch.rand(b, act_dim, generator=g) * 2 - 1,
                torch.randn(b, generator=g), torch.randn(b, obs_dim, generator=g), torch.zeros(b)]
               for _ in range(_N_BATCHES)]
    with _trainable_if(not variant.frozen, agent):
        _check_grads(agent, batches[0], variant.frozen)
        for batch in batches:  # warm up: Adam's moments, the allocator
            agent.update(*batch)
    return agent, batches


def _trainable_if(condition: bool, agent: Agent):
    return _critic_left_trainable(agent) if condition else nullcontext()


def _updates_per_s(agent: Agent, batches: list, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while True:  # an update costs milliseconds: reading the clock after each is free
        agent.update(*batches[n % len(batches)])
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def _matmul_gflops(size: int, seconds: float) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    per_check = max(1, 2 ** 26 // size ** 3)
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(per_check):
            torch.mm(a, b, out=out)
        n += per_check
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return 2 * size ** 3 * n / elapsed / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: 0.25 s per measurement, 3 rounds")
    parser.add_argument("--seconds", type=float, default=0.6, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are reported)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    args = parser.parse_args(argv)
    seconds, rounds = (0.25, 3) if args.quick else (args.seconds, args.rounds)

    base = Config()
    env = make_env(base)
    obs_dim, act_dim = int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    env.close()
    wide = base.replace(hidden_sizes=(256, 256), batch_size=256)
    configs = {
        f"default {'x'.join(map(str, base.hidden_sizes))}/{base.batch_size}": base,
        "2x256/256 DDPG": wide,
        "2x256/256 TD3": wide.replace(twin_critics=True, policy_delay=2, target_noise=0.2),
    }
    variants = [Variant(name, config, frozen) for name, config in configs.items() for frozen in (True, False)]
    setups = {v: _setup(v, obs_dim, act_dim) for v in variants}

    print(f"obs {obs_dim}, act {act_dim} ({base.arm}); {rounds} rounds of {seconds:g} s per "
          f"measurement; torch {torch.__version__}")
    peak: dict[tuple[int, int], list[float]] = {}
    speed: dict[tuple[Variant, int], list[float]] = {}
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        for threads in args.threads:
            torch.set_num_threads(threads)
            for size in _MATMUL_SIZES:
                peak.setdefault((threads, size), []).append(_matmul_gflops(size, seconds))
            for v in variants if r % 2 == 0 else variants[::-1]:  # neither goes first always
                agent, batches = setups[v]
                with _trainable_if(not v.frozen, agent):
                    speed.setdefault((v, threads), []).append(_updates_per_s(agent, batches, seconds))

    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"({os.cpu_count()} cores): other work shares the cores, more at 2 threads")
    print("\nfloat32 matmul, GFLOP/s (median):")
    peak_of = {}
    for threads in args.threads:
        by_size = {size: statistics.median(peak[threads, size]) for size in _MATMUL_SIZES}
        peak_of[threads] = max(by_size.values())
        sizes = "  ".join(f"{size}²: {g:6.1f}" for size, g in by_size.items())
        print(f"  threads {threads}:  {sizes}   peak {peak_of[threads]:6.1f}")

    print("\nAgent.update (median updates/s; GFLOP/s and % of peak from the counted matmul FLOPs):")
    header = (f"  {'network / batch':<20} {'thr':>3} {'MFLOP':>7} {'upd/s':>8} {'GFLOP/s':>8} "
              f"{'%peak':>6}   {'unfrozen upd/s':>14} {'gain':>6}")
    print(header)
    print("  " + "-" * (len(header) - 2))
    for name, config in configs.items():
        frozen, unfrozen = Variant(name, config, True), Variant(name, config, False)
        flops = update_flops(obs_dim, act_dim, config)
        for threads in args.threads:
            ups = statistics.median(speed[frozen, threads])
            slow = statistics.median(speed[unfrozen, threads])
            gain = statistics.median(f / u for f, u in zip(speed[frozen, threads], speed[unfrozen, threads]))
            gflops = flops * ups / 1e9
            print(f"  {name:<20} {threads:>3} {flops / 1e6:7.1f} {ups:8.0f} {gflops:8.1f} "
                  f"{100 * gflops / peak_of[threads]:5.1f}%   {slow:14.0f} {100 * (gain - 1):+5.1f}%")
    saved = {name: 1 - update_flops(obs_dim, act_dim, c) / update_flops(obs_dim, act_dim, c, frozen=False)
             for name, c in configs.items()}
    print("\n  gain: freezing the critic in the actor step, median of per-round ratios; its share of "
          "the counted FLOPs is " + ", ".join(f"{100 * s:.1f}% ({n})" for n, s in saved.items()))


if __name__ == "__main__":
    main()
