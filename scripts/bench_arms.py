"""Any-arm benchmark: `reacher train --arm X` with the defaults, timed as a user runs it.

For each arm and seed this runs the real command (a fresh process, nothing but
``--arm``, ``--end-effector``, ``--seed`` and a run directory), times the whole command,
and reads back the run's own final 100-episode evaluation (success = fingertip within
2 cm at the episode's last step), its step count and why it stopped. Prints a
Markdown table, one row per arm × seed, and a goal line per arm.

    python scripts/bench_arms.py                                   # built-ins and examples
    python scripts/bench_arms.py --arms three_link --seeds 0,1,2
    python scripts/bench_arms.py --arms path/to/arm.xml:tip --seeds 0 -- --threads 1
    python scripts/bench_arms.py --limit-s 300                      # "within 5 minutes"

With ``--limit-s`` a run still going after that many seconds gets SIGINT (reacher saves
its checkpoint) and its kept policy is then evaluated on the same 100 episodes by
``reacher evaluate``; the row says it stopped at the time limit. The "first ≥ 95 %"
column is the training time and step of the first periodic evaluation at or above
95 %, from the run's metrics.csv.

An arm is a built-in name or ``FILE[:END_EFFECTOR]``; arguments after ``--`` are passed
to every ``reacher train`` (state them with the results: they are no longer defaults).
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARMS = ("two_link", "three_link", "examples/arms/four_link.xml:tip",
                "examples/arms/spatial_arm.xml:fingertip")


def run(arm: str, seed: int, workdir: Path, extra: list[str], limit_s: float = 0) -> dict:
    path, _, effector = arm.partition(":")
    run_dir = workdir / f"{Path(path).stem}-seed{seed}"
    command = [sys.executable, "-m", "reacher", "train", "--arm", path, "--seed", str(seed),
               "--run-dir", str(run_dir), "--quiet", *(["--end-effector", effector] if effector else []),
               *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=limit_s or None)
        limited = False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # reacher saves its checkpoint and exits 130
        _, stderr = process.communicate()
        limited = True
    wall = time.perf_counter() - start
    row = {"arm": Path(path).stem, "seed": seed, "wall_s": wall}
    if process.returncode != 0 and not (limited and process.returncode == 130):
        row["error"] = (stderr.strip().splitlines() or ["failed"])[-1]
        return row
    with zipfile.ZipFile(run_dir / "checkpoint.ckpt") as archive:
        meta = json.loads(archive.read("metadata.json"))
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    first = next((r for r in rows if r["success_rate"] and float(r["success_rate"]) >= 0.95), None)
    if first:  # both clocks are read before the row's evaluation: their difference is training
        train_s = float(first["wall_time"]) - float(first["eval_time"] or 0)
        row["first95"] = f"{train_s:.0f} s / {int(first['step']):,}"
    if limited:
        evaluation = subprocess.run([sys.executable, "-m", "reacher", "evaluate", str(run_dir),
                                     "--episodes", "100", "--json"], cwd=ROOT, capture_output=True,
                                    text=True, check=True)
        final = json.loads(evaluation.stdout)
        row.update(stop=f"time limit ({limit_s:.0f} s)", success=float(final["success_rate"]),
                   distance_cm=100 * float(final["mean_final_distance"]))
    else:
        final = rows[-1]
        row.update(stop=meta.get("stop_reason") or "?", success=float(final["success_rate"]),
                   distance_cm=100 * float(final["mean_final_distance"]))
    row.update(steps=meta["env_steps"], train_s=meta["wall_time"], max_steps=meta["config"]["max_steps"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--keep", type=Path, default=None, help="keep run dirs here")
    parser.add_argument("--limit-s", type=float, default=0,
                        help="interrupt a run after this many seconds and evaluate what it kept")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench_arms_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"reacher train --arm ARM [--end-effector E] --seed S {' '.join(extra)}".rstrip())
    print("\n| arm | seed | success | final distance | steps | wall s | first ≥ 95 % (train s / step) | stopped because |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for arm in [a for a in args.arms.split(",") if a]:
        for seed in seeds:
            row = run(arm, seed, workdir, extra, args.limit_s)
            rows.append(row)
            if "error" in row:
                print(f"| {row['arm']} | {seed} | error: {row['error']} | | | {row['wall_s']:.0f} | | |")
            else:
                print(f"| {row['arm']} | {seed} | {100 * row['success']:.0f} % | {row['distance_cm']:.2f} cm | "
                      f"{row['steps']:,} | {row['wall_s']:.0f} | {row.get('first95', '—')} | {row['stop']} |", flush=True)
    print()
    for name in dict.fromkeys(r["arm"] for r in rows):
        done = [r for r in rows if r["arm"] == name and "error" not in r]
        if done:
            print(f"{name}: success min {100 * min(r['success'] for r in done):.0f} %, "
                  f"distance max {max(r['distance_cm'] for r in done):.2f} cm, "
                  f"wall max {max(r['wall_s'] for r in done):.0f} s over {len(done)} seed(s)")


if __name__ == "__main__":
    main()
