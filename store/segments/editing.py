"""Editing a segment's rule tree without a terminal: pure operations plus an undo history.

The builder never mutates nodes (they are frozen): every operation takes the
current rule and the node path of the selection (``store.model.walk`` paths
such as ``rule.all[2].not``) and returns an ``Edit``: the new rule and the
path the selection should move to. ``SegmentDraft`` applies edits and keeps
the undo and redo stacks, and whether the draft differs from what was saved.

The module also works out which nodes of a draft are invalid (so the builder
can mark them in red) and the *countable* tree: the same tree with the
invalid nodes left out, so the rest of the rule still counts while one value
is being typed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Literal

from store.errors import InputError
from store.schema.catalog import Catalog
from store.segments.errors import SegmentError
from store.segments.model import (
    AllOf,
    AnyOf,
    AttributeCondition,
    EventCondition,
    Node,
    NotOf,
    Segment,
    SegmentRef,
    SequenceCondition,
    walk,
)
from store.segments.validate import ResolvedSegment, validate_segment

ROOT: Final = "rule"
MAX_HISTORY: Final = 500

Step = tuple[Literal["all", "any", "not"], int]  # the index is 0 for "not"
_STEP_RE = re.compile(r"\.(all|any)\[(\d+)\]|\.(not)")


class EditError(InputError):
    """An edit that cannot be made here (e.g. moving the first child further up)."""


@dataclass(frozen=True)
class Edit:
    """The result of an operation: the new rule and the node path to select."""

    rule: Node
    select: str


# ------------------------------------------------------------------------- paths


def parse_path(path: str) -> list[Step]:
    """``rule.all[2].not`` -> ``[("all", 2), ("not", 0)]``; raises EditError if malformed."""
    if not path.startswith(ROOT):
        raise EditError(f"not a node path: {path!r}")
    rest = path[len(ROOT):]
    steps: list[Step] = []
    position = 0
    for match in _STEP_RE.finditer(rest):
        if match.start() != position:
            break
        if match.group(3):
            steps.append(("not", 0))
        else:
            kind: Literal["all", "any"] = "all" if match.group(1) == "all" else "any"
            steps.append((kind, int(match.group(2))))
        position = match.end()
    if position != len(rest):
        raise EditError(f"not a node path: {path!r}")
    return steps


def format_path(steps: list[Step]) -> str:
    return ROOT + "".join(".not" if kind == "not" else f".{kind}[{index}]"
                          for kind, index in steps)


def parent_of(path: str) -> tuple[str, Step] | None:
    """The parent's path and the step from it to ``path``; None for the root."""
    steps = parse_path(path)
    if not steps:
        return None
    return format_path(steps[:-1]), steps[-1]


def node_at(rule: Node, path: str) -> Node:
    """The node a path names; EditError if the path does not fit the tree."""
    node = rule
    for kind, index in parse_path(path):
        if kind == "not" and isinstance(node, NotOf):
            node = node.child
        elif (kind == "all" and isinstance(node, AllOf)) or (kind == "any" and isinstance(node, AnyOf)):
            if not 0 <= index < len(node.children):
                raise EditError(f"no node at {path!r}")
            node = node.children[index]
        else:
            raise EditError(f"no node at {path!r}")
    return node


def replace_at(rule: Node, path: str, new: Node) -> Node:
    """The rule with the node at ``path`` replaced by ``new``."""
    return _replace(rule, parse_path(path), new, path)


def _replace(node: Node, steps: list[Step], new: Node, path: str) -> Node:
    if not steps:
        return new
    (kind, index), rest = steps[0], steps[1:]
    if kind == "not" and isinstance(node, NotOf):
        return NotOf(_replace(node.child, rest, new, path))
    if isinstance(node, AllOf | AnyOf) and kind == ("all" if isinstance(node, AllOf) else "any"):
        if not 0 <= index < len(node.children):
            raise EditError(f"no node at {path!r}")
        children = list(node.children)
        children[index] = _replace(children[index], rest, new, path)
        return type(node)(tuple(children))
    raise EditError(f"no node at {path!r}")


