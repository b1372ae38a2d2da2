"""Shared pytest configuration: the `slow` marker is skipped unless --run-slow is given."""

from __future__ import annotations

import pytest

from tests.services.fixtures import postgres_url  # noqa: F401


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run tests marked slow (long fuzz and scale runs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
