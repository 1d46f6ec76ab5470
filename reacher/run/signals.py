"""Stopping on Ctrl-C or SIGTERM, for training and sweeps alike: the first signal asks to
stop, a second one means it.

`StopOnSignals` holds the SIGINT and SIGTERM handlers while its ``with`` block runs and
puts the previous ones back after. The first signal records its name in `stopped_by`,
which the program checks where stopping is safe (training saves a checkpoint first; a
sweep stops Ray and its trials). A second one raises KeyboardInterrupt where the program
is: the CLI reports ``error: interrupted`` and exits 130.
"""

from __future__ import annotations

import signal
import threading

from reacher.errors import Stopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignals:
    """Within ``with StopOnSignals() as stop:``, Ctrl-C and SIGTERM set ``stop.stopped_by``
    (the signal's name, e.g. ``"SIGINT"``) instead of interrupting.

    Only the main thread may set handlers: elsewhere (a training run inside a sweep's Ray
    worker) nothing is installed and the host stops the thread instead."""

    def __init__(self):
        self.stopped_by: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopOnSignals":
        self.install()
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def install(self) -> None:
        """Put the handlers in place (again, after a library replaced them: ``ray.init``
        installs its own SIGTERM handler); the ones found first are restored at exit."""
        if threading.current_thread() is not threading.main_thread():
            return
        for s in SIGNALS:
            previous = signal.signal(s, self._on_signal)
            self._previous.setdefault(s, previous)

    def check(self) -> None:
        """Raise `Stopped` once a signal asked to stop."""
        if self.stopped_by is not None:
            raise Stopped(self.stopped_by)

    def _on_signal(self, signum, frame) -> None:
        if self.stopped_by is not None:  # a second one while stopping: the user means it
            raise KeyboardInterrupt
        self.stopped_by = signal.Signals(signum).name
