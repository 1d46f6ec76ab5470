"""Turning a TOML, command-line or Python value into a config field's type, or one error naming it."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file or value reacher cannot use; the message names the key."""


def short(value) -> str:
    """A value as an error message shows it: a list as 1,2,3; anything cut at 60 characters."""
    text = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def coerce(name: str, value, kind: type):
    """Convert a TOML or command-line value to the field's type, or raise ConfigError naming it."""
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if kind == tuple[int, ...]:
            items = value if isinstance(value, (list, tuple)) else str(value).replace(" ", "").split(",")
            return tuple(_integer(v) for v in items if v != "")
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            if isinstance(value, bool):
                raise ValueError(value)
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: "1e400" for an integer
        pass
    raise ConfigError(f"{name}: expected {_type_name(kind)}, got {short(value)}")


def _integer(value) -> int:
    """An int from an int, an integral float or a numeral; refuses 2.5, True, "x"."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    return int(value)


def _type_name(kind) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, "a list of integers")


