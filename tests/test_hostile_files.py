"""Hostile files (issue 24): paths that are not files, small files that describe huge models,
sizes that would be allocated before they are checked, disks that fill, writers killed
half-way, directories that are not run directories.

Each refusal is one error naming the file, field or value, with nothing created or
changed; each piece of work (render, export) leaves every file complete or none. The
arms that would build gigabytes are loaded in one child process, which must stay under
1 GB and 5 s for each of them.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_hostile_inputs import CONFIG, cli_run, listing, make_run, one_error_line, rewrite, _metadata

from reacher import config as cfg
from reacher.files import CannotWrite, atomic_write, remove_temporaries, replacing_together
from reacher.run import checkpoint as ckpt
from reacher.run.checkpoint import CheckpointError
from reacher.run.policy import load_policy
from reacher.sim.arm import ArmFileError, load_arm

ENV = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}

ARM = """<mujoco>{head}<worldbody>{world}<body name="link"><joint name="j" axis="0 0 1"/>
<geom type="capsule" size="0.01" fromto="0 0 0 0.1 0 0"/><site name="fingertip" pos="0.1 0 0"/></body></worldbody>
<actuator><motor joint="j"/></actuator></mujoco>"""


def arm(tmp_path: Path, head: str = "", world: str = "", name: str = "arm.xml") -> Path:
    path = tmp_path / name
    path.write_text(ARM.format(head=head, world=world), encoding="utf-8")
    return path


def refused(path, says: str) -> str:
    with pytest.raises(ArmFileError) as caught:
        load_arm(path)
    message = str(caught.value)
    assert message.startswith(f"arm file {path}: ") and "\n" not in message, message
    assert says in message, message
    return message


# --- 2. arm paths that are not files ----------------------------------------------------------

def test_the_template_arm_loads(tmp_path):
    assert load_arm(arm(tmp_path)).n_joints == 1


@pytest.mark.parametrize("kind", ["fifo", "devzero", "link to devzero"])
def test_an_arm_that_is_not_a_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "arm.xml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path = Path("/dev/zero")
    else:
        path.symlink_to("/dev/zero")
    refused(path, "not a regular file")


@pytest.mark.parametrize("element", [
    '<include file="{f}"/>',
    '<asset><mesh name="m" file="{f}"/></asset>',
    '<asset><texture name="t" type="2d" file="{f}"/></asset>',
    '<asset><hfield name="h" file="{f}" size="1 1 1 1"/></asset>',
    '<asset><texture name="t" type="cube" fileright="{f}"/></asset>',
])
@pytest.mark.parametrize("where", ["beside", "meshdir", "devzero"])
def test_a_file_named_by_the_arm_that_is_not_a_file_is_refused(tmp_path, element, where):
    """A FIFO hung MuJoCo's reader; /dev/zero never ends. Found where MuJoCo looks:
    beside the arm, or in <compiler>'s meshdir or texturedir."""
    head = ""
    if where == "devzero":
        name = "/dev/zero"
    else:
        folder = tmp_path / ("assets" if where == "meshdir" else "")
        folder.mkdir(exist_ok=True)
        os.mkfifo(folder / "thing.bin")
        name = "thing.bin"
        if where == "meshdir" and "include" not in element:
            head = '<compiler meshdir="assets" texturedir="assets"/>'
        elif where == "meshdir":
            name = "assets/thing.bin"
    refused(arm(tmp_path, head + element.format(f=name)), "not a regular file")


def test_an_included_file_is_read_as_the_arm_is(tmp_path):
    (tmp_path / "part.xml").write_text('<mujoco><asset><mesh name="m" file="deep.stl"/></asset></mujoco>')
    os.mkfifo(tmp_path / "deep.stl")
    refused(arm(tmp_path, '<include file="part.xml"/>'), "deep.stl is not a regular file but a FIFO")


# --- 10. small files, huge models --------------------------------------------------------------

def _replicated(levels: int, count: int = 10) -> str:
    return ('<body name="r">' + f'<replicate count="{count}" offset="0.001 0 0">' * levels
            + '<geom size="0.001" contype="0" conaffinity="0"/>' + "</replicate>" * levels + "</body>")


