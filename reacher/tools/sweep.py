"""`reacher sweep`: train every grid point × seed of a spec as trials on Ray Tune.

Ray Tune schedules the trials: on an embedded Ray that the sweep starts and stops
(one trial per core at once), or on a running cluster joined with ``address``. Each
trial calls reacher's own training in its Ray worker, in an ordinary run directory
``OUT/runs/<grid point>,seed=<seed>`` that `reacher evaluate` and `render` accept.

The run directories are the sweep's memory. A trial is finished when its checkpoint
says training finished (its final evaluation is in metrics.csv) and it has at least
the trial's steps; ``resume`` skips those and lets the others continue from their own
checkpoints (so `kill -9` of the sweep costs at most one ``checkpoint_every`` per running trial). Tune's experiment
state is not used for this, so a sweep resumes the same way after any kind of stop.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

from reacher import config as cfg
from reacher.errors import CheckpointError, LockBusy, SweepError, one_line, printable
from reacher.files import remove_temporaries, write_text
from reacher.run import checkpoint as ckpt
from reacher.run.lock import DirectoryLock
from reacher.run.metrics import read_metrics
from reacher.run.signals import StopOnSignals, Stopped
from reacher.tools import sweep_report
from reacher.tools.sweep_report import Record, Summary
from reacher.tools.sweep_spec import Spec, Trial, load_spec

INSTALL_HINT = "reacher sweep needs Ray Tune, an optional extra: pip install 'reacher[sweep]'"
SPEC_HASH = "spec.sha256"  # what the spec asks for, so --resume continues the same sweep
SWEEP_LOCK = ".sweep.lock"  # one sweep per directory at a time


def finished_row(trial: Trial) -> dict | None:
    """The final metrics row of a trial whose run is complete, else None."""
    metrics = trial.run_dir / "metrics.csv"
    if not metrics.is_file() or not (trial.run_dir / ckpt.FILENAME).is_file():
        return None
    try:
        meta = ckpt.load(trial.run_dir).metadata
        steps = int(meta["env_steps"])
        rows = read_metrics(metrics)
    except (CheckpointError, KeyError, ValueError, OSError):
        return None
    # Training marks its last checkpoint finished once the final evaluation is written
    # (whether it stopped on success, at its cap or after exactly `steps`). A resume runs
    # the same spec (see _check_out), so `steps` differs only for a run dir from elsewhere.
    if not meta.get("finished") or not rows or steps < trial.config.steps:
        return None
    return rows[-1]


def run_sweep(spec_path: str | Path, out: str | Path, resume: bool = False, address: str | None = None,
              max_concurrent: int | None = None, log=None, env_modules: tuple[str, ...] = ()) -> Summary:
    """Run (or resume) a sweep and write OUT/results.csv, best.toml and summary.png; progress
    goes to `log` (default stderr), the final table to stdout. `env_modules` are modules the
    user trusts to register envs (``--import``), imported in every trial's worker too.

    OUT is claimed before it is looked at, so two sweeps never share it; Ctrl-C or SIGTERM
    stops Ray and its trials at once (each keeps its last checkpoint for ``resume``)."""
    log = log or sys.stderr
    start = time.perf_counter()
    spec = load_spec(spec_path)
    out = Path(out).expanduser().resolve()
    tune = _import_tune()
    with _claim(out):
        _check_out(out, resume, spec)
        records = [Record(t, finished_row(t)) for t in spec.trials(out)]
        todo = [r for r in records if not r.finished]
        if resume and len(todo) < len(records):
            print(f"resuming: {len(records) - len(todo)} of {len(records)} trials already finished", file=log)
        summary = Summary(spec, out, records)
        # A signal is acted on in the main thread, which waits for Tune in short steps
        # (see `_fit`): raising from the handler itself would land inside Ray's compiled
        # code, which turns it into a SystemError, and Tune's own SIGINT handling waits
        # for the trials to wind down.
        with StopOnSignals() as stop:
            try:
                _run(tune, spec_path, spec, todo, summary, stop, address, max_concurrent,
                     env_modules, log)
            except Stopped:
                for r in todo:
                    r.final = r.final or finished_row(r.trial)
                summary.interrupted = True
        summary.stopped_by = stop.stopped_by
    summary.wall_s = time.perf_counter() - start
    if summary.stopped_by is None:
        sweep_report.write_all(summary)
        # grid values are a spec file's text: escaped, line by line, as every command prints
        print("\n".join(printable(line) for line in sweep_report.table(summary).split("\n")))
    return summary


def _run(tune, spec_path, spec: Spec, todo: list[Record], summary: Summary,
         stop: StopOnSignals, address, max_concurrent, env_modules, log) -> None:
    import ray

    ray_was_running = ray.is_initialized()
    try:
        # Ray first: a sweep that cannot start leaves no directory that would then need --resume.
        if todo:
            if not address and not os.environ.get("RAY_ADDRESS") and not ray_was_running:
                _check_trials_fit(spec_path, todo, _local_cpus(max_concurrent), "this machine")
            _start_ray(address, max_concurrent, len(todo), summary, log)
            _check_trials_fit(spec_path, todo, _largest_node_cpus(), "the largest node of the Ray cluster")
            stop.install()  # ray.init puts its own SIGTERM handler in place, which aborts
            stop.check()
        remove_temporaries(summary.out)  # a killed sweep's half-written files (under its lock)
        write_text(summary.out / "spec.toml", Path(spec_path).read_text(encoding="utf-8"))
        write_text(summary.out / SPEC_HASH, spec.fingerprint() + "\n")
        if todo:
            _run_trials(tune, todo, summary.out, max_concurrent, summary, tuple(env_modules), stop)
    finally:
        if not ray_was_running and ray.is_initialized():
            ray.shutdown()  # also ends the trials' workers, at once


def _check_out(out: Path, resume: bool, spec: Spec) -> None:
    holds_sweep = (out / "spec.toml").is_file() or (out / "results.csv").is_file()
    if resume and not holds_sweep:
        raise SweepError(f"sweep directory {out}: holds no sweep, nothing to resume")
    if not resume and (holds_sweep or (out / "runs").exists()):
        raise SweepError(f"sweep directory {out}: already holds a sweep; pass --resume to continue "
                         "it or choose another --out")
    recorded = _recorded_fingerprint(out / SPEC_HASH)
    if resume and recorded is not None and recorded != spec.fingerprint():
        raise SweepError(f"sweep directory {out}: was started with another spec (a copy is in "
                         f"{out / 'spec.toml'}); --resume continues a sweep with the spec it started "
                         "with: pass that one, or choose another --out for this spec")


def _recorded_fingerprint(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(200).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None  # a sweep from before fingerprints: resumed, and fingerprinted now
    except OSError as err:
        raise SweepError(f"sweep directory {path.parent}: cannot read {path.name} ({err.strerror})") from None


def _claim(out: Path) -> DirectoryLock:
    """OUT for this sweep alone, from its first check to its end: the lock OUT/.sweep.lock
    (reacher.run.lock), which the kernel drops however the process ends. A directory the
    claim created goes again if the sweep wrote nothing there."""
    try:
        return DirectoryLock(out, SWEEP_LOCK)
    except LockBusy:
        raise SweepError(f"sweep directory {out}: another sweep is running in it; wait "
                         "for it to end or choose another --out") from None
    except OSError as err:
        raise SweepError(f"sweep directory {out}: cannot be claimed ({err.strerror or err})") from None


def _fit(tuner, stop: StopOnSignals):
    """Tune's fit in a thread of its own, watched from the main thread, which raises
    `Stopped` within 0.1 s of a signal; stopping Ray then ends the trials."""
    box = {}

    def fit():
        try:
            box["results"] = tuner.fit()
        except BaseException as err:  # handed to the main thread
            box["error"] = err

    thread = threading.Thread(target=fit, name="reacher-sweep-tune", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
        stop.check()
    if "error" in box:
        raise box["error"]
    return box["results"]


def _import_tune():
    # The sweep starts and stops Ray itself (`_start_ray`, `ray.shutdown`). A Ray call after
    # the shutdown (Tune's thread winding down once a signal stopped the sweep) would start
    # a second local Ray, whose processes nobody then stops: Ray reads these as it is
    # imported (Tune when it runs), so they are set before.
    os.environ["RAY_ENABLE_AUTO_CONNECT"] = "0"
    os.environ["TUNE_DISABLE_AUTO_INIT"] = "1"
    try:
        from ray import tune
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return tune


def _start_ray(address: str | None, max_concurrent: int | None, trials: int, summary: Summary, log) -> None:
    """Join the cluster at `address` (else at $RAY_ADDRESS), or start a local Ray with a
    CPU per core (or per trial at once, if more); a Ray initialised already is used as
    it is. Without an address, ray.init would join any cluster running on this machine
    (its last `ray start`) and then refuse our CPU count: "local" starts our own."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # The legacy console reporter, which verbose=0 silences: the sweep prints its own lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return
    t0 = time.perf_counter()
    source = "--address"
    if not address and os.environ.get("RAY_ADDRESS"):
        address, source = os.environ["RAY_ADDRESS"], "$RAY_ADDRESS"
    if address:
        _check_reachable(address, source)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except ValueError as err:  # e.g. "Invalid address format": say which setting holds it
            raise SweepError(f"Ray cluster at {address} ({source}): {one_line(err)}") from None
        where = f"Ray cluster at {address}"
    else:
        ray.init(address="local", num_cpus=_local_cpus(max_concurrent),
                 include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        summary.ray_start_s = time.perf_counter() - t0
        where = f"a local Ray ({summary.ray_start_s:.1f} s to start)"
    print(f"running {trials} trials on {where}, {int(ray.cluster_resources().get('CPU', 0))} CPUs", file=log)


def _local_cpus(max_concurrent: int | None) -> int:
    """The CPUs of the local Ray a sweep starts: one per usable core, or per trial at once."""
    return max(cfg.usable_cpus(), max_concurrent or 0)


def _largest_node_cpus() -> int:
    import ray

    return int(max((node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")),
                   default=0))


def _check_trials_fit(spec_path, todo: list[Record], cpus: int, where: str) -> None:
    """A trial asks Ray for a CPU per thread on one node; one asking more than any node has
    is never scheduled, and Tune waits for it silently, forever."""
    for record in todo:
        threads = record.trial.config.threads
        if threads > cpus:
            raise SweepError(f"sweep spec {spec_path}: trial {record.trial.name} asks for threads = {threads}, "
                             f"more CPUs than {where} has ({cpus}); lower threads (0 or 1 share the cores)")


def _check_reachable(address: str, source: str = "--address") -> None:
    """Fail in seconds, not minutes, when nothing listens at a host:port address (Ray
    itself retries for a long time)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # ray://…, auto and the like: Ray's own checks
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise SweepError(f"Ray cluster at {address}: cannot connect ({err.strerror or err}); start one "
                         f"with `ray start --head` or check {source}") from None


def _run_trials(tune, todo: list[Record], out: Path, max_concurrent: int | None, summary: Summary,
                env_modules: tuple[str, ...], stop: StopOnSignals) -> None:
    by_name = {r.trial.name: r for r in todo}
    trainable = tune.with_resources(_train_trial, lambda p: {"cpu": max(1, p["trial"]["threads"])})
    payloads = [{"name": r.trial.name, "run_dir": str(r.trial.run_dir), "threads": r.trial.config.threads,
                 "config": cfg.as_dict(r.trial.config), "env_modules": list(env_modules)} for r in todo]
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(payloads)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=lambda t: t.config["trial"]["name"]),
        run_config=tune.RunConfig(name="tune", storage_path=str(out / ".ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0),
                                  callbacks=[_progress(len(todo))]),
    )
    for result in _fit(tuner, stop):
        record = by_name[result.config["trial"]["name"]]
        metrics = result.metrics or {}
        record.node = metrics.get("node")
        if result.error is not None:  # the worker itself died
            record.error = one_line(result.error)
        elif metrics.get("error"):
            record.error = metrics["error"]
        else:
            record.final = finished_row(record.trial)
    summary.interrupted = any(not r.finished and r.error is None for r in todo)


def _train_trial(params: dict) -> None:
    """A Tune trainable: train one trial in this worker (resuming its checkpoint if any)
    and report where it ran, or its error as one line."""
    import ray
    from ray import tune

    from reacher.envids import import_user_modules
    from reacher.run.training import train

    trial = params["trial"]
    report = {"node": ray.get_runtime_context().get_node_id()}
    try:
        import_user_modules(trial.get("env_modules", ()))  # the modules the user named to the sweep
        config = cfg.from_mapping(trial["config"], source=f"trial {trial['name']}")
        run_dir = Path(trial["run_dir"])
        resume = (run_dir / ckpt.FILENAME).is_file()
        # On resume the spec's values win over the saved config (e.g. more steps).
        overrides = {f.name: getattr(config, f.name) for f in cfg.fields()} if resume else None
        train(config, run_dir, resume=resume, progress=False, overrides=overrides)
    except Exception as err:  # reported in results.csv; the other trials go on
        # reacher's own errors name the thing at fault; anything else is named by its type.
        known = isinstance(err, (ValueError, OSError))
        report["error"] = one_line(err) if known else f"{type(err).__name__}: {one_line(err)}"
    tune.report(report)


def _progress(total: int):
    """A Tune callback printing one line per trial that ends. Defined here because Ray is
    imported only when a sweep runs; it holds no stream, since Tune pickles it."""
    from ray.tune import Callback

    class Progress(Callback):
        def __init__(self):
            self.done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            error = (trial.last_result or {}).get("error")
            self._line(trial, f"failed: {error}" if error else "finished")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._line(trial, "failed (its worker died)")

        def _line(self, trial, what: str) -> None:
            self.done += 1
            print(printable(f"  [{self.done}/{total}] {trial.config['trial']['name']} {what}"), file=sys.stderr,
                  flush=True)

    return Progress()


__all__ = ["INSTALL_HINT", "Record", "Summary", "finished_row", "run_sweep"]
