"""What a run records: metrics.csv, TensorBoard events (if installed) and curve.png."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from reacher.files import atomic_write, write_text

COLUMNS = ("step", "wall_time", "train_episodes", "success_rate", "mean_final_distance", "mean_return",
           "critic_loss", "actor_loss", "mean_q", "steps_per_s", "eval_time")


class MetricsLog:
    """Appends one row per evaluation to ``metrics.csv``.

    On resume, rows past the checkpoint's step (logged after it, then lost with the
    process) are dropped first, so the file reads as one uninterrupted run."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.path = run_dir / "metrics.csv"
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if new:
            self._writer.writeheader()
            self._file.flush()
        self._tensorboard = _tensorboard_writer(run_dir)

    def write(self, row: dict) -> None:
        self._writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        self._file.flush()
        if self._tensorboard is not None:
            names = {"success_rate": "eval/success_rate", "mean_final_distance": "eval/final_distance_m",
                     "mean_return": "eval/return", "critic_loss": "losses/critic",
                     "actor_loss": "losses/actor", "mean_q": "losses/mean_q",
                     "steps_per_s": "charts/steps_per_s"}
            for key, tag in names.items():
                if row.get(key) is not None:
                    self._tensorboard.add_scalar(tag, row[key], row["step"])
            self._tensorboard.flush()

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()

    def _truncate_after(self, step: int) -> None:
        rows = read_metrics(self.path)
        kept = [r for r in rows if r["step"] is not None and r["step"] <= step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        for row in kept:
            writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        write_text(self.path, text.getvalue())


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_curve(metrics_csv: Path, out_png: Path, title: str = "") -> Path | None:
    """Success rate and final distance against environment steps; None without data."""
    rows = [r for r in read_metrics(metrics_csv) if r.get("step") is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    if all(r["success_rate"] is not None for r in rows):
        ax.plot(steps, [100 * r["success_rate"] for r in rows], "o-", color="#1f6fb4", label="success (%)")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(-2, 102)
        right = ax.twinx()
        right.plot(steps, [100 * r["mean_final_distance"] for r in rows], "s--", color="#d9453b",
                   label="final distance (cm)")
        right.set_ylabel("mean final distance (cm)")
        right.set_ylim(bottom=0)
        lines = ax.get_lines() + right.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    else:
        ax.plot(steps, [r["mean_return"] for r in rows], "o-", color="#1f6fb4")
        ax.set_ylabel("mean return")
    ax.set_xlabel("environment steps")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_write(out_png) as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return out_png


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir))


def _fmt(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _parse(text: str):
    if text is None or text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number
