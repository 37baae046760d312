"""Every command's ``--help`` works: the commands are found by walking the click group, not from a list."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gendetect.cli import main


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group`` (``("data", "index")``...), groups included, the root as ``()``."""
    out = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
        else:
            out.append((*path, name))
    return out


COMMANDS = _commands(main)


def test_the_walk_finds_nested_commands() -> None:
    assert {("scan",), ("data", "generate"), ("features", "extract"), ("models", "list")} <= set(COMMANDS)
    assert len(COMMANDS) > 15


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "gendetect")
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="gendetect")
    assert result.exit_code == 0, result.output
    usage = " ".join(("Usage: gendetect", *path))
    assert result.output.startswith(usage), result.output[:200]
    command = main
    for name in path:
        command = command.commands[name]
    first_line = (command.help or "").strip().splitlines()[0] if command.help else ""
    assert first_line[:40] in " ".join(result.output.split()), first_line
