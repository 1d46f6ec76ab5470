"""Training steps/s with this checkout's update beside main's, in one run.

A short `Training` run (collection, replay sampling, hindsight relabelling and one update
per step, exactly as `reacher train` does) is timed for each arm, torch thread count and
agent, in interleaved rounds, and the medians reported; the speed-up is the median over
rounds of each round's own ratio. "main" is the agent of another git revision (default
`main`): its reacher/ddpg/agent.py, adam.py and networks.py are read with `git show` into a
temporary package, and the run is this checkout's in every other respect.

A third row, "collect only", runs the same loop without updates (updates_per_step 0): the
time a step spends outside the update. It bounds what overlapping collection with learning
(on another core) could gain: a step can get no faster than the longer of the two.

    python scripts/bench_steps.py [--quick] [--rounds 3] [--steps 600] [--threads 1 2] [--rev main]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reacher.run import training as train_module
from reacher.config import Config

ROOT = Path(__file__).resolve().parent.parent
ARMS = {"two_link": ("two_link", "fingertip"),
        "panda (7 DOF)": (str(ROOT / "examples/arms/panda.xml"), "attachment_site")}
_FILES = ("agent.py", "adam.py", "networks.py")


def agent_of(rev: str, into: Path) -> type:
    """The `Agent` class of git revision `rev`, importable beside this checkout's reacher."""
    package = into / "reacher_at_rev"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in _FILES:
        source = subprocess.run(["git", "show", f"{rev}:reacher/{name}"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        for module in _FILES:
            source = source.replace(f"from reacher.{module[:-3]} ", f"from reacher_at_rev.{module[:-3]} ")
        (package / name).write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("reacher_at_rev.agent").Agent


def steps_per_s(config: Config, agent_class: type, workdir: Path) -> float:
    """Environment steps per second of one short run (after its random warm-up steps)."""
    original = train_module.Agent
    # Training passes keyword arguments (all Config fields); an older Agent took the Config.
    train_module.Agent = agent_class if agent_class is original else (
        lambda obs_dim, act_dim, **kwargs: agent_class(obs_dim, act_dim, Config(**kwargs), kwargs["device"]))
    try:
        run = train_module.Training(config, tempfile.mkdtemp(dir=workdir), progress=False)
    finally:
        train_module.Agent = original
    start = time.perf_counter()
    run.run()
    return config.steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 300 steps")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    parser.add_argument("--steps", type=int, default=600, help="environment steps per timed run, all learning")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    parser.add_argument("--rev", default="main", help="git revision whose agent is the baseline")
    args = parser.parse_args(argv)
    rounds, steps = (1, 300) if args.quick else (args.rounds, args.steps)

    workdir = Path(tempfile.mkdtemp(prefix="bench_steps_"))
    agents = {args.rev: agent_of(args.rev, workdir), "this checkout": train_module.Agent}
    load_before = os.getloadavg()[0]
    results: dict[tuple, list[float]] = {}
    for r in range(rounds):
        for arm, (path, effector) in ARMS.items():
            for threads in args.threads:
                # The warm-up (random actions, no updates) is as long as one batch, and the
                # loop does nothing else: no evaluation or checkpoint inside the timed steps.
                config = Config(arm=path, end_effector=effector, seed=r, threads=threads, warmup_steps=256,
                                steps=256 + steps, eval_every=10 ** 9, checkpoint_every=10 ** 9,
                                final_eval_episodes=1)
                order = list(agents.items()) if r % 2 == 0 else list(agents.items())[::-1]
                for name, agent_class in order:
                    results.setdefault((arm, threads, name), []).append(steps_per_s(config, agent_class, workdir))
                collect = config.replace(updates_per_step=0.0)
                results.setdefault((arm, threads, "collect only"), []).append(
                    steps_per_s(collect, train_module.Agent, workdir))

    print(f"{rounds} rounds of {steps} learning steps per run; load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} cores)")
    print(f"\n  {'arm':<14} {'thr':>3} {args.rev:>9} {'this':>9} {'speed-up':>8} {'collect only':>12} "
          f"{'update share':>12}")
    for arm in ARMS:
        for threads in args.threads:
            base, ours = results[arm, threads, args.rev], results[arm, threads, "this checkout"]
            collect = statistics.median(results[arm, threads, "collect only"])
            gain = statistics.median(a / b for a, b in zip(ours, base))
            # Seconds per step in the update = all − outside it; overlap could hide the shorter.
            share = 1 - statistics.median(ours) / collect
            print(f"  {arm:<14} {threads:>3} {statistics.median(base):9.1f} {statistics.median(ours):9.1f} "
                  f"{gain:7.2f}× {collect:12.1f} {100 * share:11.0f}%")


if __name__ == "__main__":
    main()
