"""The rule tree: the draft's nodes in plain words, each with its own count and the waterfall.

Textual's ``Tree`` has no editing API, so the tree is a view: after every
edit ``show`` rebuilds it from the model and puts the cursor on the path the
edit selected. A ``not`` around a single condition is shown as one row
("Not in segment Unsubscribed"); around a group as "Not all of:" / "None
of:" with the group's children below it.

Each row's counts are drawn right-aligned at the tree's right edge, in two
columns as wide as the numbers on screen need: the node's own audience and,
for the children of an ``all``, how many profiles are left after it and the
conditions above it ("48,210 · 12,400 left"). The words get the rest of the
width.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from store.query.audience import NodeCount
from store.schema.catalog import Catalog
from store.segments.describe import describe, step_words, window_words
from store.segments.editing import Problem, left_out, unit_path
from store.segments.model import AllOf, AnyOf, Node, NotOf, SequenceCondition, child_path
from tui.builder.preview import share_bar
from tui.widgets.format import tone

MIN_OWN_WIDTH = 5  # "2,919": the counts column never narrower than this
GAP = 2  # between the words and the counts
INVALID = "✗ invalid, left out"
LEFT_OUT = "left out"
FUNNEL_BAR = 10  # the bar of a sequence step: its count against the first step's


@dataclass
class Row:
    """What one tree line shows; ``covers`` are the model paths this row stands for."""

    path: str
    node: Node
    text: str
    is_group: bool
    in_all: bool
    covers: tuple[str, ...]
    problem: Problem | None = None
    left_out: bool = False
    count: NodeCount | None = None
    pending: bool = True
    step: int | None = None  # a sequence's step (shown under it, with its funnel count)


class RuleTree(Tree[Row]):
    """The rule tree of the builder (the screen's keys act on the highlighted row)."""

    HELP_TITLE = "Rule tree"

    DEFAULT_CSS = """
    RuleTree { padding: 0 1; }
    RuleTree > .tree--guides { color: $primary 40%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.edit", "Edit", id="rule_tree.edit", show=False,
                tooltip="Edit the highlighted condition"),
        Binding("j", "cursor_down", "Down", id="rule_tree.cursor_down", show=False),
        Binding("k", "cursor_up", "Up", id="rule_tree.cursor_up", show=False),
        Binding("space", "toggle_node", "Fold", id="rule_tree.toggle_node", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("All of:", id=id)
        self.guide_depth = 3
        self.auto_expand = False
        self.rows: dict[str, TreeNode[Row]] = {}
        # The step rows under each sequence, by the sequence's path: views, not model nodes.
        self.step_rows: dict[str, list[TreeNode[Row]]] = {}
        self.rule: Node = AllOf()
        # Widths of the two count columns, from the counts last shown (kept while pending).
        self.own_width = MIN_OWN_WIDTH
        self.left_width = 0

    # -- building -------------------------------------------------------------------
    def show(self, rule: Node, select: str, catalog: Catalog | None,
             names: Mapping[str, str] | None = None,
             problems: Mapping[str, Problem] | None = None) -> None:
        """Rebuild from the model and put the cursor on ``select`` (or the nearest row)."""
        self.clear()
        self.rows = {}
        self.step_rows = {}
        self.rule = rule
        self._fill(self.root, rule, "rule", False, catalog, names or {}, problems or {})
        self.mark_left_out(problems or {})
        self.root.expand_all()
        self.select_path(select)

    def _fill(self, tree_node: TreeNode[Row], node: Node, path: str, in_all: bool,
              catalog: Catalog | None, names: Mapping[str, str],
              problems: Mapping[str, Problem]) -> None:
        covers = [path]
        shown = node
        while isinstance(shown, NotOf) and not isinstance(shown.child, NotOf | AllOf | AnyOf):
            covers.append(f"{covers[-1]}.not")
            shown = shown.child
        group = node.child if isinstance(node, NotOf) and isinstance(node.child, AllOf | AnyOf) \
            else node
        is_group = isinstance(group, AllOf | AnyOf) or (
            isinstance(node, NotOf) and isinstance(node.child, NotOf))
        sequence = shown if isinstance(shown, SequenceCondition) else None
        row = Row(path, node, row_text(node, catalog, names), is_group, in_all, tuple(covers))
        row.problem = next((problems[p] for p in covers if p in problems), None)
        tree_node.data = row
        tree_node.set_label(row.text)
        tree_node.allow_expand = is_group or sequence is not None
        self.rows[path] = tree_node
        if sequence is not None:
            steps = []
            for index, step in enumerate(sequence.steps):
                phrase = step_words(step, index, catalog)
                phrase = f"then {phrase}" if index else phrase[:1].upper() + phrase[1:]
                step_row = Row(path, node, f"{index + 1}. {phrase}", False, False, tuple(covers),
                               problem=row.problem, step=index)
                leaf = tree_node.add_leaf(step_row.text, data=step_row)
                steps.append(leaf)
            self.step_rows[covers[-1]] = steps
        if isinstance(group, AllOf | AnyOf):
            base = f"{path}.not" if group is not node else path
            for index, child in enumerate(group.children):
                leaf = tree_node.add(describe(child, catalog, names), expand=True)
                self._fill(leaf, child, child_path(base, group, index), isinstance(group, AllOf),
                           catalog, names, problems)
        elif isinstance(node, NotOf) and isinstance(node.child, NotOf):
            leaf = tree_node.add("", expand=True)
            self._fill(leaf, node.child, f"{path}.not", False, catalog, names, problems)

    def select_path(self, path: str) -> None:
        """Move the cursor to the row of ``path``, or of its nearest shown ancestor."""
        probe = path
        while probe not in self.rows and probe != "rule":
            stripped = unit_path(probe)
            if stripped != probe and stripped in self.rows:
                probe = stripped
                break
            cut = probe.rfind(".")
            probe = probe[:cut] if cut > 0 else "rule"
        node = self.rows.get(probe, self.root)
        _ = self._tree_lines  # lay the lines out now, so the node has its line number
        self.move_cursor(node, animate=False)

    @property
    def selected_path(self) -> str:
        node = self.cursor_node
        return node.data.path if node is not None and node.data is not None else "rule"

    @property
    def selected_row(self) -> Row | None:
        node = self.cursor_node
        return node.data if node is not None else None

    # -- counts ---------------------------------------------------------------------
    def relabel(self, catalog: Catalog | None, names: Mapping[str, str]) -> None:
        """Describe every row again (once the saved segments' names are known), keeping
        its counts: the rule is the same, only the words change."""
        for node in self.rows.values():
            row = node.data
            if row is not None:
                row.text = row_text(row.node, catalog, names)
                node.set_label(row.text)

    def every_row(self) -> list[TreeNode[Row]]:
        """The model's rows and the sequence steps' rows under them."""
        return [*self.rows.values(), *(n for steps in self.step_rows.values() for n in steps)]

    def set_pending(self) -> None:
        for node in self.every_row():
            if node.data is not None:
                node.data.pending = True
                node.data.count = None
                node.refresh()

    def set_counts(self, counts: Mapping[str, NodeCount]) -> None:
        shown = [counts[path] for path in self.rows if path in counts]
        self.own_width = max([MIN_OWN_WIDTH, *(len(f"{n:,}") for c in shown
                                               for n in (c.own, *c.funnel))])
        self.left_width = max([0, *(len(f"{c.remaining:,}") for path, c in counts.items()
                                    if c.remaining is not None and self.in_all(path))])
        for path, node in self.rows.items():
            if node.data is not None:
                node.data.count = counts.get(path)
                node.data.pending = False
                node.refresh()
        for path, steps in self.step_rows.items():
            for node in steps:
                if node.data is not None:
                    node.data.count = counts.get(path)
                    node.data.pending = False
                    node.refresh()

    def set_problems(self, problems: Mapping[str, Problem]) -> None:
        for node in self.every_row():
            row = node.data
            if row is not None:
                row.problem = next((problems[p] for p in row.covers if p in problems), None)
                node.refresh()
        self.mark_left_out(problems)

    def mark_left_out(self, problems: Mapping[str, Problem]) -> None:
        """Flag the rows the count leaves out (bad ones, and groups of nothing but bad ones)."""
        out = left_out(self.rule, set(problems))
        for node in self.every_row():
            row = node.data
            if row is not None:
                row.left_out = any(p in out for p in row.covers) or any(
                    row.path.startswith((p + ".", p + "[")) for p in out)
                node.refresh()

    # -- drawing ----------------------------------------------------------------------
    def render_label(self, node: TreeNode[Row], base_style: Style, style: Style) -> Text:
        row = node.data
        if row is None:
            return super().render_label(node, base_style, style)
        depth = 0
        parent = node.parent
        while parent is not None:
            depth += 1
            parent = parent.parent
        icon = 2 if node.allow_expand else 0
        room = self.scrollable_content_region.width - depth * self.guide_depth - icon
        counts = self.counts_text(row)
        text_room = max(8, room - counts.cell_len - GAP)
        label = Text(row.text, no_wrap=True, overflow="ellipsis",
                     style="bold" if row.is_group else "")
        if row.problem is not None:
            label.stylize(tone(self.app, "error"))
        if row.is_group and isinstance(row.node, AllOf | AnyOf) and not row.node.children:
            label.append("  empty: " + ("everyone" if isinstance(row.node, AllOf) else "no one"),
                         style="dim italic")
        label.truncate(text_room, overflow="ellipsis")
        label.pad_right(max(0, room - label.cell_len - counts.cell_len))
        label.append_text(counts)
        label.stylize(style)
        if node.allow_expand:
            prefix = (self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE,
                      base_style + Style(bold=True))
        else:
            prefix = ("", base_style)
        return Text.assemble(prefix, label)

    def in_all(self, path: str) -> bool:
        node = self.rows.get(path)
        return node is not None and node.data is not None and node.data.in_all

    @property
    def waterfall_width(self) -> int:
        """" · 12,400 left": the waterfall column, 0 when no row has one."""
        return len(" ·  left") + self.left_width if self.left_width else 0

    def counts_text(self, row: Row) -> Text:
        """The row's counts, as wide as the count columns (a problem may be wider)."""
        width = self.own_width + self.waterfall_width
        text = Text(no_wrap=True)
        if row.problem is not None:
            text.append(INVALID.rjust(width), style=f"bold {tone(self.app, 'error')}")
            return text
        if row.left_out:
            text.append(LEFT_OUT.rjust(width), style="dim italic")
            return text
        if row.pending or row.count is None:
            text.append("…".rjust(self.own_width), style="dim")
            text.append(" " * self.waterfall_width)
            return text
        if row.step is not None:
            return self.funnel_text(row.count, row.step)
        text.append(f"{row.count.own:,}".rjust(self.own_width), style=tone(self.app, "accent"))
        if row.in_all and row.count.remaining is not None and self.left_width:
            text.append(" · ", style="dim")
            text.append(f"{row.count.remaining:,}".rjust(self.left_width), style="bold")
            text.append(" left", style="dim")
        else:
            text.append(" " * self.waterfall_width)
        return text

    def funnel_text(self, count: NodeCount, step: int) -> Text:
        """A step's funnel: a bar of how many got this far against the first step, the count."""
        text = Text(no_wrap=True)
        funnel = count.funnel
        if step >= len(funnel):
            text.append(" " * (FUNNEL_BAR + 1 + self.own_width + self.waterfall_width))
            return text
        first = funnel[0]
        text.append_text(share_bar(funnel[step] / first if first else 0.0, FUNNEL_BAR,
                                   tone(self.app, "success")))
        text.append(" ")
        text.append(f"{funnel[step]:,}".rjust(self.own_width), style=tone(self.app, "accent"))
        text.append(" " * self.waterfall_width)
        return text


def row_text(node: Node, catalog: Catalog | None, names: Mapping[str, str]) -> str:
    """A model row's words: the node described, except a sequence (its steps are the rows
    under it), which gets a title."""
    shown = node
    while isinstance(shown, NotOf) and not isinstance(shown.child, NotOf | AllOf | AnyOf):
        shown = shown.child
    if isinstance(shown, SequenceCondition):
        return sequence_title(shown, shown is not node)
    return describe(node, catalog, names)


def sequence_title(sequence: SequenceCondition, negated: bool) -> str:
    """The row of a sequence, whose steps are the rows under it: ``In this order:``,
    ``Not in this order, all in the last 30 days:``."""
    title = "Not in this order" if negated else "In this order"
    if sequence.within is not None:
        title += ", all " + window_words(sequence.within)
    return title + ":"
