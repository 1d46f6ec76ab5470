"""Gradient updates per second of `Agent.update` beside a plain PyTorch update, in one run.

Also the act path: one observation through the default actor, in torch and in numpy
(`Agent.act`, reacher.ddpg.networks.NumpyPolicy).

Three networks, each at 1 and 2 torch threads:

  default      Config()'s sizes (hidden_sizes, batch_size), plain DDPG
  2x256 DDPG   hidden (256, 256), batch 256
  2x256 TD3    the same with twin critics, policy_delay 2, target_noise 0.2

The observation and action sizes are those of `--arm`'s env (two_link: 15 and 2; panda, the
7-DOF example arm through `ee`: 33 and 3), and "default" its network as training resolves it.
"reacher" is `Agent.update` (gradients derived by hand, reacher/ddpg/update.py); "main" is
the `Agent.update` of another git revision (default `main`, whose update ran through
autograd), read with `git show` (`agent_of`); "plain" is the same maths
written the textbook way (Fujimoto's TD3.py): nn.Linear
MLPs, one network per critic, torch.optim.Adam with its defaults, zero_grad /
backward / step, Polyak averaging parameter by parameter, the critic left trainable
in the actor step. Both get the same normaliser and the same pre-drawn batches.

The arithmetic bound: square float32 matmuls (256, 512, 1024) give the peak GFLOP/s per
thread count, and the update's matmul FLOPs are counted layer by layer (biases, activations,
Adam and Polyak averaging are elementwise and left out). A linear layer (in → out) on a
batch B costs 2·B·in·out per forward, the same again for its weight gradient, and the same
again for its input gradient, which is skipped where the input is data (`update_matmuls`
lists them; "shapes" times exactly those matmuls as plain torch.mm calls, the ceiling for an
update of these shapes, beside the square-matmul peak):

  target        actor′ forward + critic′ forward (every member), no backward
  critic step   critic forward + weight grads + input grads (not the first layer's)
  actor step    actor forward + weight grads + input grads (not the first layer's)
                + Q1 forward + Q1 input grads down to the action (every layer)
                (once every policy_delay updates)

The same count is used for both columns (plain also computes Q1's weight gradients
in the actor step, which nobody uses: that is part of what it wastes).

`--compile` adds `Agent.update` with its networks torch.compile'd (default inductor mode;
the fused optimiser step cannot be traced and stays eager): the seconds its first
updates take (compilation, paid inside every training run) and its speed after.

The machine is shared and noisy, so every variant is measured in interleaved rounds and
the medians reported; the speed-up is the median over rounds of each round's own ratio.

    python scripts/bench_update.py [--quick] [--seconds 0.6] [--rounds 5] [--threads 1 2] [--compile] [--rev main]
                                   [--arm two_link|panda]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from reacher.run import settings as adapt
from reacher.ddpg.agent import Agent
from reacher.config import Config
from reacher.run.envs import make_env
from reacher.ddpg.networks import RunningNorm

_MATMUL_SIZES = (256, 512, 1024)
_N_BATCHES = 8  # pre-drawn batches, cycled, so sampling costs nothing
ROOT = Path(__file__).resolve().parent.parent
ARMS = {"two_link": ("two_link", "fingertip"),
        "panda": (str(ROOT / "examples/arms/panda.xml"), "attachment_site")}  # 7 DOF through `ee`
_AGENT_FILES = ("agent.py", "adam.py", "networks.py", "update.py")


def agent_of(rev: str, into: Path) -> type:
    """The `Agent` class of git revision `rev` (its reacher/ddpg/agent.py and the modules it
    imports, read with `git show` into a temporary package), importable beside this checkout."""
    package = into / "reacher_at_rev"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in _AGENT_FILES:
        source = subprocess.run(["git", "show", f"{rev}:reacher/ddpg/{name}"], cwd=ROOT, check=True, capture_output=True,
                                text=True).stdout
        for module in _AGENT_FILES:
            source = source.replace(f"from reacher.ddpg.{module[:-3]} ", f"from reacher_at_rev.{module[:-3]} ")
        (package / name).write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("reacher_at_rev.agent").Agent


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class PlainUpdate:
    """DDPG / TD3 as usually written in PyTorch; the baseline `Agent.update` is measured against."""

    def __init__(self, obs_dim: int, act_dim: int, config: Config, norm: nn.Module):
        c, hidden = config, list(config.hidden_sizes)
        self.config, self.norm = c, norm
        self.actor = nn.Sequential(_mlp([obs_dim, *hidden, act_dim]), nn.Tanh())
        self.critics = nn.ModuleList(_mlp([obs_dim + act_dim, *hidden, 1])
                                     for _ in range(2 if c.twin_critics else 1))
        self.actor_target, self.critics_target = copy.deepcopy(self.actor), copy.deepcopy(self.critics)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=c.critic_lr)
        self.updates = 0

    def update(self, obs, action, reward, next_obs, terminated) -> None:
        c = self.config
        obs, next_obs = self.norm(obs), self.norm(next_obs)
        with torch.no_grad():
            next_action = _target_action(self.actor_target, next_obs, c)
            next_sa = torch.cat([next_obs, next_action], 1)
            next_q = torch.min(torch.stack([q(next_sa) for q in self.critics_target]), dim=0).values
            target = reward.unsqueeze(1) + c.gamma * (1.0 - terminated.unsqueeze(1)) * next_q
        sa = torch.cat([obs, action], 1)
        critic_loss = sum(F.mse_loss(q(sa), target) for q in self.critics)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        self.updates += 1
        if self.updates % c.policy_delay == 0:
            actor_loss = -self.critics[0](torch.cat([obs, self.actor(obs)], 1)).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            for net, target_net in ((self.actor, self.actor_target), (self.critics, self.critics_target)):
                for p, tp in zip(net.parameters(), target_net.parameters()):
                    tp.data.copy_(c.tau * p.data + (1 - c.tau) * tp.data)


def _target_action(actor_target, next_obs, c):
    """μ′(s′), with TD3's target-policy smoothing when ``c.target_noise`` > 0."""
    next_action = actor_target(next_obs)
    if c.target_noise > 0:
        noise = (torch.randn_like(next_action) * c.target_noise).clamp(-c.target_noise_clip, c.target_noise_clip)
        next_action = (next_action + noise).clamp(-1.0, 1.0)
    return next_action


