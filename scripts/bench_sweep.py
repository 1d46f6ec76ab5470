"""A sweep's wall time against its trials run one by one, and Ray's start-up overhead.

The same four trials (2 grid points × 2 seeds, one torch thread each) are run
  one by one   `reacher train --config TRIAL.toml` four times in a row (what a user did
               before `reacher sweep`), and
  as a sweep   `reacher sweep SPEC.toml`: an embedded Ray, trials in parallel, one per core.
Both are timed from the outside, process start to exit, so every fixed cost (imports,
Ray's start and stop) is counted. The ratio of the two is the speed-up; rounds alternate
the order, since the machine is shared and its load drifts.

Ray's start-up overhead is timed alone too: `ray.init` then `ray.shutdown` in a fresh
process, and the first trial's start within the sweep (the sweep prints it).

    python scripts/bench_sweep.py [--steps 3000] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reacher.config import to_toml
from reacher.tools.sweep_spec import load_spec

SPEC = """steps = {steps}
warmup_steps = 500
batch_size = 64
eval_every = 1000
eval_episodes = 5
final_eval_episodes = 20
checkpoint_every = 1000
seeds = [0, 1]
[grid]
hidden_sizes = ["32,32", "64,64"]
"""

RAY_START = """
import time, ray
t0 = time.perf_counter()
ray.init(num_cpus={cpus}, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
t1 = time.perf_counter()
ray.shutdown()
print(f"{{t1 - t0:.2f}} {{time.perf_counter() - t1:.2f}}")
"""


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start, result.stdout + result.stderr


def one_by_one(spec_path: Path, work: Path, env: dict) -> float:
    total = 0.0
    for trial in load_spec(spec_path).trials(work / "sweep-unused"):
        config = work / f"{trial.name}.toml"
        config.write_text(to_toml(trial.config), encoding="utf-8")
        seconds, _ = timed([sys.executable, "-m", "reacher", "train", "--config", str(config),
                            "--run-dir", str(work / "one_by_one" / trial.name), "--quiet"], env)
        total += seconds
    return total


def as_sweep(spec_path: Path, work: Path, env: dict) -> tuple[float, float]:
    seconds, output = timed([sys.executable, "-m", "reacher", "sweep", str(spec_path),
                             "--out", str(work / "sweep")], env)
    found = re.search(r"local Ray \(([\d.]+) s to start\)", output)
    return seconds, float(found.group(1)) if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="environment steps per trial")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    cores = os.cpu_count() or 1
    print(f"4 trials of {args.steps} steps (hidden 32,32 and 64,64 × seeds 0,1), {cores} cores, "
          f"{args.rounds} round(s)")
    ratios, sweeps, sequences, starts = [], [], [], []
    for round_ in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="bench_sweep."))
        try:
            spec_path = work / "spec.toml"
            spec_path.write_text(SPEC.format(steps=args.steps), encoding="utf-8")
            order = ("sweep", "one_by_one") if round_ % 2 == 0 else ("one_by_one", "sweep")
            for what in order:
                if what == "sweep":
                    sweep_s, ray_start_s = as_sweep(spec_path, work, env)
                else:
                    sequence_s = one_by_one(spec_path, work, env)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        sweeps.append(sweep_s)
        sequences.append(sequence_s)
        starts.append(ray_start_s)
        ratios.append(sequence_s / sweep_s)
        print(f"  round {round_ + 1}: one by one {sequence_s:6.1f} s   sweep {sweep_s:6.1f} s   "
              f"speed-up {sequence_s / sweep_s:4.2f}×   (Ray started in {ray_start_s:.1f} s)")
    inits = []
    for _ in range(3):
        _, output = timed([sys.executable, "-c", RAY_START.format(cpus=cores)], env)
        inits.append([float(v) for v in output.split()[-2:]])
    print(f"median: one by one {statistics.median(sequences):.1f} s, sweep {statistics.median(sweeps):.1f} s, "
          f"speed-up {statistics.median(ratios):.2f}×")
    print(f"Ray alone, 3 fresh processes: ray.init {statistics.median(i[0] for i in inits):.2f} s "
          f"(min {min(i[0] for i in inits):.2f}), ray.shutdown {statistics.median(i[1] for i in inits):.2f} s")
    print("goal: speed-up ≥ 1.3× on 2 cores")


if __name__ == "__main__":
    main()
