"""Which Gymnasium env ids reacher may make, and from whom.

Gymnasium reads an id ``"module:Name-v0"`` as "import `module`, then make `Name-v0`",
so an id is code to run. What the user types (``--env mod:Id``, ``--import mod``, a
Python call) is theirs to run; an id read from a file someone else may have written
(a run's config.toml, a checkpoint, a ``--config`` or sweep spec file) is not. Such an
id must name an env that is registered already, and a module part only when that
module is imported already: by the user's own code, or by reacher on their word. Then
importing it again, as `gymnasium.make` does, runs nothing.
"""

from __future__ import annotations

import importlib
import sys
from typing import Iterable

import gymnasium as gym
from gymnasium.envs.registration import find_highest_version, parse_env_id

from reacher.errors import EnvIdError, one_line


def module_of(env_id: str) -> str | None:
    """The module part of ``"module:Name"``, or None."""
    return env_id.split(":", 1)[0] if ":" in env_id else None


def import_user_modules(modules: Iterable[str], what: str = "--import") -> None:
    """Import modules the user named (``--import``, ``--env mod:Id``, ``env_modules=``),
    so that ids from files may then refer to them; a failure is one line naming it."""
    for module in modules:
        if not module or module.startswith(".") or not all(p.isidentifier() for p in module.split(".")):
            raise EnvIdError(f"{what}: {module!r} is not a module name")
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and (module == err.name or module.startswith(err.name + ".")):  # the module itself, not one it needs
                raise EnvIdError(f"{what}: no module named {module!r}") from err
            raise EnvIdError(f"{what}: importing {module!r} failed ({one_line(err)})") from err
        except Exception as err:  # the user's own module; --debug shows its traceback
            raise EnvIdError(f"{what}: importing {module!r} failed "
                             f"({type(err).__name__}: {one_line(err)})") from err


def import_typed_env(env_id: str, what: str = "--env") -> None:
    """Import the module of an id the user typed, so a missing one is one line, not
    Gymnasium's ModuleNotFoundError traceback."""
    module = module_of(env_id)
    if module is not None:
        import_user_modules([module], what=f"{what} {env_id!r}")


def check_untrusted(env_id, source: str) -> None:
    """Refuse an env id read from `source` (a file) unless making it imports nothing new:
    its module, if any, is imported already and its name is registered."""
    if env_id in (None, ""):
        return
    where = f"{source}: env {env_id!r}"
    if not isinstance(env_id, str):
        raise EnvIdError(f"{where} is not a string")
    if env_id.count(":") > 1:
        raise EnvIdError(f"{where} is not a Gymnasium id (more than one ':')")
    module = module_of(env_id)
    name = env_id.split(":", 1)[-1]
    if module is not None and module not in sys.modules:
        raise EnvIdError(f"{where} would import module {module!r}, which a file may not ask for; "
                         f"if you trust it, name it yourself: --import {module} "
                         "(Python: import it first)")
    try:
        ns, base, version = parse_env_id(name)
    except gym.error.Error:
        raise EnvIdError(f"{where} is not a valid Gymnasium id") from None
    if name not in gym.registry and (version is not None or find_highest_version(ns, base) is None):
        raise EnvIdError(f"{where} is not registered; if a module of yours registers it, "
                         "name it: --import MODULE (Python: import it first)")
