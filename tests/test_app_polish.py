"""The app as a demo shows it: every area's actions in the palette from anywhere, Help and Quit
in every footer at 80 columns, dialogs over a dimmed screen, readable theme colours."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from textual.color import Color
from textual.screen import ModalScreen
from textual.widgets._footer import FooterKey

import tui
from tests.app_store import AS_OF, build, settle, table_ready
from tui.app import DARK_THEME, LIGHT_THEME, make_app
from tui.screens.audiences import AudiencesScreen
from tui.screens.profiles import ProfilesScreen
from tui.screens.segments import SegmentsScreen
from tui.widgets.commands import ScreenActionsProvider
from tui.widgets.dialog import Dialog, TextPrompt

SMALL = (80, 24)
AREAS = (("f2", ProfilesScreen), ("f3", SegmentsScreen), ("f4", AudiencesScreen))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("polish") / "store.db")


def footer_keys(screen: Any) -> list[str]:
    return [key.description for key in screen.query(FooterKey) if key.description]


async def test_every_area_footer_starts_with_help_and_quit_at_80_columns(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=SMALL) as pilot:
        for key, area in AREAS:
            await pilot.press(key)
            await settle(pilot, lambda a=area: isinstance(app.screen, a)
                         and bool(footer_keys(app.screen)))
            shown = footer_keys(app.screen)
            assert shown[:2] == ["Help", "Quit"], (area, shown)
            assert not {"Profiles", "Segments", "Audiences"} & set(shown)  # F2-F4: in F1 only
        await pilot.press("f3")
        await settle(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await pilot.press("n")
        await settle(pilot, lambda: type(app.screen).__name__ == "BuilderScreen"
                     and bool(footer_keys(app.screen)))
        shown = footer_keys(app.screen)
        assert shown[:4] == ["Help", "Quit", "Save", "Code"], shown
        # every key shown fits: the footer's keys end inside the terminal
        assert all(key.region.right <= SMALL[0] for key in app.screen.query(FooterKey)
                   if key.description in ("Help", "Quit", "Save", "Code"))


async def test_the_palette_holds_every_area_once_without_noise(store: Path) -> None:
    """From Audiences: "new segment", "yaml" and "import" find the Segments actions; the
    areas are listed once each; Textual's copy/keys/quit entries are gone."""
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f4")
        await settle(pilot, lambda: isinstance(app.screen, AudiencesScreen))
        await pilot.pause(0.3)
        commands = list(ScreenActionsProvider(app.screen).commands())
        titles = [command.title for command in commands]
        assert len(titles) == len(set(titles))
        assert {"Segments: New", "Segments: Import", "Segments: Export", "Profiles: Search",
                "Go to Profiles", "Go to Segments"} <= set(titles)
        assert "Go to Audiences" not in titles  # where we are
        assert not [t for t in titles if "Copy selected text" in t or t.endswith(": Quit ")]
        system = [c.title for c in app.get_system_commands(app.screen)]
        assert not {"Quit", "Keys"} & set(system)
        assert not [t for t in system if t.startswith("Go to")]

        await pilot.press("ctrl+p")
        await settle(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
        for query, wanted in (("new segment", "Segments: New"), ("yaml", "Segments: Import"),
                              ("import", "Segments: Import")):
            await pilot.press("ctrl+u" if query != "new segment" else "home", *query)
            palette = app.screen
            await settle(pilot, lambda w=wanted, p=palette: w in palette_options(p))
        await pilot.press("ctrl+u", *"new segment")
        await settle(pilot, lambda: "Segments: New" in palette_options(app.screen))
        await pilot.press("down", "enter")
        await settle(pilot, lambda: type(app.screen).__name__ == "BuilderScreen")
        assert app.current_mode == "segments"


def palette_options(palette: Any) -> list[str]:
    found = palette.query("CommandList")
    if not found:
        return []
    options = found.first()
    return [str(options.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(options.option_count)]


async def test_dialogs_dim_the_screen_below_instead_of_blanking_it(store: Path) -> None:
    app = make_app(store, as_of=AS_OF)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
        app.push_screen(TextPrompt("Export 3 members as CSV to:", str(store.parent / "out.csv")))
        await settle(pilot, lambda: isinstance(app.screen, TextPrompt))
        background = app.screen.styles.background
        assert isinstance(app.screen, ModalScreen) and background.a < 1


# ------------------------------------------------------------------ contrast (WCAG 2.x)

def luminance(color: Color) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast(one: Color, two: Color) -> float:
    a, b = sorted((luminance(one), luminance(two)), reverse=True)
    return (a + 0.05) / (b + 0.05)


TEXT_COLOURS = ("foreground", "text-muted", "primary", "secondary", "accent", "warning", "error",
                "success", "text-primary", "text-secondary", "text-accent", "text-warning",
                "text-error", "text-success", "footer-foreground", "footer-key-foreground",
                "footer-description-foreground", "block-cursor-foreground")
BACKGROUNDS = ("background", "surface", "panel", "footer-background", "block-cursor-background")


def drawn(value: str, back: Color) -> Color:
    """A theme value as drawn on ``back``: ``auto 60%`` is the contrasting text colour at 60%,
    ``#RRGGBB 50%`` the colour at half strength, both blended into the background."""
    value, _, strength = value.strip().partition(" ")
    alpha = float(strength.rstrip("%")) / 100 if strength else 1.0
    colour = back.get_contrast_text(alpha) if value == "auto" else Color.parse(value).with_alpha(
        alpha)
    return back.blend(colour.with_alpha(1), colour.a) if colour.a < 1 else colour


@pytest.mark.parametrize("theme", [DARK_THEME, LIGHT_THEME], ids=["dark", "light"])
def test_every_text_colour_reads_on_every_background(theme: Any) -> None:
    """WCAG AA (4.5:1) for every text colour of the theme on every background of the theme,
    as Textual works the theme's variables out (muted text included)."""
    variables = theme.to_color_system().generate()
    variables.update(theme.variables)
    failures = []
    for text in TEXT_COLOURS:
        for background in BACKGROUNDS:
            back = Color.parse(variables[background])
            ratio = contrast(drawn(variables[text], back), back)
            if ratio < 4.5:
                failures.append(f"{text} on {background}: {ratio:.2f}")
    assert not failures, failures


def rendered(widget: Any, component: str) -> tuple[Color, Color]:
    """The foreground and background a widget draws one of its parts with."""
    style = widget.rich_style + widget.get_component_rich_style(component)
    assert style.color is not None and style.bgcolor is not None
    fore, back = style.color.get_truecolor(), style.bgcolor.get_truecolor()
    return Color(*fore), Color(*back)


async def test_tree_guides_and_unticked_boxes_are_visible_in_both_themes(store: Path) -> None:
    """The rule tree's guides (light: were colour 254 on 255) and unticked boxes (dark: were a
    black X on navy) keep 3:1, the WCAG minimum for graphics, in both themes."""
    from textual.widgets import SelectionList

    from tui.builder.screen import BuilderScreen

    for theme in ("light", "dark"):
        app = make_app(store, as_of=AS_OF, theme=theme)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot, table_ready(app.screen.query_one("ProfileTable")))
            app.push_screen(BuilderScreen())
            await settle(pilot, lambda a=app: isinstance(a.screen, BuilderScreen))
            await pilot.pause(0.2)
            guides = rendered(app.screen.query_one("RuleTree"), "tree--guides")
            assert contrast(*guides) >= 3, (theme, guides)
            boxes: SelectionList[str] = SelectionList(("a", "a"), ("b", "b", True))
            await app.screen.mount(boxes)
            await pilot.pause(0.1)
            unticked = rendered(boxes, "selection-list--button")
            assert contrast(*unticked) >= 3, (theme, unticked)


def test_every_dialog_is_built_from_the_one_kit() -> None:
    """Every modal screen of the app is a ``Dialog`` (tui/widgets/dialog.py): one frame,
    one dimmed background, one answer-once rule, whatever the area."""
    for module in pkgutil.walk_packages(tui.__path__, "tui."):
        importlib.import_module(module.name)

    def subclasses(cls: type) -> set[type]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    modals = {cls for cls in subclasses(ModalScreen) if cls.__module__.startswith("tui.")}
    assert len(modals) >= 15
    assert sorted(cls.__name__ for cls in modals if not issubclass(cls, Dialog)) == []
