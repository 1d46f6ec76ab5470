"""Hostile files (issue 24): paths that are not files, small files that describe huge models,
sizes that would be allocated before they are checked, disks that fill, writers killed
half-way, directories that are not run directories.

Each refusal is one error naming the file, field or value, with nothing created or
changed; each piece of work (render, export) leaves every file complete or none. The
arms that would build gigabytes are loaded in one child process, which must stay under
1 GB and 5 s for each of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_hostile_inputs import CONFIG, cli_run, listing, make_run, one_error_line, rewrite, _metadata

from reacher import config as cfg
from reacher.errors import ArmFileError, CannotWrite, CheckpointError
from reacher.files import atomic_write, remove_temporaries, replacing_together
from reacher.run import checkpoint as ckpt
from reacher.run.policy import load_policy
from reacher.sim.arm import load_arm

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


def test_a_nested_include_is_found_beside_the_file_that_includes_it(tmp_path):
    """MuJoCo looks for an include beside the including file as well as beside the arm."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part.xml").write_text('<mujoco><include file="inner.xml"/></mujoco>')
    os.mkfifo(tmp_path / "sub" / "inner.xml")
    refused(arm(tmp_path, '<include file="sub/part.xml"/>'), "inner.xml is not a regular file but a FIFO")



# A child that loads the arm given, having swapped its files just after reacher's checks:
# the mesh and the include for FIFOs (which hung MuJoCo's reader), the nested include for
# other contents. It prints the model's geom names.
_SWAP_AFTER_CHECKS = """
import os, sys
from pathlib import Path
from reacher.sim import armfile
from reacher.sim.arm import load_arm
folder = Path(sys.argv[1])
checked = armfile._Walk.run
def run(self, root):
    checked(self, root)
    for name in ("meshes/tetra.stl", "sub/part.xml"):
        os.unlink(folder / name)
        os.mkfifo(folder / name)
    (folder / "sub" / "inner.xml").write_text('<mujoco><geom name="swapped" size="0.02"/></mujoco>')
armfile._Walk.run = run
model = load_arm(folder / "arm.xml").model
print(" ".join(model.geom(i).name for i in range(model.ngeom)))
"""


def _tetrahedron_stl() -> bytes:
    import struct

    corners = [(0, 0, 0), (0.01, 0, 0), (0, 0.01, 0), (0, 0, 0.01)]
    faces = [(0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)]
    data = b"\0" * 80 + struct.pack("<I", len(faces))
    for face in faces:
        data += struct.pack("<3f", 0, 0, 0) + b"".join(struct.pack("<3f", *corners[i]) for i in face) + b"\0\0"
    return data


def test_mujoco_loads_the_bytes_reacher_checked_not_the_files_swapped_since(tmp_path):
    """Between reacher's checks and MuJoCo's read, a file swapped for a FIFO hung the load
    (MuJoCo opened every file again by its path) and one changed was loaded unchecked."""
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "tetra.stl").write_bytes(_tetrahedron_stl())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part.xml").write_text('<mujoco><include file="inner.xml"/></mujoco>')
    (tmp_path / "sub" / "inner.xml").write_text('<mujoco><geom name="inner" size="0.02"/></mujoco>')
    arm(tmp_path, '<compiler meshdir="meshes"/><asset><mesh name="tetra" file="tetra.stl"/></asset>',
        '<geom name="mesh" type="mesh" mesh="tetra" contype="0" conaffinity="0"/><include file="sub/part.xml"/>')
    child = subprocess.run([sys.executable, "-c", _SWAP_AFTER_CHECKS, str(tmp_path)], env=ENV,
                           capture_output=True, text=True, timeout=20)
    assert child.returncode == 0, child.stderr[-2000:]
    names = child.stdout.split()
    assert "mesh" in names and "inner" in names and "swapped" not in names, names


