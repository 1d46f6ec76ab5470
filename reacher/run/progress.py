"""What training prints while it runs: a line per evaluation, and on a terminal a bar
redrawn in place (progress, speed, the latest evaluation)."""

from __future__ import annotations

import sys

from reacher.errors import printable
from reacher.run.evaluation import Evaluation


class Progress:
    """Lines and the bar, written to `log` (stderr) when `enabled`; the bar only on a terminal."""

    def __init__(self, enabled: bool = True, log=sys.stderr):
        self.enabled, self.log = enabled, log
        self.last: Evaluation | None = None  # shown in the bar

    def _tty(self) -> bool:
        return getattr(self.log, "isatty", lambda: False)()

    def line(self, text: str) -> None:
        """A line of its own (over the bar, on a terminal). Warnings are written even when
        progress is off: they are not progress. They name files (an arm's path), so their
        control characters are escaped."""
        text = printable(text)
        if self._tty():
            text = "\r" + text + " " * 10
        self.log.write(text + "\n")
        self.log.flush()

    def evaluation(self, result: Evaluation, steps: int, wall_time: float, physics_errors: int) -> None:
        self.last = result
        if self.enabled:
            errors = f"  physics errors {physics_errors:,}" if physics_errors else ""
            self.line(describe(result, steps, wall_time) + errors)

    def bar(self, steps: int, budget: int, elapsed: float, fixed: bool) -> None:
        """The bar at `steps` of `budget`; `fixed`: a run of exactly that many steps (ETA),
        else a success-gated one that may stop earlier (at most)."""
        if not self.enabled or not self._tty():
            return
        done = steps / max(budget, 1)
        rate = steps / max(elapsed, 1e-9)
        bar = "#" * int(20 * done) + "." * (20 - int(20 * done))
        eta = "ETA" if fixed else "at most"
        line = (f"\r  [{bar}] {steps:>9,}/{budget:,}  {rate:5.0f} steps/s  "
                f"{eta} {(budget - steps) / max(rate, 1e-9):4.0f}s")
        last = self.last
        if last is not None and last.success_rate is not None:
            line += f"  success {100 * last.success_rate:3.0f}%"
            if last.mean_final_distance is not None:
                line += f"  distance {100 * last.mean_final_distance:4.1f} cm"
        elif last is not None:
            line += f"  return {last.mean_return:.1f}"
        self.log.write(line + "  ")
        self.log.flush()


def describe(result: Evaluation, steps: int, wall_time: float) -> str:
    """One evaluation as a line: step, time, success, distance, return."""
    parts = [f"step {steps:>8,}", f"{wall_time:7.1f}s"]
    if result.success_rate is not None:
        parts.append(f"success {100 * result.success_rate:5.1f}%")
    if result.mean_final_distance is not None:
        parts.append(f"distance {100 * result.mean_final_distance:5.2f} cm")
    parts.append(f"return {result.mean_return:8.2f}")
    return "  ".join(parts)
