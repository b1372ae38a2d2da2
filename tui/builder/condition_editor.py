"""The value editor of one attribute condition (a profile attribute or an event's field).

The operator list and the value boxes follow the field's type: one box for
a single value, two for ``between``, a period box for ``in_last``, a pick
list of the values the store actually holds (with their counts) for
strings and for ``in``. "Compare" chooses between a value and another field
of a compatible type (a field comparison), listed by the caller. Every
keystroke rebuilds the condition and checks it against the schema: a
problem is shown at once in red, otherwise the condition in plain words.
Enter applies (an invalid condition can be kept; the tree marks it and
leaves it out of the count until it is fixed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from store.engines.base import Connection
from store.schema.catalog import Catalog
from store.schema.values_lookup import top_values
from store.segments.describe import OP_WORDS
from store.segments.model import (
    FIELD_OPS_BY_TYPE,
    LIST_OPS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    PERIOD_OPS,
    RANGE_OPS,
    AttributeCondition,
)
from tui.builder.pickers import PickItem
from tui.builder.value_text import (
    DATE_HINT,
    PERIOD_HINT,
    parse_list,
    parse_period,
    parse_scalar,
    plain_message,
    read_value_file,
    split_values,
    to_text,
)
from tui.widgets.dialog import Dialog, TextPrompt
from tui.widgets.format import tone

Checker = Callable[[AttributeCondition], str | None]
Describer = Callable[[AttributeCondition], str]
Connector = Callable[[], Connection]

DEFAULT_OP = {"string": "equals", "integer": "equals", "number": "equals",
              "boolean": "is_true", "date": "in_last", "datetime": "in_last"}
SUGGESTION_LIMIT = 200


class FormSelect(Select[str]):
    """A select in an editor form: enter applies the form; space, up or down open the list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.apply", "Apply", id="form_select.apply", show=False),
        Binding("space,down,up", "show_overlay", "Choose", id="form_select.show_overlay", show=False),
    ]


class ValueInput(Input):
    """The value box. A list pasted into it (lines, tabs or commas: a column copied from a
    spreadsheet) goes in as the values of an ``in`` condition, not as its first line only."""

    def _on_paste(self, event: events.Paste) -> None:
        # Handlers run for each class of the widget: prevent_default keeps Input's own (which
        # would insert the first line) from running after this one.
        if len(split_values(event.text)) > 1 or "\n" in event.text.strip():
            event.prevent_default()
            event.stop()
            self.paste_list(split_values(event.text))

    def action_paste(self) -> None:
        text = self.app.clipboard
        if len(split_values(text)) > 1 or "\n" in text.strip():
            self.paste_list(split_values(text))
            return
        super().action_paste()

    def paste_list(self, values: list[str]) -> None:
        """Hand a pasted list to the condition editor this box belongs to."""
        screen = self.screen
        if isinstance(screen, ConditionEditor):
            screen.paste_values(values)


