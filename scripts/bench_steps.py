"""Steps/s of `reacher train` with this checkout beside another git revision's, in one run.

Each timed run is the whole `reacher train` command, in a subprocess, on one arm at one
torch thread count: the defaults (warm-up, hindsight, one update per step), steps-limited
with `--steps`, with no periodic evaluation or checkpoint inside the timed steps and a
one-episode final evaluation. Its figure is the one `reacher train` itself writes, the
last metrics row's `steps_per_s` (environment steps over training time), beside the
command's own wall time. The other revision (default `main`) is checked out into a
temporary `git worktree` and run with its own code; runs alternate between the two trees,
in interleaved rounds, and the medians are reported; the speed-up is the median over
rounds of each round's own ratio. `threads 0` is each revision's own default.

`--busy` starts one `nice -n 19` busy loop beside every run (the machine shared with any
other process, as it is beside a second run or a browser); `--also-busy` runs everything
both without and with it, interleaved, a row each (the load column), so one run shows the
quieter and the busier machine side by side; `--collect` adds a row of this checkout with
no updates (`--updates-per-step 0`): the time a step spends outside the update.

Runs at `threads 0` of a revision with `reacher.run.threads` (auto: one or two threads,
chosen from the run's own timed updates) log each probe and switch; these are printed
after the table, per run of this checkout at `threads 0` (and of the other revision where
it logged any): its steps/s, the count it ended on, its switches (update: from -> to) and
its probes.

    python scripts/bench_steps.py [--rev main] [--arms two_link three_link panda] [--threads 1 0]
                                  [--rounds 2] [--steps 3000] [--busy | --also-busy] [--collect]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARMS = {"two_link": ("two_link", "fingertip"),
        "three_link": ("three_link", "fingertip"),
        "panda": (str(ROOT / "examples/arms/panda.xml"), "attachment_site")}  # 7 DOF through `ee`
# `reacher train` with reacher.run.threads' log on stderr (a revision without it logs nothing)
TRAIN = ("import logging, runpy, sys; logging.basicConfig(level=logging.WARNING, format='%(message)s'); "
         "logging.getLogger('reacher.run.threads').setLevel(logging.INFO); "
         "sys.argv = ['reacher', *sys.argv[1:]]; runpy.run_module('reacher', run_name='__main__')")
SWITCH = re.compile(r"^threads: (\d+) -> (\d+) at update (\d+)")


@contextmanager
def worktree(rev: str):
    """A temporary checkout of `rev` (its own code, this repository's history)."""
    path = Path(tempfile.mkdtemp(prefix="bench_steps_rev_")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), rev], cwd=ROOT, check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)
        shutil.rmtree(path.parent, ignore_errors=True)


