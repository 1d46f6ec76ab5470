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
import time
from dataclasses import dataclass
from pathlib import Path

from reacher import checkpoint as ckpt
from reacher import config as cfg
from reacher.errors import one_line
from reacher.files import write_text
from reacher.metrics import read_metrics
from reacher.sweep_spec import Spec, Trial, load_spec

INSTALL_HINT = "reacher sweep needs Ray Tune, an optional extra: pip install 'reacher[sweep]'"


class SweepError(ValueError):
    """A sweep that cannot run as asked; one line for the user."""


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
    interrupted: bool = False
    ray_start_s: float | None = None  # None when the sweep joined a Ray that was running
    wall_s: float = 0.0
    best: dict | None = None  # set by sweep_report: the best grid point and its scores

    @property
    def failed(self) -> list[Record]:
        return [r for r in self.records if r.error is not None]


def finished_row(trial: Trial) -> dict | None:
    """The final metrics row of a trial whose run is complete, else None."""
    metrics = trial.run_dir / "metrics.csv"
    if not metrics.is_file() or not (trial.run_dir / ckpt.FILENAME).is_file():
        return None
    try:
        meta = ckpt.load(trial.run_dir).metadata
        steps = int(meta["env_steps"])
        rows = read_metrics(metrics)
    except (ckpt.CheckpointError, KeyError, ValueError, OSError):
        return None
    # Training marks its last checkpoint finished once the final evaluation is written
    # (whether it stopped on success, at its cap or after exactly `steps`); a spec that
    # now asks for more steps than were run reopens the trial.
    if not meta.get("finished") or not rows or steps < trial.config.steps:
        return None
    return rows[-1]


def run_sweep(spec_path: str | Path, out: str | Path, resume: bool = False, address: str | None = None,
              max_concurrent: int | None = None, log=None) -> Summary:
    """Run (or resume) a sweep and write OUT/results.csv, best.toml and summary.png; progress
    goes to `log` (default stderr), the final table to stdout."""
    from reacher import sweep_report

    log = log or sys.stderr
    start = time.perf_counter()
    spec = load_spec(spec_path)
    out = Path(out).expanduser().resolve()
    _check_out(out, resume)
    tune = _import_tune()
    records = [Record(t, finished_row(t)) for t in spec.trials(out)]
    todo = [r for r in records if not r.finished]
    if resume and len(todo) < len(records):
        print(f"resuming: {len(records) - len(todo)} of {len(records)} trials already finished", file=log)
    summary = Summary(spec, out, records)
    # Ray first: a sweep that cannot start leaves no directory that would then need --resume.
    started_here = _start_ray(address, max_concurrent, len(todo), summary, log) if todo else False
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "spec.toml", Path(spec_path).read_text(encoding="utf-8"))
        if todo:
            _run_trials(tune, todo, out, max_concurrent, summary)
    finally:
        if started_here:
            import ray

            ray.shutdown()
    summary.wall_s = time.perf_counter() - start
    sweep_report.write_all(summary)
    print(sweep_report.table(summary))
    return summary


def _check_out(out: Path, resume: bool) -> None:
    holds_sweep = (out / "spec.toml").is_file() or (out / "results.csv").is_file()
    if resume and not holds_sweep:
        raise SweepError(f"sweep directory {out}: holds no sweep, nothing to resume")
    if not resume and (holds_sweep or (out / "runs").exists()):
        raise SweepError(f"sweep directory {out}: already holds a sweep; pass --resume to continue "
                         "it or choose another --out")


def _import_tune():
    try:
        from ray import tune
    except ImportError:
        raise SweepError(INSTALL_HINT) from None
    return tune


def _start_ray(address: str | None, max_concurrent: int | None, trials: int, summary: Summary, log) -> bool:
    """Join the cluster at `address`, or start a local Ray with a CPU per core (or per
    trial at once, if more); returns whether it started one (an initialised Ray is used)."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # The legacy console reporter, which verbose=0 silences: the sweep prints its own lines.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return False
    t0 = time.perf_counter()
    if address:
        _check_reachable(address)
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        where = f"Ray cluster at {address}"
    else:
        ray.init(num_cpus=max(os.cpu_count() or 1, max_concurrent or 0), include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
        summary.ray_start_s = time.perf_counter() - t0
        where = f"a local Ray ({summary.ray_start_s:.1f} s to start)"
    print(f"running {trials} trials on {where}, {int(ray.cluster_resources().get('CPU', 0))} CPUs", file=log)
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at a host:port address (Ray
    itself retries for a long time)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return  # ray://…, auto and the like: Ray's own checks
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise SweepError(f"Ray cluster at {address}: cannot connect ({err.strerror or err}); start one "
                         "with `ray start --head` or check --address") from None


def _run_trials(tune, todo: list[Record], out: Path, max_concurrent: int | None, summary: Summary) -> None:
    by_name = {r.trial.name: r for r in todo}
    trainable = tune.with_resources(_train_trial, lambda p: {"cpu": max(1, p["trial"]["threads"])})
    payloads = [{"name": r.trial.name, "run_dir": str(r.trial.run_dir), "threads": r.trial.config.threads,
                 "config": cfg.as_dict(r.trial.config)} for r in todo]
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(payloads)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=lambda t: t.config["trial"]["name"]),
        run_config=tune.RunConfig(name="tune", storage_path=str(out / ".ray"), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0),
                                  callbacks=[_progress(len(todo))]),
    )
    results = tuner.fit()
    for result in results:
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

    from reacher.train import train

    trial = params["trial"]
    report = {"node": ray.get_runtime_context().get_node_id()}
    try:
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
            print(f"  [{self.done}/{total}] {trial.config['trial']['name']} {what}", file=sys.stderr, flush=True)

    return Progress()


__all__ = ["INSTALL_HINT", "Record", "Summary", "SweepError", "finished_row", "run_sweep"]
