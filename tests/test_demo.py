"""`reacher demo --arm ARM`: any arm is trained and rendered, beside (never over) the
two-link demo that `make demo` writes. Tiny budgets: the hidden --steps."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import imageio
import pytest

import reacher.api
import reacher.run.training  # noqa: F401  (now: its progress log binds to the session's stderr, not one test's capsys)
from reacher import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "arms"


def _record_renders(monkeypatch) -> list[Path]:
    """Replace the demo's rendering with a record of the files it would write."""
    renders = []

    def record(policy, out, **kwargs):
        renders.append(Path(out))
        Path(out).parent.mkdir(parents=True, exist_ok=True)  # as render_video does
        return SimpleNamespace(path=Path(out))

    monkeypatch.setattr(reacher.api, "render_policy", record)
    return renders


def _must_not_train(*args, **kwargs):
    raise AssertionError("the demo trained again")


@pytest.mark.slow
def test_demo_trains_and_renders_another_arm_into_its_own_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    arm = EXAMPLES / "four_link.xml"
    assert cli.main(["demo", "--arm", str(arm), "--end-effector", "tip", "--steps", "300"]) == 0
    out = capsys.readouterr().out
    assert "four_link" in out and "success rate" in out
    assert (tmp_path / "runs" / "demo-four_link" / "checkpoint.ckpt").is_file()
    frames = imageio.mimread(tmp_path / "videos" / "four_link.gif")
    assert len(frames) > 10 and frames[0].shape[:2] == (320, 320)
    assert (tmp_path / "videos" / "four_link.mp4").stat().st_size > 1000
    # The two-link demo's files are left alone.
    assert not (tmp_path / "runs" / "demo-two_link").exists()
    assert not (tmp_path / "videos" / "two_link.gif").exists()
    # A second call reuses the finished run instead of training again. Its videos are the
    # first call's, made again from the same run: recorded here, not rendered a second time
    # (software rendering is most of this test's minute).
    renders = _record_renders(monkeypatch)
    monkeypatch.setattr(reacher.api, "learn", _must_not_train)
    assert cli.main(["demo", "--arm", str(arm), "--end-effector", "tip", "--steps", "300"]) == 0
    assert "using the finished demo run" in capsys.readouterr().out
    assert renders == [Path("videos/four_link.mp4"), Path("videos/four_link.gif")]


def test_demo_of_a_missing_arm_is_one_error_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--arm", "no_such_arm.xml", "--steps", "10"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no_such_arm.xml" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_demo_refuses_a_run_directory_that_holds_another_arm(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    arm = EXAMPLES / "four_link.xml"
    renders = _record_renders(monkeypatch)  # the first demo's videos play no part here
    assert cli.main(["demo", "--arm", str(arm), "--end-effector", "tip", "--steps", "50"]) == 0
    assert (tmp_path / "runs" / "demo-four_link" / "checkpoint.ckpt").is_file() and len(renders) == 2
    other = tmp_path / "elsewhere" / "four_link.xml"
    other.parent.mkdir()
    other.write_text(arm.read_text())
    capsys.readouterr()
    assert cli.main(["demo", "--arm", str(other), "--end-effector", "tip", "--steps", "50"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "runs/demo-four_link" in err and "another arm" in err
