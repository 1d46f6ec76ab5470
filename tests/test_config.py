"""reacher.config: validation that names the field, coercion of TOML and command-line
values, and the TOML file a run writes (config.toml) read back unchanged."""

from __future__ import annotations

import math

import pytest
import tomllib

from reacher import config as cfg
from reacher.config import Config, ConfigError

# Fields that make no sense at zero; every other number may be zero but not negative.
POSITIVE = ("control_period_s", "precision_scale_m", "success_radius",
            "batch_size", "buffer_size", "actor_lr", "critic_lr", "policy_delay",
            "eval_every", "eval_episodes", "final_eval_episodes", "checkpoint_every")
NUMBERS = tuple(f.name for f in cfg.fields() if cfg.field_type(f) in (int, float))


# --- validation ---------------------------------------------------------------------------

def test_defaults_are_valid_and_every_field_is_documented():
    Config()
    for f in cfg.fields():
        assert f.metadata.get("help"), f"field {f.name} has no help text"


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_fields_refuse_zero_and_name_the_field(name):
    with pytest.raises(ConfigError, match=rf"\b{name}\b"):
        Config(**{name: 0})


@pytest.mark.parametrize("name", [n for n in NUMBERS if n != "seed"])
def test_numbers_refuse_negatives_and_name_the_field(name):
    with pytest.raises(ConfigError, match=rf"\b{name}\b"):
        Config(**{name: -1})


@pytest.mark.parametrize("name, value", [
    ("hindsight_fraction", 1.5), ("hindsight_fraction", -0.1),
    ("gamma", 0.0), ("gamma", 1.0), ("gamma", math.nan),
    ("tau", 0.0), ("tau", 1.5),
    ("noise", "pink"), ("device", "tpu"),
    ("hidden_sizes", (32, 0)),
    ("actor_lr", math.nan), ("batch_size", -1),
    ("teacher_weight", math.inf), ("teacher_weight", 1e7), ("teacher_weight", "strong"),
    ("teacher_decay_updates", 1.5),
])
def test_bad_values_name_the_field(name, value):
    with pytest.raises(ConfigError, match=rf"\b{name}\b"):
        Config(**{name: value})


def test_replace_validates():
    with pytest.raises(ConfigError, match="batch_size"):
        Config().replace(batch_size=0)
    assert Config().replace(seed=3).seed == 3


def test_negative_seed_names_the_field():
    with pytest.raises(ConfigError, match="seed"):
        Config(seed=-1)


@pytest.mark.parametrize("name", ["updates_per_step", "actor_lr"])
def test_infinite_values_are_refused(name):
    with pytest.raises(ConfigError, match=name):
        Config(**{name: math.inf})


# --- coercion -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("true", True), ("False", False), ("1", True), ("0", False),
    ("yes", True), ("off", False), (" ON ", True),
])
def test_coerce_bool(value, expected):
    assert cfg.coerce("twin_critics", value, bool) is expected


@pytest.mark.parametrize("value, expected", [
    ("42", 42), (42, 42), (3.0, 3), ("1e3", 1000), ("20_000", 20000), (" 7 ", 7),
])
def test_coerce_int(value, expected):
    result = cfg.coerce("steps", value, int)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("value, expected", [("1e-3", 1e-3), (1, 1.0), ("0.5", 0.5), (2.5, 2.5)])
def test_coerce_float(value, expected):
    result = cfg.coerce("gamma", value, float)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value, expected", [
    ("32,32", (32, 32)), ("64", (64,)), ("64, 32 ", (64, 32)), ([16, 8], (16, 8)), ((8,), (8,)),
    (128, (128,)),
])
def test_coerce_int_tuple(value, expected):
    assert cfg.coerce("hidden_sizes", value, tuple[int, ...]) == expected


@pytest.mark.parametrize("name, value, kind", [
    ("twin_critics", "maybe", bool), ("twin_critics", "2", bool),
    ("steps", "3.5", int), ("steps", 2.5, int), ("steps", True, int), ("steps", "many", int),
    ("gamma", "high", float), ("gamma", True, float), ("gamma", [1], float),
    ("hidden_sizes", "a,b", tuple[int, ...]), ("hidden_sizes", "32;32", tuple[int, ...]),
    ("arm", 3, str), ("arm", ["two_link"], str),
])
def test_coerce_refuses_and_names_the_key(name, value, kind):
    with pytest.raises(ConfigError, match=rf"^{name}: expected"):
        cfg.coerce(name, value, kind)


def test_coerce_int_tuple_refuses_fractions():
    with pytest.raises(ConfigError, match="hidden_sizes"):
        cfg.coerce("hidden_sizes", [32.5, 64], tuple[int, ...])


def test_every_field_type_is_supported_by_coerce():
    for f in cfg.fields():
        kind = cfg.field_type(f)
        assert cfg.coerce(f.name, f.default, kind) == f.default


# --- TOML ----------------------------------------------------------------------------------

