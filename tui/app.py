"""The Audiences app: three areas (profiles, segments, audiences) over one profile store.

``make_app`` is the one way to build the app, for the command line and for
tests. Screens reach the store through the app, as an ``AppHost`` (tui/host.py,
by ``host(self)``): ``engine`` (which store, on which database engine; screens
never ask which), ``read_connection()`` for a new read-only connection inside one
worker, ``queries`` to run cancellable requests, ``catalog`` for names and labels,
``open_profile`` and ``show_error`` for the common moves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import weakref
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.content import Content
from textual.screen import Screen
from textual.theme import Theme

from store.engines.base import Connection, Engine, engine_for
from store.query.profiles import profile_total
from store.schema.catalog import Catalog
from store.schema.values import UTC
from store.segments.model import Segment
from store.segments.timeutil import as_of_date
from tui.host import AppHost, Clipboard
from tui.keymap import load_keymap
from tui.messages import StoreCounted
from tui.screens.profiles import ProfilesScreen
from tui.widgets.commands import AreaAction, ScreenActionsProvider
from tui.widgets.keys import AREA_LABELS
from tui.widgets.queries import QueryRunner, is_interrupt

DARK_THEME = Theme(
    name="audiences-dark",
    primary="#85BEF2",
    secondary="#AABBD4",
    accent="#E3B25C",
    warning="#E3B25C",
    error="#FF9CA5",
    success="#84C897",
    foreground="#D8DEE6",
    background="#15181D",
    surface="#1B1F26",
    panel="#232934",
    dark=True,
    variables={
        "border": "#3A4352",
        "border-blurred": "#2C3340",
        "block-cursor-background": "#2B4560",
        "block-cursor-foreground": "#F2F5F9",
        "block-cursor-text-style": "none",
        "block-cursor-blurred-background": "#26313F",
        "footer-key-foreground": "#E3B25C",
        "footer-background": "#1B1F26",
        "input-selection-background": "#85BEF2 35%",
        "scrollbar": "#333B48",
        "scrollbar-hover": "#435066",
        "scrollbar-active": "#85BEF2",
        "scrollbar-background": "#1B1F26",
        "scrollbar-background-hover": "#1B1F26",
        "scrollbar-background-active": "#1B1F26",
        "scrollbar-corner-color": "#1B1F26",
    },
)

LIGHT_THEME = Theme(
    name="audiences-light",
    primary="#1D63A7",
    secondary="#516279",
    accent="#8F5200",
    warning="#8F5200",
    error="#BC282A",
    success="#137045",
    foreground="#1F2933",
    background="#F4F6F8",
    surface="#FFFFFF",
    panel="#E6EAF0",
    dark=False,
    variables={
        "border": "#C5CCD6",
        "border-blurred": "#D5DAE1",
        "block-cursor-background": "#D3E3F5",
        "block-cursor-foreground": "#102A43",
        "block-cursor-text-style": "none",
        "block-cursor-blurred-background": "#E4EBF3",
        "footer-key-foreground": "#1D63A7",
        "footer-background": "#E6EAF0",
        "input-selection-background": "#1D63A7 25%",
        "scrollbar": "#C9D0DA",
        "scrollbar-hover": "#AEB8C6",
        "scrollbar-active": "#1D63A7",
        "scrollbar-background": "#FFFFFF",
        "scrollbar-background-hover": "#FFFFFF",
        "scrollbar-background-active": "#FFFFFF",
        "scrollbar-corner-color": "#FFFFFF",
    },
)

THEME_ALIASES = {"dark": DARK_THEME.name, "light": LIGHT_THEME.name}
AREAS = AREA_LABELS


def segments_screen() -> Screen[Any]:
    """The Segments area, imported when first opened (the builder is large; start-up stays quick)."""
    from tui.screens.segments import SegmentsScreen

    return SegmentsScreen()


def audiences_screen() -> Screen[Any]:
    """The Audiences area, imported when first opened."""
    from tui.screens.audiences import AudiencesScreen

    return AudiencesScreen()


class AudiencesApp(App[None]):
    """Browse profiles, build segments, activate audiences."""

    TITLE = "Audiences"
    CSS_PATH = "app.tcss"
    MODES: ClassVar[dict[str, Any]] = {
        "profiles": ProfilesScreen,
        "segments": segments_screen,
        "audiences": audiences_screen,
    }
    DEFAULT_MODE = "profiles"
    # Every screen gets -narrow (under 110 columns) or -wide, and -short (under 32 rows) or
    # -tall: app.tcss drops or stacks panels by priority on small terminals (80x24, 100x30).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 (Textual reads it as a class attribute; typed by App)
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012
    COMMANDS: ClassVar[set[type[Provider] | Any]] = App.COMMANDS | {ScreenActionsProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "area('profiles')", "Profiles", id="app.profiles",
                tooltip="Browse and search the profiles"),
        Binding("f3", "area('segments')", "Segments", id="app.segments", tooltip="Build and manage segments"),
        Binding("f4", "area('audiences')", "Audiences", id="app.audiences", tooltip="Activated audiences"),
        Binding("f1,question_mark", "help", "Help", id="app.help", tooltip="The keys that work here"),
        Binding("ctrl+t", "toggle_theme", "Light/dark", id="app.toggle_theme", show=False,
                tooltip="Switch between the light and the dark theme"),
        Binding("f6", "report", "Report", id="app.report", show=False,
                tooltip="Save this view for slides: an SVG screenshot and a Markdown summary"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Stop running queries and leave"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit_anywhere", show=False, priority=True),
    ]

    def __init__(self, db: Engine | str | Path, campaign_db_path: Path | None = None, *,
                 as_of: dt.datetime | None = None, theme: str | None = None) -> None:
        super().__init__()
        self.engine = db if isinstance(db, Engine) else engine_for(db)
        self.campaign_db_path = (Path(campaign_db_path) if campaign_db_path is not None
                                 else self.engine.default_campaign_path())
        self.as_of = as_of
        self.register_theme(DARK_THEME)
        self.register_theme(LIGHT_THEME)
        self.theme = THEME_ALIASES.get(theme or "dark", theme or DARK_THEME.name)
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()  # Connection objects
        self._connections_lock = threading.Lock()
        self.queries = QueryRunner(self.read_connection)
        self.profile_total: int | None = None
        self.builder_clipboard = Clipboard()
        conn = self.engine.open_store(readonly=True)
        try:
            self.catalog = Catalog.load(conn)
        finally:
            conn.close()
        self.sub_title = self.store_title() + self.as_of_note()
        # The user's keys, before any screen exists: the first footer already shows them.
        keymap, keymap_file = load_keymap()
        self.set_keymap(keymap.keys)
        self.keymap_problem = keymap.message(keymap_file)  # said once the app is up

    @property
    def db_path(self) -> Path | None:
        """The file holding the profile store (None for a store on a server)."""
        return self.engine.path

    # ------------------------------------------------------------ store access
    def read_connection(self) -> Connection:
        """A new read-only connection to the store, for use inside one worker thread."""
        return self._track(self.engine.connect(readonly=True))

    def write_connection(self) -> Connection:
        """A new read-write connection to the store (writes go through ``write_transaction``)."""
        return self._track(self.engine.connect())

    def _track(self, conn: Connection) -> Connection:
        """Remember connections so quitting can interrupt them (forgotten once nothing uses them)."""
        with self._connections_lock:
            self._connections.add(conn)
        return conn

    def refresh_catalog(self) -> Catalog:
        """Read the schema catalog again (after an import or a schema change)."""
        conn = self.read_connection()
        try:
            self.catalog = Catalog.load(conn)
        finally:
            conn.close()
        return self.catalog

    def as_of_instant(self) -> dt.datetime:
        """The as-of instant for evaluations: fixed if given, else now (UTC)."""
        return self.as_of or dt.datetime.now(UTC)

    def today(self) -> dt.date:
        """The as-of date (ages and "days ago" are computed at this date)."""
        return as_of_date(self.as_of_instant())

    # ------------------------------------------------------------ common moves
    def open_profile(self, pk: int, segment_id: str | Segment | None = None) -> None:
        """Show the 360° view of profile ``pk``; with a segment, explain that segment.

        ``segment_id`` is a saved segment's id, or an unsaved ``Segment`` (the
        builder's draft), which the view validates and explains as well.
        """
        from tui.screens.profile_view import ProfileViewScreen

        self.push_screen(ProfileViewScreen(pk, segment_id))

    def action_activate_segment(self, segment_id: str) -> None:
        """Review and activate a saved segment's audience (from Segments or the builder)."""
        from tui.screens.activation import ActivationScreen

        self.push_screen(ActivationScreen(segment_id))

    def show_error(self, message: str) -> None:
        """Tell the user something failed, as a toast (never a traceback)."""
        self.notify(message, title="Something went wrong", severity="error", timeout=10)

    # ------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        if self.keymap_problem:
            self.notify(self.keymap_problem, title="Keymap file", severity="warning", timeout=15)
        token = self.queries.start("app:total")
        self._count_profiles(token)

    @work(thread=True, exclusive=True, group="store-total", exit_on_error=False)
    def _count_profiles(self, token: Any) -> None:
        try:
            with self.queries.connection(token) as conn:
                total = profile_total(conn)
        except Exception as exc:
            if not is_interrupt(exc):
                self.call_from_thread(self.show_error, f"Could not count the profiles: {exc}")
            return
        self.post_message(StoreCounted(0, total))

    @on(StoreCounted)
    def _store_counted(self, message: StoreCounted) -> None:
        self.profile_total = message.total
        noun = "profile" if message.total == 1 else "profiles"
        self.sub_title = (f"{self.store_title()} · {message.total:,} {noun}"
                          f"{self.as_of_note()}")

    def store_title(self) -> str:
        """Which store on which engine: ``shop.duckdb · DuckDB``, ``crm.audiences · PostgreSQL``
        (a server store by its database and schema; never a password)."""
        return f"{self.engine.short_name} · {self.engine.label}"

    def as_of_note(self) -> str:
        """`` · as of 2026-11-01`` when the app evaluates at a fixed instant (``--as-of``), so
        nobody takes "the last 7 days" for this week."""
        if self.as_of is None:
            return ""
        instant = self.as_of.astimezone(UTC)
        if instant.time() == dt.time(23, 59, 59, 999999):
            return f" · as of {instant.date().isoformat()}"
        return f" · as of {instant.strftime('%Y-%m-%d %H:%M')} UTC"

    def format_title(self, title: str, sub_title: str) -> Content:
        """``Audiences — shop.db · SQLite · 1,000,000 profiles`` with the details muted."""
        content = Content.styled(title, "bold")
        if sub_title:
            content = Content.assemble(content, ("  —  ", "dim"), (sub_title, "dim"))
        return content

    # ------------------------------------------------------------ actions
    async def action_area(self, mode: str) -> None:
        """Go to one of the three areas (F2, F3, F4)."""
        if mode != self.current_mode:
            await self.switch_mode(mode)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
            return
        self.push_screen(HelpScreen(self.screen))

    def action_report(self) -> None:
        from tui.report import report_folder, write_report

        folder = report_folder()
        try:
            report = write_report(self, folder)
        except OSError as exc:
            self.show_error(f"Cannot write the report into {folder}: {exc.strerror or exc}")
            return
        self.notify(f"{report.svg}\n{report.markdown}", title="Report saved", timeout=6)

    def action_toggle_theme(self) -> None:
        dark = self.current_theme.dark
        self.theme = LIGHT_THEME.name if dark else DARK_THEME.name

    def get_system_commands(self, screen: Any) -> Any:
        """Textual's commands, less those that repeat a key the palette lists already (Quit,
        Keys: F1) and the areas (listed once, as "Go to ...", from their keys)."""
        from textual.app import SystemCommand

        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command
        other = "light" if self.current_theme.dark else "dark"
        yield SystemCommand(f"Switch to the {other} theme", "Toggle light and dark (ctrl+t)",
                            self.action_toggle_theme)

    def area_screen_types(self) -> dict[str, type[Screen[Any]]]:
        """The main screen of each area (importing the larger ones only now)."""
        from tui.screens.audiences import AudiencesScreen
        from tui.screens.segments import SegmentsScreen

        return {"profiles": ProfilesScreen, "segments": SegmentsScreen,
                "audiences": AudiencesScreen}

    def area_actions(self) -> list[AreaAction]:
        """Every action of the areas not on screen, for the command palette: "Segments: New"
        works from the Audiences area. Keys that only make sense where the user is (escape:
        back or clear) stay out. Keys are the user's, when the keymap file changes them."""
        found = []
        for mode, kind in self.area_screen_types().items():
            if mode == self.current_mode:
                continue
            for item in kind.BINDINGS:
                if isinstance(item, Binding) and item.key != "escape" and item.description:
                    keys = self._keymap.get(item.id or "")
                    shown = item.with_key(keys, key_display=None) if keys else item
                    found.append(AreaAction(mode, AREAS[mode], shown))
        return found

    async def run_in_area(self, mode: str, action: str) -> None:
        """Go to ``mode``'s area, then run ``action`` on its main screen."""
        await self.action_area(mode)
        kind = self.area_screen_types()[mode]
        target = next((s for s in reversed(self.screen_stack) if isinstance(s, kind)), None)
        if target is not None:
            await self.run_action(action, target)

    async def action_quit(self) -> None:
        """Stop every running query, then leave; unsaved work is asked about first.

        A screen holding unsaved work (a segment builder with changes, even in an
        area switched away from) is shown and asks save / discard / keep editing,
        as its escape does; keep editing calls the quit off, save and discard quit
        once done (asking about the next one, if any).
        """
        for mode, screen in self.unsaved_work():
            if mode != self.current_mode:
                await self.switch_mode(mode)
            screen.ask_unsaved("quit")
            return
        self.stop_queries()
        self.exit()

    def unsaved_work(self) -> list[tuple[str, Any]]:
        """(area, screen) for every screen whose ``has_unsaved_work`` is true, the current
        area first, the top of each area's stack first."""
        stacks: dict[str, list[Screen[Any]]] = getattr(self, "_screen_stacks", {})
        modes = sorted(stacks, key=lambda mode: mode != self.current_mode)
        return [(mode, screen) for mode in modes for screen in reversed(stacks[mode])
                if getattr(screen, "has_unsaved_work", False)]

    def stop_queries(self) -> None:
        """Cancel all workers and interrupt every connection still running a statement."""
        self.queries.interrupt()
        self.workers.cancel_all()
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(Exception):  # closed meanwhile (any engine): nothing to stop
                conn.interrupt()


def _is_a_host(app: AudiencesApp) -> AppHost:
    """Never called: mypy checks here that the app offers every service screens use."""
    return app


def make_app(db: Engine | str | Path, campaign_db_path: Path | None = None, *,
             as_of: dt.datetime | None = None, theme: str | None = None) -> AudiencesApp:
    """The app on a profile store: an ``Engine``, or a ``--db`` value (a path or URL).

    The campaign store defaults to the engine's (campaign.db beside a store file).
    ``as_of`` fixes the evaluation instant (tests and demos); ``theme`` picks
    ``dark`` (default), ``light`` or any registered Textual theme by name. Raises ``StoreError``
    if no readable store is there.
    """
    return AudiencesApp(db, campaign_db_path, as_of=as_of, theme=theme)
