"""How many torch threads a run takes: as asked, or under auto one unless timed updates
find two faster, since a second one collapses as soon as another process shares the
cores (docs/benchmarks.md, "Cost per learning step")."""

from __future__ import annotations

import torch

from reacher.config import Config
from reacher.run import settings as adapt
from reacher.run import threads
from reacher.run.training import Training


def test_auto_is_one_thread_and_a_request_is_kept():
    assert adapt.torch_threads(0) == 1
    assert adapt.torch_threads(3) == 3


def test_a_default_run_sets_one_torch_thread(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        Training(Config(steps=10, warmup_steps=10, final_eval_episodes=1), tmp_path / "run", progress=False)
        assert torch.get_num_threads() == 1
        Training(Config(steps=10, warmup_steps=10, final_eval_episodes=1, threads=2), tmp_path / "run2",
                 progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- the auto rule (reacher.run.threads), on a fake clock --------------------------------

class FakeMachine:
    """A clock that an update advances by its seconds on the current thread count (a
    function of the elapsed time, so the load can change during a run), plus the time a
    step spends outside the update; the other core is idle while the run is on one thread
    and `free(t)`."""

    def __init__(self, update_s, outside_s=0.002, free=lambda t: True):
        self.now, self.threads, self.update_s, self.outside_s, self.free = 0.0, None, update_s, outside_s, free
        self.seconds_on = {1: 0.0, 2: 0.0}
        self.set_calls = []
        self.idle_s = 0.0

    def clock(self):
        return self.now

    def idle(self):
        return self.idle_s

    def advance(self, seconds):
        if self.threads == 1 and self.free(self.now):
            self.idle_s += seconds
        self.now += seconds

    def set_threads(self, n):
        self.threads = n
        self.set_calls.append(n)

    def train(self, chooser, updates=10**9, until=float("inf")):
        for _ in range(updates):
            if self.now >= until:
                return
            chooser.timed(self._update)
            self.advance(self.outside_s)

    def _update(self):
        seconds = self.update_s(self.threads, self.now)
        self.seconds_on[self.threads] = self.seconds_on.get(self.threads, 0.0) + seconds
        self.advance(seconds)


def auto(machine, idle=None):
    chooser = threads.choose(0, "cpu", usable=2, clock=machine.clock, set_threads=machine.set_threads,
                             idle=idle or machine.idle)
    assert isinstance(chooser, threads.AutoThreads) and machine.threads == 1
    return chooser


def test_auto_takes_two_threads_when_they_are_faster():
    machine = FakeMachine(lambda n, t: 0.004 if n == 1 else 0.0025)  # 1.6x: an idle machine
    chooser = auto(machine)
    machine.train(chooser, 20000)
    assert chooser.current == 2 and machine.threads == 2
    assert [s[1:] for s in chooser.switches] == [(1, 2)]  # and it stays there
    assert machine.seconds_on[2] > 0.95 * sum(machine.seconds_on.values())


def test_auto_stays_on_one_thread_when_two_are_barely_faster():
    machine = FakeMachine(lambda n, t: 0.004 if n == 1 else 0.004 / 1.05)  # below GAIN
    chooser = auto(machine)
    machine.train(chooser, 20000)
    assert chooser.current == 1 and chooser.switches == [] and chooser.probes >= 3


def test_auto_falls_back_to_one_thread_within_a_window_when_two_collapse():
    # idle for 20 s, then another process takes a core: two threads ten times slower
    machine = FakeMachine(lambda n, t: 0.004 if n == 1 else (0.0025 if t < 20 else 0.04), free=lambda t: t < 20)
    chooser = auto(machine)
    machine.train(chooser, until=20)
    assert chooser.current == 2
    on_two = machine.seconds_on[2]
    machine.train(chooser, 100)  # from t = 20 on
    assert chooser.current == 1 and [s[1:] for s in chooser.switches] == [(1, 2), (2, 1)]
    collapse_cost = machine.seconds_on[2] - on_two  # what ran on two threads after the load came
    assert collapse_cost < 2 * threads.WINDOW_S + 0.04 * (threads.SKIP_UPDATES + 1)
    machine.train(chooser, until=400)
    assert len(chooser.switches) == 2  # busy all along: no probe of two threads since


def test_auto_never_probes_two_threads_while_the_other_core_is_busy():
    machine = FakeMachine(lambda n, t: 0.004 if n == 1 else 1.0, free=lambda t: False)  # a 250x collapse
    chooser = auto(machine)
    machine.train(chooser, until=360)
    assert chooser.probes == 0 and machine.seconds_on[2] == 0 and machine.set_calls == [1]


def test_auto_on_a_loaded_machine_with_no_idle_reading_costs_about_a_percent_in_probes():
    machine = FakeMachine(lambda n, t: 0.004 if n == 1 else 0.04, free=lambda t: False)  # loaded from the start
    chooser = auto(machine, idle=lambda: None)  # not Linux: every probe is made
    machine.train(chooser, until=360)  # six minutes of training
    assert chooser.current == 1 and chooser.switches == []
    total = sum(machine.seconds_on.values())
    assert chooser.probes >= 5
    # a probe window at a tenth of the speed, at intervals doubling to MAX_PROBE_EVERY_S
    assert machine.seconds_on[2] < 0.01 * total
    # and the interval grew: later probes are MAX_PROBE_EVERY_S apart, so few of them
    assert chooser.probes <= 5 + machine.now / threads.MAX_PROBE_EVERY_S


def test_auto_comes_back_to_two_threads_when_the_core_frees_again():
    busy = lambda t: 30 < t < 60  # noqa: E731
    machine = FakeMachine(lambda n, t: 0.004 if n == 1 else (0.04 if busy(t) else 0.0025), free=lambda t: not busy(t))
    chooser = auto(machine)
    machine.train(chooser, until=200)
    assert [s[1:] for s in chooser.switches][:3] == [(1, 2), (2, 1), (1, 2)]
    assert chooser.current == 2


def test_threads_given_or_one_usable_cpu_or_a_gpu_never_probe():
    for args, expected in [((3, "cpu", 2), 3), ((1, "cpu", 2), 1), ((0, "cpu", 1), 1), ((0, "cuda", 2), 1)]:
        machine = FakeMachine(lambda n, t: 0.004 if n == 1 else 0.001)  # two would pay
        chooser = threads.choose(*args, clock=machine.clock, set_threads=machine.set_threads)
        assert not chooser.probing and not isinstance(chooser, threads.AutoThreads)
        machine.train(chooser, 2000)
        assert machine.set_calls == [expected], args


def test_a_run_on_one_usable_cpu_never_probes(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 1)
    before = torch.get_num_threads()
    try:
        run = Training(Config(steps=10, warmup_steps=10, final_eval_episodes=1), tmp_path / "run", progress=False)
        assert not run.threads.probing and torch.get_num_threads() == 1
        monkeypatch.setattr(threads, "usable_cpus", lambda: 2)
        run = Training(Config(steps=10, warmup_steps=10, final_eval_episodes=1), tmp_path / "run2", progress=False)
        assert run.threads.probing and torch.get_num_threads() == 1  # auto starts on one
    finally:
        torch.set_num_threads(before)


def test_set_num_threads_takes_effect_at_run_time():
    """What the rule relies on: the count changes between two operations in one process."""
    before = torch.get_num_threads()
    try:
        for n in (1, 2, 1):
            torch.set_num_threads(n)
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(before)
