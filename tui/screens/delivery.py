"""Deliveries of an audience: write subject and body templates, preview them for members.

The preview is live: every edit restarts a short debounce, then a worker
renders the templates for a few members and counts the members lacking each
field the templates use. A template error (an unknown field, a malformed
placeholder) shows in the preview instead of a rendering.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select, Static, TextArea

from store.campaign.delivery import (
    CHANNELS,
    Delivery,
    Preview,
    check_fields,
    create_delivery,
    list_deliveries,
    parse_template,
    preview,
)
from store.campaign.store import Audience, open_campaign
from tui.host import host
from tui.screens.activation import error_text
from tui.widgets.dialog import Dialog
from tui.widgets.footer import AppFooter
from tui.widgets.format import plural, tone
from tui.widgets.list_table import ListTable

DEBOUNCE_S = 0.3
PREVIEW_MEMBERS = 3
DEFAULT_SUBJECT = 'Hello {{ first_name | default("there") }}'
DEFAULT_BODY = 'Hi {{ first_name | default("there") }},\n\n'


class DeliveriesLoaded(Message):
    def __init__(self, list_generation: int, deliveries: list[Delivery]) -> None:
        super().__init__()
        self.list_generation = list_generation
        self.deliveries = deliveries


class PreviewReady(Message):
    def __init__(self, generation: int, result: Preview) -> None:
        super().__init__()
        self.generation = generation
        self.result = result


class PreviewFailed(Message):
    def __init__(self, generation: int, message: str) -> None:
        super().__init__()
        self.generation = generation
        self.message = message


class DeliverySaved(Message):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__()
        self.delivery = delivery


class DeliveryFailed(Message):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message


def preview_text(result: Preview, warning: str = "yellow") -> Text:
    """The rendered messages and the missing-field counts, as one block of text."""
    text = Text()
    if result.missing:
        for name, missing in result.missing.items():
            style = warning if missing and name in result.needed else "dim"
            note = "" if name in result.needed else " (has a default)"
            verb = "lacks" if missing == 1 else "lack"
            text.append(f"{missing:,} of {plural(result.members, 'member')} {verb} {name}{note}\n",
                        style=style)
    else:
        text.append("The templates use no field.\n", style="dim")
    if not result.messages:
        text.append("\nNo member to preview.", style="dim")
    for message in result.messages:
        text.append(f"\n── {message.profile_id}\n", style="bold")
        if message.subject:
            text.append("Subject: ", style="bold")
            text.append(message.subject + "\n")
        text.append(message.body + "\n")
    return text


class DeliveryTable(ListTable):
    """The audience's saved deliveries; enter loads one into the form."""

    HELP_TITLE = "Delivery list"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Load", id="delivery.load",
                tooltip="Load the delivery into the form"),
    ]