def _compiled_update(agent: Agent):
    """`Agent.update`'s maths with its two losses torch.compile'd, forward and backward.
    The fused optimiser step cannot be traced and stays eager; compiling the networks
    one by one instead recompiles per call site until dynamo gives up."""
    c = agent.hyper

    @torch.compile
    def critic_loss(obs, action, reward, next_obs, terminated):
        obs, next_obs = agent.norm(obs), agent.norm(next_obs)
        with torch.no_grad():
            next_action = _target_action(agent.actor_target, next_obs, c)
            next_q = agent.critic_target(next_obs, next_action).min(dim=0).values
            target = reward + c.gamma * (1.0 - terminated) * next_q
        return (agent.critic(obs, action) - target).square().mean(dim=1).sum()

    @torch.compile
    def actor_loss(obs):
        return -agent.critic(obs, agent.actor(obs), members=1).mean()

    def update(obs, action, reward, next_obs, terminated):
        agent.critic_opt.descend(critic_loss(obs, action, reward, next_obs, terminated))
        agent.updates += 1
        if agent.updates % c.policy_delay == 0:
            agent.actor_opt.descend(actor_loss(agent.norm(obs)))
            online, targets = agent.flat.data
            targets.lerp_(online, c.tau)

    return update


def update_matmuls(obs_dim: int, act_dim: int, config: Config) -> list[tuple[int, int, int, float]]:
    """The matmuls of one update as (m, k, n, times per update): (m×k)·(k×n) each, the actor
    step's counted 1/policy_delay times. Input gradients skip the first layer where its input
    is data (obs, or obs ‖ action)."""
    b, hidden = config.batch_size, list(config.hidden_sizes)
    actor = list(zip([obs_dim, *hidden], [*hidden, act_dim]))
    critic = list(zip([obs_dim + act_dim, *hidden], [*hidden, 1]))
    members, every = (2 if config.twin_critics else 1), 1 / config.policy_delay
    forward = lambda layers, times: [(b, i, o, times) for i, o in layers]  # noqa: E731
    weight_grads = lambda layers, times: [(i, b, o, times) for i, o in layers]  # noqa: E731
    input_grads = lambda layers, times: [(b, o, i, times) for i, o in layers]  # noqa: E731
    return (forward(actor, 1) + forward(critic, members)                      # the target
            + forward(critic, members) + weight_grads(critic, members)        # the critic step
            + input_grads(critic[1:], members)
            + forward(actor, every) + weight_grads(actor, every)              # the actor step
            + input_grads(actor[1:], every)
            + forward(critic, every) + input_grads(critic[1:], every)         # Q1, back to the action
            + [(b, hidden[0], act_dim, every)])


