"""Subcommands of ``audiences-tui``, one module each, registered on the group."""

from __future__ import annotations

import importlib

import click

# Each module exposes ``commands``: a list of click commands or groups to add.
COMMAND_MODULES = (
    "tui.commands.sample",
    "tui.commands.import_",
    "tui.commands.copy",
    "tui.commands.segments",
    "tui.commands.activate",
    "tui.commands.analysis",
)


def register(group: click.Group) -> None:
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        for command in module.commands:
            group.add_command(command)