def test_two_included_files_of_one_name_in_two_folders_both_load(tmp_path):
    """MuJoCo's in-memory files are keyed by name without the folder: two files of one
    name are each still read from their own folder."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.xml").write_text(f'<mujoco><geom name="g{folder}" size="0.02"/></mujoco>')
    model = load_arm(arm(tmp_path, world='<include file="a/x.xml"/><include file="b/x.xml"/>')).model
    names = {model.geom(i).name for i in range(model.ngeom)}
    assert {"ga", "gb"} <= names, names

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
    "shadow map": ('<visual><quality shadowsize="100000"/></visual>', "", "pixels a side"),
    "builtin mesh": ('<asset><mesh name="m" builtin="supersphere" params="1000 1 1"/></asset>', "", "vertices"),
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
import json, sys, time
def peak_mib():
    # VmHWM, this image's own peak: ru_maxrss keeps the forking parent's (pytest's) across exec
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
from reacher.errors import ArmFileError
from reacher.sim.arm import load_arm
out = {}
for name, path in json.loads(sys.argv[1]).items():
    start = time.monotonic()
    try:
        load_arm(path)
        out[name] = ["loaded", time.monotonic() - start]
    except ArmFileError as err:
        out[name] = [str(err), time.monotonic() - start]
    out[name].append(peak_mib())
out["peak_mib"] = peak_mib()
print(json.dumps(out))
"""
    paths = {name: str(path) for name, (path, _) in cases.items()}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(paths)], env=ENV, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.splitlines()[-1])
    for name, (path, says) in cases.items():
        message, seconds, _ = out[name]
        assert message.startswith(f"arm file {path}: ") and says in message, (name, message)
        assert seconds < 5, (name, seconds)
    peaks = {name: round(out[name][2]) for name in cases}  # the peak after each case: which one grew it
    assert out["peak_mib"] < 1024, peaks


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


# --- 6. a run directory is known by its marker ---------------------------------------------------

def _project(tmp_path: Path) -> tuple[Path, dict]:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "config.toml").write_text("# my project's own config\n")
    (proj / "metrics.csv").write_text("sales,2024\n")
    (proj / ".draft.tmp").write_text("half a thought")
    return proj, listing(proj)


@pytest.mark.parametrize("keep", ["config.toml", "metrics.csv", ".draft.tmp"])
def test_another_directory_is_not_taken_for_a_run_dir(tmp_path, monkeypatch, capsys, keep):
    """--run-dir proj overwrote proj's config.toml and metrics.csv and deleted its .tmp files."""
    monkeypatch.chdir(tmp_path)
    proj, _ = _project(tmp_path)
    for other in {"config.toml", "metrics.csv", ".draft.tmp"} - {keep}:
        (proj / other).unlink()
    before = listing(proj)
    line = one_error_line(*cli_run(["train", "--env", "Pendulum-v1", "--steps", "10", "--run-dir", proj,
                                    "--quiet"], capsys))
    assert "not a reacher run directory" in line and keep in line
    assert listing(proj) == before


def test_a_run_dir_is_marked_and_an_old_one_still_resumes(tmp_path, capsys):
    """A new run marks its directory; one of an earlier version has no marker, and
    --resume continues it (and marks it)."""
    run = tmp_path / "run"
    small = ["--env", "Pendulum-v1", "--hidden-sizes", "8,8", "--warmup-steps", "10", "--eval-every", "30",
             "--eval-episodes", "1", "--final-eval-episodes", "1", "--threads", "1", "--run-dir", run, "--quiet"]
    code, err = cli_run(["train", *small, "--steps", "30"], capsys)
    assert code == 0, err
    assert (run / ".reacher-run").is_file()
    (run / ".reacher-run").unlink()  # as earlier versions left a run dir
    (run / ".checkpoint.ckpt.0123456789abcdef.tmp").write_bytes(b"cut short by kill -9")
    code, err = cli_run(["train", "--run-dir", run, "--resume", "--steps", "60", "--quiet"], capsys)
    assert code == 0, err
    assert (run / ".reacher-run").is_file()
    assert not (run / ".checkpoint.ckpt.0123456789abcdef.tmp").exists()


