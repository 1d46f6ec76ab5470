"""What a run records in metrics.csv, read back and drawn as curve.png.

`reacher.run.rundir` writes the file (one row per evaluation step); this module knows its
columns and reads and plots it."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path

from reacher.errors import printable
from reacher.files import atomic_write, read_regular
from reacher.limits import MAX_RUN_FILE_BYTES

COLUMNS = ("step", "wall_time", "train_episodes", "success_rate", "mean_final_distance", "mean_return",
           "critic_loss", "actor_loss", "mean_q", "steps_per_s", "eval_time")


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.csv, numbers parsed; `UnreadableFile` (a ValueError) when it
    is not a regular file of bounded size (a FIFO would block the reader)."""
    text = read_regular(path, MAX_RUN_FILE_BYTES).decode("utf-8")
    return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text, newline=""))]


def preload_plotting() -> threading.Thread:
    """Import matplotlib in the background. Importing it takes about a second, and the curve
    is drawn as a run ends, so a run stopped by Ctrl-C would otherwise spend that second
    after the signal; training starts it early and goes on meanwhile."""
    thread = threading.Thread(target=_import_pyplot, name="preload-matplotlib", daemon=True)
    thread.start()
    return thread


def _import_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curve(metrics_csv: Path, out_png: Path, title: str = "") -> Path | None:
    """Success rate and final distance against environment steps; None without data."""
    rows = [r for r in read_metrics(metrics_csv) if r.get("step") is not None]
    if not rows:
        return None
    plt = _import_pyplot()
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    if all(r["success_rate"] is not None for r in rows):
        ax.plot(steps, [100 * r["success_rate"] for r in rows], "o-", color="#1f6fb4", label="success (%)")
        ax.set_ylabel("success rate (%)")
        ax.set_ylim(-2, 102)
        lines = list(ax.get_lines())
        # An env may report is_success without a distance (a goal env from elsewhere).
        if all(r["mean_final_distance"] is not None for r in rows):
            right = ax.twinx()
            right.plot(steps, [100 * r["mean_final_distance"] for r in rows], "s--", color="#d9453b",
                       label="final distance (cm)")
            right.set_ylabel("mean final distance (cm)")
            right.set_ylim(bottom=0)
            lines += list(right.get_lines())
        ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    else:
        ax.plot(steps, [r["mean_return"] for r in rows], "o-", color="#1f6fb4")
        ax.set_ylabel("mean return")
    ax.set_xlabel("environment steps")
    ax.grid(alpha=0.3)
    if title:  # an arm's file name, escaped as every printed name is
        ax.set_title(printable(title))
    fig.tight_layout()
    with atomic_write(out_png) as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return out_png


def _parse(text: str):
    if text is None or text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number