UNUSUAL = Config(
    arm='arms/my "quoted" arm\\v2 é.xml', end_effector="hand", env="", steps=123, seed=9,
    warmup_steps=0, updates_per_step=0.5, hidden_sizes=(64,), actor_lr=3e-4, critic_lr=1e-10,
    gamma=0.999, tau=1.0, twin_critics=True, normalize_obs=False, noise="ou",
    noise_scale=0.0, noise_final_scale=0.05, device="cuda:1", threads=3,
    precision_scale_m=1e-3, hindsight_fraction=0.0,
)


@pytest.mark.parametrize("config", [Config(), UNUSUAL], ids=["defaults", "unusual"])
def test_toml_round_trip(tmp_path, config):
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml(config), encoding="utf-8")
    assert cfg.load_toml(path) == config
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    assert list(raw) == [f.name for f in cfg.fields()]  # every field, flat, in order
    assert raw == cfg.as_dict(config)


def test_toml_round_trip_of_control_characters(tmp_path):
    config = Config(arm="odd\nname\t.xml")
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml(config), encoding="utf-8")
    assert cfg.load_toml(path) == config


def test_nested_tables_are_flattened(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('seed = 4\n[task]\narm = "three_link"\n[agent]\nhidden_sizes = [16, 8]\n'
                    "twin_critics = true\n[agent.optim]\nactor_lr = 1e-4\n", encoding="utf-8")
    config = cfg.load_toml(path)
    assert config == Config(seed=4, arm="three_link", hidden_sizes=(16, 8), twin_critics=True,
                            actor_lr=1e-4)


def test_file_values_sit_on_the_base(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("steps = 300\n", encoding="utf-8")
    config = cfg.load_toml(path, base=Config(seed=11, steps=5))
    assert (config.steps, config.seed) == (300, 11)


@pytest.mark.parametrize("text, key", [
    ("xxx = 1\n", "xxx"), ("[agent]\nbogus_rate = 0.1\n", "bogus_rate"),
])
def test_unknown_keys_are_named(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}: unknown key '{key}'"):
        cfg.load_toml(path)


@pytest.mark.parametrize("text, key", [
    ('gamma = "high"\n', "gamma"), ("batch_size = -1\n", "batch_size"), ("gamma = 1.5\n", "gamma"),
    ('hidden_sizes = ["a"]\n', "hidden_sizes"), ("twin_critics = 2\n", "twin_critics"),
    ("[agent]\ntau = 0\n", "tau"),
])
def test_bad_values_in_a_file_are_named(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"\b{key}\b"):
        cfg.load_toml(path)


def test_type_errors_in_a_file_name_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('gamma = "high"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}.*gamma"):
        cfg.load_toml(path)


def test_unreadable_or_invalid_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml: cannot be read"):
        cfg.load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        cfg.load_toml(bad)


# --- bounds: a huge value is refused by name, before numpy or torch overflow or allocate ------

INTEGERS = tuple(f.name for f in cfg.fields() if cfg.field_type(f) is int)


@pytest.mark.parametrize("name", INTEGERS)
def test_every_integer_field_refuses_what_overflows_int64_by_name(name):
    with pytest.raises(ConfigError, match=rf"^{name} must be .*got 100000000000000000000$"):
        cfg.Config().replace(**{name: 10**20})


@pytest.mark.parametrize("changes, says", [
    ({"seed": 2**62}, "seed must be below 2**62"),
    ({"hidden_sizes": (10**9,)}, "at most 65,536 units"),
    ({"hidden_sizes": (8,) * 65}, "at most 64 layers"),
    ({"hidden_sizes": (65_536, 65_536)}, "weights between hidden layers"),
    ({"buffer_size": 10**12}, "buffer_size must be at most 100,000,000"),
    ({"batch_size": 10**12}, "batch_size must be at most"),
    ({"threads": 10**6}, "threads must be at most 1024"),
])
def test_sizes_beyond_memory_name_the_field_and_the_bound(changes, says):
    with pytest.raises(ConfigError) as caught:
        cfg.Config().replace(**changes)
    assert says in str(caught.value)


def test_the_largest_allowed_values_are_accepted():
    cfg.Config(seed=2**62 - 1, hidden_sizes=(16_384, 16_384), buffer_size=100_000_000, threads=1024)


@pytest.mark.parametrize("text", ["1e400", "-1e400"])
def test_an_integer_too_large_for_a_float_is_a_type_error_by_name(text):
    with pytest.raises(ConfigError, match=f"steps: expected an integer, got '{text}'"):
        cfg.coerce("steps", text, int)


def test_a_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("# réglages\nsteps = 100\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{path}: is not UTF-8 text"):
        cfg.load_toml(path)


def test_an_oversized_or_deeply_nested_file_is_named(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("# x\n" * 300_000, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{big}: is larger than"):
        cfg.load_toml(big)
    deep = tmp_path / "deep.toml"
    deep.write_text("steps = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{deep}: "):
        cfg.load_toml(deep)
