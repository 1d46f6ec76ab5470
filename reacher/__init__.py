"""reacher: teach a simulated MuJoCo arm to reach with DDPG, and watch it on video.

Importing reacher registers the Gymnasium environments ``reacher/TwoLink-v0``,
``reacher/ThreeLink-v0`` and ``reacher/Reach-v0`` (any arm: ``arm=``, ``end_effector=``).

The Python API (see `reacher.api`): ``Config``, ``learn``, ``load_policy``,
``evaluate_policy``, ``render_policy``, and ``ReachEnv``. They load on first use, so
that ``import reacher`` (which every ``gym.make("reacher/...")`` needs) stays quick
and does not import torch.
"""

import importlib

from reacher.sim.rendering import select_gl_backend

# Must run before anything imports mujoco: MuJoCo reads MUJOCO_GL once, at import.
select_gl_backend()

import gymnasium as _gym  # noqa: E402
from gymnasium.envs.registration import WrapperSpec as _WrapperSpec  # noqa: E402

__version__ = "0.1.0"

_ENTRY_POINT = "reacher.task.env:ReachEnv"
# Registered envs end their episodes at the arm's own length (as `reacher train` and a bare
# ReachEnv do: 1 s, 2 s for servo-driven arms), so no TimeLimit is registered; one that
# gym.make(id, max_episode_steps=N) adds counts alone (reacher.task.env.DefersToTimeLimit).
_DEFER = _WrapperSpec("DefersToTimeLimit", "reacher.task.env:DefersToTimeLimit", {})
for _env_id, _kwargs in (("reacher/TwoLink-v0", {"arm": "two_link"}),
                         ("reacher/ThreeLink-v0", {"arm": "three_link"}),
                         ("reacher/Reach-v0", {})):
    if _env_id not in _gym.registry:
        _gym.register(id=_env_id, entry_point=_ENTRY_POINT, kwargs=_kwargs, additional_wrappers=(_DEFER,))

# Top-level name -> the module that defines it.
_API = {"Config": "reacher.config", "learn": "reacher.api", "load_policy": "reacher.api",
        "evaluate_policy": "reacher.api", "render_policy": "reacher.api", "ReachEnv": "reacher.task.env"}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'reacher' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