def update_flops(obs_dim: int, act_dim: int, config: Config) -> float:
    """Matmul FLOPs of one update, averaged over policy_delay updates."""
    return sum(2 * m * k * n * times for m, k, n, times in update_matmuls(obs_dim, act_dim, config))


def _shapes_gflops(matmuls: list[tuple[int, int, int, float]], seconds: float) -> float:
    """GFLOP/s of the update's own matmul shapes, each once, a plain torch.mm on contiguous
    operands into a kept output, back to back: what this CPU and torch reach on these shapes."""
    ops = [(torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)) for m, k, n, _ in matmuls]
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in ops)
    for a, b, out in ops:
        torch.mm(a, b, out=out)
    n, start = 0, time.perf_counter()
    while True:
        for a, b, out in ops:
            torch.mm(a, b, out=out)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return flops * n / elapsed / 1e9


def _batches(config: Config, obs_dim: int, act_dim: int) -> list:
    g = torch.Generator().manual_seed(0)
    b = config.batch_size
    return [[torch.randn(b, obs_dim, generator=g), torch.rand(b, act_dim, generator=g) * 2 - 1,
             torch.randn(b, generator=g), torch.randn(b, obs_dim, generator=g), torch.zeros(b)]
            for _ in range(_N_BATCHES)]


def _setup(kind: str, config: Config, obs_dim: int, act_dim: int, agent_class: type = Agent) -> tuple:
    """(update function, batches, seconds its first three updates took)."""
    torch.manual_seed(0)
    # Agent takes keyword arguments; a revision older than that took the Config (and called
    # update_normaliser observe).
    if "config" in inspect.signature(agent_class).parameters:
        agent = agent_class(obs_dim, act_dim, config)
    else:
        agent = agent_class(obs_dim, act_dim, **adapt.agent_kwargs(config))
    batches = _batches(config, obs_dim, act_dim)
    getattr(agent, "update_normaliser", getattr(agent, "observe", None))(
        np.random.default_rng(0).normal(size=(1000, obs_dim)))
    if kind == "plain":
        norm = copy.deepcopy(agent.norm)
        assert isinstance(norm, RunningNorm)
        update = PlainUpdate(obs_dim, act_dim, config, norm).update
    elif kind == "compiled":
        update = _compiled_update(agent)
    else:
        update = agent.update
    start = time.perf_counter()
    for batch in batches[:3]:
        update(*batch)
    first = time.perf_counter() - start
    for batch in batches:  # warm up: Adam's moments, the allocator
        update(*batch)
    return update, batches, first


