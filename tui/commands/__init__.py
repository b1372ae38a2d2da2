"""Subcommands of ``audiences-tui``, one module each, registered on the group."""

from __future__ import annotations

import importlib

import click

# Each module exposes ``commands``: a list of click commands or groups to add.
COMMAND_MODULES = (
    "tui.commands.sample",
    "tui.commands.import_",
    "tui.commands.segments",
    "tui.commands.activate",
)


def register(group: click.Group) -> None:
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a command family that is not part of this build
            raise
        for command in module.commands:
            group.add_command(command)