@contextmanager
def busy_loop(on: bool):
    """One lowest-priority process spinning on a core while the block runs."""
    if not on:
        yield
        return
    spinner = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def train_steps_per_s(tree: Path, arm: str, threads: int, steps: int, seed: int,
                      extra: list[str]) -> tuple[float, float, list[str]]:
    """(steps/s that `reacher train` reports, the command's wall seconds, its thread log
    lines) of one run from `tree`."""
    path, effector = ARMS[arm]
    with tempfile.TemporaryDirectory(prefix="bench_steps_run_") as run_dir:
        command = [sys.executable, "-c", TRAIN, "train", "--arm", path, "--end-effector", effector,
                   "--seed", str(seed), "--threads", str(threads), "--steps", str(steps),
                   "--eval-every", str(steps), "--checkpoint-every", str(steps), "--final-eval-episodes", "1",
                   "--run-dir", run_dir, "--quiet", *extra]
        env = {**os.environ, "PYTHONPATH": str(tree), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        start = time.perf_counter()
        done = subprocess.run(command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"reacher train failed in {tree} (exit {done.returncode})")
        with open(Path(run_dir) / "metrics.csv", newline="") as f:
            last = list(csv.DictReader(f))[-1]
    return float(last["steps_per_s"]), wall, [line for line in done.stderr.splitlines() if line.startswith("threads: ")]


def describe_choice(lines: list[str]) -> str:
    """What an auto run's thread log says: the count it ended on, its switches, its probes."""
    switches = [SWITCH.match(line).groups() for line in lines if SWITCH.match(line)]
    probes = sum("probe" in line for line in lines)
    final = switches[-1][1] if switches else "1"
    moves = ", ".join(f"{u}: {a}->{b}" for a, b, u in switches) or "none"
    return f"ended on {final}; switches {moves}; probes {probes}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0],
                        help="torch thread counts (0: each revision's default)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians are reported)")
    parser.add_argument("--steps", type=int, default=3000, help="environment steps per run (default warm-up included)")
    parser.add_argument("--busy", action="store_true", help="a nice -n 19 busy loop beside every run")
    parser.add_argument("--also-busy", action="store_true",
                        help="every run both without and with the busy loop, interleaved")
    parser.add_argument("--collect", action="store_true", help="also this checkout with no updates")
    args = parser.parse_args(argv)
    loads = [False, True] if args.also_busy else [args.busy]

    load_before = os.getloadavg()
    results: dict[tuple, list[tuple[float, float, list[str]]]] = {}
    with worktree(args.rev) as base:
        trees = {args.rev: base, "this": ROOT}
        for r in range(args.rounds):
            for arm in args.arms:
                for threads in args.threads:
                    for busy in loads if r % 2 == 0 else loads[::-1]:
                        order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
                        for name, tree in order:
                            with busy_loop(busy):
                                results.setdefault((arm, threads, busy, name), []).append(
                                    train_steps_per_s(tree, arm, threads, args.steps, r, []))
                        if args.collect:
                            with busy_loop(busy):
                                results.setdefault((arm, threads, busy, "collect"), []).append(
                                    train_steps_per_s(ROOT, arm, threads, args.steps, r, ["--updates-per-step", "0"]))

    print(f"{args.rounds} rounds of `reacher train --steps {args.steps}` per arm, thread count and tree"
          f"{'; a nice -n 19 busy loop beside each run' if args.busy else ''}"
          f"{'; each without and with a nice -n 19 busy loop beside it' if args.also_busy else ''}")
    print(f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {len(os.sched_getaffinity(0))} cores usable")
    header = (f"\n  {'arm':<11} {'thr':>3} {'load':>5} {args.rev + ' steps/s':>13} {'this steps/s':>13} {'speed-up':>8} "
              f"{args.rev + ' wall s':>11} {'this wall s':>11}")
    print(header + (f" {'collect steps/s':>15}" if args.collect else ""))
    choices = []
    for arm in args.arms:
        for threads in args.threads:
            for busy in loads:
                base, ours = results[arm, threads, busy, args.rev], results[arm, threads, busy, "this"]
                gain = statistics.median(a[0] / b[0] for a, b in zip(ours, base))
                line = (f"  {arm:<11} {threads:>3} {'busy' if busy else '-':>5} "
                        f"{statistics.median(b[0] for b in base):13.1f} "
                        f"{statistics.median(a[0] for a in ours):13.1f} {gain:7.2f}× "
                        f"{statistics.median(b[1] for b in base):11.1f} {statistics.median(a[1] for a in ours):11.1f}")
                if args.collect:
                    line += f" {statistics.median(c[0] for c in results[arm, threads, busy, 'collect']):15.1f}"
                print(line)
                for name in trees:
                    for r, run in enumerate(results[arm, threads, busy, name]):
                        if run[2] or (name == "this" and threads == 0):
                            choices.append(f"  {arm:<11} {'busy' if busy else '-':>5} {name:>6} round {r}: "
                                           f"{run[0]:.1f} steps/s, {describe_choice(run[2])}")
    if choices:
        print("\nauto threads, per run (reacher.run.threads' log):")
        print("\n".join(choices))


if __name__ == "__main__":
    main()
