"""Torch's thread count while a run trains: the second core where it is free, one thread
where it is not.

Two torch threads wait on each other at every matmul: on an idle 2-core machine they
make an update up to 1.8x faster than one, and as soon as another process holds a core
(a second run, tests, a browser; even one at ``nice 19``) ten times slower
(docs/benchmarks.md, "Threads: one by default"). Neither count is right on a machine
whose load moves, so a run whose ``threads`` is 0 (auto) measures: `AutoThreads` times the
run's own updates (the one part of a step that threads change) in windows of WINDOW_S
seconds of updates, starts on one thread, and now and then runs one window on the other
count (a probe), keeping whichever made more updates a second. Two threads are taken
only when at least GAIN times as fast as one, and left at the first window in which they
are slower than one thread's last: a collapse costs one window (or one update, where a
single update outlasts WINDOW_S). A probe of two threads is made only while the usable
CPUs were idle for at least IDLE_TO_PROBE of a core over the last window (Linux's
/proc/stat; elsewhere every probe is made), so on a machine whose other core is busy,
where every such probe would be a window at a tenth of the speed or less, none is made;
and each probe lost, or collapse, doubles the wait for the next (PROBE_EVERY_S up to
MAX_PROBE_EVERY_S), which bounds what wrong idle readings can cost: at most seven probes in
the first five minutes, one per MAX_PROBE_EVERY_S after. `torch.set_num_threads` takes
effect at the next operation (checked; a switch costs microseconds).

Fixed, never probed: ``threads`` given (``--threads N`` is set exactly as given); one
thread where a single CPU is usable (`reacher.config.usable_cpus`: the affinity mask and
the cgroup quota, not the machine's count) or the networks train on a GPU (its timings
would be kernel launches, not work). Only one and two threads are compared: the pair
measured at these network sizes; more cores were not measured.

Reproducibility: the choice follows the machine's load, so which updates ran on which
count differs from run to run. The figures do not: on the project's CPU (AMD EPYC,
AVX-512, torch's MKL and oneDNN kernels) an update gives bit-identical results on one
and two threads (checked on the 2x128 and 2x256 networks, with the count switched
between updates, and end to end: ``reacher train --arm two_link --seed 0 --threads 2``
writes the same metrics.csv as ``--threads 1`` but the clocks), so the same seed gives
the same run under auto as under ``--threads 1``. Torch does not promise this on every
CPU and library build (a kernel may split a reduction between threads); where it must
hold, ``--threads 1`` does.

Each probe and switch is logged on this module's logger at INFO (silent unless logging is
configured; scripts/bench_steps.py prints them).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from reacher.config import usable_cpus
from reacher.run.settings import AUTO_THREADS, torch_threads

log = logging.getLogger(__name__)

WINDOW_S = 0.25  # update seconds per measurement: about 60 panda-sized updates on one thread
IDLE_TO_PROBE = 0.5  # idle cores over the last window for a probe of two threads
SKIP_UPDATES = 10  # the first updates allocate and warm caches: not timed
GAIN = 1.1  # two threads are taken only this much faster than one
PROBE_EVERY_S = 5.0  # wall seconds from a probe to the next, doubled by each probe lost
MAX_PROBE_EVERY_S = 80.0
COUNTS = (AUTO_THREADS, 2)  # the counts compared: one, and two


class Threads:
    """Torch's thread count for a run: fixed (``probing`` False) or chosen by `AutoThreads`.
    The loop runs each update through `timed`."""

    probing = False

    def __init__(self, count: int, set_threads=torch.set_num_threads):
        self.current = count
        set_threads(count)

    def timed(self, update, *args):
        """``update(*args)``, its result returned (and its time measured under auto)."""
        return update(*args)


class AutoThreads(Threads):
    """Times updates in windows and keeps the faster of one and two threads (module
    docstring). ``clock``, ``set_threads`` and ``idle`` (the usable CPUs' idle seconds so
    far, or None where unknown) are injectable for tests; ``switches`` lists (update, from,
    to) and ``probes`` counts the probes."""

    probing = True

    def __init__(self, clock=time.perf_counter, set_threads=torch.set_num_threads, idle=None):
        super().__init__(COUNTS[0], set_threads)
        self._clock, self._set = clock, set_threads
        self._idle = idle or idle_core_seconds
        self._last_idle = (self._clock(), self._idle())
        self.rates: dict[int, float] = {}  # the last window's updates/s on each count
        self.switches: list[tuple[int, int, int]] = []
        self.probes = self.updates = 0
        self._window_updates, self._window_s = 0, 0.0
        self._probe_from: int | None = None  # the count a probe returns to if it loses
        self._interval = PROBE_EVERY_S
        self._next_probe = float("-inf")  # the first probe follows the first window

    def timed(self, update, *args):
        start = self._clock()
        result = update(*args)
        self._count(self._clock() - start)
        return result

    def _count(self, seconds: float) -> None:
        self.updates += 1
        if self.updates <= SKIP_UPDATES:
            return
        self._window_updates += 1
        self._window_s += seconds
        if self._window_s < WINDOW_S:
            return
        self.rates[self.current] = self._window_updates / self._window_s
        self._window_updates, self._window_s = 0, 0.0
        now, idle_cores = self._clock(), self._idle_cores()
        one, two = COUNTS
        if self._probe_from is not None:
            self._end_probe(now)
        elif self.current == two and self.rates[two] < self.rates.get(one, 0.0):
            self._switch(two, one, "slower than one thread's last window")
            self._back_off(now)
        elif now >= self._next_probe and (self.current == two or idle_cores is None or idle_cores >= IDLE_TO_PROBE):
            self._probe_from, self.probes = self.current, self.probes + 1
            self._use(self._other(self.current))

    def _idle_cores(self) -> float | None:
        """How many of the usable CPUs were idle, on average, since the last call."""
        then, idle_then = self._last_idle
        self._last_idle = now, idle = self._clock(), self._idle()
        if idle is None or idle_then is None or now <= then:
            return None
        return (idle - idle_then) / (now - then)

    def _back_off(self, now: float) -> None:
        self._interval = min(2 * self._interval, MAX_PROBE_EVERY_S)
        self._next_probe = now + self._interval

    def _end_probe(self, now: float) -> None:
        before, self._probe_from = self._probe_from, None
        one, two = COUNTS
        best = two if self.rates[two] >= GAIN * self.rates[one] else one
        if best == before:
            self._use(before)
            self._back_off(now)
            log.info("threads: probe of %d at update %d lost (%s); next in %.0f s at the earliest",
                     self._other(before), self.updates, self._rates(), self._interval)
        else:
            self._switch(before, best, "probe")
            self._next_probe = now + self._interval

    def _switch(self, before: int, count: int, why: str) -> None:
        self.switches.append((self.updates, before, count))
        log.info("threads: %d -> %d at update %d (%s; %s)", before, count, self.updates, why, self._rates())
        self._use(count)

    def _use(self, count: int) -> None:
        if count != self.current:
            self.current = count
            self._set(count)

    def _other(self, count: int) -> int:
        return COUNTS[1] if count == COUNTS[0] else COUNTS[0]

    def _rates(self) -> str:
        return ", ".join(f"{n} thread{'s' * (n > 1)} {self.rates[n]:.1f} updates/s" for n in COUNTS if n in self.rates)


def idle_core_seconds() -> float | None:
    """Seconds the CPUs this process may use have spent idle since boot (/proc/stat's idle
    and iowait), or None where that is unknown (not Linux)."""
    try:
        cpus, lines = os.sched_getaffinity(0), Path("/proc/stat").read_text().splitlines()
        ticks = sum(int(f[4]) + int(f[5]) for f in map(str.split, lines)
                    if f and f[0][3:].isdigit() and f[0].startswith("cpu") and int(f[0][3:]) in cpus)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError, IndexError):
        return None


def choose(threads: int, device: str = "cpu", usable: int | None = None, **injected) -> Threads:
    """The run's `Threads`, its count already set: ``threads`` as given, one where a single
    CPU is usable or the device is not the CPU, else `AutoThreads`. ``usable`` (default
    `usable_cpus()`) and `AutoThreads`' ``clock``, ``set_threads`` and ``idle`` are for tests."""
    set_threads = injected.get("set_threads", torch.set_num_threads)
    if threads or str(device) != "cpu" or (usable if usable is not None else usable_cpus()) < 2:
        return Threads(torch_threads(threads), set_threads)
    return AutoThreads(**injected)