def unit_path(path: str) -> str:
    """The path with trailing ``.not`` steps removed: a ``not`` and its child move as one."""
    steps = parse_path(path)
    while steps and steps[-1][0] == "not":
        steps.pop()
    return format_path(steps)


def group_kind(node: Node) -> Literal["all", "any"]:
    return "all" if isinstance(node, AllOf) else "any"


def inner_group_path(rule: Node, path: str) -> str | None:
    """The group a path stands for: the node itself, or the group under its ``not``s."""
    node = node_at(rule, path)
    while isinstance(node, NotOf):
        path, node = f"{path}.not", node.child
    return path if isinstance(node, AllOf | AnyOf) else None


def enclosing_group_path(rule: Node, path: str) -> str | None:
    """The nearest group that holds the selection (through ``not``s), or None at the root."""
    found = parent_of(unit_path(path))
    return None if found is None else found[0]


# -------------------------------------------------------------------- operations


def insert(rule: Node, path: str, new: Node, inside: bool | None = None) -> Edit:
    """Add ``new`` inside the selected group (at its end) or after the selection.

    ``inside=None`` chooses what a person means: inside when a group (or a
    negated group) is selected, after it otherwise. Adding after the root
    when it is a single condition makes the root an ``all`` of both.
    """
    group_path = inner_group_path(rule, path)
    if inside is None:
        inside = group_path is not None
    if inside:
        if group_path is None:
            raise EditError("only a group can hold other conditions; select a group or add after")
        group = node_at(rule, group_path)
        assert isinstance(group, AllOf | AnyOf)
        updated = type(group)((*group.children, new))
        return Edit(replace_at(rule, group_path, updated),
                    f"{group_path}.{group_kind(group)}[{len(group.children)}]")
    unit = unit_path(path)
    found = parent_of(unit)
    if found is None:
        return Edit(AllOf((rule, new)), f"{ROOT}.all[1]")
    parent_path, (_, index) = found
    parent = node_at(rule, parent_path)
    assert isinstance(parent, AllOf | AnyOf)
    children = list(parent.children)
    children.insert(index + 1, new)
    return Edit(replace_at(rule, parent_path, type(parent)(tuple(children))),
                f"{parent_path}.{group_kind(parent)}[{index + 1}]")


def replace_node(rule: Node, path: str, new: Node) -> Edit:
    return Edit(replace_at(rule, path, new), path)


def delete(rule: Node, path: str) -> Edit:
    """Remove the selection (with the ``not`` around it); deleting the root empties the rule."""
    unit = unit_path(path)
    found = parent_of(unit)
    if found is None:
        return Edit(AllOf(), ROOT)
    parent_path, (_, index) = found
    parent = node_at(rule, parent_path)
    assert isinstance(parent, AllOf | AnyOf)
    children = list(parent.children)
    del children[index]
    kind = group_kind(parent)
    if index < len(children):
        select = f"{parent_path}.{kind}[{index}]"
    elif children:
        select = f"{parent_path}.{kind}[{index - 1}]"
    else:
        select = parent_path
    return Edit(replace_at(rule, parent_path, type(parent)(tuple(children))), select)


def negate(rule: Node, path: str) -> Edit:
    """Wrap the selection in ``not``, or unwrap it if it already is one."""
    node = node_at(rule, path)
    if isinstance(node, NotOf):
        return Edit(replace_at(rule, path, node.child), path)
    return Edit(replace_at(rule, path, NotOf(node)), path)


def wrap(rule: Node, path: str, kind: Literal["all", "any"] = "all") -> Edit:
    """Put the selection (with its ``not``) alone into a new group, selecting the group."""
    unit = unit_path(path)
    node = node_at(rule, unit)
    group: Node = AllOf((node,)) if kind == "all" else AnyOf((node,))
    return Edit(replace_at(rule, unit, group), unit)


