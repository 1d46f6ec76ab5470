"""What each `reacher` command does once its flags are parsed: train, evaluate, render and
demo are a thin layer on `reacher.api`; inspect, sweep and export call their tools."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from reacher import api
from reacher import config as cfg
from reacher.errors import CheckpointError, CliError, printable

DEMO_RUN = Path("runs") / "demo-two_link"
DEMO_VIDEO = Path("videos") / "two_link.mp4"
DEMO_GIF = Path("videos") / "two_link.gif"  # what the README shows inline
DEMO_CURVE = Path("videos") / "two_link_curve.png"


def say(text, file=None) -> None:
    """Print `text` with each line's control characters escaped (`reacher.errors.printable`):
    what a command prints holds text read from files (a checkpoint's arm, an arm's names)."""
    print("\n".join(printable(line) for line in str(text).split("\n")), file=file or sys.stdout)


def config_from_args(args: argparse.Namespace) -> tuple[cfg.Config, dict]:
    """Defaults < --config file < flags. Returns the config and every value given in the
    file or as a flag (on --resume those override the run's saved config)."""
    given = cfg.read_toml(args.config) if args.config else {}
    base = cfg.Config().replace(**given) if given else cfg.Config()
    flags = {f.name: getattr(args, f.name) for f in cfg.fields() if hasattr(args, f.name)}
    try:
        return base.replace(**flags), {**given, **flags}
    except cfg.ConfigError as err:
        raise cfg.ConfigError(f"command line: {err}") from None


def _import_modules(args) -> None:
    """Import what the user named, before any file is read: --import, and the module of
    a typed --env module:Id (so a missing one is one error line)."""
    from reacher.envids import import_typed_env, import_user_modules

    import_user_modules(args.imports)
    if getattr(args, "env", ""):
        import_typed_env(args.env)


def cmd_train(args) -> int:
    _import_modules(args)
    config, overrides = config_from_args(args)
    _check_device(config.device)
    outcome = api.learn(config, args.run_dir, resume=args.resume, progress=not args.quiet, **overrides)
    run_dir = outcome.run_dir
    if outcome.interrupted_by:
        say(f"stopped by {outcome.interrupted_by} at step {outcome.env_steps:,}: checkpoint saved in "
              f"{run_dir}; continue with: reacher train --run-dir {run_dir} --resume", file=sys.stderr)
        return 130 if outcome.interrupted_by == "SIGINT" else 143
    if not args.quiet:
        say(f"trained {outcome.env_steps:,} steps in {outcome.wall_time:.1f} s "
              f"({outcome.describe_stop(config)}); run saved in {run_dir}")
        if outcome.evaluation is not None:
            say(_table(outcome.evaluation))
    return 0


def cmd_evaluate(args) -> int:
    _import_modules(args)
    _check_device(args.device)
    if args.randomize or args.config:
        return _evaluate_randomized(args)
    policy = api.load_policy(args.run, device=args.device)
    result = api.evaluate_policy(policy, args.episodes, **_seed(args))
    if args.json:
        say(json.dumps(result.as_dict()))
    else:
        meta = policy.checkpoint.metadata
        what = meta.get("env") or meta.get("arm")
        say(f"{policy.checkpoint.path}  ({what}, {meta.get('env_steps', 0):,} training steps)")
        say(_table(result))
    return 0


def _evaluate_randomized(args) -> int:
    from reacher.run import robustness
    from reacher.task import randomize

    ranges = randomize.DEFAULT_RANGES
    if args.config:
        given = {k: v for k, v in cfg.read_toml(args.config).items() if k in cfg.RANDOMISATION_FIELDS}
        ranges = randomize.Ranges(**given)
        if not ranges.any():
            raise CliError(f"config file {args.config}: sets no randomisation range "
                           f"({', '.join(cfg.RANDOMISATION_FIELDS)})")
    policy = api.load_policy(args.run, device=args.device)
    result = robustness.evaluate_randomized(policy, ranges, args.episodes, **_seed(args))
    if args.json:  # the nominal figures stay the top-level keys plain `evaluate` prints
        say(json.dumps({**result.nominal.as_dict(), "perturbed": result.perturbed.as_dict(),
                          "ranges": ranges.as_dict()}))
        return 0
    meta = policy.checkpoint.metadata
    say(f"{policy.checkpoint.path}  ({meta.get('env') or meta.get('arm')}, "
          f"{meta.get('env_steps', 0):,} training steps)")
    say(f"nominal model:\n{_table(result.nominal)}")
    shown = ", ".join(f"{k} {v:g}" for k, v in ranges.as_dict().items() if v)
    say(f"perturbed models ({shown}):\n{_table(result.perturbed)}")
    return 0


def cmd_render(args) -> int:
    from reacher.run.checkpoint import resolve

    _import_modules(args)
    out = args.out or resolve(args.run).parent / "rollout.mp4"
    info = api.render_policy(args.run, out, args.episodes, camera=args.camera, size=args.size, **_seed(args))
    say(f"wrote {info.path} ({info.frames} frames, {info.fps:g} fps, {info.episodes} episodes)")
    return 0


def _seed(args) -> dict:
    return {} if args.seed is None else {"seed": args.seed}


def cmd_inspect(args) -> int:
    from reacher.tools.inspection import format_report, inspect_arm

    given = cfg.read_toml(args.config) if args.config else {}
    config = cfg.Config().replace(**given) if given else cfg.Config()
    report = inspect_arm(args.arm, args.end_effector, config.control_period_s, config.episode_s,
                         config.frame_skip or None, config.max_episode_steps or None)
    say(json.dumps(report.as_dict()) if args.json else format_report(report))
    return 0


def cmd_sweep(args) -> int:
    from reacher.tools.sweep import run_sweep

    _import_modules(args)
    summary = run_sweep(args.spec, args.out, resume=args.resume, address=args.address,
                        max_concurrent=args.max_concurrent, env_modules=args.imports)
    if summary.interrupted:
        say(f"stopped: {sum(r.finished for r in summary.records)} of {len(summary.records)} trials finished; "
              f"continue with: reacher sweep {args.spec} --out {args.out} --resume", file=sys.stderr)
        code = 143 if summary.stopped_by == "SIGTERM" else 130
        if summary.stopped_by:
            # Tune's thread may still be winding down against the Ray just stopped; the
            # interpreter's teardown would wait for it or abort in it.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    if summary.failed:
        say(f"{len(summary.failed)} of {len(summary.records)} trials failed; their errors are in "
              f"{summary.out / 'results.csv'}", file=sys.stderr)
        return 1
    return 0


def cmd_export(args) -> int:
    from reacher.run.checkpoint import resolve
    from reacher.tools.export import export_policy

    out = args.out or resolve(args.run).parent / "policy.onnx"
    done = export_policy(args.run, out, overwrite=args.force)
    say(f"wrote {done.onnx} and {done.sidecar} (onnxruntime matches the torch policy within "
          f"{done.max_difference:.1g} on {done.checked} observations)")
    return 0


def cmd_demo(args) -> int:
    settings = {"steps": args.steps} if args.steps is not None else {}
    if args.arm is not None:
        settings["arm"] = args.arm
    if args.end_effector is not None:
        settings["end_effector"] = args.end_effector
    config = cfg.Config(**settings)
    run, video, gif, curve_png = _demo_paths(config.arm)
    saved = _demo_state(run)
    if saved is not None and not _same_arm(saved.get("config", {}), config):
        raise CliError(f"{run} holds a demo of another arm or end effector "
                       f"({saved['config'].get('arm')}, {saved['config'].get('end_effector')}); remove it first")
    if saved is not None and saved.get("finished") and saved.get("config", {}).get("steps") == config.steps:
        say(f"using the finished demo run in {run}")
    else:
        resume = saved is not None
        budget = f"{config.steps:,} steps" if config.steps else \
            f"until {100 * config.success_target:g} % of evaluation episodes succeed"
        say(f"training the {_arm_words(config.arm)} ({budget}) in {run}" + (" (resuming)" if resume else ""))
        outcome = api.learn(config, run, resume=resume, steps=config.steps)
        if outcome.interrupted_by:
            say(f"stopped by {outcome.interrupted_by}; run the demo again to continue", file=sys.stderr)
            return 130 if outcome.interrupted_by == "SIGINT" else 143
        say(f"trained {outcome.env_steps:,} steps in {outcome.wall_time:.1f} s "
              f"({outcome.describe_stop(config)})")
        say(_table(outcome.evaluation))
    policy = api.load_policy(run)
    info = api.render_policy(policy, video, episodes=4, camera="angled")
    api.render_policy(policy, gif, episodes=2, camera="angled", size=(320, 320))
    curve = run / "curve.png"
    if curve.exists():
        shutil.copyfile(curve, curve_png)
    say(f"wrote {info.path}, {gif} and {curve_png}")
    return 0


def _demo_paths(arm: str) -> tuple[Path, Path, Path, Path]:
    """The demo's run directory, video, GIF and learning-curve image for `arm`; the
    two-link arm's are the ones `make demo` has always written."""
    if arm == cfg.Config().arm:
        return DEMO_RUN, DEMO_VIDEO, DEMO_GIF, DEMO_CURVE
    name = Path(arm).stem
    return (Path("runs") / f"demo-{name}", Path("videos") / f"{name}.mp4", Path("videos") / f"{name}.gif",
            Path("videos") / f"{name}_curve.png")


def _same_arm(saved: dict, config: cfg.Config) -> bool:
    """Whether a saved demo run trained the arm and end effector asked for (two files
    with one name would share a run directory)."""
    from reacher.sim.arm import resolve_arm_path

    try:
        same_file = Path(saved.get("arm", "")).resolve() == resolve_arm_path(config.arm).resolve()
    except (ValueError, OSError):
        same_file = saved.get("arm") == config.arm
    return same_file and saved.get("end_effector", config.end_effector) == config.end_effector


def _arm_words(arm: str) -> str:
    return "two-link arm" if arm == cfg.Config().arm else f"arm {arm}"


def _demo_state(run_dir: Path) -> dict | None:
    """The demo run's checkpoint metadata, or None when there is no usable one."""
    from reacher.run import checkpoint as ckpt

    if not (run_dir / ckpt.FILENAME).is_file():
        return None
    try:
        return ckpt.load(run_dir).metadata
    except CheckpointError:
        return None


def _check_device(device: str) -> None:
    from reacher.run.policy import check_device

    check_device(device)


def _table(result) -> str:
    rows = [("episodes", f"{result.episodes}")]
    if result.success_rate is not None:
        rows.append(("success rate", f"{100 * result.success_rate:.1f} %"))
    if result.mean_final_distance is not None:
        rows.append(("mean final distance", f"{100 * result.mean_final_distance:.2f} cm"))
    rows.append(("mean return", f"{result.mean_return:.2f}"))
    return "\n".join(f"  {name:<20} {value}" for name, value in rows)
