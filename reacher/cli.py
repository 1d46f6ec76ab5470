"""The `reacher` command: train, evaluate, render, inspect, sweep, export, demo; train,
evaluate, render and demo are a thin layer on `reacher.api`.

Every `Config` field is a `train` flag (``--hidden-sizes 64,64``, ``--no-twin-critics``),
generated from the dataclass; a ``--config FILE.toml`` sits between the defaults and
the flags. Errors print one ``error: …`` line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from reacher import api
from reacher import config as cfg

EXIT_USAGE = 2
DEMO_RUN = Path("runs") / "demo-two_link"
DEMO_VIDEO = Path("videos") / "two_link.mp4"
DEMO_GIF = Path("videos") / "two_link.gif"  # what the README shows inline
DEMO_CURVE = Path("videos") / "two_link_curve.png"


class CliError(Exception):
    """A user-facing error raised by the CLI itself."""


def run() -> None:
    """The `reacher` command as a process: `main`, then exit without the interpreter's
    teardown. Every file a command writes is complete and fsync'd by then, and tearing
    down torch alone takes about 2 s here (4-5 s with MuJoCo and matplotlib loaded),
    which would make a Ctrl-C or SIGTERM take that long to end the process."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as err:  # one line for the user; the traceback only on request
        if _caused_by_interrupt(err) and not args.debug:
            _interrupted()  # a Ctrl-C while torch or MuJoCo was importing
        if args.debug or not _is_user_error(err):
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _interrupted() -> None:
    """A second Ctrl-C during training (or one outside it): stop now. The finally
    blocks and temp-file cleanups have run on the way here; interpreter teardown
    after an interrupt raised mid-call sometimes aborted with "PyThreadState_Get:
    GIL is released" (exit -6) instead of 130, so skip it."""
    print("error: interrupted", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _caused_by_interrupt(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt lies behind `err`: an extension module interrupted
    while it initialises raises ImportError("initialization failed") from it."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _is_user_error(err: Exception) -> bool:
    from reacher.sim.rendering import RenderError

    return isinstance(err, (ValueError, OSError, CliError, RenderError))


# --- parser -----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line (exit 2), like every other error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reacher", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.set_defaults(command=None)
    sub = parser.add_subparsers(title="commands")
    # --debug is accepted after the command too; SUPPRESS keeps the top-level value.
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
    # An env id read from a file never imports a module by itself (reacher.envids): the
    # user names the modules they trust, as they do by typing --env module:Id.
    imports = _Parser(add_help=False)
    imports.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                         help="import MODULE first (it may register Gymnasium envs); needed for a run "
                              "or file whose env is 'MODULE:Id'; repeatable")

    train = sub.add_parser("train", parents=[debug, imports], help="train an arm (or a Gymnasium env) with DDPG",
                           description="Train with DDPG. Flags override --config, which overrides defaults.")
    train.add_argument("--run-dir", type=Path, help="where the run is written (default runs/<arm>-seed<seed>)")
    train.add_argument("--config", type=Path, help="TOML file of config fields")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    add_config_flags(train)
    train.set_defaults(command="train", handler=cmd_train)

    ev = sub.add_parser("evaluate", parents=[debug, imports], help="evaluate a trained policy deterministically")
    ev.add_argument("run", type=Path, help="run directory or checkpoint file")
    ev.add_argument("--episodes", type=_positive_int("--episodes"), default=100)
    ev.add_argument("--seed", type=int, default=None, help="first episode's seed (default 1000000)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--device", default="cpu")
    # Robustness (reacher.task.randomize): the same episodes on perturbed models too.
    ev.add_argument("--randomize", action="store_true",
                    help="also evaluate on perturbed models, the same episodes (ranges: --config's, else "
                         "mass and gain ±20 %%, damping and friction ±30 %%, obs noise 0.005, delay 0-1 steps)")
    ev.add_argument("--config", type=Path, help="TOML file whose randomize_*, obs_noise_std and "
                                                "action_delay_steps give --randomize's ranges (implies it)")
    ev.set_defaults(command="evaluate", handler=cmd_evaluate)

    rd = sub.add_parser("render", parents=[debug, imports], help="render rollouts of a trained policy to MP4 or GIF")
    rd.add_argument("run", type=Path, help="run directory or checkpoint file")
    rd.add_argument("--episodes", type=_positive_int("--episodes"), default=3)
    rd.add_argument("--out", type=Path, default=None, help="output .mp4 or .gif (default RUN/rollout.mp4)")
    rd.add_argument("--camera", default=None, help="camera name (built-in arms: top, angled)")
    rd.add_argument("--size", type=_size, default=(480, 480), help="frame size WxH (default 480x480)")
    rd.add_argument("--seed", type=int, default=None, help="first episode's seed")
    rd.set_defaults(command="render", handler=cmd_render)

    ins = sub.add_parser("inspect", parents=[debug], help="show what reacher finds in an arm file and what will hamper learning",
                         description="Load an arm as `reacher train` would; print its joints, actuators, timing, "
                                     "workspace and gravity, what reacher adds, and warnings with their fixes.")
    ins.add_argument("arm", help="built-in arm (two_link, three_link) or path to an MJCF file")
    ins.add_argument("--end-effector", default=cfg.Config.end_effector,
                     help=f"site or body that must reach the target (default {cfg.Config.end_effector!r})")
    ins.add_argument("--config", type=Path, help="TOML file whose timing fields (control_period_s, episode_s, "
                                                 "frame_skip, max_episode_steps) to use")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.set_defaults(command="inspect", handler=cmd_inspect)

    sw = sub.add_parser("sweep", parents=[debug, imports], help="train a grid of settings × seeds in parallel on Ray Tune",
                        description="Train every grid point × seed of SPEC.toml as Ray Tune trials; "
                                    "writes OUT/results.csv, best.toml, summary.png and a run dir per trial.")
    sw.add_argument("spec", type=Path, metavar="SPEC.toml", help="TOML: config keys (the base), seeds = [...], and a [grid] table")
    sw.add_argument("--out", type=Path, required=True, metavar="DIR", help="sweep directory")
    sw.add_argument("--resume", action="store_true", help="run only the trials of --out not finished yet")
    sw.add_argument("--address", default=None, metavar="ADDR", help="join a running Ray cluster (`ray start`) instead of "
                                                    "starting one here, e.g. 10.0.0.5:6379")
    sw.add_argument("--max-concurrent", type=_positive_int("--max-concurrent"), default=None, metavar="N",
                    help="trials at once (default: one per core)")
    sw.set_defaults(command="sweep", handler=cmd_sweep)

    ex = sub.add_parser("export", parents=[debug], help="export a trained policy to ONNX, with a JSON sidecar, "
                                                        "to run without reacher",
                        description="Write the actor (observation normaliser folded in) to FILE.onnx and what "
                                    "a controller needs to run it (observation layout, action scaling, "
                                    "timing, arm) to FILE.json beside it. Needs onnx and onnxruntime: "
                                    "pip install 'reacher[export]'.")
    ex.add_argument("run", type=Path, help="run directory or checkpoint file")
    ex.add_argument("--out", type=Path, default=None, metavar="FILE.onnx",
                    help="the ONNX file (default RUN/policy.onnx); its sidecar FILE.json goes beside it")
    ex.add_argument("--force", action="store_true", help="replace FILE.onnx and FILE.json if they exist "
                                                          "(without it, existing files are refused)")
    ex.set_defaults(command="export", handler=cmd_export)

    demo = sub.add_parser("demo", parents=[debug], help=f"train an arm (default the two-link one) and write "
                                                       f"its video, GIF and learning curve ({DEMO_VIDEO}, ...)")
    demo.add_argument("--arm", default=None, help="built-in arm or MJCF file (default two_link); the run goes "
                                                   "to runs/demo-NAME, the videos to videos/NAME.mp4 and .gif")
    demo.add_argument("--end-effector", default=None, help="its end effector (site or body; default: the "
                                                            "built-in arms' fingertip)")
    demo.add_argument("--steps", type=_positive_int("--steps"), default=None, help=argparse.SUPPRESS)
    demo.set_defaults(command="demo", handler=cmd_demo)
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field; unset flags stay out of the namespace."""
    group = parser.add_argument_group("config (see `reacher train --help`; defaults shown)")
    for f in cfg.fields():
        kind = cfg.field_type(f)
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{f.metadata['help']} (default: {shown!r})" if shown != "" else f.metadata["help"]
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, metavar=_metavar(kind),
                               type=_converter(f.name, kind), help=help_text)


def _converter(name: str, kind):
    def convert(text: str):
        try:
            return cfg.coerce(name, text, kind)
        except cfg.ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = name
    return convert


def _metavar(kind) -> str:
    return {int: "N", float: "X", str: "TEXT"}.get(kind, "N,N")


def _positive_int(flag: str):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {text!r}")
        return value
    return convert


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WxH, e.g. 640x480, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"--size must be positive, got {text!r}")
    return width, height


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


# --- commands ---------------------------------------------------------------------------

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
        print(f"stopped by {outcome.interrupted_by} at step {outcome.env_steps:,}: checkpoint saved in "
              f"{run_dir}; continue with: reacher train --run-dir {run_dir} --resume", file=sys.stderr)
        return 130 if outcome.interrupted_by == "SIGINT" else 143
    if not args.quiet:
        print(f"trained {outcome.env_steps:,} steps in {outcome.wall_time:.1f} s "
              f"({outcome.describe_stop(config)}); run saved in {run_dir}")
        if outcome.evaluation is not None:
            print(_table(outcome.evaluation))
    return 0


def cmd_evaluate(args) -> int:
    _import_modules(args)
    _check_device(args.device)
    if args.randomize or args.config:
        return _evaluate_randomized(args)
    policy = api.load_policy(args.run, device=args.device)
    result = api.evaluate_policy(policy, args.episodes, **_seed(args))
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        meta = policy.checkpoint.metadata
        what = meta.get("env") or meta.get("arm")
        print(f"{policy.checkpoint.path}  ({what}, {meta.get('env_steps', 0):,} training steps)")
        print(_table(result))
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
        print(json.dumps({**result.nominal.as_dict(), "perturbed": result.perturbed.as_dict(),
                          "ranges": ranges.as_dict()}))
        return 0
    meta = policy.checkpoint.metadata
    print(f"{policy.checkpoint.path}  ({meta.get('env') or meta.get('arm')}, "
          f"{meta.get('env_steps', 0):,} training steps)")
    print(f"nominal model:\n{_table(result.nominal)}")
    shown = ", ".join(f"{k} {v:g}" for k, v in ranges.as_dict().items() if v)
    print(f"perturbed models ({shown}):\n{_table(result.perturbed)}")
    return 0


def cmd_render(args) -> int:
    from reacher.run.checkpoint import resolve

    _import_modules(args)
    out = args.out or resolve(args.run).parent / "rollout.mp4"
    info = api.render_policy(args.run, out, args.episodes, camera=args.camera, size=args.size, **_seed(args))
    print(f"wrote {info.path} ({info.frames} frames, {info.fps:g} fps, {info.episodes} episodes)")
    return 0


def _seed(args) -> dict:
    return {} if args.seed is None else {"seed": args.seed}


def cmd_inspect(args) -> int:
    from reacher.tools.inspection import format_report, inspect_arm

    given = cfg.read_toml(args.config) if args.config else {}
    config = cfg.Config().replace(**given) if given else cfg.Config()
    report = inspect_arm(args.arm, args.end_effector, config.control_period_s, config.episode_s,
                         config.frame_skip or None, config.max_episode_steps or None)
    print(json.dumps(report.as_dict()) if args.json else format_report(report))
    return 0


def cmd_sweep(args) -> int:
    from reacher.tools.sweep import run_sweep

    _import_modules(args)
    summary = run_sweep(args.spec, args.out, resume=args.resume, address=args.address,
                        max_concurrent=args.max_concurrent, env_modules=args.imports)
    if summary.interrupted:
        print(f"stopped: {sum(r.finished for r in summary.records)} of {len(summary.records)} trials finished; "
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
        print(f"{len(summary.failed)} of {len(summary.records)} trials failed; their errors are in "
              f"{summary.out / 'results.csv'}", file=sys.stderr)
        return 1
    return 0


def cmd_export(args) -> int:
    from reacher.run.checkpoint import resolve
    from reacher.tools.export import export_policy

    out = args.out or resolve(args.run).parent / "policy.onnx"
    done = export_policy(args.run, out, overwrite=args.force)
    print(f"wrote {done.onnx} and {done.sidecar} (onnxruntime matches the torch policy within "
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
        print(f"using the finished demo run in {run}")
    else:
        resume = saved is not None
        budget = f"{config.steps:,} steps" if config.steps else \
            f"until {100 * config.success_target:g} % of evaluation episodes succeed"
        print(f"training the {_arm_words(config.arm)} ({budget}) in {run}" + (" (resuming)" if resume else ""))
        outcome = api.learn(config, run, resume=resume, steps=config.steps)
        if outcome.interrupted_by:
            print(f"stopped by {outcome.interrupted_by}; run the demo again to continue", file=sys.stderr)
            return 130 if outcome.interrupted_by == "SIGINT" else 143
        print(f"trained {outcome.env_steps:,} steps in {outcome.wall_time:.1f} s "
              f"({outcome.describe_stop(config)})")
        print(_table(outcome.evaluation))
    policy = api.load_policy(run)
    info = api.render_policy(policy, video, episodes=4, camera="angled")
    api.render_policy(policy, gif, episodes=2, camera="angled", size=(320, 320))
    curve = run / "curve.png"
    if curve.exists():
        shutil.copyfile(curve, curve_png)
    print(f"wrote {info.path}, {gif} and {curve_png}")
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
    except ckpt.CheckpointError:
        return None


def _check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise CliError(f"device '{device}' requested but no CUDA GPU is available to torch")


def _table(result) -> str:
    rows = [("episodes", f"{result.episodes}")]
    if result.success_rate is not None:
        rows.append(("success rate", f"{100 * result.success_rate:.1f} %"))
    if result.mean_final_distance is not None:
        rows.append(("mean final distance", f"{100 * result.mean_final_distance:.2f} cm"))
    rows.append(("mean return", f"{result.mean_return:.2f}"))
    return "\n".join(f"  {name:<20} {value}" for name, value in rows)


if __name__ == "__main__":
    sys.exit(main())