def _updates_per_s(update, batches: list, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while True:  # an update costs milliseconds: reading the clock after each is free
        update(*batches[n % len(batches)])
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def _act_paths(obs_dim: int, act_dim: int) -> dict:
    """One observation through the default actor: torch (no_grad, inference_mode) and
    Agent.act (numpy on views of the same weights); each a function of the observation."""
    agent = Agent(obs_dim, act_dim, **adapt.agent_kwargs(adapt.resolve(Config(), act_dim)))
    agent.update_normaliser(np.random.default_rng(0).normal(size=(1000, obs_dim)))

    def torch_act(obs):
        return agent.actor(agent.norm(torch.as_tensor(obs, dtype=torch.float32))).numpy()

    return {"torch no_grad": torch.no_grad()(torch_act),
            "torch inference_mode": torch.inference_mode()(torch_act),
            "Agent.act (numpy)": agent.act}


def _act_us(act, obs: np.ndarray, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(100):
            act(obs)
        n += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n * 1e6


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
    parser.add_argument("--compile", action="store_true", help="also Agent.update with torch.compile'd networks (slow to start)")
    parser.add_argument("--rev", default="main", help="git revision whose Agent.update is the 'main' column")
    parser.add_argument("--arm", default="two_link", choices=list(ARMS),
                        help="whose observation and action sizes (and default network) to measure")
    args = parser.parse_args(argv)
    seconds, rounds = (0.25, 3) if args.quick else (args.seconds, args.rounds)
    if args.compile:  # a cold cache, as a fresh machine's first training run has
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_update_inductor_")

    arm, effector = ARMS[args.arm]
    env = make_env(Config(arm=arm, end_effector=effector))
    obs_dim, act_dim = int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    env.close()
    base = adapt.resolve(Config(arm=arm, end_effector=effector), act_dim)  # the sizes training picks
    wide = base.replace(hidden_sizes=(256, 256), batch_size=256)
    configs = {
        f"default {'x'.join(map(str, base.hidden_sizes))}/{base.batch_size}": base,
        "2x256/256 DDPG": wide,
        "2x256/256 TD3": wide.replace(twin_critics=True, policy_delay=2, target_noise=0.2),
    }
    kinds = ["reacher", "plain", "main"] + (["compiled"] if args.compile else [])
    main_agent = agent_of(args.rev, Path(tempfile.mkdtemp(prefix="bench_update_")))
    load_before = os.getloadavg()[0]
    torch.set_num_threads(max(args.threads))
    setups = {(name, kind): _setup("reacher" if kind == "main" else kind, config, obs_dim, act_dim,
                                   main_agent if kind == "main" else Agent)
              for name, config in configs.items() for kind in kinds}

    print(f"obs {obs_dim}, act {act_dim} ({args.arm}); {rounds} rounds of {seconds:g} s per "
          f"measurement; torch {torch.__version__}")
    peak: dict[tuple[int, int], list[float]] = {}
    shapes_peak: dict[tuple[str, int], list[float]] = {}
    speed: dict[tuple[str, str, int], list[float]] = {}
    acts, act_us = _act_paths(obs_dim, act_dim), {}
    obs = np.random.default_rng(1).normal(size=obs_dim)
    for r in range(rounds):
        torch.set_num_threads(1)
        for name, act in acts.items() if r % 2 == 0 else list(acts.items())[::-1]:
            act_us.setdefault(name, []).append(_act_us(act, obs, seconds / 2))
        for threads in args.threads:
            torch.set_num_threads(threads)
            for size in _MATMUL_SIZES:
                peak.setdefault((threads, size), []).append(_matmul_gflops(size, seconds))
            for name, config in configs.items():
                shapes_peak.setdefault((name, threads), []).append(
                    _shapes_gflops(update_matmuls(obs_dim, act_dim, config), seconds))
            for key in setups if r % 2 == 0 else list(setups)[::-1]:  # neither goes first always
                update, batches, _ = setups[key]
                speed.setdefault((*key, threads), []).append(_updates_per_s(update, batches, seconds))

    print(f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"({os.cpu_count()} cores): other work shares the cores, more at 2 threads")
    print(f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print("\nacting on one observation, default actor, 1 thread (median µs):")
    print("  " + "   ".join(f"{name}: {statistics.median(v):5.1f}" for name, v in act_us.items()))
    print("\nfloat32 matmul, GFLOP/s (median):")
    peak_of = {}
    for threads in args.threads:
        by_size = {size: statistics.median(peak[threads, size]) for size in _MATMUL_SIZES}
        peak_of[threads] = max(by_size.values())
        sizes = "  ".join(f"{size}²: {g:6.1f}" for size, g in by_size.items())
        print(f"  threads {threads}:  {sizes}   peak {peak_of[threads]:6.1f}")

    print("\nupdates/s (median; GFLOP/s and % of peak from the counted matmul FLOPs; 'shapes' is torch.mm")
    print("on the update's own matmul shapes, back to back, and %shp the update's share of it):")
    header = (f"  {'network / batch':<20} {'thr':>3} {'MFLOP':>7} {'reacher':>8} {'GFLOP/s':>8} "
              f"{'%peak':>6} {'shapes':>7} {'%shp':>5} {'plain':>7} {'%peak':>6} {'speed-up':>8} {args.rev:>7} {'vs ' + args.rev:>8}")
    if args.compile:
        header += f" {'compiled':>8} {'start s':>7}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for name, config in configs.items():
        flops = update_flops(obs_dim, act_dim, config)
        for threads in args.threads:
            ours, plain = speed[name, "reacher", threads], speed[name, "plain", threads]
            before = speed[name, "main", threads]
            ups, base_ups = statistics.median(ours), statistics.median(plain)
            shapes = statistics.median(shapes_peak[name, threads])
            gain = statistics.median(a / b for a, b in zip(ours, plain))
            gain_main = statistics.median(a / b for a, b in zip(ours, before))
            line = (f"  {name:<20} {threads:>3} {flops / 1e6:7.1f} {ups:8.0f} {flops * ups / 1e9:8.1f} "
                    f"{100 * flops * ups / 1e9 / peak_of[threads]:5.1f}% {shapes:7.1f} "
                    f"{100 * flops * ups / 1e9 / shapes:4.0f}% {base_ups:7.0f} "
                    f"{100 * flops * base_ups / 1e9 / peak_of[threads]:5.1f}% {gain:7.2f}× "
                    f"{statistics.median(before):7.0f} {gain_main:7.2f}×")
            if args.compile:
                line += (f" {statistics.median(speed[name, 'compiled', threads]):8.0f} "
                         f"{setups[name, 'compiled'][2]:7.1f}")
            print(line)


if __name__ == "__main__":
    main()
