"""reacher from Python: build a config, train, load the trained policy, evaluate, render.

    import reacher

    config = reacher.Config(arm="two_link", seed=1)
    result = reacher.learn(config, "runs/mine")        # trains; Ctrl-C saves a checkpoint
    policy = reacher.load_policy(result.run_dir)        # observation -> action
    print(reacher.evaluate_policy(policy, episodes=100).success_rate)
    reacher.render_policy(policy, "reach.mp4")

These are the package's top-level names (``import reacher`` loads them, and torch, only
when first used). The ``reacher`` command is a thin layer on them; each ``reacher``
subcommand is one of these calls plus printing.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from reacher.config import Config
from reacher.run.evaluation import EVAL_SEED

if TYPE_CHECKING:  # the modules behind them import torch; the CLI's --help should not wait
    import gymnasium as gym

    from reacher.run.evaluation import Evaluation
    from reacher.run.policy import TrainedPolicy
    from reacher.run.training import Outcome
    from reacher.tools.video import VideoInfo

Policy = Callable[[np.ndarray], np.ndarray]


def learn(config: Config | None = None, run_dir: str | Path | None = None, *, resume: bool = False,
          progress: bool = True, **fields) -> Outcome:
    """Train a policy and return the `Outcome` (final ``evaluation``, ``env_steps``,
    ``wall_time``, ``run_dir``; ``interrupted_by`` when Ctrl-C or SIGTERM stopped it,
    with a checkpoint saved).

    ``config`` defaults to ``Config()``; keyword ``fields`` change it (``learn(steps=5000)``).
    ``run_dir`` defaults to ``runs/<arm>-seed<seed>`` and must not hold a run yet, unless
    ``resume=True``: then the run there continues from its checkpoint with its saved
    config, changed by ``fields`` only (``learn(run_dir=d, resume=True, steps=40000)``).
    ``progress`` prints a line per evaluation (and a bar on a terminal) to stderr."""
    from reacher.run.training import default_run_dir, train

    config = config if config is not None else Config()
    if fields:
        config = config.replace(**fields)
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    return train(config, run_dir, resume=resume, progress=progress, overrides=fields or None)


def load_policy(run: str | Path, device: str = "cpu", env_modules: tuple[str, ...] = ()) -> TrainedPolicy:
    """The trained policy of a run directory or checkpoint file: call it on an observation
    (flat or goal Dict, one or a batch) for the deterministic action; ``.make_env()``
    builds the env it was trained on; ``.config`` is the run's config. A run on a
    ``"module:Id"`` env needs its module named in ``env_modules`` (or imported first):
    an id read from a file never imports a module by itself."""
    from reacher.run.policy import load_policy as load

    return load(run, device=device, env_modules=env_modules)


def evaluate_policy(policy: TrainedPolicy | str | Path | Policy, episodes: int = 100, *,
                    seed: int = EVAL_SEED, env: gym.Env | None = None) -> Evaluation:
    """Run `policy` deterministically for `episodes` episodes, episode i from
    ``env.reset(seed=seed + i)``, and return the `Evaluation` (``success_rate``,
    ``mean_final_distance`` in m, ``mean_return``, ``episodes``).

    ``policy`` is a loaded policy, a run directory or checkpoint, or any callable from
    observation to action together with the ``env`` to run it in (by default the env
    the loaded policy was trained on)."""
    from reacher.run.evaluation import evaluate

    _check_episodes(episodes)
    policy = _loaded(policy)
    with _env_for(policy, env) as run_env:
        return evaluate(policy, run_env, episodes, seed)


def render_policy(policy: TrainedPolicy | str | Path | Policy, out: str | Path, episodes: int = 3, *,
                  seed: int = EVAL_SEED, camera: str | None = None, size: tuple[int, int] = (480, 480),
                  env: gym.Env | None = None, **options) -> VideoInfo:
    """Render `episodes` deterministic episodes of `policy` to `out` (``.mp4`` or ``.gif``)
    and return the `VideoInfo`. ``policy`` and ``env`` are as for `evaluate_policy`;
    ``camera`` (``top``, ``angled`` on the built-in arms) and ``size`` (width, height)
    frame it, and ``options`` go to `reacher.tools.video.render_video` (``fps``,
    ``trail_length``, ``hold_s``)."""
    from reacher.tools.video import render_video

    _check_episodes(episodes)
    policy = _loaded(policy)
    with _env_for(policy, env) as run_env:
        return render_video(policy, run_env, out, episodes, seed, camera, size, **options)


def _loaded(policy):
    return load_policy(policy) if isinstance(policy, (str, Path)) else policy


def _check_episodes(episodes) -> None:
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f"episodes must be a positive integer, got {episodes!r}")


@contextmanager
def _env_for(policy, env):
    """The env to run `policy` in: the one given (left open), or the one the loaded policy
    was trained on (closed afterwards)."""
    if env is not None:
        yield env
        return
    if not hasattr(policy, "make_env"):
        raise ValueError("a policy that is not a trained reacher policy needs env= to run in")
    env = policy.make_env()
    try:
        yield env
    finally:
        env.close()