# --- 8. damaged run-dir entries ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["metrics.csv", ".lock", "config.toml"])
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_run_file_that_is_not_a_file_is_one_line_naming_it(tmp_path, capsys, name, kind):
    """A FIFO metrics.csv made --resume hang; a directory there gave 'error: [Errno 21] Is a
    directory: 4', a FIFO .lock 'error: [Errno 22] Invalid argument'."""
    run = make_run(tmp_path / "run")
    path = run / name
    path.unlink(missing_ok=True)
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    before = listing(tmp_path)
    line = one_error_line(*cli_run(["train", "--run-dir", run, "--resume", "--steps", "40", "--quiet"], capsys))
    assert str(path) in line and "not a regular file" in line
    assert listing(tmp_path) == before


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A genuine, resumable Pendulum run of 30 steps."""
    return _train_30_steps(tmp_path_factory.mktemp("trained") / "run", "--env", "Pendulum-v1")


def _train_30_steps(run: Path, *what: str) -> Path:
    """`reacher train` of 30 steps on `what` (an env or an arm) into `run`, as a user runs it."""
    args = ["train", *what, "--hidden-sizes", "8,8", "--warmup-steps", "10", "--steps", "30",
            "--eval-every", "30", "--eval-episodes", "1", "--final-eval-episodes", "1", "--threads", "1",
            "--run-dir", str(run), "--quiet"]
    subprocess.run([sys.executable, "-m", "reacher", *args], env=ENV, check=True, timeout=300,
                   capture_output=True)
    return run


def test_a_metrics_file_that_is_not_text_is_one_line(tmp_path, capsys, trained):
    import shutil
    run = Path(shutil.copytree(trained, tmp_path / "run"))
    (run / "metrics.csv").write_bytes(b"step\n\xff\xfe\x00\n")
    before = listing(tmp_path)
    line = one_error_line(*cli_run(["train", "--run-dir", run, "--resume", "--steps", "40", "--quiet"], capsys))
    assert str(run / "metrics.csv") in line
    assert listing(tmp_path) == before


# --- 1. full disks: each output complete and valid, or absent with the old one untouched ----------

@pytest.fixture
def full_disk(tmp_path):
    """A 64 KB tmpfs, mounted for the test (root only), with `room` bytes left free."""
    mount = tmp_path / "full"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip("needs permission to mount a small tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _contents(directory: Path) -> dict:
    """Each file's name and bytes (a directory's own mtime changes with any file made and
    removed in it, a temporary one included)."""
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def _fill(directory: Path, leave: int) -> None:
    """Fill `directory`'s filesystem to `leave` bytes free."""
    free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
    (directory / "ballast").write_bytes(bytes(max(0, free - leave)))


def _reach_env():
    from reacher.task.env import ReachEnv
    env = ReachEnv("two_link", max_episode_steps=40)
    env.model.vis.quality.shadowsize = 512
    return env


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_a_render_onto_a_full_disk_names_the_file_and_keeps_the_old_one(full_disk, suffix):
    """24 KB free: render exited 0 with "wrote … (152 frames)" over a file that did not play."""
    from reacher.tools.video import render_video
    out = full_disk / f"v{suffix}"
    out.write_bytes(b"the previous video")
    _fill(full_disk, 8 * 1024)
    before = _contents(full_disk)
    with pytest.raises(CannotWrite) as caught:
        render_video(lambda obs: np.zeros(2), _reach_env(), out, episodes=2, size=(320, 240))
    assert str(caught.value) == f"cannot write {out}: No space left on device"
    assert out.read_bytes() == b"the previous video"
    assert _contents(full_disk) == before


def test_atomic_writes_onto_a_full_disk_leave_nothing(full_disk):
    (full_disk / "kept.txt").write_text("old")
    _fill(full_disk, 4 * 1024)
    before = _contents(full_disk)
    with pytest.raises(CannotWrite, match=f"cannot write {full_disk / 'kept.txt'}: No space left on device"):
        with atomic_write(full_disk / "kept.txt") as f:
            f.write(bytes(64 * 1024))
    with pytest.raises(CannotWrite, match="b.json: No space left on device"):
        with replacing_together(full_disk / "a.onnx", full_disk / "b.json") as (a, b):
            a.write(b"small")
            b.write(bytes(64 * 1024))
    assert _contents(full_disk) == before and (full_disk / "kept.txt").read_text() == "old"


# --- kill -9 and long names: nothing half-written survives the next run ---------------------------

def test_a_render_clears_what_a_killed_render_left_and_keeps_a_live_ones(tmp_path):
    """SIGTERM during render left `.v.XXXX.tmp.mp4`, which no later run removed (its name did
    not end in .tmp). A temporary file a live writer holds locked is left alone."""
    import fcntl
    from reacher.tools.video import render_video
    out = tmp_path / "v.mp4"
    stale = [tmp_path / ".v.mp4.0123456789abcdef.tmp", tmp_path / ".v.k2j4h5g6.tmp.mp4"]
    for path in stale:
        path.write_bytes(b"half a video")
    live = tmp_path / ".v.mp4.fedcba9876543210.tmp"
    live.write_bytes(b"being written")
    other = tmp_path / ".notes.txt.0123456789abcdef.tmp"
    other.write_bytes(b"someone else's")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        render_video(lambda obs: np.zeros(2), _reach_env(), out, episodes=1, size=(160, 120), hold_s=0)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, other.name])


