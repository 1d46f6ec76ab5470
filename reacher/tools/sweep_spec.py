"""A sweep spec: a TOML file naming a base config, seeds and a grid of config values.

    steps = 3000                  # any `reacher train` config key: the base of every trial
    seeds = [0, 1, 2]
    [grid]                        # every combination of these values, each with every seed
    arm = ["two_link", "three_link"]
    hidden_sizes = ["64,64", "128,128"]

Keys and values go through reacher.config's coercion, so every Config field is a valid
key and a bad one is refused with the config's own one-line error, naming the spec.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from reacher import config as cfg
from reacher.envids import check_untrusted
from reacher.errors import EnvIdError, SpecError
from reacher.limits import MAX_SEED
from reacher.run.arms import absolute_arm

RUNS = "runs"  # trials' run directories live in OUT/runs/


@dataclass(frozen=True)
class Trial:
    """One grid point with one seed, trained in its own run directory."""

    point: dict  # grid key -> value (coerced), in the spec's order
    seed: int
    config: cfg.Config
    run_dir: Path

    @property
    def name(self) -> str:
        return self.run_dir.name


@dataclass
class Spec:
    """A parsed sweep spec."""

    path: Path
    base: cfg.Config
    seeds: list[int]
    grid: dict[str, list]  # key -> coerced values
    threads_given: bool = False  # whether the spec sets threads (else trials use one each)

    @property
    def points(self) -> list[dict]:
        """Every combination of grid values ([{}] for no grid), in the spec's order."""
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*self.grid.values())]

    def point_config(self, point: dict) -> cfg.Config:
        """The base with a grid point: what best.toml holds."""
        return self.base.replace(**point)

    def trial_config(self, point: dict, seed: int) -> cfg.Config:
        config = self.point_config(point).replace(seed=seed)
        # Trials share the cores: one torch thread each unless the spec says otherwise.
        return config if self.threads_given or "threads" in point else config.replace(threads=1)

    def fingerprint(self) -> str:
        """A hash of what the spec asks for, not of its layout or comments: a sweep
        records it, and resuming with another spec is refused. Base fields at their
        defaults are left out, so a field added to Config later changes no hash."""
        defaults = cfg.as_dict(cfg.Config())
        base = {k: v for k, v in cfg.as_dict(self.base).items() if v != defaults[k]}
        grid = {k: [value_text(v) for v in values] for k, values in self.grid.items()}
        text = json.dumps({"base": base, "seeds": self.seeds, "grid": grid,
                           "threads_given": self.threads_given}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def trials(self, out: Path) -> list[Trial]:
        """Grid × seeds, each with its run directory under ``out/runs``."""
        names = _point_names(self.points)
        return [Trial(point, seed, self.trial_config(point, seed),
                      out / RUNS / ",".join(filter(None, (name, f"seed={seed}"))))
                for point, name in zip(self.points, names) for seed in self.seeds]


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec; raises `SpecError` naming the file and the first bad key."""
    path = Path(path)
    where = f"sweep spec {path}"
    try:
        raw = cfg.parse_toml_file(path, where)
    except cfg.ConfigError as err:
        raise SpecError(str(err)) from None
    seeds = raw.pop("seeds", None)
    grid = raw.pop("grid", {})
    for key, value in raw.items():
        if isinstance(value, dict):
            raise SpecError(f"{where}: unknown table [{key}] (the spec has [grid] and config keys)")
    try:
        base = cfg.from_mapping(raw, source=where)
    except cfg.ConfigError as err:
        raise SpecError(str(err)) from None
    spec = Spec(path, absolute_arm(base), _seeds(seeds, base.seed, where), _grid(grid, where),
                threads_given="threads" in raw)
    for point in spec.points:
        try:
            spec.point_config(point)
        except cfg.ConfigError as err:
            raise SpecError(f"{where}: grid point {point_label(point)}: {err}") from None
    try:  # a spec is a file: its env ids may not import modules of their own
        for env_id in {spec.base.env, *spec.grid.get("env", [])}:
            check_untrusted(env_id, where)
    except EnvIdError as err:
        raise SpecError(str(err)) from None
    return spec


def _seeds(seeds, default: int, where: str) -> list[int]:
    if seeds is None:
        return [default]
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise SpecError(f"{where}: seeds must be a non-empty list of non-negative integers, got {seeds!r}")
    too_large = [s for s in seeds if s >= MAX_SEED]
    if too_large:
        raise SpecError(f"{where}: seeds must be below 2**62 (numpy and torch seed with 64-bit integers), "
                        f"got {too_large[0]}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"{where}: seeds has duplicates: {seeds!r}")
    return seeds


def _grid(grid, where: str) -> dict[str, list]:
    if not isinstance(grid, dict):
        raise SpecError(f"{where}: grid must be a table ([grid]), got {grid!r}")
    fields = {f.name: f for f in cfg.fields()}
    coerced = {}
    for key, values in grid.items():
        if key == "seed":
            raise SpecError(f"{where}: grid.seed: list seeds as `seeds = [...]` at the top of the spec")
        if key not in fields:
            raise SpecError(f"{where}: grid: unknown key '{key}'")
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: grid.{key} must be a non-empty list of values, got {values!r}")
        try:
            items = [cfg.coerce(key, v, cfg.field_type(fields[key])) for v in values]
        except cfg.ConfigError as err:
            raise SpecError(f"{where}: grid.{err}") from None
        if key == "arm":
            items = [absolute_arm(cfg.Config(arm=a)).arm for a in items]
        if len(set(items)) != len(items):
            raise SpecError(f"{where}: grid.{key} has duplicate values: {values!r}")
        coerced[key] = items
    return coerced


def value_text(value) -> str:
    """A config value as a spec or flag would write it: 64,64 · true · 0.001 · three_link."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def point_label(point: dict) -> str:
    return " ".join(f"{k}={value_text(v)}" for k, v in point.items()) or "(base)"


def _point_names(points: list[dict]) -> list[str]:
    """Readable, file-system-safe names (arm=three_link,hidden_sizes=64-64); numbered
    instead when two would clash or one grows unwieldy."""
    def slug(value) -> str:
        text = Path(value).stem if isinstance(value, str) and "/" in value else value_text(value)
        return re.sub(r"[^A-Za-z0-9._+-]+", "-", text)

    names = [",".join(f"{k}={slug(v)}" for k, v in point.items()) for point in points]
    if len(set(names)) < len(names) or any(len(n) > 120 for n in names):
        names = [f"point{i:03d}" for i in range(len(points))]
    return names
