"""Turning a TOML, command-line or Python value into a config field's type, or one error naming it."""

from __future__ import annotations

import operator
import os
from decimal import Decimal

from reacher.errors import ConfigError


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
            return _integer(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if kind is str:
            if isinstance(value, os.PathLike):  # Config(arm=Path(...)) in Python
                value = os.fspath(value)
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError, OverflowError, ArithmeticError):  # decimal's InvalidOperation
        pass
    raise ConfigError(f"{name}: expected {_type_name(kind)}, got {short(value)}")


def _integer(value) -> int:
    """An int from an int, an integral float or a numeral, exactly: "1e6" is 1000000, but
    "1e-3", "15e-1", 2.5, True and "x" are refused (ValueError or TypeError), never rounded."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    if not isinstance(value, str):
        return operator.index(value)  # int and numpy's integers; TypeError for anything else
    try:
        return int(value)
    except ValueError:
        pass
    number = Decimal(value.strip())  # "1e6", "2.0": exact, unlike a float
    # Beyond a float's range (1e400) is no integer either, as when these went through float
    if not number.is_finite() or number.adjusted() > 308 or number != number.to_integral_value():
        raise ValueError(value)
    return int(number)


def _type_name(kind) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, "a list of integers")


