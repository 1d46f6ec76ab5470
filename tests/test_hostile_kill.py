"""kill -9 of `reacher render` and `reacher export` mid-write (issue 24, "kill -9 at any
point"): a real process is SIGKILLed while its temporary file exists, and then nothing is
at the output path (or the older file there is untouched), and the next run clears what
the killed one left and writes the whole file.

Two points are hit: soon after the temporary file appears (frames or bytes going in), and
with the file complete but not yet renamed (the child's ``os.fsync`` is slowed so that the
kill lands exactly there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import pytest
from test_cli import ENV

# The child: the real CLI, with os.fsync (called on each temporary file just before its
# rename) optionally made to touch a marker and wait, so a kill can land at that point.
CHILD = """\
import os, sys, time
from pathlib import Path
marker = os.environ.get("REACHER_TEST_FSYNC_MARKER")
if marker:
    real = os.fsync
    def fsync(fd):
        Path(marker).touch()
        time.sleep(60)
        real(fd)
    os.fsync = fsync
sys.argv = ["reacher", *sys.argv[1:]]
from reacher.cli import run
run()
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("kill") / "run"
    result = subprocess.run([sys.executable, "-m", "reacher", "train", "--arm", "two_link", "--steps", "300",
                             "--hidden-sizes", "16,16", "--warmup-steps", "100", "--eval-every", "300",
                             "--eval-episodes", "1", "--final-eval-episodes", "1", "--threads", "1",
                             "--seed", "0", "--run-dir", str(run_dir)],
                            env=ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return run_dir


def _command(kind: str, run_dir: Path, out: Path, force: bool) -> list[str]:
    if kind == "render":
        return ["render", str(run_dir), "--out", str(out), "--episodes", "1", "--size", "64x64"]
    return ["export", str(run_dir), "--out", str(out), *(["--force"] if force else [])]


def _temporaries(folder: Path, out: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{out.name}.") and p.name.endswith(".tmp"))


def _kill_at(args: list[str], out: Path, point: str, marker: Path, deadline_s: float = 60.0) -> None:
    """Start the child; SIGKILL it at `point` ("writing": the temporary exists; "renaming":
    the child is in the fsync before the rename); fail if it finished first."""
    env = {**ENV, "REACHER_TEST_FSYNC_MARKER": str(marker) if point == "renaming" else ""}
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        start = time.monotonic()
        while time.monotonic() - start < deadline_s:
            reached = marker.exists() if point == "renaming" else bool(_temporaries(out.parent, out))
            if reached:
                if point == "writing":
                    time.sleep(0.2)  # some of it written
                break
            if child.poll() is not None:
                pytest.fail(f"the child ended (rc {child.returncode}) before '{point}': "
                            f"{child.stderr.read().decode()[-2000:]}")
            time.sleep(0.005)
        else:
            pytest.fail(f"'{point}' not reached in {deadline_s} s")
        os.kill(child.pid, signal.SIGKILL)  # the reacher process only, as `kill -9 PID` would
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL


def _settle(folder: Path, out: Path) -> None:
    """Let an ffmpeg left behind by the killed render (its own session; it ends on the
    closed pipe) finish with its temporary file, so the check after is not racing it."""
    sizes = None
    for _ in range(100):
        now = [(p, p.stat().st_size) for p in _temporaries(folder, out) if p.exists()]
        if now == sizes:
            return
        sizes = now
        time.sleep(0.1)


CASES = [("render", "rollout.mp4", "writing"), ("render", "rollout.mp4", "renaming"),
         ("export", "policy.onnx", "renaming")]


@pytest.mark.parametrize("older", [False, True], ids=["nothing_before", "older_file"])
@pytest.mark.parametrize("kind,name,point", CASES, ids=[f"{k}-{p}" for k, _, p in CASES])
def test_kill_9_leaves_nothing_half_written_and_the_next_run_cleans_up(small_run, tmp_path, kind, name,
                                                                        point, older):
    if kind == "export" and (find_spec("onnx") is None or find_spec("onnxruntime") is None):
        pytest.skip("export needs onnx and onnxruntime")
    out = tmp_path / name
    sidecar = out.with_suffix(".json")
    if older:
        out.write_bytes(b"older file")
        if kind == "export":
            sidecar.write_text("older sidecar")
    _kill_at(_command(kind, small_run, out, older), out, point, tmp_path / "marker")
    _settle(tmp_path, out)

    assert _temporaries(tmp_path, out), "killed mid-write: its temporary file should be left"
    if older:
        assert out.read_bytes() == b"older file"
        if kind == "export":
            assert sidecar.read_text() == "older sidecar"
    else:
        assert not out.exists() and not sidecar.exists()

    result = subprocess.run([sys.executable, "-m", "reacher", *_command(kind, small_run, out, older)], env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not _temporaries(tmp_path, out), "the next run should remove what the killed one left"
    if kind == "export":
        assert not _temporaries(tmp_path, sidecar)
        assert sidecar.read_text().startswith("{")
    data = out.read_bytes()
    assert data != b"older file" and len(data) > 100
    if kind == "render":
        assert data[4:8] == b"ftyp"  # an MP4 from its first box