class DeliveryScreen(Dialog[None]):
    """Create and preview deliveries for one audience."""

    HELP_TITLE = "Deliveries"

    DEFAULT_CSS = """
    DeliveryScreen #delivery-dialog { width: 95%; max-width: 95%; height: 90%; padding: 0 1; }
    #delivery-list { width: 36; }
    #deliveries-table { height: 1fr; }
    #delivery-form { width: 1fr; padding: 0 1; }
    #delivery-body { height: 8; }
    #delivery-preview-box { width: 1fr; border-left: solid $primary-darken-2; padding: 0 1; }
    #delivery-hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save delivery", id="delivery.save"),
        Binding("ctrl+n", "new", "New", id="delivery.new"),
        Binding("ctrl+g", "next_sample", "Next members", id="delivery.next_sample"),
        Binding("escape", "close", "Close", id="delivery.close"),
        # a dialog hides the app's keys from the footer: Help and Quit are listed again here
        Binding("f1", "app.help", "Help", id="delivery.help"),
        Binding("ctrl+q", "app.quit", "Quit", id="delivery.quit"),
    ]

    def __init__(self, audience: Audience) -> None:
        super().__init__()
        self.audience = audience
        self.generation = 0
        self.list_generation = 0  # of the latest list load (the one after a save wins)
        self.sample_after: str | None = None
        self.last_preview: Preview | None = None
        self._timer: Timer | None = None
        self.deliveries: dict[int, Delivery] = {}

    def compose(self) -> ComposeResult:
        fields = ", ".join(self.audience.fields) or "none"
        with Vertical(id="delivery-dialog", classes="dialog"):
            yield Static(Text(f"Deliveries · {self.audience.name} ·"
                              f" {plural(self.audience.member_count, 'member')} · fields: {fields}"),
                         id="delivery-title", classes="title")
            with Horizontal():
                with Vertical(id="delivery-list"):
                    yield DeliveryTable(id="deliveries-table")
                with Vertical(id="delivery-form"):
                    yield Input(placeholder="Name of the delivery", id="delivery-name")
                    yield Select([(c, c) for c in CHANNELS], value="email", allow_blank=False,
                                 id="delivery-channel")
                    yield Input(DEFAULT_SUBJECT, placeholder="Subject template", id="delivery-subject")
                    yield TextArea(DEFAULT_BODY, id="delivery-body")
                    yield Static('Placeholders: {{ field }} or {{ field | default("text") }}',
                                id="delivery-hint")
                with VerticalScroll(id="delivery-preview-box"):
                    yield Static("", id="delivery-preview")
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one("#deliveries-table", DataTable)
        table.add_column("Id", key="id")
        table.add_column("Name", key="name")
        table.add_column("Channel", key="channel")
        self.query_one("#delivery-name", Input).focus()
        self.reload_deliveries()
        self.schedule_preview()

    # -- form
    def form(self) -> tuple[str, str, str, str]:
        channel = self.query_one("#delivery-channel", Select).value
        return (self.query_one("#delivery-name", Input).value,
                str(channel) if isinstance(channel, str) else "email",
                self.query_one("#delivery-subject", Input).value,
                self.query_one("#delivery-body", TextArea).text)

    @on(Input.Changed, "#delivery-subject")
    @on(TextArea.Changed, "#delivery-body")
    @on(Select.Changed, "#delivery-channel")
    def edited(self) -> None:
        self.sample_after = None
        self.schedule_preview()

    def schedule_preview(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.generation += 1
        self._timer = self.set_timer(DEBOUNCE_S, self.start_preview)

    def start_preview(self) -> None:
        _, channel, subject, body = self.form()
        self.run_preview(self.generation, channel, subject, body, self.sample_after)

    # -- workers
    def reload_deliveries(self) -> None:
        self.list_generation += 1
        self.load_deliveries(self.list_generation)

    @work(thread=True, exclusive=True, exit_on_error=False, group="delivery-list")
    def load_deliveries(self, list_generation: int) -> None:
        try:
            conn = open_campaign(host(self).campaign_db_path, readonly=True)
            try:
                items = list_deliveries(conn, self.audience.id)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(DeliveryFailed(error_text(exc)))
        else:
            self.post_message(DeliveriesLoaded(list_generation, items))

    @work(thread=True, exclusive=True, exit_on_error=False, group="delivery-preview")
    def run_preview(self, generation: int, channel: str, subject: str, body: str,
                    after: str | None) -> None:
        try:
            for text, what in ((subject, "Subject"), (body, "Body")):
                check_fields(parse_template(text, what.lower()), self.audience.fields, what)
            draft = Delivery(0, "preview", channel, self.audience.id, subject, body, "draft", "")
            conn = open_campaign(host(self).campaign_db_path, readonly=True)
            try:
                result = preview(conn, draft, PREVIEW_MEMBERS, after)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(PreviewFailed(generation, error_text(exc)))
        else:
            self.post_message(PreviewReady(generation, result))

    @work(thread=True, exclusive=True, exit_on_error=False, group="delivery-save")
    def save(self, name: str, channel: str, subject: str, body: str) -> None:
        try:
            conn = open_campaign(host(self).campaign_db_path)
            try:
                saved = create_delivery(conn, self.audience.id, name, body, subject, channel)
            finally:
                conn.close()
        except Exception as exc:
            self.post_message(DeliveryFailed(error_text(exc)))
        else:
            self.post_message(DeliverySaved(saved))

    # -- handlers
    @on(DeliveriesLoaded)
    def show_deliveries(self, message: DeliveriesLoaded) -> None:
        if message.list_generation != self.list_generation:
            return  # a load started before the last save, finishing late
        table = self.query_one("#deliveries-table", DataTable)
        table.clear()
        self.deliveries = {d.id: d for d in message.deliveries}
        for d in message.deliveries:
            table.add_row(str(d.id), Text(d.name), d.channel, key=str(d.id))

    @on(DataTable.RowSelected, "#deliveries-table")
    def delivery_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        delivery = self.deliveries.get(int(key)) if key is not None else None
        if delivery is None:
            return
        self.query_one("#delivery-name", Input).value = delivery.name
        self.query_one("#delivery-channel", Select).value = delivery.channel
        self.query_one("#delivery-subject", Input).value = delivery.subject
        self.query_one("#delivery-body", TextArea).text = delivery.body
        self.schedule_preview()

    @on(PreviewReady)
    def show_preview(self, message: PreviewReady) -> None:
        if message.generation != self.generation:
            return  # an older edit's result
        self.last_preview = message.result
        self.query_one("#delivery-preview", Static).update(
            preview_text(message.result, tone(self.app, "warning")))

    @on(PreviewFailed)
    def show_preview_error(self, message: PreviewFailed) -> None:
        if message.generation != self.generation:
            return
        self.last_preview = None
        self.query_one("#delivery-preview", Static).update(
            Text(message.message, style=tone(self.app, "error")))

    @on(DeliverySaved)
    def saved(self, message: DeliverySaved) -> None:
        self.notify(f"Saved delivery {message.delivery.id} ({message.delivery.name}).")
        self.reload_deliveries()

    @on(DeliveryFailed)
    def failed(self, message: DeliveryFailed) -> None:
        self.notify(message.message, severity="error", title="Delivery")

    # -- actions
    def action_save(self) -> None:
        self.save(*self.form())

    def action_new(self) -> None:
        self.query_one("#delivery-name", Input).value = ""
        self.query_one("#delivery-subject", Input).value = DEFAULT_SUBJECT
        self.query_one("#delivery-body", TextArea).text = DEFAULT_BODY
        self.query_one("#delivery-name", Input).focus()

    def action_next_sample(self) -> None:
        if self.last_preview and self.last_preview.messages:
            self.sample_after = self.last_preview.messages[-1].profile_id
            if self.last_preview.messages and len(self.last_preview.messages) < PREVIEW_MEMBERS:
                self.sample_after = None  # wrapped past the last member: start again
            self.schedule_preview()

    def action_close(self) -> None:
        self.dismiss(None)
