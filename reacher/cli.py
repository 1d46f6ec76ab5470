"""The `reacher` command's parser and process: train, evaluate, render, inspect, sweep,
export, demo, each handled in `reacher.commands`.

Every `Config` field is a `train` flag (``--hidden-sizes 64,64``, ``--no-twin-critics``),
generated from the dataclass; a ``--config FILE.toml`` sits between the defaults and
the flags. Errors print one ``error: …`` line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from reacher import commands
from reacher import config as cfg
from reacher.commands import config_from_args  # noqa: F401 (the CLI's API: tests, scripts)
from reacher.errors import CliError, RenderError, one_line
from reacher.limits import MAX_SEED

EXIT_USAGE = 2


def run() -> None:
    """The `reacher` command as a process: `main`, then exit without the interpreter's
    teardown. Every file a command writes is complete and fsync'd by then, and tearing
    down torch alone takes about 2 s here (4-5 s with MuJoCo and matplotlib loaded),
    which would make a Ctrl-C or SIGTERM take that long to end the process."""
    warnings.formatwarning = _format_warning
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A library's warning (MuJoCo's, re-emitted as an arm compiles, may quote the file) as
    one line like reacher's own, its control characters escaped."""
    return f"warning: {one_line(message, limit=None)}\n"


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
        print(f"error: {one_line(err, limit=None)}", file=sys.stderr)
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
    return isinstance(err, (ValueError, OSError, CliError, RenderError))


# --- parser -----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error:` line (exit 2), like every other error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {one_line(message, limit=None)} (see `{self.prog} --help`)\n")


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
    train.set_defaults(command="train", handler=commands.cmd_train)

    ev = sub.add_parser("evaluate", parents=[debug, imports], help="evaluate a trained policy deterministically")
    ev.add_argument("run", type=Path, help="run directory or checkpoint file")
    ev.add_argument("--episodes", type=_positive_int("--episodes"), default=100)
    ev.add_argument("--seed", type=_episode_seed, default=None, help="first episode's seed (default 1000000)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--device", default="cpu")
    # Robustness (reacher.task.randomize): the same episodes on perturbed models too.
    ev.add_argument("--randomize", action="store_true",
                    help="also evaluate on perturbed models, the same episodes (ranges: --config's, else "
                         "mass and gain ±20 %%, damping and friction ±30 %%, obs noise 0.005, delay 0-1 steps)")
    ev.add_argument("--config", type=Path, help="TOML file whose randomize_*, obs_noise_std and "
                                                "action_delay_steps give --randomize's ranges (implies it)")
    ev.set_defaults(command="evaluate", handler=commands.cmd_evaluate)

    rd = sub.add_parser("render", parents=[debug, imports], help="render rollouts of a trained policy to MP4 or GIF")
    rd.add_argument("run", type=Path, help="run directory or checkpoint file")
    rd.add_argument("--episodes", type=_positive_int("--episodes"), default=3)
    rd.add_argument("--out", type=Path, default=None, help="output .mp4 or .gif (default RUN/rollout.mp4)")
    rd.add_argument("--camera", default=None, help="camera name (built-in arms: top, angled)")
    rd.add_argument("--size", type=_size, default=(480, 480), help="frame size WxH (default 480x480)")
    rd.add_argument("--seed", type=_episode_seed, default=None, help="first episode's seed")
    rd.set_defaults(command="render", handler=commands.cmd_render)

    ins = sub.add_parser("inspect", parents=[debug], help="show what reacher finds in an arm file and what will hamper learning",
                         description="Load an arm as `reacher train` would; print its joints, actuators, timing, "
                                     "workspace and gravity, what reacher adds, and warnings with their fixes.")
    ins.add_argument("arm", help="built-in arm (two_link, three_link) or path to an MJCF file")
    ins.add_argument("--end-effector", default=cfg.Config.end_effector,
                     help=f"site or body that must reach the target (default {cfg.Config.end_effector!r})")
    ins.add_argument("--config", type=Path, help="TOML file whose timing fields (control_period_s, episode_s, "
                                                 "frame_skip, max_episode_steps) to use")
    ins.add_argument("--json", action="store_true", help="print one JSON object")
    ins.set_defaults(command="inspect", handler=commands.cmd_inspect)

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
    sw.set_defaults(command="sweep", handler=commands.cmd_sweep)

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
    ex.set_defaults(command="export", handler=commands.cmd_export)

    demo = sub.add_parser("demo", parents=[debug], help=f"train an arm (default the two-link one) and write "
                                                       f"its video, GIF and learning curve ({commands.DEMO_VIDEO}, ...)")
    demo.add_argument("--arm", default=None, help="built-in arm or MJCF file (default two_link); the run goes "
                                                   "to runs/demo-NAME, the videos to videos/NAME.mp4 and .gif")
    demo.add_argument("--end-effector", default=None, help="its end effector (site or body; default: the "
                                                            "built-in arms' fingertip)")
    demo.add_argument("--steps", type=_positive_int("--steps"), default=None, help=argparse.SUPPRESS)
    demo.set_defaults(command="demo", handler=commands.cmd_demo)
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


def _episode_seed(text: str) -> int:
    """The first episode's seed: Gymnasium takes none below 0, and numpy none of 2**64."""
    try:
        value = cfg.coerce("--seed", text, int)
    except cfg.ConfigError:
        value = None
    if value is None or not 0 <= value < MAX_SEED:
        raise argparse.ArgumentTypeError(f"--seed must be an integer from 0 to 2**62 - 1, got {text!r}")
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must be WxH, e.g. 640x480, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"--size must be positive, got {text!r}")
    return width, height


if __name__ == "__main__":
    sys.exit(main())
