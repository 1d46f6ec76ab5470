"""A Ctrl-C while the CLI imports torch or MuJoCo is an interrupt, not a crash: one
`error: interrupted` line and exit 130, no traceback (MuJoCo's extension turns the
KeyboardInterrupt into ImportError("initialization failed"))."""

from __future__ import annotations

import pytest

from reacher import cli


def _import_failed_by_interrupt() -> ImportError:
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt
    except ImportError as err:
        return err


def test_an_import_failed_by_ctrl_c_exits_130_with_one_line(monkeypatch, capsys):
    err = _import_failed_by_interrupt()

    def handler(args):
        raise err

    exits = []

    def exit_now(code):  # os._exit would end pytest itself
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", exit_now)
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["inspect"].set_defaults(handler=handler)
    with pytest.raises(SystemExit):
        cli.main(["inspect", "two_link"])
    assert exits == [130]
    assert capsys.readouterr().err == "error: interrupted\n"


def test_an_import_error_of_its_own_is_not_taken_for_an_interrupt():
    assert cli._caused_by_interrupt(_import_failed_by_interrupt())
    assert not cli._caused_by_interrupt(ImportError("no module named onnx"))
