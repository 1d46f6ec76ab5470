"""Time per action of an exported policy in onnxruntime on one core, batch 1.

The goal (issue 17): at most 50 µs per action. For each arm, the actor `reacher export`
writes for it (Config()'s network sizes for that arm, its normaliser filled from real
observations) runs in an onnxruntime session with intra_op_num_threads = 1 on one
observation at a time; each call is timed and the median (and 90th percentile) over all
calls reported. Beside it, in the same process and rounds: reacher's own act path
(`Agent.act`, numpy) and torch's `actor(norm(x))` on one thread, for a ratio that does not
depend on the machine's load. The weights are the untrained initial ones: the time does
not depend on their values.

    python scripts/bench_export.py [--calls 20000] [--rounds 5] [--run RUN_DIR]

`--run` adds a row for a trained run, exported with `reacher export` to a temporary file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from reacher.run import settings as adapt
from reacher.ddpg.agent import Agent
from reacher.config import Config
from reacher.run.envs import make_env
from reacher.tools.export import INSTALL_HINT, actor_graph, export_policy, session, torch_actions

ROOT = Path(__file__).resolve().parent.parent
ARMS = {"two_link": Config(arm="two_link"),
        "panda (7 DOF)": Config(arm=str(ROOT / "examples" / "arms" / "panda.xml"),
                                end_effector="attachment_site")}


def observations(config: Config, episodes: int = 4) -> tuple[np.ndarray, int]:
    """Observations of random-action episodes, and the action size."""
    env, rng, seen = make_env(config), np.random.default_rng(0), []
    for episode in range(episodes):
        obs, _ = env.reset(seed=episode)
        for _ in range(50):
            seen.append(obs)
            obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape))
    env.close()
    return np.asarray(seen, dtype=np.float32), env.action_space.shape[0]


def per_call_us(call, inputs: np.ndarray, calls: int) -> list[float]:
    times, clock = [], time.perf_counter_ns
    for i in range(calls):
        x = inputs[i % len(inputs)]
        start = clock()
        call(x)
        times.append((clock() - start) / 1e3)
    return times


def measure(name: str, model_bytes: bytes, agent: Agent, obs: np.ndarray, calls: int, rounds: int) -> None:
    import onnxruntime

    ort = session(model_bytes, onnxruntime)
    batch_of_one = obs[:, None, :]  # each (1, n), as a controller feeds it
    run = lambda x: ort.run(["action"], {"observation": x})  # noqa: E731
    act = lambda x: agent.act(x[0])  # noqa: E731
    torch_act = lambda x: torch_actions(agent, x)  # noqa: E731
    # The exported graph must give the policy's actions before it is worth timing.
    assert np.abs(run(obs)[0] - torch_actions(agent, obs)).max() <= 1e-5
    results: dict[str, list[float]] = {"onnxruntime": [], "reacher numpy": [], "torch": []}
    for call in (run, act, torch_act):  # warm-up
        per_call_us(call, batch_of_one, 500)
    for _ in range(rounds):  # interleaved, so a burst of load hits every path alike
        for key, call in (("onnxruntime", run), ("reacher numpy", act), ("torch", torch_act)):
            results[key] += per_call_us(call, batch_of_one, calls // rounds)
    median = {k: statistics.median(v) for k, v in results.items()}
    p90 = {k: statistics.quantiles(v, n=10)[-1] for k, v in results.items()}
    widths = [m.out_features for m in agent.actor.net if hasattr(m, "out_features")][:-1]  # less the action
    hidden = "×".join(map(str, widths))
    print(f"| {name} | {obs.shape[1]} → {agent.act_dim} | {hidden} | **{median['onnxruntime']:.1f}** ({p90['onnxruntime']:.1f}) | "
          f"{median['reacher numpy']:.1f} ({p90['reacher numpy']:.1f}) | "
          f"{median['torch']:.1f} ({p90['torch']:.1f}) |")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per path and arm")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--run", type=Path, help="also time this trained run's export")
    args = parser.parse_args()
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        sys.exit(f"error: scripts/bench_export.py needs '{err.name}': {INSTALL_HINT}")

    torch.set_num_threads(1)
    print(f"onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, torch {torch.__version__}; "
          f"{cpu_name()}; load {os.getloadavg()[0]:.2f}; {args.calls:,} calls per path, batch 1, one thread")
    print("| policy | obs → act | hidden | onnxruntime µs/action, median (p90) | reacher numpy | torch |")
    print("|---|---|---|---|---|---|")
    for name, config in ARMS.items():
        obs, act_dim = observations(config)
        agent = Agent(obs.shape[1], act_dim, **adapt.agent_kwargs(adapt.resolve(config, act_dim)))
        agent.update_normaliser(obs)
        measure(name, actor_graph(agent, onnx).SerializeToString(), agent, obs, args.calls, args.rounds)
    if args.run:
        from reacher.run.policy import load_policy

        policy = load_policy(args.run)
        with tempfile.TemporaryDirectory() as tmp:
            out = export_policy(args.run, Path(tmp) / "policy.onnx").onnx
            obs, _ = observations(policy.config)
            measure(f"run {args.run}", out.read_bytes(), policy.agent, obs, args.calls, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
