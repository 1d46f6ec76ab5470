"""Training: collect experience with exploration noise, learn from replay, evaluate, checkpoint.

The run directory (`reacher.run.rundir`) holds the run's files; its ``checkpoint.ckpt``
holds everything `--resume` needs: networks, optimisers, replay buffer, noise state,
every RNG and the loop's `TrainingState`. Periodic evaluations and checkpoints happen
at episode boundaries, so a resumed run continues exactly as the uninterrupted one
would have. When a success-gated run stops, and which policy it keeps and writes (the
checkpoint's ``policy``; its ``agent`` stays the last step's for --resume), is
`reacher.run.gate`'s rule.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from reacher.config import Config, as_dict, to_toml
from reacher.ddpg.agent import Agent
from reacher.ddpg.noise import make_noise, scheduled_scale
from reacher.ddpg.replay import ReplayBuffer, n_step, relabel
from reacher.errors import CheckpointError, PhysicsError, one_line
from reacher.run import checkpoint as ckpt
from reacher.run import gate
from reacher.run import settings
from reacher.run.arms import arm_digest
from reacher.run.envs import make_env
from reacher.run.evaluation import EVAL_SEED, VALIDATION_SEED, Evaluation, evaluate
from reacher.run.metrics import plot_curve, preload_plotting
from reacher.run.rundir import (
    RunDir,
    check_resumable,
    default_run_dir,
    file_id,
    prepare_run,
)
from reacher.sim.arm import load_arm
from reacher.task import randomize
from reacher.task.goal import env_goal_layout, flat_env


@dataclass
class TrainingState:
    """What the loop counts and decides by: saved in the checkpoint's metadata under these
    names, and restored from it, as one object."""

    env_steps: int = 0
    episodes: int = 0
    wall_time: float = 0.0  # seconds of training, summed across resumes
    eval_time: float = 0.0  # the part of wall_time spent in periodic evaluations
    update_debt: float = 0.0  # fractional gradient updates owed (updates_per_step < 1)
    success_streak: int = 0  # confirmation evaluations of the policy that passed the gate, else 0
    periodic_evals: int = 0  # validation blocks used (periodic and confirmation evaluations)
    next_eval: int = 0  # step of the next periodic evaluation
    next_checkpoint: int = 0
    losses: dict[str, list[float]] = field(default_factory=dict)  # sampled since the last evaluation
    physics_errors: int = 0  # steps at which the simulation blew up (their transitions are not stored)
    finished: bool = False  # the final evaluation is written
    stop_reason: str | None = None
    final_evaluation: dict | None = None  # Evaluation.as_dict() of the final evaluation, once finished
    confirmed: bool = False  # the success gate passed (reacher.run.gate): a success-gated run stops
    best: dict | None = None  # {"step", "evaluation"} of the kept policy (reacher.run.gate), once evaluated

    # Older checkpoints lack these; every other field has been saved from the start.
    OPTIONAL = ("eval_time", "success_streak", "periodic_evals", "losses", "physics_errors", "finished",
                "stop_reason", "final_evaluation", "confirmed", "best")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, meta: dict) -> "TrainingState":
        """Read from checkpoint metadata; raises KeyError, TypeError or ValueError."""
        values = {}
        for f in fields(cls):
            if f.name not in meta and f.name in cls.OPTIONAL:
                continue
            value = meta[f.name]
            if f.type in ("int", "float"):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"{f.name} is {value!r}, not a number")
                value = int(value) if f.type == "int" else float(value)
            values[f.name] = value
        if "losses" in values:
            values["losses"] = {str(k): [float(x) for x in v] for k, v in values["losses"].items()}
        if values.get("final_evaluation") is not None:
            Evaluation.from_dict(values["final_evaluation"])  # TypeError unless it is one
        if values.get("best") is not None:
            Evaluation.from_dict(values["best"]["evaluation"])
        if values.get("stop_reason") not in (None, *STOP_REASONS):  # it is printed: not a format string
            raise ValueError(f"stop_reason is {values['stop_reason']!r}, none of {', '.join(STOP_REASONS)}")
            values["best"]["step"] = int(values["best"]["step"])
        return cls(**values)


@dataclass
class Outcome:
    evaluation: Evaluation | None
    env_steps: int
    wall_time: float
    interrupted_by: str | None = None  # signal name when stopped early
    stop_reason: str = ""  # why training ended: see STOP_REASONS
    run_dir: Path | None = None  # where the run, its checkpoint and metrics are
    physics_errors: int = 0  # steps at which the simulation blew up, over the whole run

    def describe_stop(self, config: Config) -> str:
        """One sentence saying why training ended."""
        return STOP_REASONS.get(self.stop_reason, self.stop_reason).format(
            steps=self.env_steps, target=100 * config.success_target, evals=config.success_evals,
            max_steps=config.max_steps, signal=self.interrupted_by)


STOP_REASONS = {
    "steps": "ran the {steps:,} steps asked for",
    "success": "success confirmed at step {steps:,}: at least {target:g} % with 95 % confidence "
               "on {evals} fresh evaluations of the kept policy",
    "max_steps": "hit max_steps ({max_steps:,}) before success was confirmed at {target:g} % "
                 "(95 % confidence, {evals} fresh evaluations)",
    "signal": "stopped by {signal} at step {steps:,}",
}

# A blow-up now and then (a violent action on a stiff arm) costs one truncated episode; the
# same in this many episodes in a row means the arm itself is broken (NaN or huge gear,
# damping, mass; a timestep too long), and training on it would learn nothing.
PHYSICS_ERRORS_IN_A_ROW = 10


class Training:
    """One training run; `run()` drives it to `config.steps` environment steps."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False,
                 progress: bool = True, log=sys.stderr):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.log = log
        torch.set_num_threads(settings.torch_threads(config.threads))
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        # Settings first: every auto field is resolved for the arm before anything is built
        # (a Gymnasium id decides its own env, so it is resolved from the env it builds).
        arm = None if config.env else load_arm(config.arm, config.end_effector)
        if arm is not None:
            config = settings.for_arm(config, arm)
        # The agent reads the flat layout; goal observations are the same values in a Dict.
        # Only the training env is randomised: evaluations measure the nominal model
        # (`reacher evaluate --randomize` measures perturbed ones).
        env = randomize.wrap(make_env(config, arm=arm), config)
        if arm is None:
            config = settings.for_env(config, env)
            arm = getattr(env.unwrapped, "arm", None)  # a reacher id's
        self.config = config
        self.env = flat_env(env)
        # ... seen as training sees it: with the action history when it trains under a delay.
        self.eval_env = flat_env(randomize.as_trained(make_env(config, arm=arm), config))
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        # A success-gated run stops early or at the cap; a fixed one runs exactly `steps`.
        self.budget = config.steps or config.max_steps
        self.agent = Agent(self.obs_dim, self.act_dim, **settings.agent_kwargs(config))
        self.buffer = ReplayBuffer(self.obs_dim, self.act_dim, min(config.buffer_size, max(self.budget, 1)))
        self.noise = make_noise(config.noise, self.act_dim, config.noise_scale, config.ou_theta)
        # Hindsight: reacher's arms relabel through their own reward; any other goal env
        # (a goal Dict and compute_reward) through its compute_reward, in batches.
        self.goal_layout = None if config.hindsight_fraction <= 0 else (
            # (an action history, under a delay, shifts the goal slices: ask the outermost)
            env.get_wrapper_attr("goal_layout") if arm is not None else env_goal_layout(env))
        self.arm_file = arm.source if arm is not None else None
        self.arm_sha256 = arm_digest(self.arm_file) if arm is not None else None
        self.state = TrainingState(next_eval=config.eval_every, next_checkpoint=config.checkpoint_every)
        self._stop: str | None = None
        self._last_eval: Evaluation | None = None
        self._kept_policy: dict | None = None  # actor and normaliser of state.best (reacher.run.gate)
        self._physics_errors_in_a_row = 0
        restored_from = file_id(self.run_dir / ckpt.FILENAME) if resume else None
        if resume:
            self._restore(ckpt.load(self.run_dir, with_replay=True, map_location=config.device))
        # One writer per run dir: the lock is taken at the first write, so a run refused
        # above leaves no trace, and held until run() ends.
        self.files = RunDir(self.run_dir, to_toml(config), restored_from,
                            resume_step=self.state.env_steps if resume else None)
        self.metrics = self.files.metrics

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> Outcome:
        c = self.config
        # Only the main thread may set handlers; a run in another thread (a sweep trial in a
        # Ray worker) is stopped by its host instead and resumes from its last checkpoint.
        main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        start = time.perf_counter() - self.state.wall_time
        last_print = 0.0
        preload_plotting()
        try:
            if self.state.finished and not self._training_left():
                # A resumed run that has nothing left to do: its final evaluation is on record.
                return Outcome(self._saved_final_evaluation(), self.state.env_steps, self.state.wall_time,
                               stop_reason=self.state.stop_reason or "", physics_errors=self.state.physics_errors)
            self._warn_if_unconfirmable()
            self._periodic()  # an evaluation a signal cut short is done again, at the same step
            obs, episode_obs = None, []
            while self._training_left() and self._stop is None:
                if obs is None:
                    # Reset only when a step follows, so a checkpoint taken between episodes
                    # holds the env RNG before the next reset. A resumed run's env RNG comes
                    # from the checkpoint; only a new run seeds it.
                    obs, _ = self.env.reset(seed=c.seed if self.state.episodes == 0 else None)
                    episode_obs = [obs]
                obs, done = self._collect(obs, episode_obs)
                self._learn()
                if done:
                    self._end_episode(episode_obs)
                    self.state.wall_time = time.perf_counter() - start
                    self._periodic()
                    obs = None
                now = time.perf_counter()
                if self.progress and now - last_print > 0.5:
                    last_print = now
                    self._print_progress(now - start)
            self.state.wall_time = time.perf_counter() - start
            reason = "steps" if c.steps else "success" if self._succeeded() else "max_steps"
            evaluation = self._final_evaluation() if self._stop is None else None
            if evaluation is None:  # stopped by a signal, in training or in the final evaluation
                self._save()
                self._finish_files()
                return Outcome(None, self.state.env_steps, self.state.wall_time, self._stop,
                               "signal", physics_errors=self.state.physics_errors)
            self.state.final_evaluation = evaluation.as_dict()
            self._save(stop_reason=reason)
            self._finish_files()
            return Outcome(evaluation, self.state.env_steps, self.state.wall_time,
                           stop_reason=reason, physics_errors=self.state.physics_errors)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.env.close()
            self.eval_env.close()
            self.files.close()

    def _collect(self, obs: np.ndarray, episode_obs: list) -> tuple[np.ndarray, bool]:
        c = self.config
        if self.state.env_steps < c.warmup_steps:
            action = self.rng.uniform(-1.0, 1.0, self.act_dim)
        else:
            self.noise.scale = scheduled_scale(c.noise_scale, c.noise_final_scale,
                                               self.state.env_steps, c.noise_decay_steps)
            action = np.clip(self.agent.act(obs) + self.noise(self.rng), -1.0, 1.0)
        next_obs, reward, terminated, truncated, info = self.env.step(action.astype(np.float32))
        self.state.env_steps += 1
        if "physics_error" in info:
            # MuJoCo has reset the state itself: next_obs is that reset state, not where the
            # action led, so the transition would teach a jump that never happens. Not stored.
            self._physics_error(info["physics_error"])
            return next_obs, True
        self.buffer.add(obs.ravel(), action, reward, next_obs.ravel(), terminated)
        episode_obs.append(next_obs)
        done = terminated or truncated
        if done:
            self._physics_errors_in_a_row = 0
        return next_obs, done

    def _physics_error(self, message: str) -> None:
        self.state.physics_errors += 1
        self._physics_errors_in_a_row += 1
        c = self.config
        what = f"env {c.env}" if c.env else f"arm {c.arm}"
        hint = "" if c.env else f"; check its gear, damping, masses and timestep (reacher inspect {c.arm})"
        if self._physics_errors_in_a_row >= PHYSICS_ERRORS_IN_A_ROW:
            raise PhysicsError(f"{what}: the simulation blew up in {self._physics_errors_in_a_row} episodes "
                               f"in a row, training stopped at step {self.state.env_steps:,} ({message}){hint}")
        if self.state.physics_errors == 1:  # one line, not one per blow-up; the count is in the checkpoint
            self._print_line(f"warning: {what}: the simulation blew up at step {self.state.env_steps:,} "
                             f"({message}); such steps are not learned from and are counted as "
                             "physics_errors in the checkpoint")

    def _learn(self) -> None:
        c = self.config
        if self.state.env_steps < c.warmup_steps or len(self.buffer) < c.batch_size:
            return
        self.state.update_debt += c.updates_per_step
        while self.state.update_debt >= 1.0 and self._stop is None:  # a signal ends the step's updates
            self.state.update_debt -= 1.0
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
                    self.state.losses.setdefault(key, []).append(float(value))

    def _end_episode(self, episode_obs: list) -> None:
        self.buffer.end_episode()
        self.noise.reset()
        self.agent.update_normaliser(np.asarray(episode_obs, dtype=np.float32).reshape(len(episode_obs), -1))
        self.state.episodes += 1

    def _periodic(self) -> None:
        steps = self.state.env_steps
        if steps >= self.state.next_eval and steps < self.budget:
            if not self._gate():
                return  # stopped by a signal: run() saves, and a resumed run evaluates this step
            self.state.next_eval += self.config.eval_every * (1 + (steps - self.state.next_eval) // self.config.eval_every)
        if self._succeeded():
            return  # the run ends now and saves anyway
        if steps >= self.state.next_checkpoint and steps < self.budget:
            self.state.next_checkpoint += self.config.checkpoint_every * (
                1 + (steps - self.state.next_checkpoint) // self.config.checkpoint_every)
            self._save()

    # --- evaluation, files, checkpoints -------------------------------------------------

    def _succeeded(self) -> bool:
        return not self.config.steps and (self.state.confirmed or self.state.stop_reason == "success")

    def _training_left(self) -> bool:
        return self.state.env_steps < self.budget and not self._succeeded()

    def _gate(self) -> bool:
        """A periodic evaluation, and when it reaches success_target in a success-gated run,
        the confirmation of the same policy (reacher.run.gate). False, with nothing changed or
        logged, when a signal cut it short: a resumed run does it again, the same."""
        c = self.config
        t0, eval_time = time.perf_counter(), self.state.eval_time
        block = self.state.periodic_evals
        seed = lambda k: VALIDATION_SEED + (block + k) * c.eval_episodes  # noqa: E731  fresh blocks
        result, confirmations = self._measure(c.eval_episodes, seed(0)), []
        if result is not None and not c.steps and (result.success_rate or 0.0) >= c.success_target:
            for k in range(c.success_evals):
                left = (c.success_evals - k) * c.eval_episodes
                if not gate.still_possible(confirmations, left, c.success_target):
                    break
                confirmations.append(self._measure(c.eval_episodes, seed(1 + k)))
                if confirmations[-1] is None:
                    result = None
                    break
        self.state.eval_time += time.perf_counter() - t0
        if result is None:
            return False
        self.state.periodic_evals += 1 + len(confirmations)
        self.state.confirmed = bool(confirmations) and gate.confirmed(confirmations, c.success_target)
        self.state.success_streak = len(confirmations) if self.state.confirmed else 0
        best = self.state.best
        measured = gate.pooled([result, *confirmations])  # the policy on all its episodes
        if self.state.confirmed or best is None or gate.rank(measured) > gate.rank(Evaluation(**best["evaluation"])):
            self._keep(measured)
        self._log(result, eval_time)
        if confirmations and self.progress:
            wins = sum(map(gate.successes, confirmations))
            n = sum(r.episodes for r in confirmations)
            verdict = "confirmed" if self.state.confirmed else "not confirmed, training goes on"
            self._print_line(f"  confirmation: {wins}/{n} fresh episodes, lower bound "
                             f"{100 * gate.lower_bound(wins, n):.1f} % ({100 * gate.CONFIDENCE:g} %): {verdict}")
        return True

    def _keep(self, result: Evaluation) -> None:
        """Keep a copy of the policy just evaluated as the one the run writes (reacher.run.gate)."""
        agent = self.agent.state_dict()
        self._kept_policy = {"actor": agent["actor"], "norm": agent["norm"]}
        self.state.best = {"step": self.state.env_steps, "evaluation": result.as_dict()}

    def _final_evaluation(self) -> Evaluation | None:
        """The kept policy on the final evaluation's episodes. The agent's own weights (what
        a resumed run trains on from here) are put back afterwards."""
        if self._kept_policy is None:
            result = self._measure(self.config.final_eval_episodes, EVAL_SEED)
        else:
            last = self.agent.state_dict()
            self.agent.load_state_dict(self._kept_policy, policy_only=True)
            try:
                result = self._measure(self.config.final_eval_episodes, EVAL_SEED)
            finally:
                self.agent.load_state_dict(last, policy_only=True)
        if result is not None:
            self._log(result, self.state.eval_time)
        return result

    def _measure(self, episodes: int, seed: int) -> Evaluation | None:
        """The agent's policy on `episodes` episodes from `seed`; None when a signal cut it short."""
        return evaluate(self.agent.act, self.eval_env, episodes, seed, stop=lambda: self._stop is not None)

    def _log(self, result: Evaluation, eval_time: float) -> None:
        """A metrics row. Its clocks both read as the evaluation began: wall_time is the time
        to this step and eval_time the part of it spent in earlier evaluations, so
        wall_time - eval_time is training time alone."""
        row = {"step": self.state.env_steps, "wall_time": self.state.wall_time, "eval_time": eval_time,
               **result.as_dict(), "train_episodes": self.state.episodes,
               "steps_per_s": self.state.env_steps / max(self.state.wall_time, 1e-9)}
        for key, values in self.state.losses.items():
            row[key] = float(np.mean(values))
        self.state.losses = {}
        self._last_eval = result
        self.metrics.write(row)
        if self.progress:
            line = describe(result, self.state.env_steps, self.state.wall_time)
            errors = self.state.physics_errors
            self._print_line(line + (f"  physics errors {errors:,}" if errors else ""))

    def _warn_if_unconfirmable(self) -> None:
        c = self.config
        n = c.success_evals * c.eval_episodes
        if not c.steps and gate.lower_bound(n, n) < c.success_target:
            self._print_line(f"warning: success_target {c.success_target:g} cannot be confirmed on "
                             f"success_evals x eval_episodes = {n} episodes (all {n} successes show at "
                             f"most {100 * gate.lower_bound(n, n):.1f} % with {100 * gate.CONFIDENCE:g} % "
                             f"confidence): the run will go on to max_steps")

    def _saved_final_evaluation(self) -> Evaluation | None:
        """A finished run's final evaluation: from its checkpoint, or for a checkpoint older
        than that key, from its metrics row."""
        if self.state.final_evaluation is not None:
            return Evaluation.from_dict(self.state.final_evaluation)
        row = self.metrics.row_at(self.state.env_steps)
        if row is None or row["mean_return"] == "":
            return None
        number = lambda text: float(text) if text != "" else None  # noqa: E731
        return Evaluation(number(row["success_rate"]), number(row["mean_final_distance"]),
                          float(row["mean_return"]), self.config.final_eval_episodes)

    def _save(self, stop_reason: str | None = None) -> None:
        c = self.config
        env = self.env.unwrapped
        self.state.finished, self.state.stop_reason = stop_reason is not None, stop_reason
        if stop_reason is None:
            self.state.final_evaluation = None
        metadata = {
            "obs_dim": self.obs_dim, "act_dim": self.act_dim,
            "env": c.env or None, "arm": None if c.env else c.arm,
            "arm_file": self.arm_file,
            "end_effector": None if c.env else c.end_effector, "arm_sha256": self.arm_sha256,
            "config": as_dict(c), "updates": self.agent.updates, **self.state.to_dict(),
            "rng": self.rng.bit_generator.state, "env_rng": env.np_random.bit_generator.state,
            "noise": self.noise.state_dict(), "versions": ckpt.library_versions(),
        }
        model = {"agent": self.agent.state_dict(), "torch_rng": torch.get_rng_state()}
        if self._kept_policy is not None:  # what load_policy reads; "agent" is what --resume trains on
            model["policy"] = self._kept_policy
        self.files.save_checkpoint(metadata, model, self.buffer.state_dict())

    def _restore(self, checkpoint: ckpt.Checkpoint) -> None:
        """Everything is loaded into the fresh objects of this run; any failure raises
        before training starts, so no partially restored state is ever used."""
        check_resumable(checkpoint, self.config, self.obs_dim, self.act_dim, self.arm_sha256)
        meta = checkpoint.metadata
        try:
            state = TrainingState.from_dict(meta)
            self.agent.load_state_dict(checkpoint.model["agent"])
            torch.set_rng_state(checkpoint.model["torch_rng"])
            if checkpoint.replay is not None:
                self.buffer.load_state_dict(checkpoint.replay)
                self.buffer.end_episode()  # a signal may have saved mid-episode
            self.rng.bit_generator.state = meta["rng"]
            self.env.unwrapped.np_random.bit_generator.state = meta["env_rng"]
            self.noise.load_state_dict(meta["noise"])
            kept = checkpoint.model["policy"] if state.best is not None else None
            if kept is not None:
                kept = {"actor": kept["actor"], "norm": kept["norm"]}
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise CheckpointError(checkpoint.path, f"cannot be restored ({one_line(err)})") from None
        self.state = state
        self._kept_policy = kept

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
        steps, budget = self.state.env_steps, self.budget
        done = steps / max(budget, 1)
        rate = steps / max(elapsed, 1e-9)
        bar = "#" * int(20 * done) + "." * (20 - int(20 * done))
        eta = "ETA" if self.config.steps else "at most"
        line = (f"\r  [{bar}] {steps:>9,}/{budget:,}  {rate:5.0f} steps/s  "
                f"{eta} {(budget - steps) / max(rate, 1e-9):4.0f}s")
        last = self._last_eval
        if last is not None and last.success_rate is not None:
            line += f"  success {100 * last.success_rate:3.0f}%"
            if last.mean_final_distance is not None:
                line += f"  distance {100 * last.mean_final_distance:4.1f} cm"
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


__all__ = ["Outcome", "Training", "TrainingState", "train"]
