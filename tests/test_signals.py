"""One way to stop on a signal (reacher.run.signals), used by training and sweeps alike."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest

from reacher.run.signals import StopOnSignals, Stopped

PACKAGE = Path(__file__).resolve().parent.parent / "reacher"


def test_the_first_signal_asks_to_stop_the_second_interrupts_and_the_old_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopOnSignals() as stop:
        stop.check()  # nothing asked yet
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.stopped_by == "SIGTERM"
        with pytest.raises(Stopped):
            stop.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before


def test_installing_again_keeps_the_handlers_found_first():
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignals() as stop:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as ray.init puts its own in place
        stop.install()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.stopped_by == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_off_the_main_thread_nothing_is_installed():
    before, seen = signal.getsignal(signal.SIGINT), []

    def run():
        with StopOnSignals():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]


def test_signal_handlers_are_set_in_one_place():
    """Training and sweeps both stop through StopOnSignals; nothing else sets a handler."""
    setters = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if re.search(r"\bsignal\.signal\(", p.read_text(encoding="utf-8"))]
    assert setters == ["run/signals.py"]