def toggle_group(rule: Node, path: str) -> Edit:
    """Switch the selected group (or the group holding the selection) between all and any."""
    group_path = inner_group_path(rule, path) or enclosing_group_path(rule, path)
    if group_path is None:
        raise EditError("there is no group to switch between all and any; wrap it in a group (w)")
    group = node_at(rule, group_path)
    assert isinstance(group, AllOf | AnyOf)
    switched: Node = AnyOf(group.children) if isinstance(group, AllOf) else AllOf(group.children)
    steps = parse_path(path)
    depth = len(parse_path(group_path))
    if len(steps) > depth:
        _, index = steps[depth]
        steps[depth] = (group_kind(switched), index)
    return Edit(replace_at(rule, group_path, switched), format_path(steps))


def selection_in_group(rule: Node, path: str, refusal: str) -> tuple[str, str, AllOf | AnyOf, int]:
    """The selection's unit path (with its ``not``), its group's path, the group, and its index
    there; ``refusal`` is the error when the selection is the top of the rule."""
    unit = unit_path(path)
    found = parent_of(unit)
    if found is None:
        raise EditError(refusal)
    parent_path, (_, index) = found
    parent = node_at(rule, parent_path)
    assert isinstance(parent, AllOf | AnyOf)
    return unit, parent_path, parent, index


def move(rule: Node, path: str, delta: int) -> Edit:
    """Move the selection up (``delta`` -1) or down (+1) among its siblings."""
    unit, parent_path, parent, index = selection_in_group(rule, path,
                                                          "the top of the rule cannot move")
    target = index + delta
    if not 0 <= target < len(parent.children):
        raise EditError("already the first in its group" if delta < 0
                        else "already the last in its group")
    children = list(parent.children)
    children[index], children[target] = children[target], children[index]
    suffix = path[len(unit):]
    return Edit(replace_at(rule, parent_path, type(parent)(tuple(children))),
                f"{parent_path}.{group_kind(parent)}[{target}]{suffix}")


def reference_at(rule: Node, path: str) -> tuple[str, str]:
    """The path and segment id of the reference at ``path`` (or inside the ``not`` there)."""
    node = node_at(rule, path)
    if isinstance(node, NotOf) and isinstance(node.child, SegmentRef):
        return f"{path}.not", node.child.segment
    if isinstance(node, SegmentRef):
        return path, node.segment
    raise EditError("only a segment reference can be replaced by its rules; highlight one")


def inline_reference(rule: Node, path: str, referenced: Node) -> Edit:
    """Replace the reference at ``path`` with ``referenced``, the rule of the segment it names:
    the same audience (a reference means exactly that segment's rule, at the same as-of
    instant), now editable here. References inside that rule stay references."""
    ref_path, _ = reference_at(rule, path)
    return Edit(replace_at(rule, ref_path, referenced), ref_path)


def indent(rule: Node, path: str) -> Edit:
    """Move the selection (with its ``not``) into the group just above it, at its end, as an
    outliner's indent does."""
    unit, parent_path, parent, index = selection_in_group(
        rule, path, "the top of the rule cannot move into a group")
    above = None if index == 0 else inner_group_path(
        rule, f"{parent_path}.{group_kind(parent)}[{index - 1}]")
    if above is None:
        raise EditError("there is no group just above it to move into; w wraps it in a group")
    node, group = node_at(rule, unit), node_at(rule, above)
    assert isinstance(group, AllOf | AnyOf)
    # the group is above the node: removing the node afterwards leaves the group's path as it is
    updated = replace_at(rule, above, type(group)((*group.children, node)))
    moved_from = node_at(updated, parent_path)
    assert isinstance(moved_from, AllOf | AnyOf)
    children = list(moved_from.children)
    del children[index]
    updated = replace_at(updated, parent_path, type(parent)(tuple(children)))
    return Edit(updated, f"{above}.{group_kind(group)}[{len(group.children)}]{path[len(unit):]}")


