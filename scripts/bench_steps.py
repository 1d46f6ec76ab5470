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
other process, as it is beside a second run or a browser); `--collect` adds a row of this
checkout with no updates (`--updates-per-step 0`): the time a step spends outside the update.

    python scripts/bench_steps.py [--rev main] [--arms two_link three_link panda] [--threads 1 0]
                                  [--rounds 2] [--steps 3000] [--busy] [--collect]
"""

from __future__ import annotations

import argparse
import csv
import os
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


def train_steps_per_s(tree: Path, arm: str, threads: int, steps: int, seed: int, extra: list[str]) -> tuple[float, float]:
    """(steps/s that `reacher train` reports, the command's wall seconds) of one run from `tree`."""
    path, effector = ARMS[arm]
    with tempfile.TemporaryDirectory(prefix="bench_steps_run_") as run_dir:
        command = [sys.executable, "-m", "reacher", "train", "--arm", path, "--end-effector", effector,
                   "--seed", str(seed), "--threads", str(threads), "--steps", str(steps),
                   "--eval-every", str(steps), "--checkpoint-every", str(steps), "--final-eval-episodes", "1",
                   "--run-dir", run_dir, "--quiet", *extra]
        env = {**os.environ, "PYTHONPATH": str(tree), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        start = time.perf_counter()
        subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        with open(Path(run_dir) / "metrics.csv", newline="") as f:
            last = list(csv.DictReader(f))[-1]
    return float(last["steps_per_s"]), wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0],
                        help="torch thread counts (0: each revision's default)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (medians are reported)")
    parser.add_argument("--steps", type=int, default=3000, help="environment steps per run (default warm-up included)")
    parser.add_argument("--busy", action="store_true", help="a nice -n 19 busy loop beside every run")
    parser.add_argument("--collect", action="store_true", help="also this checkout with no updates")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    results: dict[tuple, list[tuple[float, float]]] = {}
    with worktree(args.rev) as base, busy_loop(args.busy):
        trees = {args.rev: base, "this": ROOT}
        for r in range(args.rounds):
            for arm in args.arms:
                for threads in args.threads:
                    order = list(trees.items()) if r % 2 == 0 else list(trees.items())[::-1]
                    for name, tree in order:
                        results.setdefault((arm, threads, name), []).append(
                            train_steps_per_s(tree, arm, threads, args.steps, r, []))
                    if args.collect:
                        results.setdefault((arm, threads, "collect"), []).append(
                            train_steps_per_s(ROOT, arm, threads, args.steps, r, ["--updates-per-step", "0"]))

    print(f"{args.rounds} rounds of `reacher train --steps {args.steps}` per arm, thread count and tree"
          f"{'; a nice -n 19 busy loop beside each run' if args.busy else ''}")
    print(f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {len(os.sched_getaffinity(0))} cores usable")
    header = (f"\n  {'arm':<11} {'thr':>3} {args.rev + ' steps/s':>13} {'this steps/s':>13} {'speed-up':>8} "
              f"{args.rev + ' wall s':>11} {'this wall s':>11}")
    print(header + (f" {'collect steps/s':>15}" if args.collect else ""))
    for arm in args.arms:
        for threads in args.threads:
            base, ours = results[arm, threads, args.rev], results[arm, threads, "this"]
            gain = statistics.median(a[0] / b[0] for a, b in zip(ours, base))
            line = (f"  {arm:<11} {threads:>3} {statistics.median(b[0] for b in base):13.1f} "
                    f"{statistics.median(a[0] for a in ours):13.1f} {gain:7.2f}× "
                    f"{statistics.median(b[1] for b in base):11.1f} {statistics.median(a[1] for a in ours):11.1f}")
            if args.collect:
                line += f" {statistics.median(c[0] for c in results[arm, threads, 'collect']):15.1f}"
            print(line)


if __name__ == "__main__":
    main()
