"""Config files: reading a TOML file of config fields (bounded, checked, named in every
error) and writing a resolved config back as TOML."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tomllib

from reacher.config.schema import FIELDS_BY_NAME, Config, field_type, fields
from reacher.config.values import coerce
from reacher.errors import ConfigError, EnvIdError, UnreadableFile
from reacher.files import open_regular
from reacher.limits import MAX_CONFIG_BYTES as MAX_FILE_BYTES


def from_mapping(values: dict, base: Config | None = None, source: str = "config") -> Config:
    """A Config from a mapping of field names (TOML tables are flattened)."""
    return _apply(_coerced(values, source), base, source)


def _coerced(values: dict, source: str) -> dict:
    """The mapping flattened, each key checked against the fields and its value converted."""
    changes = {}
    for key, value in _flatten(values).items():
        if key not in FIELDS_BY_NAME:
            raise ConfigError(f"{source}: unknown key '{key}'")
        try:
            changes[key] = coerce(key, value, field_type(FIELDS_BY_NAME[key]))
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None
    return changes


def _apply(changes: dict, base: Config | None, source: str) -> Config:
    try:
        return dataclasses.replace(base or Config(), **changes)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def _flatten(values: dict) -> dict:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value))
        else:
            flat[key] = value
    return flat


def load_toml(path: str | Path, base: Config | None = None) -> Config:
    return _apply(read_toml(path), base, source=f"config file {path}")


def read_toml(path: str | Path) -> dict:
    """The key/value pairs of a config file, flattened and checked against the fields.

    A config file may come from someone else (a run's config.toml): its env id must not
    import a module of its own (see `reacher.envids`)."""
    from reacher.envids import check_untrusted

    path = Path(path)
    where = f"config file {path}"
    values = parse_toml_file(path, where)
    changes = _coerced(values, source=where)
    _apply(changes, None, source=where)  # a bad value is named with the file now
    try:
        check_untrusted(changes.get("env"), where)
    except EnvIdError as err:
        raise ConfigError(str(err)) from None
    return changes


def parse_toml_file(path: Path, where: str) -> dict:
    """A small TOML file's tables, or a ConfigError naming `where`: not a FIFO or device
    that would block or never end, not megabytes, UTF-8, and not nested beyond reason."""
    try:
        with open(open_regular(path), "rb") as f:  # a FIFO refused, never waited on
            data = f.read(MAX_FILE_BYTES + 1)
    except UnreadableFile as err:  # "cannot be read (no such file)", "… (is not a regular file …)"
        raise ConfigError(f"{where}: cannot be read ({err.problem})") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot be read ({err.strerror or err})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{where}: is larger than {MAX_FILE_BYTES // 1024} KiB; not a config file")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: is not UTF-8 text (byte {err.start}), so not TOML") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: not valid TOML ({err})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid TOML (nested too deeply)") from None


def to_toml(config: Config) -> str:
    """The fully resolved config as TOML, one commented line per field."""
    lines = ["# reacher training configuration (every field, resolved)"]
    for f in fields():
        value = getattr(config, f.name)
        lines.append(f"# {f.metadata['help']}")
        lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return json.dumps(str(value))  # JSON string escapes are valid TOML basic-string escapes


def as_dict(config: Config) -> dict:
    return {f.name: (list(v) if isinstance(v := getattr(config, f.name), tuple) else v)
            for f in fields()}
