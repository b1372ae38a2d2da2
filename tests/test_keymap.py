"""Binding ids and the user's keymap file (keymap.yaml): every binding can be remapped,
the remapped keys work, show in the footer and the F1 help, and a bad file only warns."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.binding import Binding
from textual.dom import DOMNode

import tui
from tests.app_store import AS_OF, build, settle, table_ready
from tui.app import make_app
from tui.keymap import binding_ids, keymap_path, parse_keymap
from tui.screens.help import HelpScreen, help_table
from tui.screens.profiles import ProfilesScreen
from tui.screens.segments import SegmentsScreen
from tui.settings import settings_path
from tui.widgets.keys import key_lines

ID_SHAPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")


def all_bindings() -> list[tuple[str, Binding]]:
    """Every Binding declared by an App, Screen or Widget class anywhere under tui/."""
    found = []
    for module_info in pkgutil.walk_packages(tui.__path__, "tui."):
        module = importlib.import_module(module_info.name)
        for _, kind in inspect.getmembers(module, inspect.isclass):
            if not issubclass(kind, DOMNode) or kind.__module__ != module.__name__:
                continue
            for item in kind.__dict__.get("BINDINGS", []):
                assert isinstance(item, Binding), f"{kind.__qualname__}: use Binding(...), not a tuple"
                found.append((f"{module.__name__}.{kind.__qualname__}", item))
    return found


def test_every_binding_has_an_id_of_the_form_area_dot_action() -> None:
    bindings = all_bindings()
    assert len(bindings) > 150, "the walk found the app's bindings"
    missing = [f"{owner}: {b.key} -> {b.action}" for owner, b in bindings if not b.id]
    assert not missing, "bindings without an id (keymap.yaml cannot remap them):\n" + "\n".join(missing)
    badly_named = [f"{owner}: {b.id}" for owner, b in bindings if not ID_SHAPE.match(b.id or "")]
    assert not badly_named, "ids are <area>.<action>:\n" + "\n".join(badly_named)


def test_one_id_means_one_action_in_a_class() -> None:
    """Two different actions under one id in one class would be remapped together by mistake."""
    actions: dict[tuple[str, str], set[str]] = {}
    for owner, binding in all_bindings():
        actions.setdefault((owner, binding.id or ""), set()).add(binding.action)
    shared = {key: found for key, found in actions.items() if len(found) > 1}
    assert not shared


def test_the_keymap_file_knows_every_id() -> None:
    assert binding_ids() == {b.id for _, b in all_bindings()}


def test_the_keymap_file_sits_next_to_the_settings() -> None:
    assert keymap_path() == settings_path().with_name("keymap.yaml")


KNOWN = {"app.help", "app.quit", "builder.save", "builder.undo"}


def test_keys_as_a_string_or_a_list() -> None:
    found = parse_keymap("app.help: f9\napp.quit: ctrl+q, q\nbuilder.save: [ctrl+s, s]\n", KNOWN)
    assert found.problems == []
    assert found.keys == {"app.help": "f9", "app.quit": "ctrl+q,q", "builder.save": "ctrl+s,s"}


def test_an_empty_file_is_an_empty_keymap() -> None:
    found = parse_keymap("# nothing yet\n", KNOWN)
    assert found.keys == {} and found.problems == []
    assert found.message(Path("keymap.yaml")) is None


def test_malformed_yaml_is_one_problem_with_its_line() -> None:
    found = parse_keymap("app.help: f9\napp.quit: [ctrl+q\n", KNOWN)
    assert found.keys == {}
    assert len(found.problems) == 1 and "not valid YAML" in found.problems[0]
    message = found.message(Path("/conf/keymap.yaml"))
    assert message is not None and message.startswith("/conf/keymap.yaml: not valid YAML")


def test_a_list_instead_of_a_mapping_applies_nothing() -> None:
    found = parse_keymap("- app.help\n- f9\n", KNOWN)
    assert found.keys == {}
    assert found.problems and "expected 'binding-id: keys'" in found.problems[0]


@pytest.mark.parametrize("value", ["42", "true", "{a: b}", "''", "[f9, 3]", "'f9,,q'"])
def test_a_value_that_is_not_keys_is_named_and_the_rest_applies(value: str) -> None:
    found = parse_keymap(f"app.help: {value}\nbuilder.undo: ctrl+u\n", KNOWN)
    assert found.keys == {"builder.undo": "ctrl+u"}
    assert len(found.problems) == 1 and found.problems[0].startswith("app.help: expected a key")
    message = found.message(Path("keymap.yaml"))
    assert message is not None and message.endswith("The other entries apply.")


def test_unknown_ids_are_listed_with_a_suggestion() -> None:
    found = parse_keymap("builder.sav: ctrl+s\napp.hlep: f9\napp.quit: ctrl+q\n", KNOWN)
    assert found.keys == {"app.quit": "ctrl+q"}
    assert len(found.problems) == 2
    assert "unknown binding id 'builder.sav'" in found.problems[0]
    assert "Did you mean 'builder.save'" in found.problems[0]
    assert "'app.help'" in found.problems[1]


# ------------------------------------------------------------------ in the app


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("keymap") / "shop.db")


def write_keymap(text: str) -> Path:
    path = keymap_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def footer_keys(app: Any) -> dict[str, str]:
    """The footer's keys by description, as Textual's footer shows them."""
    from textual.widgets._footer import FooterKey

    return {k.description: k.key for k in app.screen.query(FooterKey)}


def warnings(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications if n.severity == "warning"]


async def test_a_remapped_key_works_the_old_one_does_not_and_help_shows_it(store: Path) -> None:
    write_keymap("app.help: f9\napp.segments: f7\n")
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        assert warnings(app) == []
        await settle(pilot, lambda: "Help" in footer_keys(app))  # the footer fills on a later refresh
        keys = footer_keys(app)
        assert keys["Help"] == "f9" and keys["Segments"] == "f7"
        await pilot.press("f1")
        await pilot.press("question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen), "the old keys no longer open the help"
        await pilot.press("f3")
        await pilot.pause()
        assert app.current_mode == "profiles", "the old F3 no longer goes to Segments"
        await pilot.press("f9")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert isinstance(app.screen, HelpScreen)
        by_id = {line.id_text: line for line in app.screen.lines}
        assert by_id["app.help"].key_text.lower() == "f9"
        assert by_id["app.segments"].key_text.lower() == "f7"
        console = Console(width=150, record=True)
        console.print(help_table(app.screen.lines))
        text = console.export_text()
        help_row = next(row for row in text.splitlines() if "The keys that work here" in row)
        assert help_row.split()[0].lower() == "f9" and help_row.rstrip().endswith("app.help")
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, ProfilesScreen))
        await pilot.press("f7")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        assert app.current_mode == "segments"


async def test_a_screen_key_is_remapped_on_its_screen(store: Path) -> None:
    write_keymap("profiles.search: ctrl+f\n")
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        await settle(pilot, lambda: "Search" in footer_keys(app))  # the footer fills on a later refresh
        assert footer_keys(app)["Search"] == "ctrl+f"
        lines = {line.id_text: line for line in key_lines(app.screen)}
        assert lines["profiles.search"].key_text == app.get_key_display(Binding("ctrl+f", "search"))
        search = app.screen.query_one("#search")
        await pilot.press("slash")
        await pilot.pause()
        assert not search.has_focus, "slash no longer starts a search"
        await pilot.press("ctrl+f")
        await settle(pilot, lambda: search.has_focus)


async def test_a_malformed_file_warns_once_and_the_app_keeps_its_keys(store: Path) -> None:
    path = write_keymap("app.help: [f9\n")
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        found = warnings(app)
        assert len(found) == 1 and str(path) in found[0] and "not valid YAML" in found[0]
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))


async def test_unknown_ids_and_wrong_values_warn_and_the_good_entries_apply(store: Path) -> None:
    path = write_keymap("app.hlep: f9\napp.quit: 5\napp.segments: f7\n")
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        found = warnings(app)
        assert len(found) == 1, found
        assert str(path) in found[0]
        assert "unknown binding id 'app.hlep'" in found[0] and "'app.help'" in found[0]
        assert "app.quit: expected a key" in found[0]
        quit_key = app.screen.active_bindings["q"].binding
        assert quit_key.id == "app.quit", "a wrong value leaves the key as it was"
        await pilot.press("f7")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        assert app.is_running


async def test_an_unreadable_file_warns(store: Path) -> None:
    path = keymap_path()
    path.mkdir(parents=True)  # a folder where the file should be: reading it fails
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        found = warnings(app)
        assert len(found) == 1 and str(path) in found[0] and "cannot be read" in found[0]
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))


async def test_the_palette_shows_the_remapped_key_of_another_area(store: Path) -> None:
    write_keymap("segments.new: ctrl+n\n")
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        new = next(found.binding for found in app.area_actions()
                   if found.mode == "segments" and found.binding.description == "New")
        assert new.key == "ctrl+n" and new.id == "segments.new"