HUGE = {
    "nested replicate": ("", _replicated(6), "elements once <replicate>"),
    "one replicate": ("", _replicated(1, 10**9), "elements once <replicate>"),
    "flexcomp": ("", '<flexcomp name="f" type="grid" count="1000 1000 1" spacing="0.01 0.01 0.01"/>',
                 "elements once"),
    "hfield 40000²": ('<asset><hfield name="h" nrow="40000" ncol="40000" size="1 1 1 1"/></asset>', "",
                      "1,600,000,000 samples"),
    "builtin texture": ('<asset><texture name="t" type="cube" builtin="flat" width="30000" height="30000"/>'
                        "</asset>", "", "pixels"),
    "arena": ('<size memory="64G"/>', "", "simulation memory"),
}


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def test_small_files_describing_huge_models_are_refused_in_memory_and_time(tmp_path):
    """Each arm alone made MuJoCo allocate gigabytes (six nested replicates: 4 GB in 12 s).
    Loaded one after another in a child process: each refused in under 5 s, all of them
    together under 1 GB."""
    cases = {name: (arm(tmp_path, head, world, f"{i}.xml"), says)
             for i, (name, (head, world, says)) in enumerate(HUGE.items())}
    (tmp_path / "big.png").write_bytes(_png_header(40000, 40000))
    cases["png height field"] = (arm(tmp_path, '<asset><hfield name="h" file="big.png" size="1 1 1 1"/></asset>',
                                     name="png.xml"), "samples")
    cases["png texture"] = (arm(tmp_path, '<asset><texture name="t" type="2d" file="big.png"/></asset>',
                                name="tex.xml"), "pixels")
    comment = tmp_path / "comment.xml"  # one 100 MB comment: reacher's own parse took 120 s
    comment.write_text(ARM.format(head="<!--" + "x" * (100 * 2**20) + "-->", world=""))
    cases["100 MB comment"] = (comment, "is larger than 16 MiB")
    script = """
import json, resource, sys, time
from reacher.sim.arm import ArmFileError, load_arm
out = {}
for name, path in json.loads(sys.argv[1]).items():
    start = time.monotonic()
    try:
        load_arm(path)
        out[name] = ["loaded", time.monotonic() - start]
    except ArmFileError as err:
        out[name] = [str(err), time.monotonic() - start]
out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""
    paths = {name: str(path) for name, (path, _) in cases.items()}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(paths)], env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.splitlines()[-1])
    for name, (path, says) in cases.items():
        message, seconds = out[name]
        assert message.startswith(f"arm file {path}: ") and says in message, (name, message)
        assert seconds < 5, (name, seconds)
    assert out["peak_mib"] < 1024, out


def test_a_large_arm_parses_in_linear_time(tmp_path):
    """The nesting-depth parse fed 64 KB chunks to expat, which re-scans a token cut
    across chunks: 8 MB of one comment took 0.9 s, and 100 MB would take two minutes."""
    path = arm(tmp_path, head="<!--" + "x" * (15 * 2**20) + "-->")
    import time
    start = time.monotonic()
    load_arm(path)
    assert time.monotonic() - start < 3


def test_many_elements_are_refused_while_parsing(tmp_path):
    path = arm(tmp_path, world='<body name="many">' + '<site size="0.001"/>' * 30_000 + "</body>")
    refused(path, "more than 20,000 elements")


def test_a_replicated_arm_within_the_bounds_still_loads(tmp_path):
    path = arm(tmp_path, world=_replicated(2))
    assert load_arm(path).model.ngeom >= 100


# --- 3. sizes checked before allocating ------------------------------------------------------------

@pytest.mark.parametrize("field, value, says", [
    ("action_delay_steps", 10**9, "action_delay_steps must be at most 1,000"),
    ("n_step", 10**9, "n_step must be at most 1,000"),
])
def test_sizes_of_a_config_are_bounded(field, value, says):
    with pytest.raises(cfg.ConfigError, match=says):
        cfg.Config(**{field: value})


@pytest.mark.parametrize("flag", ["--action-delay-steps", "--n-step"])
def test_absurd_sizes_on_the_command_line_are_one_line(tmp_path, monkeypatch, capsys, flag):
    monkeypatch.chdir(tmp_path)
    line = one_error_line(*cli_run(["train", flag, "1e9", "--run-dir", "r"], capsys))
    assert flag.strip("-").replace("-", "_") in line
    assert os.listdir(tmp_path) == []


def test_evaluate_with_a_config_of_absurd_delay_is_one_line(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    (tmp_path / "c.toml").write_text("action_delay_steps = 1000000000\n")
    before = listing(tmp_path)
    line = one_error_line(*cli_run(["evaluate", run, "--config", tmp_path / "c.toml"], capsys))
    assert "action_delay_steps" in line
    assert listing(tmp_path) == before


def test_hidden_sizes_beyond_what_model_pt_holds_are_refused_before_building(tmp_path):
    """A 364 KB checkpoint declaring hidden_sizes = [65536, 4096] built 10 GB of networks
    before torch said 'size mismatch'."""
    run = make_run(tmp_path / "run")
    path = run / ckpt.FILENAME
    meta = _metadata()
    meta["config"] = {**meta["config"], "hidden_sizes": [65536, 4096]}
    rewrite(path, **{"metadata.json": json.dumps({"format": ckpt.FORMAT, **meta}).encode()})
    import tracemalloc
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"hidden_sizes \[65536, 4096\].*model.pt holds"):
            load_policy(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 * 2**20


def test_a_checkpoint_naming_a_device_as_its_arm_is_one_line(tmp_path, capsys):
    """config.arm = /dev/zero made evaluate eat 3 GB in 11 s, then a MemoryError."""
    run = make_run(tmp_path / "run", CONFIG.replace(env="", arm="/dev/zero"), env=None, arm="/dev/zero")
    before = listing(tmp_path)
    line = one_error_line(*cli_run(["evaluate", run, "--episodes", "1"], capsys))
    assert "/dev/zero" in line and "not a regular file" in line
    assert listing(tmp_path) == before


def test_inspect_of_a_fifo_is_one_line(tmp_path, capsys):
    os.mkfifo(tmp_path / "arm.xml")
    line = one_error_line(*cli_run(["inspect", tmp_path / "arm.xml"], capsys))
    assert "arm.xml" in line and "FIFO" in line