@pytest.mark.parametrize("length", [245, 255])
def test_a_long_output_name_gets_a_temporary_name_that_fits(tmp_path, length):
    """A valid 245-character --out name failed: its temporary name would be 267 characters."""
    from reacher.tools.video import render_video
    out = tmp_path / ("v" * (length - 4) + ".gif")
    info = render_video(lambda obs: np.zeros(2), _reach_env(), out, episodes=1, size=(160, 120), hold_s=0)
    assert info.path == out and out.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    with atomic_write(tmp_path / ("c" * 255)) as f:
        f.write(b"fits")


def test_what_a_killed_export_left_is_cleared_by_the_next_export(tmp_path):
    """A temporary file of each output named is removed; the rest of the folder stays."""
    names = [".p.onnx.0123456789abcdef.tmp", ".p.json.0123456789abcdef.tmp", ".q.onnx.0123456789abcdef.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"half")
    assert sorted(remove_temporaries(tmp_path, of="p.onnx") + remove_temporaries(tmp_path, of="p.json")) == \
        sorted(names[:2])
    assert [p.name for p in tmp_path.iterdir()] == [names[2]]


@pytest.fixture(scope="module")
def arm_run(tmp_path_factory) -> Path:
    """A two_link run of 30 steps: enough to export."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    return _train_30_steps(tmp_path_factory.mktemp("arm") / "run", "--arm", "two_link")


@pytest.mark.parametrize("leave_kb", [1, 8])
def test_an_export_onto_a_full_disk_writes_neither_file_and_a_retry_works(arm_run, full_disk, capsys, leave_kb):
    """The export wrote p.onnx but no p.json, said 'error: [Errno 28] No space left on device'
    naming no file, and a retry was refused because the file 'exists'."""
    out = full_disk / "p.onnx"
    out.write_bytes(b"the previous model")
    (full_disk / "p.json").write_text("the previous sidecar")
    _fill(full_disk, leave_kb * 1024)
    before = _contents(full_disk)
    line = one_error_line(*cli_run(["export", arm_run, "--out", out, "--force"], capsys))
    assert line in (f"error: cannot write {out}: No space left on device",
                    f"error: cannot write {full_disk / 'p.json'}: No space left on device")
    assert _contents(full_disk) == before
    (full_disk / "ballast").unlink()
    code, err = cli_run(["export", arm_run, "--out", out, "--force"], capsys)
    assert code == 0, err
    assert json.loads((full_disk / "p.json").read_text())["format"] == "reacher-policy/1"


@pytest.mark.parametrize("leave_kb", [0, 20])
def test_a_train_onto_a_full_disk_names_the_file_and_the_same_command_then_works(full_disk, capsys, leave_kb):
    """Whatever filled up (the lock's record, the checkpoint), one line names it; no
    temporary file stays, and once there is room the same command runs."""
    run = full_disk / "run"
    args = ["train", "--env", "Pendulum-v1", "--hidden-sizes", "8,8", "--warmup-steps", "10", "--steps", "30",
            "--eval-every", "30", "--eval-episodes", "1", "--final-eval-episodes", "1", "--threads", "1",
            "--run-dir", run, "--quiet"]
    _fill(full_disk, leave_kb * 1024)
    line = one_error_line(*cli_run(args, capsys))
    assert line.startswith(f"error: cannot write {run}/") and line.endswith(": No space left on device"), line
    left = [p.name for p in run.iterdir()] if run.exists() else []
    assert not [n for n in left if n.endswith(".tmp") or n == ".lock"], left
    (full_disk / "ballast").unlink()
    code, err = cli_run(args, capsys)
    assert code == 0, err
    assert (run / ckpt.FILENAME).is_file()


def test_an_arm_path_that_is_not_utf8_is_one_line(tmp_path, capsys):
    """A non-UTF-8 arm path ended in a TypeError traceback from MjSpec.from_file."""
    path = Path(os.fsdecode(bytes(tmp_path) + b"/\xff.xml"))
    path.write_text(ARM.format(head="", world=""))
    line = one_error_line(*cli_run(["inspect", path], capsys))
    assert "not UTF-8" in line


def test_the_arm_digest_reads_the_arm_as_a_bounded_regular_file(tmp_path):
    """The checkpoint's and the sidecar's arm SHA-256 is read after the arm loaded, from a
    file that may have been replaced since: a FIFO there blocked the read for ever."""
    fifo = tmp_path / "arm.xml"
    os.mkfifo(fifo)
    script = ("import sys\nfrom reacher.errors import UnreadableFile\nfrom reacher.run.arms import arm_digest\n"
              "try:\n    arm_digest(sys.argv[1])\nexcept UnreadableFile as err:\n    print(err)\n")
    result = subprocess.run([sys.executable, "-c", script, str(fifo)], env=ENV, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "is not a regular file but a FIFO" in result.stdout
