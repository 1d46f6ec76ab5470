"""Training: collect experience with exploration noise, learn from replay, evaluate, checkpoint.

`Training.run` is the loop, top to bottom; each part it calls is a module of its own:
the settings resolved before anything is built (`reacher.run.settings`), the batches it
learns from (`reacher.ddpg.batches`: hindsight relabelling, n-step returns), its
evaluations, when a success-gated run stops and which policy it keeps
(`reacher.run.gate`), what its checkpoint holds (`reacher.run.snapshot`), what it prints
(`reacher.run.progress`) and how a signal stops it (`reacher.run.signals`).

The run directory (`reacher.run.rundir`) holds the run's files; its ``checkpoint.ckpt``
holds everything `--resume` needs. Periodic evaluations and checkpoints happen at
episode boundaries, so a resumed run continues exactly as the uninterrupted one would
have.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from reacher.config import Config, to_toml
from reacher.ddpg import batches
from reacher.ddpg.agent import Agent
from reacher.ddpg.noise import make_noise, scheduled_scale
from reacher.ddpg.replay import ReplayBuffer
from reacher.errors import DivergedError, PhysicsError
from reacher.run import checkpoint as ckpt
from reacher.run import gate, settings, snapshot, threads
from reacher.run.arms import arm_digest
from reacher.run.envs import make_env
from reacher.run.evaluation import Evaluation
from reacher.run.metrics import plot_curve, preload_plotting
from reacher.run.progress import Progress
from reacher.run.rundir import (
    RunDir,
    default_run_dir,
    file_id,
    prepare_run,
)
from reacher.run.signals import StopOnSignals
from reacher.run.snapshot import STOP_REASONS, TrainingState, check_resumable
from reacher.sim.arm import Arm, load_arm
from reacher.task import randomize
from reacher.task.goal import env_goal_layout, flat_env


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


# A blow-up now and then (a violent action on a stiff arm) costs one truncated episode; the
# same in this many episodes in a row means the arm itself is broken (NaN or huge gear,
# damping, mass; a timestep too long), and training on it would learn nothing.
PHYSICS_ERRORS_IN_A_ROW = 10


class Training:
    """One training run; `run()` drives it to `config.steps` environment steps."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False,
                 progress: bool = True, log=sys.stderr):
        self.run_dir = Path(run_dir)
        self.progress = Progress(progress, log)
        self.threads = threads.choose(config.threads, config.device)  # auto: timed updates pick 1 or 2
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        config, arm, env, eval_env = settings_and_envs(config)
        self.config = config
        # The agent reads the flat layout; goal observations are the same values in a Dict.
        self.env, self.eval_env = flat_env(env), flat_env(eval_env)
        self.obs_dim = int(np.prod(self.env.observation_space.shape))
        self.act_dim = int(np.prod(self.env.action_space.shape))
        # A success-gated run stops early or at the cap; a fixed one runs exactly `steps`.
        self.budget = config.steps or config.max_steps
        self.agent = Agent(self.obs_dim, self.act_dim, **settings.agent_kwargs(config, env))
        self.buffer = ReplayBuffer(self.obs_dim, self.act_dim, min(config.buffer_size, max(self.budget, 1)))
        self.noise = make_noise(config.noise, self.act_dim, config.noise_scale, config.ou_theta)
        # Hindsight: reacher's arms relabel through their own reward; any other goal env
        # (a goal Dict and compute_reward) through its compute_reward, in batches.
        self.goal_layout = None if config.hindsight_fraction <= 0 else (
            # (an action history, under a delay, shifts the goal slices: ask the outermost)
            env.get_wrapper_attr("goal_layout") if arm is not None else env_goal_layout(env))
        self.arm_file, self.arm_sha256 = (arm.source, arm_digest(arm.source)) if arm is not None else (None, None)
        self.state = TrainingState(next_eval=config.eval_every, next_checkpoint=config.checkpoint_every)
        self.signals = StopOnSignals()
        self.gate = gate.Gate(config, self.agent, self.eval_env, stopped=lambda: self.signals.stopped_by is not None)
        self._physics_errors_in_a_row = 0
        restored_from = file_id(self.run_dir / ckpt.FILENAME) if resume else None
        if resume:
            self._restore(ckpt.load(self.run_dir, with_replay=True, map_location=config.device))
        # One writer per run dir: the lock is taken at the first write, so a run refused
        # above leaves no trace, and held until run() ends.
        self.open_run_dir = RunDir(self.run_dir, to_toml(config), restored_from,
                                   resume_step=self.state.env_steps if resume else None)
        self.metrics = self.open_run_dir.metrics

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> Outcome:
        c, state = self.config, self.state
        start = time.perf_counter() - state.wall_time
        last_print = 0.0
        preload_plotting()
        try:
            with self.signals:
                if state.finished and not self._training_left():
                    # A resumed run that has nothing left to do: its final evaluation is on record.
                    saved = snapshot.final_evaluation(state, self.metrics, c.final_eval_episodes)
                    return self._outcome(saved, state.stop_reason or "")
                if warning := gate.unconfirmable(c):
                    self.progress.line(warning)
                self._periodic()  # an evaluation a signal cut short is done again, at the same step
                obs, episode_obs = None, []
                while self._training_left() and self.signals.stopped_by is None:
                    if obs is None:
                        # Reset only when a step follows, so a checkpoint taken between episodes
                        # holds the env RNG before the next reset. A resumed run's env RNG comes
                        # from the checkpoint; only a new run seeds it.
                        obs, _ = self.env.reset(seed=c.seed if state.episodes == 0 else None)
                        episode_obs = [obs]
                    obs, done = self._collect(obs, self._action(obs), episode_obs)
                    self._learn()
                    if done:
                        self._end_episode(episode_obs)
                        state.wall_time = time.perf_counter() - start
                        self._periodic()
                        obs = None
                    if (now := time.perf_counter()) - last_print > 0.5:
                        last_print = now
                        self.progress.bar(state.env_steps, self.budget, now - start, fixed=bool(c.steps))
                state.wall_time = time.perf_counter() - start
                reason = "steps" if c.steps else "success" if self._succeeded() else "max_steps"
                # The kept policy, on episodes nothing was selected on (reacher.run.gate).
                evaluation = self.gate.final() if self.signals.stopped_by is None else None
                if evaluation is None:  # stopped by a signal, in training or in the final evaluation
                    self._save()
                    plot_run(self.run_dir, c)
                    return self._outcome(None, "signal")
                self._log(evaluation, state.eval_time)
                state.final_evaluation = evaluation.as_dict()
                self._save(stop_reason=reason)
                plot_run(self.run_dir, c)
                return self._outcome(evaluation, reason)
        finally:
            self.env.close()
            self.eval_env.close()
            self.open_run_dir.close()

    def _outcome(self, evaluation: Evaluation | None, reason: str) -> Outcome:
        return Outcome(evaluation, self.state.env_steps, self.state.wall_time,
                       self.signals.stopped_by if reason == "signal" else None, reason,
                       physics_errors=self.state.physics_errors)

    def _action(self, obs: np.ndarray) -> np.ndarray:
        c = self.config
        if self.state.env_steps < c.warmup_steps:
            return self.rng.uniform(-1.0, 1.0, self.act_dim)
        self.noise.scale = scheduled_scale(c.noise_scale, c.noise_final_scale,
                                           self.state.env_steps, c.noise_decay_steps)
        action = np.clip(self.agent.act(obs) + self.noise(self.rng), -1.0, 1.0)
        if not np.isfinite(action).all():  # np.clip keeps NaN; the env would name no setting
            raise diverged(c, self.state.env_steps)
        return action

    def _collect(self, obs: np.ndarray, action: np.ndarray, episode_obs: list) -> tuple[np.ndarray, bool]:
        next_obs, reward, terminated, truncated, info = self.env.step(action.astype(np.float32))
        self.state.env_steps += 1
        if "physics_error" in info:
            # MuJoCo has reset the state itself: next_obs is that reset state, not where the
            # action led, so the transition would teach a jump that never happens. Not stored.
            self._physics_errors_in_a_row += 1
            physics_error(self.config, self.state, self._physics_errors_in_a_row, info["physics_error"],
                          self.progress)
            return next_obs, True
        self.buffer.add(obs.ravel(), action, reward, next_obs.ravel(), terminated)
        episode_obs.append(next_obs)
        done = terminated or truncated
        if done:
            self._physics_errors_in_a_row = 0
        return next_obs, done

    def _learn(self) -> None:
        c = self.config
        if self.state.env_steps < c.warmup_steps or len(self.buffer) < c.batch_size:
            return
        self.state.update_debt += c.updates_per_step
        while self.state.update_debt >= 1.0 and self.signals.stopped_by is None:  # a signal ends the step's updates
            self.state.update_debt -= 1.0
            batch = batches.sample(self.buffer, c.batch_size, self.rng, goal_layout=self.goal_layout,
                                   hindsight_fraction=c.hindsight_fraction, n=c.n_step, gamma=c.gamma)
            metrics = self.threads.timed(self.agent.update, *batches.as_tensors(batch, self.agent.device))
            if self.agent.updates % 50 == 0:  # reading a loss syncs; sample them
                for key, value in metrics.items():
                    self.state.losses.setdefault(key, []).append(float(value))

    def _end_episode(self, episode_obs: list) -> None:
        self.buffer.end_episode()
        self.noise.reset()
        self.agent.update_normaliser(np.asarray(episode_obs, dtype=np.float32).reshape(len(episode_obs), -1))
        self.state.episodes += 1

    def _periodic(self) -> None:
        steps, state, c = self.state.env_steps, self.state, self.config
        if steps >= state.next_eval and steps < self.budget:
            if not self._evaluate():
                return  # stopped by a signal: run() saves, and a resumed run evaluates this step
            state.next_eval += c.eval_every * (1 + (steps - state.next_eval) // c.eval_every)
        if self._succeeded():
            return  # the run ends now and saves anyway
        if steps >= state.next_checkpoint and steps < self.budget:
            state.next_checkpoint += c.checkpoint_every * (1 + (steps - state.next_checkpoint) // c.checkpoint_every)
            self._save()

    def _succeeded(self) -> bool:
        return not self.config.steps and (self.state.confirmed or self.state.stop_reason == "success")

    def _training_left(self) -> bool:
        return self.state.env_steps < self.budget and not self._succeeded()

    # --- evaluations and files ----------------------------------------------------------

    def _evaluate(self) -> bool:
        """A periodic evaluation through the success gate (`gate.Gate.periodic`), logged.
        False, with nothing changed or logged, when a signal cut it short."""
        t0, eval_time = time.perf_counter(), self.state.eval_time
        measured = self.gate.periodic(self.state)
        self.state.eval_time += time.perf_counter() - t0
        if measured is None:
            return False
        result, confirmations = measured
        self._log(result, eval_time)
        if confirmations and self.progress.enabled:
            self.progress.line(gate.describe_confirmation(confirmations, self.state.confirmed))
        return True

    def _log(self, result: Evaluation, eval_time: float) -> None:
        """A metrics row (see `metrics_row`), and its line."""
        row = metrics_row(self.state, result, eval_time)
        self.state.losses = {}
        self.metrics.write(row)
        self.progress.evaluation(result, self.state.env_steps, self.state.wall_time, self.state.physics_errors)

    def _save(self, stop_reason: str | None = None) -> None:
        self.state.stopped(stop_reason)
        metadata, model = snapshot.contents(
            self.config, obs_dim=self.obs_dim, act_dim=self.act_dim, arm_file=self.arm_file,
            arm_sha256=self.arm_sha256, state=self.state, agent=self.agent, rng=self.rng,
            env_rng=self.env.unwrapped.np_random, noise=self.noise, kept_policy=self.gate.kept_policy)
        self.open_run_dir.save_checkpoint(metadata, model, self.buffer.state_dict())

    def _restore(self, checkpoint: ckpt.Checkpoint) -> None:
        """Everything is loaded into the fresh objects of this run; any failure raises
        before training starts, so no partially restored state is ever used."""
        check_resumable(checkpoint, self.config, self.obs_dim, self.act_dim, self.arm_sha256)
        self.state, self.gate.kept_policy = snapshot.restore(
            checkpoint, agent=self.agent, buffer=self.buffer, rng=self.rng,
            env_rng=self.env.unwrapped.np_random, noise=self.noise)



def settings_and_envs(config: Config) -> tuple[Config, Arm | None, gym.Env, gym.Env]:
    """The resolved config, the arm, the training env and the evaluation env, in that
    order: every auto field is resolved for the arm before anything is built (a Gymnasium
    id decides its own env, so it is resolved from the env it builds). Only the training
    env is randomised: evaluations measure the nominal model (`reacher evaluate
    --randomize` measures perturbed ones), seen as training sees it: with the action
    history when it trains under a delay."""
    arm = None if config.env else load_arm(config.arm, config.end_effector)
    if arm is not None:
        config = settings.for_arm(config, arm)
    ranges = settings.randomization(config)
    env = randomize.wrap(make_env(config, arm=arm), ranges)
    if arm is None:
        config = settings.for_env(config, env)
        arm = getattr(env.unwrapped, "arm", None)  # a reacher id's
    return config, arm, env, randomize.as_trained(make_env(config, arm=arm), ranges)


def plot_run(run_dir: Path, config: Config) -> None:
    plot_curve(run_dir / "metrics.csv", run_dir / "curve.png", title=config.env or Path(config.arm).stem)


def metrics_row(state: TrainingState, result: Evaluation, eval_time: float) -> dict:
    """A metrics row. Its clocks both read as the evaluation began: wall_time is the time
    to this step and eval_time the part of it spent in earlier evaluations, so
    wall_time - eval_time is training time alone. Losses are the means of those sampled
    since the last row."""
    row = {"step": state.env_steps, "wall_time": state.wall_time, "eval_time": eval_time,
           **result.as_dict(), "train_episodes": state.episodes,
           "steps_per_s": state.env_steps / max(state.wall_time, 1e-9)}
    for key, values in state.losses.items():
        row[key] = float(np.mean(values))
    return row


def diverged(c: Config, step: int) -> DivergedError:
    """The error of a run whose actor's weights blew up, naming the settings to lower."""
    return DivergedError(
        f"training diverged at step {step:,}: the actor's action is NaN or inf, "
        f"its weights having blown up; lower actor_lr ({c.actor_lr:g}) and critic_lr "
        f"({c.critic_lr:g}), or the reward weights (ctrl_cost_weight {c.ctrl_cost_weight:g}, "
        f"precision_weight {c.precision_weight:g})")


def physics_error(config: Config, state: TrainingState, in_a_row: int, message: str, progress: Progress) -> None:
    """Count a step at which the simulation blew up: one warning line for the first, and
    `PhysicsError` once episodes blow up PHYSICS_ERRORS_IN_A_ROW times in a row."""
    state.physics_errors += 1
    what = f"env {config.env}" if config.env else f"arm {config.arm}"
    if in_a_row >= PHYSICS_ERRORS_IN_A_ROW:
        hint = "" if config.env else f"; check its gear, damping, masses and timestep (reacher inspect {config.arm})"
        raise PhysicsError(f"{what}: the simulation blew up in {in_a_row} episodes in a row, training "
                           f"stopped at step {state.env_steps:,} ({message}){hint}")
    if state.physics_errors == 1:  # one line, not one per blow-up; the count is in the checkpoint
        progress.line(f"warning: {what}: the simulation blew up at step {state.env_steps:,} ({message}); "
                      "such steps are not learned from and are counted as physics_errors in the checkpoint")


def train(config: Config, run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True, overrides: dict | None = None) -> Outcome:
    """Train (or resume) a run; see `Training`."""
    run_dir = Path(run_dir) if run_dir else default_run_dir(config)
    config = prepare_run(config, run_dir, resume, overrides)
    outcome = Training(config, run_dir, resume=resume, progress=progress).run()
    outcome.run_dir = run_dir
    return outcome


__all__ = ["Outcome", "Training", "TrainingState", "train"]