class ValueChoices(SelectionList[str]):
    """The store's values to tick (space); enter applies the form."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.apply", "Apply", id="value_choices.apply", show=False),
    ]


def op_label(op: str) -> str:
    return OP_WORDS.get(op, op.replace("_", " "))


class ValuesLoaded(Message):
    def __init__(self, values: list[tuple[Any, int]]) -> None:
        super().__init__()
        self.values = values


class ConditionEditor(Dialog[AttributeCondition | None]):
    """Edit the operator and value of a condition on one field."""

    DEFAULT_CSS = """
    ConditionEditor .dialog { width: 84; }
    ConditionEditor .row { height: 1; margin-bottom: 1; }
    ConditionEditor .row Label { width: 10; color: $text-muted; }
    ConditionEditor #op, ConditionEditor #compare, ConditionEditor #other-field { width: 1fr; }
    ConditionEditor #value, ConditionEditor #value-high { width: 1fr; }
    ConditionEditor #value-and { width: auto; padding: 0 1; color: $text-muted; }
    ConditionEditor #suggestions, ConditionEditor #choices {
        height: auto; max-height: 12; margin-left: 10; border: round $panel;
    }
    ConditionEditor #suggestions:focus, ConditionEditor #choices:focus { border: round $primary; }
    ConditionEditor #value-hint { margin-left: 10; color: $text-muted; margin-bottom: 1; }
    ConditionEditor #verdict { margin-top: 1; height: auto; }
    ConditionEditor .description { color: $text-muted; margin-bottom: 1; }
    ConditionEditor.-short .description,
    ConditionEditor.-short .row, ConditionEditor.-short #value-hint { margin-bottom: 0; }
    ConditionEditor.-short #suggestions, ConditionEditor.-short #choices { max-height: 8; }
    ConditionEditor.-short #verdict, ConditionEditor.-short .hint { margin-top: 0; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="condition_editor.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="condition_editor.apply", priority=True),
        Binding("ctrl+o", "values_from_file", "Values from a file", id="condition_editor.values_from_file",
                priority=True,
                tooltip="Read the values of an 'is one of' condition from a one-column file"),
    ]

    def __init__(self, condition: AttributeCondition, *, field_type: str, title: str,
                 description: str = "", check: Checker, describe: Describer,
                 catalog: Catalog | None = None, connect: Connector | None = None,
                 event_field: bool = False, other_fields: list[PickItem] | None = None) -> None:
        super().__init__()
        self.field_type = field_type
        self.other_fields = other_fields or []
        self.compare = "field" if condition.field is not None else "value"
        self.ops = self.ops_for(self.compare)
        op = condition.op if condition.op in self.ops else DEFAULT_OP.get(field_type, self.ops[0])
        if op not in self.ops:
            op = self.ops[0]
        self.condition = AttributeCondition(condition.attribute, op, condition.value,
                                            condition.field)
        self.title_text = title
        self.description = description
        self.check = check
        self.describe = describe
        self.catalog = catalog
        self.connect = connect
        self.event_field = event_field
        self.known_values: list[tuple[Any, int]] = []
        self._suggested: list[str] = []

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        value = self.condition.value
        low, high = ("", "")
        if isinstance(value, tuple) and self.condition.op in RANGE_OPS and len(value) == 2:
            low, high = to_text(value[0]), to_text(value[1])
        elif self.condition.op not in LIST_OPS:
            low = to_text(value)
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            if self.description:
                yield Static(self.description, classes="description", markup=False)
            with Horizontal(classes="row", id="compare-row"):
                yield Label("Compare")
                yield FormSelect([("with a value", "value"), ("with another field", "field")],
                                 value=self.compare, allow_blank=False, id="compare")
            with Horizontal(classes="row"):
                yield Label("Operator")
                yield FormSelect([(op_label(op), op) for op in self.ops],
                                 value=self.condition.op, allow_blank=False, id="op")
            with Horizontal(classes="row", id="other-row"):
                yield Label("Field")
                known = {item.value for item in self.other_fields}
                options = [(self.field_option(item), item.value) for item in self.other_fields]
                field = self.condition.field
                if field and field not in known:
                    options.append((f"{field}  (not a field of a compatible type)", field))
                yield FormSelect(options, value=field or Select.NULL,
                                 prompt="the field to compare with…", allow_blank=True,
                                 id="other-field")
            with Horizontal(classes="row", id="value-row"):
                yield Label("Value")
                yield ValueInput(low, id="value")
                yield Static("and", id="value-and")
                yield Input(high, id="value-high")
            yield Static("", id="value-hint", markup=False)
            yield OptionList(id="suggestions")
            yield ValueChoices(id="choices")
            yield Static("", id="verdict")
            yield Static("enter: apply · shift+tab: operator (space opens it) · down: values in"
                         " the store · paste a list, or ctrl+o: values from a file · esc: cancel",
                         classes="hint")

    @staticmethod
    def field_option(item: PickItem) -> str:
        return f"{item.label}  ({item.value})" if item.label != item.value else item.value

    def ops_for(self, compare: str) -> tuple[str, ...]:
        """The operators of a comparison with a value, or with another field."""
        if compare == "field":
            return FIELD_OPS_BY_TYPE.get(self.field_type, ("equals", "not_equals"))
        return OPS_BY_TYPE.get(self.field_type, ("equals",))

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.compact = True
        for select in self.query(Select):
            select.compact = True
        self.query_one("#compare-row").display = bool(self.other_fields)
        if self.condition.op in LIST_OPS and isinstance(self.condition.value, tuple):
            self.query_one("#value", Input).value = to_text(self.condition.value)
        self.layout_for(self.condition.op)
        # Focus now (not deferred): the value box, or the operator when there is nothing to type.
        if self.compare == "field":
            self.set_focus(self.query_one("#other-field"))
        else:
            self.set_focus(self.query_one("#op" if self.condition.op in NO_VALUE_OPS
                                          else "#value"))
        if self.connect is not None and self.catalog is not None and self.field_type == "string":
            self.load_values()
        self.refresh_verdict()

    def current_compare(self) -> str:
        value = self.query_one("#compare", Select).value
        return value if value in ("value", "field") else "value"

    def layout_for(self, op: str) -> None:
        """Show the boxes the operator needs (a field comparison: the field list instead)."""
        by_field = self.current_compare() == "field"
        self.query_one("#other-row").display = by_field
        no_value = op in NO_VALUE_OPS or by_field
        self.query_one("#value-row").display = not no_value
        ranged = op in RANGE_OPS
        self.query_one("#value-and").display = ranged
        self.query_one("#value-high").display = ranged
        value_input = self.query_one("#value", Input)
        if op in LIST_OPS:
            value_input.placeholder = "values, separated by commas"
        elif op in PERIOD_OPS:
            value_input.placeholder = "30 days"
        elif self.field_type in ("date", "datetime"):
            value_input.placeholder = DATE_HINT
        elif ranged:
            value_input.placeholder = "from"
        else:
            value_input.placeholder = {"integer": "a whole number", "number": "a number"}.get(
                self.field_type, "a value")
        hint = ""
        if by_field:
            hint = ""
        elif op in PERIOD_OPS:
            hint = PERIOD_HINT
        elif self.field_type in ("date", "datetime") and not no_value:
            hint = DATE_HINT + (", or an ISO datetime" if self.field_type == "datetime" else "")
        self.query_one("#value-hint", Static).update(hint)
        self.query_one("#value-hint").display = bool(hint)
        has_values = bool(self.known_values)
        single_string = self.field_type == "string" and op in ("equals", "not_equals",
                                                               "starts_with", "ends_with",
                                                               "contains", "not_contains")
        self.query_one("#suggestions").display = has_values and single_string and not by_field
        self.query_one("#choices").display = has_values and op in LIST_OPS and not by_field
        self.fill_suggestions()

    # -- values from the store --------------------------------------------------------
    @work(thread=True, exclusive=True, group="condition-values", exit_on_error=False)
    def load_values(self) -> None:
        assert self.connect is not None and self.catalog is not None
        conn = self.connect()
        try:
            values = top_values(conn, self.catalog, self.condition.attribute,
                                event_field=self.event_field, limit=SUGGESTION_LIMIT)
        finally:
            conn.close()
        self.post_message(ValuesLoaded(values))

    @on(ValuesLoaded)
    def values_loaded(self, message: ValuesLoaded) -> None:
        self.known_values = message.values
        choices = self.query_one("#choices", SelectionList)
        chosen = set(self.box_items())
        for value, count in message.values:
            text = str(value)
            choices.add_option((self.value_prompt(text, count), text, text in chosen))
        self.layout_for(self.current_op())

    def box_items(self) -> list[str]:
        """The values typed in the box, in their order (the box is what a list condition holds)."""
        text = self.query_one("#value", Input).value
        return [item.strip() for item in text.split(",") if item.strip()]

    @on(SelectionList.SelectionToggled, "#choices")
    def choice_toggled(self, event: SelectionList.SelectionToggled[str]) -> None:
        """A value ticked or unticked in the list is added to or removed from the box."""
        value = str(event.selection.value)
        items = [item for item in self.box_items() if item != value]
        if value in event.selection_list.selected:
            items.append(value)
        self.query_one("#value", Input).value = ", ".join(items)

    def tick_box_items(self) -> None:
        """Keep the ticks in the list in step with what is typed in the box."""
        choices = self.query_one("#choices", SelectionList)
        wanted = set(self.box_items())
        for value, _ in self.known_values:
            text = str(value)
            if (text in wanted) != (text in choices.selected):
                if text in wanted:
                    choices.select(text)
                else:
                    choices.deselect(text)

    @staticmethod
    def value_prompt(text: str, count: int) -> Text:
        prompt = Text(no_wrap=True, overflow="ellipsis")
        prompt.append(text[:40].ljust(40))
        prompt.append(f"{count:>12,}", style="dim")
        return prompt

    def fill_suggestions(self) -> None:
        suggestions = self.query_one("#suggestions", OptionList)
        if not suggestions.display:
            return
        typed = self.query_one("#value", Input).value.strip().lower()
        suggestions.clear_options()
        matching = [(str(v), n) for v, n in self.known_values if typed in str(v).lower()]
        suggestions.add_options(Option(self.value_prompt(text, n), id=f"v{i}")
                                for i, (text, n) in enumerate(matching[:50]))
        self._suggested = [text for text, _ in matching[:50]]

    # -- building and checking ------------------------------------------------------
    def current_op(self) -> str:
        value = self.query_one("#op", Select).value
        return value if isinstance(value, str) else self.condition.op

    def other_field(self) -> str:
        value = self.query_one("#other-field", Select).value
        return value if isinstance(value, str) else ""

    def build(self) -> tuple[AttributeCondition, str | None]:
        """The condition as typed, and a problem reading the boxes (before the schema check)."""
        op = self.current_op()
        if self.current_compare() == "field":
            return AttributeCondition(self.condition.attribute, op, field=self.other_field()), None
        text = self.query_one("#value", Input).value
        value: Any
        problem = None
        if op in NO_VALUE_OPS:
            value = None
        elif op in LIST_OPS:
            value = tuple(dict.fromkeys(parse_list(text, self.field_type))) or None
        elif op in RANGE_OPS:
            high = self.query_one("#value-high", Input).value
            low_value = parse_scalar(text, self.field_type) if text.strip() else None
            high_value = parse_scalar(high, self.field_type) if high.strip() else None
            value = (low_value, high_value)
            if low_value is None or high_value is None:
                problem = "between needs both ends: from … and …"
        elif op in PERIOD_OPS:
            try:
                value = parse_period(text) if text.strip() else None
            except ValueError as exc:
                value, problem = text.strip(), str(exc)
        else:
            value = parse_scalar(text, self.field_type) if text.strip() else None
        return AttributeCondition(self.condition.attribute, op, value), problem

    def waiting_for(self, op: str) -> str | None:
        """What to type while a value box is still empty: a neutral hint, not an error
        (nothing typed is not a mistake)."""
        if self.current_compare() == "field":
            return None if self.other_field() else "choose the field to compare with (space)"
        if op in NO_VALUE_OPS:
            return None
        low = self.query_one("#value", Input).value.strip()
        if op in RANGE_OPS:
            high = self.query_one("#value-high", Input).value.strip()
            return None if low and high else "type both ends: from … and … (inclusive)"
        if low:
            return None
        if op in LIST_OPS:
            return "tick values (space) or type them, separated by commas"
        if op in PERIOD_OPS:
            return "type a length (examples above)"
        if self.field_type in ("date", "datetime"):
            return "type a date (examples above)"
        return {"integer": "type a whole number", "number": "type a number"}.get(
            self.field_type, "type a value")

    def refresh_verdict(self) -> None:
        condition, problem = self.build()
        verdict = self.query_one("#verdict", Static)
        wanted = self.waiting_for(condition.op)
        if wanted is not None:
            verdict.update(Text(wanted, style=f"italic {tone(self.app, 'warning')}"))
            return
        problem = problem or self.check(condition)
        if problem:
            verdict.update(Text("✗ " + plain_message(problem), style=f"bold {tone(self.app, 'error')}"))
        else:
            verdict.update(Text("✓ " + self.describe(condition), style=tone(self.app, "success")))

    @on(Select.Changed, "#op")
    @on(Select.Changed, "#other-field")
    def op_changed(self) -> None:
        self.layout_for(self.current_op())
        self.refresh_verdict()

    @on(Select.Changed, "#compare")
    def compare_changed(self) -> None:
        """A value or another field: offer that comparison's operators (keeping the one
        chosen when it still applies)."""
        compare = self.current_compare()
        if compare == self.compare:
            return
        self.compare = compare
        current = self.current_op()
        self.ops = self.ops_for(compare)
        select = self.query_one("#op", Select)
        with self.prevent(Select.Changed):
            select.set_options([(op_label(op), op) for op in self.ops])
            select.value = current if current in self.ops else self.ops[0]
        self.layout_for(self.current_op())
        self.refresh_verdict()

    @on(Input.Changed)
    def text_changed(self, event: Input.Changed) -> None:
        if event.input.id == "value":
            self.fill_suggestions()
            if self.current_op() in LIST_OPS:
                self.tick_box_items()
        self.refresh_verdict()

    @on(SelectionList.SelectedChanged)
    def choices_changed(self) -> None:
        self.refresh_verdict()

    def on_key(self, event: Any) -> None:
        """Down from the value box goes to the store's values."""
        if self.answered:
            return  # Dialog.on_key swallows it
        if event.key == "down" and self.focused is self.query_one("#value", Input):
            target = "#choices" if self.current_op() in LIST_OPS else "#suggestions"
            widget = self.query_one(target, OptionList)
            if widget.display and widget.option_count:
                event.stop()
                widget.focus()
                if widget.highlighted is None:
                    widget.highlighted = 0

    @on(OptionList.OptionSelected, "#suggestions")
    def suggestion_picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = event.option_index
        if 0 <= index < len(self._suggested):
            self.query_one("#value", Input).value = self._suggested[index]
            self.action_apply()

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    # -- lists of values: pasted, or from a file ---------------------------------------------
    def paste_values(self, values: list[str]) -> None:
        """Add pasted values to the list (switching "is" to "is one of", "is not" to "is none
        of", where the operator takes one value)."""
        op = self.current_op()
        if op not in LIST_OPS:
            target = "not_in" if op == "not_equals" else "in"
            if target not in self.ops:
                self.notify(f"A list of values does not fit '{op_label(op)}'; pasted the first"
                            " value only.", severity="warning")
                box = self.query_one("#value", Input)
                box.value = values[0] if values else box.value
                return
            self.query_one("#op", Select).value = target
            self.layout_for(target)
            current: list[str] = []
        else:
            current = self.box_items()
        merged = list(dict.fromkeys([*current, *values]))
        with_commas = [v for v in values if "," in v]
        if with_commas:
            self.notify(f"{len(with_commas)} value(s) hold a comma and were split there.",
                        severity="warning")
        self.query_one("#value", Input).value = ", ".join(merged)
        self.notify(f"Added {len(merged) - len(current):,} value(s); {len(merged):,} in the list.")

    def action_values_from_file(self) -> None:
        if self.field_type not in ("string", "integer", "number"):
            self.notify("Only text and number conditions take a list of values.",
                        severity="warning")
            return
        def chosen(path: str | None) -> None:
            if not path or not path.strip():
                return
            headers = (self.condition.attribute, self.condition.attribute.rpartition(".")[2],
                       self.title_text.partition(" · ")[0])
            try:
                values = read_value_file(path.strip(), headers)
            except ValueError as exc:
                self.notify(str(exc), severity="error")
                return
            self.paste_values(values)

        self.app.push_screen(TextPrompt("Values from a one-column file (one value a line)", "",
                                        placeholder="path/to/values.csv"), chosen)

    def action_apply(self) -> None:
        condition, _ = self.build()
        self.dismiss(condition)

