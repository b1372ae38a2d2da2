"""The editor of one event condition: which events, how often, when, which ones, and totals.

Mirrors the spec's event node: event type(s); count (at least / at most /
exactly / between, or "did not"; optionally of distinct values of a field chosen from the
type's fields, read as "3 orders"); window (all
time, the last N units, or between two dates); ``where`` conditions on the
event's fields and linked entities (``product.category``), each edited with
the condition editor; and an optional aggregate (sum/avg/min/max of a
numeric field). The whole condition is checked against the schema on every
change and read back in plain words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from store.engines.base import Connection
from store.schema.catalog import Catalog
from store.segments.describe import (
    describe,
    distinct_noun,
    field_label,
    plural,
    step_words,
    where_condition_words,
)
from store.segments.editing import check_condition
from store.segments.model import (
    AGGREGATE_FNS,
    AGGREGATE_OPS,
    AggregateRule,
    AttributeCondition,
    CountRule,
    EventCondition,
    SequenceStep,
)
from tui.builder.condition_editor import ConditionEditor, FormSelect, op_label
from tui.builder.pickers import (
    ANY_EVENT,
    FuzzyPicker,
    comparable_items,
    event_field_items,
    event_type_items,
)
from tui.builder.value_text import (
    DATE_HINT,
    DATE_WORDS,
    PERIOD_HINT,
    parse_scalar,
    parse_window,
    plain_message,
    to_text,
    window_texts,
)
from tui.widgets.dialog import Dialog
from tui.widgets.format import tone

# "did not" is a choice of its own in "How often" (the model says at_most 0).
DID_NOT = "did_not"
HOW_OFTEN = (("at least", "at_least"), ("did not", DID_NOT), ("at most", "at_most"),
             ("exactly", "exactly"), ("between", "between"))
WINDOW_KINDS = (("all time", "ever"), ("in the last", "last"), ("between dates", "between"))


class WhereList(OptionList):
    """The ``where`` conditions: a adds, enter edits, d deletes."""

    HELP_TITLE = "Event conditions"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "screen.add_where", "Add condition", id="event_editor.add_where"),
        Binding("enter", "screen.edit_where", "Edit condition", id="event_editor.edit_where"),
        Binding("d,delete", "screen.delete_where", "Delete condition", id="event_editor.delete_where"),
    ]


class EventEditor(Dialog[EventCondition | None]):
    """Edit every part of an event condition; ctrl+s (or enter in a box) applies."""

    DEFAULT_CSS = """
    EventEditor .dialog { width: 100; }
    EventEditor .row { height: 1; margin-bottom: 1; }
    EventEditor .row > Label { width: 12; color: $text-muted; }
    EventEditor .row Input { width: 1fr; }
    EventEditor .row Input.small { width: 10; }
    EventEditor .row Select { width: 20; margin-right: 1; }
    EventEditor .row Button { height: 1; min-width: 9; border: none; margin-left: 1; }
    EventEditor .sep { width: auto; padding: 0 1; color: $text-muted; }
    EventEditor #where { height: auto; max-height: 8; border: round $panel; margin-left: 12; }
    EventEditor #where:focus { border: round $primary; }
    EventEditor #verdict { height: auto; }  /* the last row's margin is above it */
    EventEditor #form { height: auto; max-height: 100%; }
    EventEditor #agg-field, EventEditor #distinct { width: 1fr; }
    EventEditor.-short .dialog { max-height: 100%; }
    EventEditor.-short #form { max-height: 60vh; }
    EventEditor.-short .row { margin-bottom: 0; }
    EventEditor.-short #where { max-height: 5; }
    EventEditor.-short #verdict, EventEditor.-short .hint { margin-top: 0; }
    EventEditor.-narrow .row > Label { width: 10; }
    EventEditor.-narrow #where { margin-left: 10; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="event_editor.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="event_editor.apply", priority=True),
    ]

    AUTO_FOCUS = "#count-value"

    def __init__(self, condition: EventCondition, *, catalog: Catalog,
                 connect: Callable[[], Connection] | None = None, step: bool = False) -> None:
        super().__init__()
        self.condition = condition
        # A sequence's step: only the event type(s) and ``where`` (no count, window, total).
        self.step = step
        self.catalog = catalog
        self.connect = connect
        self.where: list[AttributeCondition] = list(condition.where)
        self._total_types: tuple[str, ...] | None = condition.types

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        node = self.condition
        count = node.effective_count
        low, high = (count.value if isinstance(count.value, tuple) and len(count.value) == 2
                     else (count.value, ""))
        window_kind, last_text, from_text, to_text_ = window_texts(node.within)
        with Vertical(classes="dialog"):
            yield Label("Sequence step" if self.step else "Event condition", classes="title")
            yield from self.form(node, count, (low, high), window_kind,
                                 (last_text, from_text, to_text_))
            yield Static("", id="verdict")
            yield Static("enter or ctrl+s: apply · space: open a list · tab: next field ·"
                         " escape: cancel", classes="hint")

    def form(self, node: EventCondition, count: CountRule, counts: tuple[Any, Any],
             window_kind: str, window_texts: tuple[str, str, str]) -> ComposeResult:
        """Every field of the condition; it scrolls when the terminal is too short for it,
        the read-back and the keys below it stay in sight."""
        low, high = counts
        last_text, from_text, to_text_ = window_texts
        aggregate = node.aggregate
        with VerticalScroll(id="form", can_focus=False):
            with Horizontal(classes="row"):
                yield Label("Event")
                yield Input("*" if node.types is None else ", ".join(node.types), id="types",
                            placeholder="event type(s), comma-separated, or * for any")
                yield Button("Pick…", id="pick-type")
            with Horizontal(classes="row", id="count-row"):
                yield Label("How often")
                did_not = count.op == "at_most" and count.value == 0 and not count.distinct
                yield FormSelect(list(HOW_OFTEN), value=DID_NOT if did_not else count.op,
                                 allow_blank=False, id="count-op")
                yield Input(to_text(low), id="count-value", classes="small")
                yield Static("and", classes="sep", id="count-and")
                yield Input(to_text(high), id="count-high", classes="small")
                yield Static("times", classes="sep", id="count-times")
            with Horizontal(classes="row", id="distinct-row"):
                yield Label("Counting")
                yield FormSelect(self.distinct_fields(node.types, count.distinct or ""),
                                 value=count.distinct or Select.NULL,
                                 prompt="events (or pick a field: orders, SKUs…)",
                                 allow_blank=True, id="distinct")
            with Horizontal(classes="row", id="window-row"):
                yield Label("When")
                yield FormSelect(list(WINDOW_KINDS), value=window_kind, allow_blank=False,
                             id="window-kind")
                yield Input(last_text, id="window-last", placeholder="30 days")
                yield Input(from_text, id="window-from", placeholder=DATE_HINT)
                yield Static("and", classes="sep", id="window-and")
                yield Input(to_text_, id="window-to", placeholder=DATE_HINT)
            yield Label("Only events where (a: add · enter: edit · d: delete)",
                        classes="field-label")
            yield WhereList(id="where")
            with Horizontal(classes="row", id="total-row"):
                yield Label("Total")
                yield FormSelect([("no total", "none"), *((fn, fn) for fn in AGGREGATE_FNS)],
                             value=aggregate.fn if aggregate else "none", allow_blank=False,
                             id="agg-fn")
                chosen = aggregate.attribute if aggregate else ""
                yield FormSelect(self.total_fields(node.types, chosen),
                                 value=chosen or Select.NULL, prompt="of the field…",
                                 allow_blank=True, id="agg-field")
            with Horizontal(classes="row", id="agg-row"):
                yield Label("")
                yield FormSelect([(op_label(op), op) for op in AGGREGATE_OPS],
                             value=aggregate.op if aggregate else "greater_or_equal",
                             allow_blank=False, id="agg-op")
                agg_low, agg_high = ("", "")
                if aggregate is not None:
                    if isinstance(aggregate.value, tuple) and len(aggregate.value) == 2:
                        agg_low, agg_high = (to_text(v) for v in aggregate.value)
                    else:
                        agg_low = to_text(aggregate.value)
                yield Input(agg_low, id="agg-value", classes="small", placeholder="a number")
                yield Static("and", classes="sep", id="agg-and")
                yield Input(agg_high, id="agg-high", classes="small", placeholder="a number")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.compact = True
        for select in self.query(Select):
            select.compact = True
        self.fill_where()
        self.relayout()
        self.refresh_verdict()
        if self.step:
            self.set_focus(self.query_one("#where" if self.condition.types else "#types"))

    def relayout(self) -> None:
        how = self.select_value("count-op")
        between = how == "between"
        self.query_one("#count-and").display = between
        self.query_one("#count-high").display = between
        for name in ("count-value", "count-times"):
            self.query_one(f"#{name}").display = how != DID_NOT
        window = self.select_value("window-kind")
        self.query_one("#window-last").display = window == "last"
        for name in ("window-from", "window-and", "window-to"):
            self.query_one(f"#{name}").display = window == "between"
        has_total = self.select_value("agg-fn") != "none" and not self.step
        self.query_one("#agg-field").display = has_total
        self.query_one("#agg-row").display = has_total
        for row in ("count-row", "window-row", "total-row"):
            self.query_one(f"#{row}").display = not self.step
        self.query_one("#distinct-row").display = not self.step and how != DID_NOT
        agg_between = self.select_value("agg-op") == "between"
        self.query_one("#agg-and").display = agg_between
        self.query_one("#agg-high").display = agg_between

    def select_value(self, widget_id: str) -> str:
        value = self.query_one(f"#{widget_id}", Select).value
        return value if isinstance(value, str) else ""

    def input_text(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def fill_where(self, highlight: int | None = None) -> None:
        where = self.query_one("#where", WhereList)
        where.clear_options()
        if not self.where:
            where.add_option(Option(Text("no conditions: every event of the type counts",
                                         style="dim italic"), id="where-empty", disabled=True))
        for index, condition in enumerate(self.where):
            where.add_option(Option(where_condition_words(condition, self.catalog),
                                    id=f"where-{index}"))
        if self.where:
            where.highlighted = min(highlight or 0, len(self.where) - 1)

    # -- building and checking ----------------------------------------------------------
    def types(self) -> tuple[str, ...] | None:
        text = self.input_text("types")
        if text == ANY_EVENT:
            return None
        return tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))

    def build(self) -> tuple[EventCondition, str | None]:
        problem = None
        types = self.types()
        if types == ():
            problem = "choose an event type (Pick…), or * for any event"
        if self.step:
            return EventCondition(types, tuple(self.where)), problem
        count_op = self.select_value("count-op")
        count: CountRule | None
        if count_op == DID_NOT:
            count = CountRule("at_most", 0)
        else:
            count_value: Any = parse_scalar(self.input_text("count-value"), "integer")
            if count_op == "between":
                count_value = (count_value, parse_scalar(self.input_text("count-high"), "integer"))
            count = CountRule(count_op, count_value, self.select_value("distinct") or None)
        within = None
        try:
            within = parse_window(self.select_value("window-kind"), self.input_text("window-last"),
                                  self.input_text("window-from"), self.input_text("window-to"))
        except ValueError as exc:
            problem = problem or f"window: {exc}"
        aggregate = None
        fn = self.select_value("agg-fn")
        if fn != "none":
            agg_op = self.select_value("agg-op")
            agg_value: Any = parse_scalar(self.input_text("agg-value"), "number")
            if agg_op == "between":
                agg_value = (agg_value, parse_scalar(self.input_text("agg-high"), "number"))
            aggregate = AggregateRule(fn, self.select_value("agg-field"), agg_op, agg_value)
        if count == EventCondition(types, (), None, None, aggregate).effective_count:
            count = None  # the default in force: keep the YAML short
        node = EventCondition(types, tuple(self.where), within, count, aggregate)
        return node, problem

    def waiting_for(self) -> str | None:
        """What is still to be filled in, as a neutral hint: an empty box is not a mistake."""
        types = self.types()
        if types == ():
            return "choose an event type (Pick…), or * for any event"
        if types is not None and any(t not in self.catalog.event_types for t in types):
            return None  # the schema check names the unknown type and the nearest ones
        if self.step:
            return None
        count_op = self.select_value("count-op")
        if count_op != DID_NOT and (not self.input_text("count-value") or (
                count_op == "between" and not self.input_text("count-high"))):
            return "type how many times" + (": from … and …" if count_op == "between" else "")
        window = self.select_value("window-kind")
        if window == "last" and not self.input_text("window-last"):
            return "type " + PERIOD_HINT
        if window == "between" and not (self.input_text("window-from")
                                        and self.input_text("window-to")):
            return f"type both dates, from … and … ({DATE_WORDS})"
        if self.select_value("agg-fn") != "none":
            if not self.select_value("agg-field"):
                if not self.total_fields(self.types()):
                    return "these events have no numeric field to total"
                return "choose the numeric field to total (space opens the list)"
            if not self.input_text("agg-value") or (self.select_value("agg-op") == "between"
                                                    and not self.input_text("agg-high")):
                return "type the number to compare the total with"
        return None

    def refresh_verdict(self) -> None:
        verdict = self.query_one("#verdict", Static)
        wanted = self.waiting_for()
        if wanted is not None:
            verdict.update(Text(wanted, style=f"italic {tone(self.app, 'warning')}"))
            return
        node, problem = self.build()
        if problem is None:
            found = check_condition(node, self.catalog)
            if found is not None:
                where = found.path.removeprefix("rule").lstrip(".")
                problem = f"{where}: {found.message}" if where else found.message
        if problem:
            verdict.update(Text("✗ " + plain_message(problem), style=f"bold {tone(self.app, 'error')}"))
        else:
            words = (step_words(SequenceStep(node.types, node.where), 0, self.catalog)
                     if self.step else describe(node, self.catalog))
            verdict.update(Text("✓ " + words[:1].upper() + words[1:],
                                style=tone(self.app, "success")))

    @on(Input.Changed)
    @on(Select.Changed)
    def changed(self, event: Input.Changed | Select.Changed) -> None:
        if isinstance(event, Input.Changed) and event.input.id == "types":
            self.refresh_total_fields()
        self.relayout()
        self.refresh_verdict()

    # -- pickers ------------------------------------------------------------------------
    @on(Button.Pressed, "#pick-type")
    def pick_type(self) -> None:
        def chosen(value: str | None) -> None:
            if value is not None:
                self.query_one("#types", Input).value = value
                self.query_one("#where" if self.step else "#count-value").focus()

        self.app.push_screen(FuzzyPicker("Event type", event_type_items(self.catalog)), chosen)

    # -- the field a total adds up ---------------------------------------------------------
    def total_fields(self, types: tuple[str, ...] | None, chosen: str = "") -> list[tuple[str, str]]:
        """(label, name) of the numeric fields of ``types`` (every type: None), linked entities'
        included; a field already chosen that is not one of them stays listed, so it shows."""
        known = {name for name in self.catalog.event_types}
        wanted = None if types is None else tuple(t for t in types if t in known)
        items = event_field_items(self.catalog, wanted, numeric_only=True)
        options = [(f"{item.label}  ({item.value})" if item.label != item.value else item.value,
                    item.value) for item in items]
        if chosen and chosen not in {value for _, value in options}:
            options.append((f"{chosen}  (not a number field of these events)", chosen))
        return options

    def distinct_fields(self, types: tuple[str, ...] | None, chosen: str = "") -> list[tuple[str, str]]:
        """(label, name) of the fields of ``types`` whose distinct values can be counted
        ("orders" by ``order_id``), linked entities' included; a field already chosen that is
        not one of them stays listed, so it shows."""
        known = {name for name in self.catalog.event_types}
        wanted = None if types is None else tuple(t for t in types if t in known)
        options = []
        for item in event_field_items(self.catalog, wanted):
            noun, is_id = distinct_noun(item.value, self.catalog)
            words = plural(noun) if is_id else f"distinct {plural(noun)}"
            options.append((f"{words}  ({item.value})", item.value))
        if chosen and chosen not in {value for _, value in options}:
            options.append((f"{chosen}  (not a field of these events)", chosen))
        return options

    def refresh_total_fields(self) -> None:
        """Offer the fields of the event types now typed, to total and to count distinct values
        of (keeping each choice if it fits)."""
        types = self.types()
        if types == self._total_types:
            return
        self._total_types = types
        for select_id, options in (("agg-field", self.total_fields(types)),
                                   ("distinct", self.distinct_fields(types))):
            select = self.query_one(f"#{select_id}", Select)
            chosen = self.select_value(select_id)
            with self.prevent(Select.Changed):
                select.set_options(options)
                if chosen in {value for _, value in options}:
                    select.value = chosen

    # -- where conditions ------------------------------------------------------------
    def action_add_where(self) -> None:
        def chosen(value: str | None) -> None:
            if value is not None:
                self.edit_where_condition(AttributeCondition(value, ""), None)

        items = event_field_items(self.catalog, self.types())
        self.app.push_screen(FuzzyPicker("Only events where…", items), chosen)

    def action_edit_where(self) -> None:
        index = self.query_one("#where", WhereList).highlighted
        if index is not None and 0 <= index < len(self.where):
            self.edit_where_condition(self.where[index], index)

    def action_delete_where(self) -> None:
        index = self.query_one("#where", WhereList).highlighted
        if index is not None and 0 <= index < len(self.where):
            del self.where[index]
            self.fill_where(index)
            self.refresh_verdict()

    def edit_where_condition(self, condition: AttributeCondition, index: int | None) -> None:
        field_type = self.field_type(condition.attribute)
        label = field_label(condition.attribute, self.catalog)
        types = self.types()

        def check(candidate: AttributeCondition) -> str | None:
            probe = EventCondition(types if types else None, (candidate,))
            found = check_condition(probe, self.catalog)
            return None if found is None else found.message

        def done(result: AttributeCondition | None) -> None:
            if result is None:
                return
            if index is None:
                self.where.append(result)
            else:
                self.where[index] = result
            self.fill_where(len(self.where) - 1 if index is None else index)
            self.query_one("#where", WhereList).focus()
            self.refresh_verdict()

        editor = ConditionEditor(
            condition, field_type=field_type, title=f"{label} · {field_type}",
            description=self.field_description(condition.attribute), check=check,
            describe=lambda c: where_condition_words(c, self.catalog), catalog=self.catalog,
            connect=self.connect, event_field=True,
            other_fields=comparable_items(self.catalog, condition.attribute, field_type,
                                          event_types=types or None, in_event=True))
        self.app.push_screen(editor, done)

    def field_type(self, name: str) -> str:
        if "." in name:
            entity_name, _, field_name = name.partition(".")
            entity = self.catalog.entities.get(entity_name)
            if entity and field_name in entity.fields:
                return entity.fields[field_name].type
            return "string"
        field = self.catalog.event_fields.get(name)
        return field.type if field else "string"

    def field_description(self, name: str) -> str:
        if "." in name:
            entity_name, _, field_name = name.partition(".")
            entity = self.catalog.entities.get(entity_name)
            found = entity.fields.get(field_name) if entity else None
            return found.description if found else ""
        field = self.catalog.event_fields.get(name)
        return field.description if field else ""

    # -- applying -------------------------------------------------------------------------
    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        node, problem = self.build()
        if problem:  # the boxes cannot be read as a condition yet
            refused = Text("✗ " + problem, style=f"bold {tone(self.app, 'error')}")
            self.query_one("#verdict", Static).update(refused)
            self.app.bell()
            return
        self.dismiss(node)