def outdent(rule: Node, path: str) -> Edit:
    """Move the selection (with its ``not``) out of its group, just after that group, as an
    outliner's outdent does; a group left empty goes (an empty group would match everyone or
    nobody)."""
    unit, parent_path, parent, index = selection_in_group(rule, path,
                                                          "the top of the rule is not in a group")
    outer = parent_of(unit_path(parent_path))
    if outer is None:
        raise EditError("already at the top level of the rule")
    outer_path, (_, parent_index) = outer
    node = node_at(rule, unit)
    children = list(parent.children)
    del children[index]
    updated = replace_at(rule, parent_path, type(parent)(tuple(children)))
    grand = node_at(updated, outer_path)
    assert isinstance(grand, AllOf | AnyOf)
    siblings = list(grand.children)
    if children:
        position = parent_index + 1
    else:
        del siblings[parent_index]
        position = parent_index
    siblings.insert(position, node)
    updated = replace_at(updated, outer_path, type(grand)(tuple(siblings)))
    return Edit(updated, f"{outer_path}.{group_kind(grand)}[{position}]{path[len(unit):]}")


def copy(rule: Node, path: str) -> Node:
    """The subtree to keep on the clipboard (with the ``not`` around it, as the tree shows it)."""
    return node_at(rule, path)


def paste(rule: Node, path: str, node: Node) -> Edit:
    return insert(rule, path, node)


# ------------------------------------------------------------------- the draft


@dataclass(frozen=True)
class _Change:
    """One step of the history: the rule before and after it, and where the cursor was."""

    before: Node
    after: Node
    select_before: str
    select_after: str


def is_blank(segment: Segment) -> bool:
    """A segment with nothing in it yet: an empty ``all`` and no description."""
    return segment.rule == AllOf() and not segment.description


