"""Training: collect experience with exploration noise, learn from replay, evaluate, checkpoint.

A run directory holds ``config.toml`` (the resolved config), ``metrics.csv``,
``curve.png``, TensorBoard events when tensorboard is installed, and
``checkpoint.ckpt`` — everything `--resume` needs: networks, optimisers, replay
buffer, noise state, every RNG and the counters. Periodic evaluations and
checkpoints happen at episode boundaries, so a resumed run continues exactly as
the uninterrupted one would have.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from reacher import adapt
from reacher import checkpoint as ckpt
from reacher.agent import Agent
from reacher.arm import BUILTIN_ARMS
from reacher.config import Config, ConfigError, as_dict, load_toml, saved_base, to_toml
from reacher.env import ReachEnv, make_env
from reacher.evaluate import EVAL_SEED, VALIDATION_SEED, Evaluation, evaluate
from reacher.errors import one_line
from reacher.files import write_text
from reacher.goal import flat_env
from reacher.metrics import MetricsLog, plot_curve
from reacher.noise import make_noise, scheduled_scale
from reacher.replay import ReplayBuffer, n_step, relabel
from reacher.runlock import RunDirBusy, RunLock


class RunError(ValueError):
    """A run directory that cannot be used as asked (exists already, nothing to resume)."""


@dataclass
class Counters:
    env_steps: int = 0
    episodes: int = 0
    wall_time: float = 0.0  # seconds of training, summed across resumes
    eval_time: float = 0.0  # the part of wall_time spent in periodic evaluations


@dataclass
class Outcome:
    evaluation: Evaluation | None
    env_steps: int
    wall_time: float
    interrupted_by: str | None = None  # signal name when stopped early
    stop_reason: str = ""  # why training ended: see STOP_REASONS
    run_dir: Path | None = None  # where the run, its checkpoint and metrics are

    def describe_stop(self, config: Config) -> str:
        """One sentence saying why training ended."""
        return STOP_REASONS.get(self.stop_reason, self.stop_reason).format(
            steps=self.env_steps, target=100 * config.success_target, evals=config.success_evals,
            max_steps=config.max_steps, signal=self.interrupted_by)


STOP_REASONS = {
    "steps": "ran the {steps:,} steps asked for",
    "success": "success reached {target:g} % on {evals} evaluations in a row at step {steps:,}",
    "max_steps": "hit max_steps ({max_steps:,}) before success reached {target:g} % on {evals} "
                 "evaluations in a row",
    "signal": "stopped by {signal} at step {steps:,}",
}


def default_run_dir(config: Config) -> Path:
    name = config.env.replace("/", "_") if config.env else Path(config.arm).stem
    return Path("runs") / f"{name}-seed{config.seed}"


def prepare_run(config: Config, run_dir: Path, resume: bool, overrides: dict | None = None) -> Config:
    """Check the run directory and return the config the run uses (saved one on resume)."""
    config = absolute_arm(config)
    has_checkpoint = (run_dir / ckpt.FILENAME).is_file()
    if resume:
        if not run_dir.is_dir():
            raise RunError(f"run directory {run_dir}: does not exist, nothing to resume")
        if not has_checkpoint:
            raise RunError(f"run directory {run_dir}: holds no {ckpt.FILENAME}, nothing to resume")
        config_file = run_dir / "config.toml"
        if config_file.is_file():
            saved = load_toml(config_file, base=saved_base())
            return saved.replace(**(overrides or {})) if overrides else saved
        return config
    if has_checkpoint:
        raise RunError(f"run directory {run_dir}: already holds a run; pass --resume to continue "
                       "it or choose another --run-dir")
    return config


def absolute_arm(config: Config) -> Config:
    """Record a user's arm file by absolute path, so evaluate, render and --resume find
    it from any working directory."""
    path = Path(config.arm).expanduser()
    if config.env or config.arm in BUILTIN_ARMS or not path.exists():
        return config
    return config.replace(arm=str(path.resolve()))


# Fields that shape the networks: a checkpoint's weights only fit the same values.
NETWORK_FIELDS = ("hidden_sizes", "twin_critics", "normalize_obs", "critic_layernorm")


class Training:
    """One training run; `run()` drives it to `config.steps` environment steps."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False,
                 progress: bool = True, log=sys.stderr):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.log = log
        torch.set_num_threads(config.threads or os.cpu_count() or 1)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        # The agent reads the flat layout; goal observations are the same values in a Dict.
        self.env = flat_env(make_env(config))
        self.eval_env = flat_env(make_env(config, arm=getattr(self.env.unwrapped, "arm", None)))
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        reach = self.env.unwrapped if isinstance(self.env.unwrapped, ReachEnv) else None
        self.config = config = adapt.resolve(config, self.act_dim,
                                             reach.timing.episode_s if reach is not None else None,
                                             control=reach.control if reach is not None else None)
        # A success-gated run stops early or at the cap; a fixed one runs exactly `steps`.
        self.budget = config.steps or config.max_steps
        self.agent = Agent(self.obs_dim, self.act_dim, config, config.device)
        self.buffer = ReplayBuffer(self.obs_dim, self.act_dim, min(config.buffer_size, max(self.budget, 1)))
        self.noise = make_noise(config.noise, self.act_dim, config.noise_scale, config.ou_theta)
        self.goal_layout = reach.goal_layout if reach is not None and config.hindsight_fraction > 0 else None
        self.counters = Counters()
        self._update_debt = 0.0
        self._stop: str | None = None
        self._success_streak = 0  # evaluations in a row at or above success_target
        self._periodic_evals = 0
        self._last_eval: Evaluation | None = None
        self._losses: dict[str, list[float]] = {}
        self._next_eval = config.eval_every
        self._next_checkpoint = config.checkpoint_every
        restored_from = _file_id(self.run_dir / ckpt.FILENAME) if resume else None
        if resume:
            self._restore(ckpt.load(self.run_dir, with_replay=True, map_location=config.device))
        # One writer per run dir: the lock is taken at the first write, so a run refused
        # above leaves no trace, and held until run() ends.
        self._lock = RunLock(self.run_dir)
        try:
            self._check_still_ours(restored_from)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text(self.run_dir / "config.toml", to_toml(config))
            self.metrics = MetricsLog(self.run_dir, resume_step=self.counters.env_steps if resume else None)
        except BaseException:
            self._lock.release()
            raise

    def _check_still_ours(self, restored_from: tuple | None) -> None:
        """Under the lock, the run dir must still be as it was checked: no run started
        here meanwhile, and the checkpoint resumed from is still the latest."""
        current = _file_id(self.run_dir / ckpt.FILENAME)
        if restored_from is None and current is not None:
            raise RunError(f"run directory {self.run_dir}: another run has just started here; "
                           "choose another --run-dir")
        if restored_from is not None and current != restored_from:
            raise RunDirBusy(f"run directory {self.run_dir}: its checkpoint was rewritten by another "
                             "run while this one started; try again")

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> Outcome:
        c = self.config
        # Only the main thread may set handlers; a run in another thread (a sweep trial in a
        # Ray worker) is stopped by its host instead and resumes from its last checkpoint.
        main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        start = time.perf_counter() - self.counters.wall_time
        last_print = 0.0
        try:
            obs, episode_obs = None, []
            while self.counters.env_steps < self.budget and self._stop is None and not self._succeeded():
                if obs is None:
                    # Reset only when a step follows, so a checkpoint taken between episodes
                    # holds the env RNG before the next reset. A resumed run's env RNG comes
                    # from the checkpoint; only a new run seeds it.
                    obs, _ = self.env.reset(seed=c.seed if self.counters.episodes == 0 else None)
                    episode_obs = [obs]
                obs, done = self._collect(obs, episode_obs)
                self._learn()
                if done:
                    self._end_episode(episode_obs)
                    self.counters.wall_time = time.perf_counter() - start
                    self._periodic()
                    obs = None
                now = time.perf_counter()
                if self.progress and now - last_print > 0.5:
                    last_print = now
                    self._print_progress(now - start)
            self.counters.wall_time = time.perf_counter() - start
            if self._stop is not None:
                self._save()
                self._finish_files()
                return Outcome(None, self.counters.env_steps, self.counters.wall_time, self._stop,
                               "signal")
            reason = "steps" if c.steps else "success" if self._succeeded() else "max_steps"
            evaluation = self._evaluate(c.final_eval_episodes, final=True)
            self._save(stop_reason=reason)
            self._finish_files()
            return Outcome(evaluation, self.counters.env_steps, self.counters.wall_time,
                           stop_reason=reason)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.metrics.close()
            self.env.close()
            self.eval_env.close()
            self._lock.release()

    def _collect(self, obs: np.ndarray, episode_obs: list) -> tuple[np.ndarray, bool]:
        c = self.config
        if self.counters.env_steps < c.warmup_steps:
            action = self.rng.uniform(-1.0, 1.0, self.act_dim)
        else:
            self.noise.scale = scheduled_scale(c.noise_scale, c.noise_final_scale,
                                               self.counters.env_steps, c.noise_decay_steps)
            action = np.clip(self.agent.act(obs) + self.noise(self.rng), -1.0, 1.0)
        next_obs, reward, terminated, truncated, _ = self.env.step(action.astype(np.float32))
        self.buffer.add(obs.ravel(), action, reward, next_obs.ravel(), terminated)
        self.counters.env_steps += 1
        episode_obs.append(next_obs)
        return next_obs, terminated or truncated

    def _learn(self) -> None:
        c = self.config
        if self.counters.env_steps < c.warmup_steps or len(self.buffer) < c.batch_size:
            return
        self._update_debt += c.updates_per_step
        while self._update_debt >= 1.0:
            self._update_debt -= 1.0
            idx = self.buffer.sample_indices(c.batch_size, self.rng)
            batch = self.buffer.batch(idx)
            if self.goal_layout is not None:
                batch = relabel(batch, self.buffer, idx, self.goal_layout, c.hindsight_fraction, self.rng)
            if c.n_step > 1:
                batch = n_step(batch, self.buffer, idx, c.n_step, c.gamma, self.goal_layout)
            tensors = [torch.from_numpy(batch[k]).to(self.agent.device)
                       for k in ("obs", "action", "reward", "next_obs", "terminated", "discount") if k in batch]
            metrics = self.agent.update(*tensors)
            if self.agent.updates % 50 == 0:  # reading a loss syncs; sample them
                for key, value in metrics.items():
                    self._losses.setdefault(key, []).append(float(value))

    def _end_episode(self, episode_obs: list) -> None:
        self.buffer.end_episode()
        self.noise.reset()
        self.agent.observe(np.asarray(episode_obs, dtype=np.float32).reshape(len(episode_obs), -1))
        self.counters.episodes += 1

    def _periodic(self) -> None:
        steps = self.counters.env_steps
        if steps >= self._next_eval and steps < self.budget:
            self._next_eval += self.config.eval_every * (1 + (steps - self._next_eval) // self.config.eval_every)
            self._evaluate(self.config.eval_episodes)
        if self._succeeded():
            return  # the run ends now and saves anyway
        if steps >= self._next_checkpoint and steps < self.budget:
            self._next_checkpoint += self.config.checkpoint_every * (
                1 + (steps - self._next_checkpoint) // self.config.checkpoint_every)
            self._save()

    # --- evaluation, files, checkpoints -------------------------------------------------

    def _succeeded(self) -> bool:
        return not self.config.steps and self._success_streak >= self.config.success_evals

    def _evaluate(self, episodes: int, final: bool = False) -> Evaluation:
        t0 = time.perf_counter()
        seed = EVAL_SEED if final else VALIDATION_SEED + self._periodic_evals * episodes
        result = evaluate(self.agent.act, self.eval_env, episodes, seed)
        self.counters.eval_time += time.perf_counter() - t0
        if not final:
            self._periodic_evals += 1
            good = result.success_rate is not None and result.success_rate >= self.config.success_target
            self._success_streak = self._success_streak + 1 if good else 0
        row = {"step": self.counters.env_steps, "wall_time": self.counters.wall_time,
               "eval_time": self.counters.eval_time,
               **result.as_dict(), "train_episodes": self.counters.episodes,
               "steps_per_s": self.counters.env_steps / max(self.counters.wall_time, 1e-9)}
        for key, values in self._losses.items():
            row[key] = float(np.mean(values))
        self._losses = {}
        self._last_eval = result
        self.metrics.write(row)
        if self.progress:
            self._print_line(describe(result, self.counters.env_steps, self.counters.wall_time))
        return result

    def _save(self, stop_reason: str | None = None) -> None:
        c = self.config
        env = self.env.unwrapped
        metadata = {
            "obs_dim": self.obs_dim, "act_dim": self.act_dim,
            "env": c.env or None, "arm": None if c.env else c.arm,
            "arm_file": env.arm.source if isinstance(env, ReachEnv) else None,
            "end_effector": None if c.env else c.end_effector,
            "config": as_dict(c), "env_steps": self.counters.env_steps,
            "episodes": self.counters.episodes, "updates": self.agent.updates,
            "wall_time": self.counters.wall_time, "eval_time": self.counters.eval_time,
            "update_debt": self._update_debt, "success_streak": self._success_streak,
            "periodic_evals": self._periodic_evals,
            "finished": stop_reason is not None, "stop_reason": stop_reason,
            "next_eval": self._next_eval, "next_checkpoint": self._next_checkpoint,
            "rng": self.rng.bit_generator.state, "env_rng": env.np_random.bit_generator.state,
            "noise": self.noise.state_dict(), "losses": self._losses,
            "versions": ckpt.library_versions(),
        }
        model = {"agent": self.agent.state_dict(), "torch_rng": torch.get_rng_state()}
        ckpt.save(self.run_dir / ckpt.FILENAME, metadata, model, self.buffer.state_dict())

    def _restore(self, checkpoint: ckpt.Checkpoint) -> None:
        """Everything is loaded into the fresh objects of this run; any failure raises
        before training starts, so no partially restored state is ever used."""
        ckpt.check_sizes(checkpoint, self.obs_dim, self.act_dim, "this run's env")
        meta = checkpoint.metadata
        saved, ours_all = meta.get("config", {}), as_dict(self.config)
        for name in NETWORK_FIELDS:
            ours = ours_all[name]
            if name in saved and saved[name] != ours:
                raise ckpt.CheckpointError(checkpoint.path, f"was trained with {name} = {saved[name]!r}; "
                                                            f"a resumed run cannot change it (asked for {ours!r})")
        try:
            self.agent.load_state_dict(checkpoint.model["agent"])
            torch.set_rng_state(checkpoint.model["torch_rng"])
            if checkpoint.replay is not None:
                self.buffer.load_state_dict(checkpoint.replay)
                self.buffer.end_episode()  # a signal may have saved mid-episode
            self.rng.bit_generator.state = meta["rng"]
            self.env.unwrapped.np_random.bit_generator.state = meta["env_rng"]
            self.noise.load_state_dict(meta["noise"])
            self.counters = Counters(meta["env_steps"], meta["episodes"], meta["wall_time"],
                                     meta.get("eval_time", 0.0))
            self._update_debt = meta["update_debt"]
            self._success_streak = int(meta.get("success_streak", 0))
            self._periodic_evals = int(meta.get("periodic_evals", 0))
            self._next_eval, self._next_checkpoint = meta["next_eval"], meta["next_checkpoint"]
            self._losses = {k: list(v) for k, v in meta.get("losses", {}).items()}
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            raise ckpt.CheckpointError(checkpoint.path, f"cannot be restored ({one_line(err)})") from None

    def _finish_files(self) -> None:
        plot_curve(self.run_dir / "metrics.csv", self.run_dir / "curve.png",
                   title=self.config.env or Path(self.config.arm).stem)

    # --- signals and progress -------------------------------------------------------------

    def _on_signal(self, signum, frame) -> None:
        if self._stop is not None:  # a second Ctrl-C: the user means it
            raise KeyboardInterrupt
        self._stop = signal.Signals(signum).name

    def _print_progress(self, elapsed: float) -> None:
        """A one-line bar, redrawn in place on a terminal: progress, speed, latest evaluation."""
        if not getattr(self.log, "isatty", lambda: False)():
            return
        steps, budget = self.counters.env_steps, self.budget
        done = steps / max(budget, 1)
        rate = steps / max(elapsed, 1e-9)
        bar = "#" * int(20 * done) + "." * (20 - int(20 * done))
        eta = "ETA" if self.config.steps else "at most"
        line = (f"\r  [{bar}] {steps:>9,}/{budget:,}  {rate:5.0f} steps/s  "
                f"{eta} {(budget - steps) / max(rate, 1e-9):4.0f}s")
        last = self._last_eval
        if last is not None and last.success_rate is not None:
            line += f"  success {100 * last.success_rate:3.0f}%  distance {100 * last.mean_final_distance:4.1f} cm"
        elif last is not None:
            line += f"  return {last.mean_return:.1f}"
        self.log.write(line + "  ")
        self.log.flush()

    def _print_line(self, text: str) -> None:
        end = "\n"
        if getattr(self.log, "isatty", lambda: False)():
            text = "\r" + text + " " * 10
        self.log.write(text + end)
        self.log.flush()


def _file_id(path: Path) -> tuple | None:
    """Which file is at `path` now: checkpoints are replaced by rename, never rewritten."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def describe(result: Evaluation, steps: int, wall_time: float) -> str:
    parts = [f"step {steps:>8,}", f"{wall_time:7.1f}s"]
    if result.success_rate is not None:
        parts.append(f"success {100 * result.success_rate:5.1f}%")
    if result.mean_final_distance is not None:
        parts.append(f"distance {100 * result.mean_final_distance:5.2f} cm")
    parts.append(f"return {result.mean_return:8.2f}")
    return "  ".join(parts)


def train(config: Config, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, overrides: dict | None = None) -> Outcome:
    """Train (or resume) a run; see `Training`."""
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    config = prepare_run(config, run_dir, resume, overrides)
    outcome = Training(config, run_dir, resume=resume, progress=progress).run()
    outcome.run_dir = run_dir
    return outcome


__all__ = ["Config", "ConfigError", "Outcome", "RunError", "Training", "train"]
