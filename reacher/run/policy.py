"""A trained policy loaded from a run directory or checkpoint, with the env it was trained on."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import gymnasium as gym
import numpy as np

from reacher.config import Config, from_mapping, saved_base
from reacher.config.schema import check_device_name
from reacher.ddpg.agent import Agent
from reacher.envids import import_user_modules
from reacher.errors import CheckpointError, ConfigError, UnreadableFile, one_line, printable
from reacher.run import checkpoint as ckpt
from reacher.run.arms import arm_digest
from reacher.run.envs import make_env
from reacher.run.settings import agent_kwargs, randomization
from reacher.task import randomize
from reacher.task.goal import flat_size, flatten


@dataclass
class TrainedPolicy:
    config: Config
    agent: Agent
    checkpoint: ckpt.Checkpoint
    _arm_checked: bool = field(default=False, repr=False, compare=False)

    def __call__(self, obs: np.ndarray | dict) -> np.ndarray:
        """The deterministic action for an observation, flat or goal Dict, or a batch of
        them (no exploration noise)."""
        return self.agent.act(flatten(obs))

    def make_env(self, render_mode: str | None = None, **render_kwargs) -> gym.Env:
        """The env this policy was trained on (nominal model; with the action history its
        observation held if it trained under a delay), checked against the checkpoint's sizes."""
        env = randomize.as_trained(make_env(self.config, render_mode=render_mode, **render_kwargs),
                                   randomization(self.config))
        ckpt.check_sizes(self.checkpoint, flat_size(env.observation_space),
                         int(np.prod(env.action_space.shape)), "its env now")
        if not self._arm_checked:
            self._arm_checked = True
            self._warn_if_arm_changed(env)
        return env

    @property
    def trained_arm_sha256(self) -> str | None:
        """The SHA-256 of the arm file as it was trained on (None: a Gymnasium env, or a
        checkpoint older than the hash)."""
        value = self.checkpoint.metadata.get("arm_sha256")
        return value if isinstance(value, str) else None

    def _warn_if_arm_changed(self, env: gym.Env) -> None:
        """Evaluate, render and export run the arm file as it is now: say so when that is not
        the file trained on (an edited gear or mass), since the figures then describe another arm."""
        source, trained = getattr(getattr(env.unwrapped, "arm", None), "source", None), self.trained_arm_sha256
        if source is None or trained is None:
            return
        try:
            now = arm_digest(source)
        except (OSError, UnreadableFile):  # gone or replaced since it loaded: nothing to compare
            return
        if now != trained:
            print(f"warning: arm file {printable(source)} has changed since the policy was trained on it "
                  f"(SHA-256 {now[:12]}… now, {printable(trained[:12])}… then); what follows uses the file "
                  f"as it is now", file=sys.stderr)


def load_policy(run: str | Path, device: str = "cpu", env_modules: Iterable[str] = ()) -> TrainedPolicy:
    """Load the actor (and normaliser) of a run; raises CheckpointError on a bad checkpoint.

    A run's env id never imports a module by itself (see `reacher.envids`): for a run
    trained on ``"module:Id"``, name the module in `env_modules` (or import it first)."""
    import_user_modules(env_modules, what="env_modules")
    check_device(device)
    checkpoint = ckpt.load(run, with_replay=False, map_location=device)
    meta = checkpoint.metadata
    try:
        config = from_mapping(meta["config"], saved_base(), source=f"checkpoint {checkpoint.path}")
        config = config.replace(device=device)
        agent = Agent(int(meta["obs_dim"]), int(meta["act_dim"]), **agent_kwargs(config))
        # "policy" is the kept (best-evaluated) policy, see reacher.run.gate; older runs have only "agent".
        agent.load_state_dict(checkpoint.model.get("policy", checkpoint.model["agent"]), policy_only=True)
    except (KeyError, IndexError, TypeError, RuntimeError, AttributeError, ConfigError) as err:
        raise CheckpointError(checkpoint.path, f"cannot be restored ({one_line(err)})") from None
    return TrainedPolicy(config, agent, checkpoint)


def check_device(device) -> None:
    """Raise ConfigError naming `device` unless torch can use it on this machine (a
    checkpoint loaded onto a device that is not there reads as corrupted to torch)."""
    problem = check_device_name(device)
    if problem is None and device.startswith("cuda"):
        import torch

        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            problem = f"device '{device}' requested but no CUDA GPU is available to torch"
        elif index >= torch.cuda.device_count():
            problem = f"device '{device}' requested but torch sees {torch.cuda.device_count()} CUDA GPU(s)"
    if problem:
        raise ConfigError(problem)
