"""What a training checkpoint holds, in one place: its metadata keys, its model members,
and how they come back on ``--resume``.

`reacher.run.checkpoint` is the file (a zip archive, written atomically, every size
checked before anything is allocated); this module is its content for a training run:
  * metadata (``metadata.json``): the sizes, env or arm and the arm file's SHA-256, the
    resolved config, every `TrainingState` field under its own name, ``updates``, the
    RNG states of the loop and the env, the noise state, library versions;
  * model (``model.pt``): ``agent`` (networks, optimisers, normaliser: what --resume
    trains on), ``torch_rng``, and ``policy`` (actor and normaliser of the kept policy,
    what `load_policy` reads; see `reacher.run.gate`) once one is kept;
  * replay (``replay.npz``): the replay buffer's arrays.
Older checkpoints lack some of these (`TrainingState.OPTIONAL`, ``policy``) and still
load and resume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from reacher.config import Config, as_dict
from reacher.errors import CheckpointError, one_line
from reacher.run.evaluation import Evaluation

# Why a run ended (`TrainingState.stop_reason`), each as the sentence training prints.
STOP_REASONS = {
    "steps": "ran the {steps:,} steps asked for",
    "success": "success confirmed at step {steps:,}: at least {target:g} % with 95 % confidence "
               "on {evals} fresh evaluations of the kept policy",
    "max_steps": "hit max_steps ({max_steps:,}) before success was confirmed at {target:g} % "
                 "(95 % confidence, {evals} fresh evaluations)",
    "signal": "stopped by {signal} at step {steps:,}",
}


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

    def stopped(self, reason: str | None) -> None:
        """Mark the run finished for `reason` (a STOP_REASONS key), or not finished (None:
        a periodic checkpoint or a signal's, which a resumed run continues from)."""
        self.finished, self.stop_reason = reason is not None, reason
        if reason is None:
            self.final_evaluation = None

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
            values["best"]["step"] = int(values["best"]["step"])
        if values.get("stop_reason") not in (None, *STOP_REASONS):  # it is printed: not a format string
            raise ValueError(f"stop_reason is {values['stop_reason']!r}, none of {', '.join(STOP_REASONS)}")
        return cls(**values)


# Counters a run's metadata may hold (training writes them all; a policy needs none), which
# `reacher.run.checkpoint` checks on every load: `TrainingState`'s and the agent's updates.
COUNTERS = ("env_steps", "episodes", "updates", "next_eval", "next_checkpoint", "success_streak",
            "periodic_evals", "wall_time", "eval_time", "update_debt")
REAL_COUNTERS = ("wall_time", "eval_time", "update_debt")


def contents(config: Config, *, obs_dim: int, act_dim: int, arm_file: str | None, arm_sha256: str | None,
             state: TrainingState, agent, rng: np.random.Generator, env_rng: np.random.Generator,
             noise, kept_policy: dict | None) -> tuple[dict, dict]:
    """The metadata and the model of a training checkpoint (the replay is the buffer's
    `state_dict`)."""
    metadata = {
        "obs_dim": obs_dim, "act_dim": act_dim,
        "env": config.env or None, "arm": None if config.env else config.arm, "arm_file": arm_file,
        "end_effector": None if config.env else config.end_effector, "arm_sha256": arm_sha256,
        "config": as_dict(config), "updates": agent.updates, **state.to_dict(),
        "rng": rng.bit_generator.state, "env_rng": env_rng.bit_generator.state,
        "noise": noise.state_dict(), "versions": library_versions(),
    }
    model = {"agent": agent.state_dict(), "torch_rng": torch.get_rng_state()}
    if kept_policy is not None:  # what load_policy reads; "agent" is what --resume trains on
        model["policy"] = kept_policy
    return metadata, model


def restore(checkpoint, *, agent, buffer, rng: np.random.Generator, env_rng: np.random.Generator,
            noise) -> tuple[TrainingState, dict | None]:
    """Load a checkpoint's content into a fresh run's objects; returns its `TrainingState`
    and kept policy. Content that does not fit raises `CheckpointError` naming the file,
    before the caller uses any of it."""
    try:
        return _restore(checkpoint, agent, buffer, rng, env_rng, noise)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        raise CheckpointError(checkpoint.path, f"cannot be restored ({one_line(err)})") from None


def _restore(checkpoint, agent, buffer, rng, env_rng, noise) -> tuple[TrainingState, dict | None]:
    meta = checkpoint.metadata
    state = TrainingState.from_dict(meta)
    agent.load_state_dict(checkpoint.model["agent"])
    torch.set_rng_state(checkpoint.model["torch_rng"])
    if checkpoint.replay is not None:
        buffer.load_state_dict(checkpoint.replay)
        buffer.end_episode()  # a signal may have saved mid-episode
    rng.bit_generator.state = meta["rng"]
    env_rng.bit_generator.state = meta["env_rng"]
    noise.load_state_dict(meta["noise"])
    kept = checkpoint.model["policy"] if state.best is not None else None
    if kept is not None:
        kept = {"actor": kept["actor"], "norm": kept["norm"]}
    return state, kept


def final_evaluation(state: TrainingState, metrics, episodes: int) -> Evaluation | None:
    """A finished run's final evaluation: from its checkpoint, or for a checkpoint older
    than that key, from its row in `metrics` (the run's `MetricsLog`)."""
    if state.final_evaluation is not None:
        return Evaluation.from_dict(state.final_evaluation)
    row = metrics.row_at(state.env_steps)
    if row is None or row["mean_return"] == "":
        return None
    number = lambda text: float(text) if text != "" else None  # noqa: E731
    return Evaluation(number(row["success_rate"]), number(row["mean_final_distance"]),
                      float(row["mean_return"]), episodes)


# --- what --resume checks -----------------------------------------------------------------------

# Fields that shape the networks: a checkpoint's weights only fit the same values.
NETWORK_FIELDS = ("hidden_sizes", "twin_critics", "normalize_obs", "critic_layernorm")
# Fields that define the task: the replay buffer and the policy were gathered on it, so a
# resumed run may not change them (the arm file itself is checked by its hash).
TASK_FIELDS = ("env", "end_effector", "control", "goal_observation", "control_period_s", "frame_skip",
               "episode_s", "max_episode_steps", "servo_speed", "ctrl_cost_weight",
               "precision_weight", "precision_scale_m", "success_radius")


def check_resumable(checkpoint, config: Config, obs_dim: int, act_dim: int,
                    arm_sha256: str | None) -> None:
    """Refuse to resume a checkpoint of another env, arm (file content), network or task."""
    check_sizes(checkpoint, obs_dim, act_dim, "this run's env")
    meta = checkpoint.metadata
    saved, ours = meta.get("config", {}), as_dict(config)
    if not isinstance(saved, dict):
        raise CheckpointError(checkpoint.path, "has corrupted metadata (config is not an object)")
    for name in NETWORK_FIELDS + TASK_FIELDS:
        if name in saved and saved[name] != ours[name]:
            raise CheckpointError(checkpoint.path, f"was trained with {name} = {saved[name]!r}; "
                                  f"a resumed run cannot change it (asked for {ours[name]!r})")
    if not config.env:
        saved_sha = meta.get("arm_sha256")
        if saved_sha is not None and saved_sha != arm_sha256:
            raise CheckpointError(checkpoint.path, f"was trained on another arm than {config.arm} "
                                  "(its file's SHA-256 differs: the file was changed or replaced)")
        if saved_sha is None and "arm" in saved and saved["arm"] != config.arm:  # checkpoints before the hash
            raise CheckpointError(checkpoint.path, f"was trained with arm = {saved['arm']!r}; "
                                  f"a resumed run cannot change it (asked for {config.arm!r})")


def check_sizes(checkpoint, obs_dim: int, act_dim: int, what: str) -> None:
    """Refuse a checkpoint trained on an env of other observation or action sizes."""
    meta = checkpoint.metadata
    if (meta.get("obs_dim"), meta.get("act_dim")) != (obs_dim, act_dim):
        raise CheckpointError(
            checkpoint.path,
            f"was trained with observation size {meta.get('obs_dim')} and action size "
            f"{meta.get('act_dim')}, but {what} has {obs_dim} and {act_dim}")


def library_versions() -> dict:
    import gymnasium
    import mujoco

    import reacher

    return {"reacher": reacher.__version__, "torch": torch.__version__,
            "mujoco": mujoco.__version__, "gymnasium": gymnasium.__version__,
            "numpy": np.__version__}
