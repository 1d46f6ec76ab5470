"""The one typed training configuration; the CLI flags and config.toml are generated from it.

`schema` holds the dataclass (each field's ``help`` is its documentation: what
``reacher train --help`` prints and docs/configuration.md lists) and its bounds;
`values` turns a TOML, command-line or Python value into a field's type; `tomlfile`
reads and writes config files. Everything is imported from here, except the bounds the
fields are checked against, which are reacher.limits'.
"""

from reacher.config.schema import (
    FIELDS_BY_NAME,
    FRACTION_FIELDS,
    RANDOMISATION_FIELDS,
    Config,
    check_randomisation,
    field_type,
    fields,
    saved_base,
    setting,
    usable_cpus,
)
from reacher.config.tomlfile import (
    as_dict,
    from_mapping,
    load_toml,
    parse_toml_file,
    read_toml,
    to_toml,
)
from reacher.config.values import coerce, short
from reacher.errors import ConfigError  # part of reacher.config's API

__all__ = [
    "FIELDS_BY_NAME", "FRACTION_FIELDS", "RANDOMISATION_FIELDS", "Config", "ConfigError", "as_dict",
    "check_randomisation", "coerce", "field_type", "fields", "from_mapping", "load_toml", "parse_toml_file",
    "read_toml", "saved_base", "setting", "short", "usable_cpus", "to_toml",
]
