"""The msdnet command itself: every subcommand's help renders, bad input is one line."""

from __future__ import annotations

import pytest

from msdnet.cli import _command_modules, main


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("cost", "train", "predict", "anytime", "budgeted", "infer", "figure", "collect"):
        assert name in out


@pytest.mark.parametrize("name", sorted(_command_modules()))
def test_every_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: msdnet" in capsys.readouterr().out
