"""What a sweep comes to: each trial's `Record`, the `Summary`, and the files it leaves,
OUT/results.csv, OUT/best.toml, OUT/summary.png, and a printed table.

`reacher.tools.sweep` runs the trials and fills these in; this module needs nothing of it.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from reacher.config import to_toml
from reacher.files import atomic_write, write_text
from reacher.run.metrics import read_metrics
from reacher.tools.sweep_spec import Spec, Trial, point_label, value_text


@dataclass
class Record:
    """What one trial came to: its final evaluation, an error, or neither (not run to the end)."""

    trial: Trial
    final: dict | None = None  # the final row of the trial's metrics.csv
    error: str | None = None
    node: str | None = None  # the Ray node that ran it (this invocation only)

    @property
    def finished(self) -> bool:
        return self.final is not None


@dataclass
class Summary:
    spec: Spec
    out: Path
    records: list[Record]
    interrupted: bool = False  # trials left unfinished: Ctrl-C, SIGTERM, or a lost worker
    stopped_by: str | None = None  # the signal's name, when one stopped the sweep
    ray_start_s: float | None = None  # None when the sweep joined a Ray that was running
    wall_s: float = 0.0
    best: dict | None = None  # set by write_all: the best grid point and its scores

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.error is not None]


# After the grid keys; `error` is filled for a failed trial only.
RESULT_COLUMNS = ("seed", "success_rate", "mean_final_distance", "mean_return", "wall_time", "steps",
                  "run_dir", "error")


def write_all(summary: Summary) -> None:
    summary.best = best_point(summary)
    write_results(summary)
    if summary.best is not None:
        write_best(summary)
    plot_summary(summary)


def write_results(summary: Summary) -> Path:
    """One row per finished or failed trial, in the spec's order."""
    keys = list(summary.spec.grid)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow([*keys, *RESULT_COLUMNS])
    for r in summary.records:
        if not r.finished and r.error is None:
            continue
        final = r.final or {}
        writer.writerow([*(value_text(r.trial.point[k]) for k in keys), r.trial.seed,
                         *(_cell(final.get(c)) for c in ("success_rate", "mean_final_distance",
                                                         "mean_return", "wall_time", "step")),
                         str(r.trial.run_dir), r.error or ""])
    path = summary.out / "results.csv"
    write_text(path, text.getvalue())
    return path


def _groups(summary: Summary) -> list[tuple[dict, list[Record]]]:
    groups: dict[str, tuple[dict, list[Record]]] = {}
    for r in summary.records:
        groups.setdefault(point_label(r.trial.point), (r.trial.point, []))[1].append(r)
    return list(groups.values())


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _scores(records: list[Record]) -> dict:
    done = [r.final for r in records if r.finished]
    return {"success_rate": _mean(f["success_rate"] for f in done),
            "mean_final_distance": _mean(f["mean_final_distance"] for f in done),
            "mean_return": _mean(f["mean_return"] for f in done),
            "wall_time": _mean(f["wall_time"] for f in done), "finished": len(done)}


def best_point(summary: Summary) -> dict | None:
    """The grid point with the highest mean success over its finished seeds, then the
    smallest mean final distance (envs without those: the highest mean return)."""
    def key(item):
        s = item[1]
        success = s["success_rate"] if s["success_rate"] is not None else -math.inf
        distance = s["mean_final_distance"] if s["mean_final_distance"] is not None else math.inf
        return (success, -distance, s["mean_return"])

    candidates = [(point, _scores(records)) for point, records in _groups(summary)]
    candidates = [c for c in candidates if c[1]["finished"]]
    if not candidates:
        return None
    point, scores = max(candidates, key=key)
    return {"point": point, **scores}


def write_best(summary: Summary) -> Path:
    """The base config with the best grid point, as a `reacher train --config` file."""
    best = summary.best
    config = summary.spec.point_config(best["point"])
    header = [f"# best grid point of the sweep {summary.spec.path}: {point_label(best['point'])}",
              f"# over {best['finished']} seed(s): " + _score_text(best)]
    path = summary.out / "best.toml"
    write_text(path, "\n".join(header) + "\n" + to_toml(config))
    return path


def _score_text(scores: dict) -> str:
    parts = []
    if scores["success_rate"] is not None:
        parts.append(f"success {100 * scores['success_rate']:.1f} %")
    if scores["mean_final_distance"] is not None:
        parts.append(f"final distance {100 * scores['mean_final_distance']:.2f} cm")
    parts.append(f"return {scores['mean_return']:.2f}")
    return ", ".join(parts)


def plot_summary(summary: Summary) -> Path | None:
    """Success (or return, for envs without success) against wall time, one line per
    trial, one colour per grid point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    colours = plt.get_cmap("tab10")
    drawn = False
    for i, (point, records) in enumerate(_groups(summary)):
        label = point_label(point)
        for r in records:
            path = r.trial.run_dir / "metrics.csv"
            rows = [row for row in read_metrics(path) if row.get("wall_time") is not None] if path.is_file() else []
            if not rows:
                continue
            success = all(row["success_rate"] is not None for row in rows)
            ys = [100 * row["success_rate"] if success else row["mean_return"] for row in rows]
            ax.plot([row["wall_time"] for row in rows], ys, "o-", color=colours(i % 10), alpha=0.8,
                    markersize=3, label=label)
            label, drawn = None, True  # one legend entry per grid point
            ax.set_ylabel("success rate (%)" if success else "mean return")
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("wall time (s)")
    ax.set_title(f"sweep {summary.spec.path.name}: each line a trial (seed), one colour per grid point")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = summary.out / "summary.png"
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return path


def table(summary: Summary) -> str:
    """One line per grid point (means over finished seeds), the best marked, then failures."""
    lines = [f"{'':2}{'grid point':<40} {'seeds':>5} {'success':>8} {'distance':>9} {'return':>8} {'wall s':>7}"]
    best = summary.best["point"] if summary.best else None
    for point, records in _groups(summary):
        s = _scores(records)
        success = f"{100 * s['success_rate']:.1f} %" if s["success_rate"] is not None else "-"
        distance = f"{100 * s['mean_final_distance']:.2f} cm" if s["mean_final_distance"] is not None else "-"
        ret = f"{s['mean_return']:.2f}" if s["mean_return"] is not None else "-"
        wall = f"{s['wall_time']:.1f}" if s["wall_time"] is not None else "-"
        mark = "* " if point == best else "  "
        lines.append(f"{mark}{point_label(point):<40} {s['finished']:>2}/{len(records):<2} {success:>8} "
                     f"{distance:>9} {ret:>8} {wall:>7}")
    for r in summary.failed:
        lines.append(f"  failed: {r.trial.name}: {r.error}")
    if best is not None:
        lines.append(f"* best; its config is {summary.out / 'best.toml'}")
    lines.append(f"results: {summary.out / 'results.csv'}")
    return "\n".join(lines)


def _cell(value):
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else value