class SegmentDraft:
    """A segment being edited: its current state, whether it differs from the saved one, history.

    ``saved`` tells whether the segment exists in the store (so saving
    replaces it); ``dirty`` whether there is something to save: the draft
    differs from what was last saved or loaded. A draft never saved is dirty
    unless it is still the blank segment it started as (nothing to lose).

    The history (undo, redo) holds rule edits only. The name, id and
    description are set outright: undo never renames a segment, so a saved
    segment keeps its id and name (undoing past the first save cannot turn it
    back into "New segment" and save a second one).
    """

    def __init__(self, segment: Segment, *, saved: bool = False) -> None:
        self.segment = segment
        self.saved = saved
        self._baseline: Segment | None = segment if saved else None
        self._start = segment
        self.undo_stack: list[_Change] = []
        self.redo_stack: list[_Change] = []
        self.clipboard: Node | None = None

    @property
    def rule(self) -> Node:
        return self.segment.rule

    @property
    def dirty(self) -> bool:
        if self._baseline is None:
            return self.segment != self._start or not is_blank(self._start)
        return self.segment != self._baseline

    def mark_saved(self) -> None:
        self.saved = True
        self._baseline = self.segment

    # -- applying changes ---------------------------------------------------------
    def commit(self, segment: Segment, select_before: str, select_after: str) -> str:
        """Make ``segment`` current; a change of its rule can be undone. Returns the selection."""
        if segment.rule != self.segment.rule:
            self.undo_stack.append(_Change(self.segment.rule, segment.rule, select_before,
                                           select_after))
            del self.undo_stack[:-MAX_HISTORY]
            self.redo_stack.clear()
        self.segment = segment
        return select_after

    def apply(self, edit: Edit, select_before: str) -> str:
        return self.commit(replace(self.segment, rule=edit.rule), select_before, edit.select)

    def insert(self, path: str, node: Node, inside: bool | None = None) -> str:
        return self.apply(insert(self.rule, path, node, inside), path)

    def replace(self, path: str, node: Node) -> str:
        return self.apply(replace_node(self.rule, path, node), path)

    def delete(self, path: str) -> str:
        return self.apply(delete(self.rule, path), path)

    def negate(self, path: str) -> str:
        return self.apply(negate(self.rule, path), path)

    def wrap(self, path: str, kind: Literal["all", "any"] = "all") -> str:
        return self.apply(wrap(self.rule, path, kind), path)

    def toggle_group(self, path: str) -> str:
        return self.apply(toggle_group(self.rule, path), path)

    def move(self, path: str, delta: int) -> str:
        return self.apply(move(self.rule, path, delta), path)

    def inline(self, path: str, referenced: Node) -> str:
        return self.apply(inline_reference(self.rule, path, referenced), path)

    def indent(self, path: str) -> str:
        return self.apply(indent(self.rule, path), path)

    def outdent(self, path: str) -> str:
        return self.apply(outdent(self.rule, path), path)

    def copy(self, path: str) -> Node:
        self.clipboard = copy(self.rule, path)
        return self.clipboard

    def paste(self, path: str, node: Node | None = None) -> str:
        """Paste ``node`` (default: what this draft copied last) after the selection."""
        pasted = node if node is not None else self.clipboard
        if pasted is None:
            raise EditError("nothing copied yet; copy a node first (c)")
        return self.apply(paste(self.rule, path, pasted), path)

    def set_info(self, name: str, description: str, segment_id: str | None = None,
                 select: str = ROOT) -> str:
        """Change the name, description (and, for a draft never saved, the id); not undoable."""
        updated = replace(self.segment, name=name, description=description,
                          id=segment_id if segment_id and not self.saved else self.segment.id)
        return self.commit(updated, select, select)

    def set_segment(self, segment: Segment, select: str = ROOT) -> str:
        """Replace the whole definition (e.g. from the YAML editor); its rule change is one
        undoable step, its name and description stay (a saved segment also keeps its id)."""
        if self.saved:
            segment = replace(segment, id=self.segment.id)
        return self.commit(segment, select, ROOT)

    # -- history ---------------------------------------------------------------
    def undo(self) -> str | None:
        """Undo the last rule edit; returns the path to select, or None when there is none."""
        if not self.undo_stack:
            return None
        change = self.undo_stack.pop()
        self.redo_stack.append(change)
        self.segment = replace(self.segment, rule=change.before)
        return change.select_before

    def redo(self) -> str | None:
        if not self.redo_stack:
            return None
        change = self.redo_stack.pop()
        self.undo_stack.append(change)
        self.segment = replace(self.segment, rule=change.after)
        return change.select_after


# ------------------------------------------------------------- invalid nodes


@dataclass(frozen=True)
class Problem:
    """Why a node of the draft cannot count: ``node`` is the tree node, ``path`` the exact spot."""

    node: str
    path: str
    message: str


def leaf_problems(rule: Node, catalog: Catalog,
                  as_of: dt.datetime | None = None) -> dict[str, Problem]:
    """Every attribute and event condition that does not fit the schema, by node path.

    Each condition is checked on its own, so every bad one is found (the
    segment validator stops at the first). Segment references need the
    store and are checked when the draft is resolved (``resolve_countable``).
    With ``as_of``, a ``between`` whose relative bounds are in the wrong order then is
    a problem too (it would count no one).
    """
    problems: dict[str, Problem] = {}
    for path, node in walk(rule):
        if isinstance(node, AttributeCondition | EventCondition | SequenceCondition):
            problem = check_condition(node, catalog, path, as_of)
            if problem is not None:
                problems[path] = problem
    return problems


def check_condition(node: AttributeCondition | EventCondition | SequenceCondition,
                    catalog: Catalog,
                    path: str = ROOT, as_of: dt.datetime | None = None) -> Problem | None:
    """The problem with one condition against the schema (and, with ``as_of``, with its
    relative ``between`` bounds at that instant), or None if it is valid."""
    try:
        resolved = validate_segment(Segment(id="draft", name="draft", rule=node), catalog)
        if as_of is not None:
            resolved.check_bounds(as_of)
    except SegmentError as exc:
        inner = exc.path or ROOT
        return Problem(path, path + inner[len(ROOT):], exc.message)
    return None


def owner_of(rule: Node, error_path: str) -> str:
    """The deepest tree node whose path contains ``error_path`` (where an error belongs)."""
    best = ROOT
    for path, _ in walk(rule):
        contains = error_path == path or error_path.startswith((path + ".", path + "["))
        if contains and len(path) > len(best):
            best = path
    return best


def left_out(rule: Node, bad: set[str] | dict[str, Problem]) -> set[str]:
    """The paths left out of the count: each bad node (with the ``not`` around it) and
    every group all of whose children are left out (so a group of bad conditions
    does not turn into "no one"). The root is included when nothing can count."""
    out = {unit_path(path) for path in bad}
    changed = True
    while changed:
        changed = False
        for path, node in walk(rule):
            if path in out or not isinstance(node, AllOf | AnyOf) or not node.children:
                continue
            kind = group_kind(node)
            if all(f"{path}.{kind}[{i}]" in out or _inside(f"{path}.{kind}[{i}]", out)
                   for i in range(len(node.children))):
                out.add(unit_path(path))
                changed = True
    return out


def _inside(path: str, paths: set[str]) -> bool:
    return any(path.startswith((p + ".", p + "[")) for p in paths)


def countable(rule: Node, bad: set[str] | dict[str, Problem]) -> Node | None:
    """The rule with the bad nodes left out; None when nothing countable is left.

    A left-out node (``left_out``) is replaced by the group that changes
    nothing in its parent (an empty ``all`` under an ``all``, an empty
    ``any`` under an ``any``). Paths of the other nodes do not move, so
    per-node counts still line up with the tree.
    """
    result = rule
    for unit in sorted(left_out(rule, bad), key=len):
        found = parent_of(unit)
        if found is None:
            return None
        _, (kind, _) = found
        try:
            node_at(result, unit)
        except EditError:
            continue  # already inside a node that was left out
        neutral: Node = AllOf() if kind == "all" else AnyOf()
        result = replace_at(result, unit, neutral)
    return result


def resolve_countable(segment: Segment, catalog: Catalog,
                      resolve: Callable[[Segment], ResolvedSegment],
                      problems: dict[str, Problem] | None = None,
                      ) -> tuple[ResolvedSegment | None, dict[str, Problem]]:
    """Resolve the countable part of a draft, leaving out every node that fails.

    ``resolve`` validates against the store (it finds referenced segments);
    each failure marks the node it belongs to as bad and the rest is tried
    again, so an unknown or cyclic reference only removes itself. An error
    raised inside a referenced segment is charged to the references that
    lead to it. Returns the resolved segment (None if nothing is countable)
    and all the problems.
    """
    found = dict(problems) if problems is not None else leaf_problems(segment.rule, catalog)
    for _ in range(len(walk(segment.rule)) + 1):
        rule = countable(segment.rule, found)
        if rule is None:
            return None, found
        try:
            return resolve(replace(segment, rule=rule)), found
        except SegmentError as exc:
            if exc.source == segment.source:
                owner = owner_of(segment.rule, exc.path or ROOT)
                culprits = {owner: Problem(owner, exc.path or owner, exc.message)}
            else:
                culprits = _failing_references(segment, rule, resolve)
            fresh = {path: problem for path, problem in culprits.items() if path not in found}
            if not fresh:  # left out already, yet still failing: nothing sound to count
                return None, found
            found.update(fresh)
    return None, found


def _failing_references(segment: Segment, rule: Node,
                        resolve: Callable[[Segment], ResolvedSegment]) -> dict[str, Problem]:
    """The segment references of ``rule`` that fail when resolved on their own."""
    failing: dict[str, Problem] = {}
    for path, node in walk(rule):
        if isinstance(node, SegmentRef):
            try:
                resolve(replace(segment, rule=node))
            except SegmentError as exc:
                failing[path] = Problem(path, path, str(exc))
    return failing
