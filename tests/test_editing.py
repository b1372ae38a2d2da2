"""The rule-tree editing model: paths, every operation, undo/redo, invalid nodes left out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.errors import InputError
from store.schema.catalog import Catalog
from store.segments import editing as ed
from store.segments.errors import SegmentError
from store.segments.model import (
    AllOf,
    AnyOf,
    AttributeCondition,
    CountRule,
    EventCondition,
    Node,
    NotOf,
    Period,
    Segment,
    SegmentRef,
    Window,
    walk,
)
from store.segments.validate import ResolvedSegment

MALE = AttributeCondition("gender", "equals", "male")
OLD = AttributeCondition("age", "greater_than", 50)
SHOES = EventCondition(("purchase",), within=Window(last=Period(90, "days")),
                       count=CountRule("at_least", 2))
UNSUB = SegmentRef("unsubscribed")
EXAMPLE = AllOf((MALE, OLD, SHOES, NotOf(UNSUB)))


def test_paths_round_trip_and_reject_garbage() -> None:
    for path, node in walk(AllOf((MALE, NotOf(AnyOf((OLD, UNSUB)))))):
        assert ed.format_path(ed.parse_path(path)) == path
        assert ed.node_at(AllOf((MALE, NotOf(AnyOf((OLD, UNSUB))))), path) == node
    for bad in ("rules", "rule.all[x]", "rule.foo", "rule.all[0]junk", "all[0]"):
        with pytest.raises(ed.EditError):
            ed.parse_path(bad)
    with pytest.raises(ed.EditError):
        ed.node_at(EXAMPLE, "rule.all[9]")
    with pytest.raises(ed.EditError):
        ed.node_at(EXAMPLE, "rule.any[0]")


def test_insert_inside_a_group_appends_and_after_a_leaf_follows_it() -> None:
    edit = ed.insert(AllOf(), "rule", MALE)
    assert edit == ed.Edit(AllOf((MALE,)), "rule.all[0]")
    edit = ed.insert(edit.rule, edit.select, OLD)
    assert edit == ed.Edit(AllOf((MALE, OLD)), "rule.all[1]")
    edit = ed.insert(edit.rule, "rule.all[0]", UNSUB)
    assert edit == ed.Edit(AllOf((MALE, UNSUB, OLD)), "rule.all[1]")
    # Explicitly after a group, in the parent.
    rule = AllOf((AnyOf((MALE,)), OLD))
    assert ed.insert(rule, "rule.all[0]", UNSUB, inside=False) == ed.Edit(
        AllOf((AnyOf((MALE,)), UNSUB, OLD)), "rule.all[1]")


def test_insert_into_a_negated_group_and_after_a_negated_leaf() -> None:
    rule = AllOf((NotOf(AnyOf((MALE,))), NotOf(UNSUB)))
    assert ed.insert(rule, "rule.all[0]", OLD) == ed.Edit(
        AllOf((NotOf(AnyOf((MALE, OLD))), NotOf(UNSUB))), "rule.all[0].not.any[1]")
    assert ed.insert(rule, "rule.all[1]", OLD) == ed.Edit(
        AllOf((NotOf(AnyOf((MALE,))), NotOf(UNSUB), OLD)), "rule.all[2]")


def test_insert_after_a_leaf_root_makes_an_all() -> None:
    assert ed.insert(MALE, "rule", OLD) == ed.Edit(AllOf((MALE, OLD)), "rule.all[1]")
    with pytest.raises(ed.EditError):
        ed.insert(MALE, "rule", OLD, inside=True)


def test_delete_selects_the_next_then_previous_then_parent() -> None:
    rule = AllOf((MALE, OLD, UNSUB))
    assert ed.delete(rule, "rule.all[1]") == ed.Edit(AllOf((MALE, UNSUB)), "rule.all[1]")
    assert ed.delete(rule, "rule.all[2]") == ed.Edit(AllOf((MALE, OLD)), "rule.all[1]")
    assert ed.delete(AllOf((AnyOf((MALE,)),)), "rule.all[0].any[0]") == ed.Edit(
        AllOf((AnyOf(),)), "rule.all[0]")
    assert ed.delete(rule, "rule") == ed.Edit(AllOf(), "rule")


def test_delete_takes_the_not_around_a_node() -> None:
    rule = AllOf((MALE, NotOf(UNSUB)))
    assert ed.delete(rule, "rule.all[1].not") == ed.Edit(AllOf((MALE,)), "rule.all[0]")


def test_negate_wraps_and_unwraps() -> None:
    rule = AllOf((MALE, UNSUB))
    once = ed.negate(rule, "rule.all[1]")
    assert once == ed.Edit(AllOf((MALE, NotOf(UNSUB))), "rule.all[1]")
    assert ed.negate(once.rule, "rule.all[1]") == ed.Edit(rule, "rule.all[1]")
    assert ed.negate(rule, "rule").rule == NotOf(rule)


def test_wrap_puts_the_selection_in_a_new_group() -> None:
    rule = AllOf((MALE, NotOf(UNSUB)))
    assert ed.wrap(rule, "rule.all[1].not", "any") == ed.Edit(
        AllOf((MALE, AnyOf((NotOf(UNSUB),)))), "rule.all[1]")
    assert ed.wrap(MALE, "rule") == ed.Edit(AllOf((MALE,)), "rule")


def test_toggle_switches_the_selected_or_enclosing_group_and_keeps_the_selection() -> None:
    rule = AllOf((MALE, AnyOf((OLD, UNSUB))))
    assert ed.toggle_group(rule, "rule") == ed.Edit(AnyOf((MALE, AnyOf((OLD, UNSUB)))), "rule")
    assert ed.toggle_group(rule, "rule.all[0]") == ed.Edit(
        AnyOf((MALE, AnyOf((OLD, UNSUB)))), "rule.any[0]")
    assert ed.toggle_group(rule, "rule.all[1].any[1]") == ed.Edit(
        AllOf((MALE, AllOf((OLD, UNSUB)))), "rule.all[1].all[1]")
    negated = AllOf((NotOf(AnyOf((OLD,))),))
    assert ed.toggle_group(negated, "rule.all[0]") == ed.Edit(
        AllOf((NotOf(AllOf((OLD,))),)), "rule.all[0]")
    with pytest.raises(ed.EditError):
        ed.toggle_group(MALE, "rule")


def test_move_swaps_siblings_and_refuses_past_the_ends() -> None:
    rule = AllOf((MALE, OLD, NotOf(UNSUB)))
    assert ed.move(rule, "rule.all[2]", -1) == ed.Edit(
        AllOf((MALE, NotOf(UNSUB), OLD)), "rule.all[1]")
    assert ed.move(rule, "rule.all[0]", 1) == ed.Edit(AllOf((OLD, MALE, NotOf(UNSUB))), "rule.all[1]")
    assert ed.move(rule, "rule.all[2].not", -1).select == "rule.all[1].not"
    with pytest.raises(ed.EditError):
        ed.move(rule, "rule.all[0]", -1)
    with pytest.raises(ed.EditError):
        ed.move(rule, "rule.all[2]", 1)
    with pytest.raises(ed.EditError):
        ed.move(rule, "rule", 1)


def test_indent_moves_into_the_group_above_and_outdent_moves_back_out() -> None:
    """Like an outliner: indent puts the node (with its not) at the end of the group just
    above it; outdent puts it just after its group; the selection follows the node."""
    rule = AllOf((AnyOf((MALE,)), NotOf(OLD), SHOES))
    indented = ed.indent(rule, "rule.all[1].not")
    assert indented == ed.Edit(AllOf((AnyOf((MALE, NotOf(OLD))), SHOES)), "rule.all[0].any[1].not")
    assert ed.outdent(indented.rule, indented.select) == ed.Edit(rule, "rule.all[1].not")
    # into a negated group, through its not
    negated = AllOf((NotOf(AllOf((MALE,))), OLD))
    assert ed.indent(negated, "rule.all[1]") == ed.Edit(
        AllOf((NotOf(AllOf((MALE, OLD))),)), "rule.all[0].not.all[1]")
    # a group left empty by an outdent goes
    assert ed.outdent(AllOf((AnyOf((MALE,)), OLD)), "rule.all[0].any[0]") == ed.Edit(
        AllOf((MALE, OLD)), "rule.all[0]")
    # the draft makes both undoable steps
    draft = ed.SegmentDraft(Segment("s", "S", rule), saved=True)
    assert draft.indent("rule.all[1]") == "rule.all[0].any[1]"
    assert draft.undo() == "rule.all[1]" and draft.rule == rule


def test_indent_and_outdent_refuse_with_a_reason() -> None:
    with pytest.raises(ed.EditError, match="no group just above"):
        ed.indent(EXAMPLE, "rule.all[0]")  # first in its group
    with pytest.raises(ed.EditError, match="no group just above"):
        ed.indent(EXAMPLE, "rule.all[1]")  # a condition above, not a group
    with pytest.raises(ed.EditError, match="top of the rule"):
        ed.indent(EXAMPLE, "rule")
    with pytest.raises(ed.EditError, match="already at the top level"):
        ed.outdent(EXAMPLE, "rule.all[2]")


def test_copy_and_paste_a_subtree() -> None:
    rule = AllOf((AnyOf((MALE, OLD)), UNSUB))
    copied = ed.copy(rule, "rule.all[0]")
    assert ed.paste(rule, "rule.all[1]", copied) == ed.Edit(
        AllOf((AnyOf((MALE, OLD)), UNSUB, AnyOf((MALE, OLD)))), "rule.all[2]")


def test_draft_undo_redo_and_dirty() -> None:
    draft = ed.SegmentDraft(Segment("s", "S", AllOf()), saved=True)
    assert not draft.dirty
    assert draft.undo() is None
    select = draft.insert("rule", MALE)
    select = draft.insert(select, OLD)
    assert draft.rule == AllOf((MALE, OLD)) and draft.dirty
    select = draft.negate(select)
    assert draft.rule == AllOf((MALE, NotOf(OLD)))
    assert draft.undo() == "rule.all[1]"
    assert draft.rule == AllOf((MALE, OLD))
    assert draft.undo() == "rule.all[0]"
    assert draft.undo() == "rule"
    assert draft.rule == AllOf() and not draft.dirty  # back to what was saved
    assert draft.undo() is None
    assert draft.redo() == "rule.all[0]"
    assert draft.redo() == "rule.all[1]"
    assert draft.rule == AllOf((MALE, OLD))
    draft.delete("rule.all[0]")  # a new edit forgets what could be redone
    assert draft.redo() is None
    draft.mark_saved()
    assert not draft.dirty


def test_draft_never_saved_is_dirty_unless_still_blank() -> None:
    draft = ed.SegmentDraft(Segment("new", "New", AllOf()))
    assert not draft.dirty  # nothing in it yet: nothing to lose
    draft.insert("rule", MALE)
    assert draft.dirty
    draft.undo()
    assert not draft.dirty
    draft.set_info("Renamed", "")
    assert draft.dirty
    filled = ed.SegmentDraft(Segment("new", "New", AllOf((MALE,))))
    assert filled.dirty  # handed a rule to save: leaving asks


def test_names_are_not_in_the_history() -> None:
    draft = ed.SegmentDraft(Segment("new", "New", AllOf()))
    draft.set_info("New", "")
    assert draft.undo_stack == []
    draft.insert("rule", MALE)
    draft.set_info("Renamed", "why", "renamed")
    assert (draft.segment.name, draft.segment.id, draft.segment.description) == (
        "Renamed", "renamed", "why")
    assert len(draft.undo_stack) == 1
    draft.undo()  # the rule edit only
    assert draft.rule == AllOf()
    assert (draft.segment.name, draft.segment.id) == ("Renamed", "renamed")
    assert draft.undo() is None
    draft.redo()
    assert draft.rule == AllOf((MALE,)) and draft.segment.name == "Renamed"


def test_undo_after_the_first_save_keeps_the_id_and_name() -> None:
    draft = ed.SegmentDraft(Segment("new-segment", "New segment", AllOf()))
    draft.insert("rule", MALE)
    draft.set_info("Demo X", "", "demo-x")
    draft.mark_saved()
    draft.undo()
    assert (draft.segment.id, draft.segment.name) == ("demo-x", "Demo X")
    assert draft.rule == AllOf() and draft.dirty and draft.saved
    draft.set_info("Demo Y", "", "demo-y")  # a saved segment keeps its id
    assert draft.segment.id == "demo-x"
    draft.set_segment(Segment("other-id", "From YAML", AllOf((OLD,))))
    assert draft.segment.id == "demo-x" and draft.segment.name == "From YAML"
    draft.undo()
    assert draft.rule == AllOf() and draft.segment.id == "demo-x"


def test_draft_paste_needs_a_copy_first() -> None:
    draft = ed.SegmentDraft(Segment("s", "S", AllOf((MALE,))))
    with pytest.raises(InputError):
        draft.paste("rule")
    draft.copy("rule.all[0]")
    assert draft.paste("rule.all[0]") == "rule.all[1]"
    assert draft.rule == AllOf((MALE, MALE))
    other = ed.SegmentDraft(Segment("t", "T", AllOf()))
    assert other.paste("rule", draft.clipboard) == "rule.all[0]"  # a node copied elsewhere
    assert other.rule == AllOf((MALE,))


def test_history_is_bounded() -> None:
    draft = ed.SegmentDraft(Segment("s", "S", AllOf()))
    for _ in range(ed.MAX_HISTORY + 20):
        draft.negate("rule")
    assert len(draft.undo_stack) == ed.MAX_HISTORY


# ------------------------------------------------------------------ invalid nodes


def catalog() -> Catalog:
    from store.schema.catalog import Attribute, Entity, EntityField, EventField, EventType

    return Catalog(
        attributes={"gender": Attribute("gender", "string", "gender"),
                    "age": Attribute("age", "integer", "derived:age", derived_from="age:birth_date")},
        event_types={"purchase": EventType(1, "purchase", fields=("amount", "sku"))},
        event_fields={"amount": EventField("amount", "number", "amount"),
                      "sku": EventField("sku", "string", "sku")},
        entities={"product": Entity("product", "entity_product", "sku", "sku",
                                    {"category": EntityField("category", "string", "category")})},
    )


def test_leaf_problems_finds_every_bad_condition_with_its_exact_path() -> None:
    rule = AllOf((AttributeCondition("age", "greater_than", "abc"), MALE,
                  AnyOf((AttributeCondition("gendr", "equals", "x"),)),
                  EventCondition(("purchase",), where=(
                      AttributeCondition("product.category", "equals", 3),
                      AttributeCondition("amount", "greater_than", "lots"))),
                  UNSUB))
    problems = ed.leaf_problems(rule, catalog())
    assert set(problems) == {"rule.all[0]", "rule.all[2].any[0]", "rule.all[3]"}
    assert problems["rule.all[0]"].path == "rule.all[0].value"
    assert "integer" in problems["rule.all[0]"].message
    assert problems["rule.all[2].any[0]"].path == "rule.all[2].any[0].attribute"
    assert problems["rule.all[3]"].path == "rule.all[3].where[1].value"


def test_relative_between_bounds_in_the_wrong_order_are_a_problem_at_the_as_of_date() -> None:
    """A range that would count no one is marked (and left out), not shown as 0 members."""
    import datetime as dt

    from store.schema.catalog import Attribute, EventType
    from store.segments.model import RelativeDate

    base = catalog()
    dated = Catalog(attributes={**base.attributes,
                                "signup_date": Attribute("signup_date", "date", "signup_date")},
                    event_types={**base.event_types, "visit": EventType(2, "visit")},
                    event_fields=base.event_fields, entities=base.entities)
    today, five_ago = RelativeDate("today"), RelativeDate("ago", 5, "days")
    rule = AllOf((AttributeCondition("signup_date", "between", (today, five_ago)),
                  AttributeCondition("signup_date", "between", (five_ago, today)),
                  EventCondition(("visit",), within=Window(between=(today, five_ago)))))
    as_of = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    problems = ed.leaf_problems(rule, dated, as_of)
    assert set(problems) == {"rule.all[0]", "rule.all[2]"}
    assert "as of 2026-03-01" in problems["rule.all[0]"].message
    assert ed.leaf_problems(rule, dated) == {}  # no as-of: only the schema is checked


def test_countable_leaves_bad_nodes_out_without_moving_paths() -> None:
    bad = AttributeCondition("age", "greater_than", "abc")
    rule = AllOf((MALE, bad, AnyOf((bad, OLD)), NotOf(bad)))
    result = ed.countable(rule, {"rule.all[1]", "rule.all[2].any[0]", "rule.all[3].not"})
    assert result == AllOf((MALE, AllOf(), AnyOf((AnyOf(), OLD)), AllOf()))
    assert ed.countable(bad, {"rule"}) is None
    assert ed.countable(NotOf(bad), {"rule.not"}) is None
    assert ed.countable(rule, set()) == rule
    # A bad node inside a bad node is already gone.
    nested = AllOf((MALE, AnyOf((bad,)),))
    assert ed.countable(nested, {"rule.all[1]", "rule.all[1].any[0]"}) == AllOf((MALE, AllOf()))
    # Nothing valid left at all: nothing to count.
    assert ed.countable(AllOf((AnyOf((bad,)),)), {"rule.all[0].any[0]"}) is None


def test_owner_of_maps_an_error_path_to_its_tree_node() -> None:
    rule = AllOf((MALE, SHOES, NotOf(UNSUB)))
    assert ed.owner_of(rule, "rule.all[1].where[0].value") == "rule.all[1]"
    assert ed.owner_of(rule, "rule.all[2].not.segment") == "rule.all[2].not"
    assert ed.owner_of(rule, "rule.all[10]") == "rule"


def fake_resolver(known: dict[str, Node]):
    """Resolves references among ``known`` (with cycle detection), like the store does."""
    from store.segments.validate import validate_segment

    def lookup(segment_id: str, source: str | None):
        if segment_id not in known:
            return None
        return Segment(segment_id, segment_id, known[segment_id], source=f"saved {segment_id}"), {}

    def resolve(segment: Segment) -> ResolvedSegment:
        return validate_segment(segment, catalog(), None, lookup)

    return resolve


def test_resolve_countable_leaves_out_unknown_and_cyclic_references() -> None:
    resolve = fake_resolver({"loop": SegmentRef("draft"), "fine": MALE})
    segment = Segment("draft", "Draft", AllOf((
        OLD, SegmentRef("nope"), NotOf(SegmentRef("loop")), SegmentRef("fine"),
        AttributeCondition("age", "less_than", "x"))))
    resolved, problems = ed.resolve_countable(segment, catalog(), resolve)
    assert set(problems) == {"rule.all[1]", "rule.all[2].not", "rule.all[4]"}
    assert "unknown segment" in problems["rule.all[1]"].message
    assert "cycle" in problems["rule.all[2].not"].message
    assert resolved is not None
    assert resolved.segment.rule == AllOf((OLD, AllOf(), AllOf(), SegmentRef("fine"), AllOf()))
    assert set(resolved.refs) == {"fine"}


def test_resolve_countable_with_nothing_countable() -> None:
    resolve = fake_resolver({})
    resolved, problems = ed.resolve_countable(Segment("d", "D", SegmentRef("nope")), catalog(),
                                              resolve)
    assert resolved is None and set(problems) == {"rule"}
    resolved, problems = ed.resolve_countable(Segment("d", "D", AllOf()), catalog(), resolve)
    assert resolved is not None and problems == {}


def test_resolve_countable_gives_up_when_an_error_cannot_be_left_out() -> None:
    def always_failing(segment: Segment) -> ResolvedSegment:
        raise SegmentError("store is odd", path="rule")

    resolved, problems = ed.resolve_countable(Segment("d", "D", AllOf((MALE,))), catalog(),
                                              always_failing)
    assert resolved is None and "rule" in problems


# ---------------------------------------------------------------- properties

leaves = st.sampled_from([MALE, OLD, SHOES, UNSUB])
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda c: AllOf(tuple(c))),
        st.lists(inner, max_size=4).map(lambda c: AnyOf(tuple(c))),
        inner.map(NotOf),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_operation_selects_an_existing_node(rule: Node, data: st.DataObject) -> None:
    paths = [p for p, _ in walk(rule)]
    path = data.draw(st.sampled_from(paths))
    operations = [
        lambda: ed.insert(rule, path, MALE),
        lambda: ed.insert(rule, path, MALE, inside=False),
        lambda: ed.delete(rule, path),
        lambda: ed.negate(rule, path),
        lambda: ed.wrap(rule, path),
        lambda: ed.toggle_group(rule, path),
        lambda: ed.move(rule, path, -1),
        lambda: ed.move(rule, path, 1),
        lambda: ed.paste(rule, path, ed.copy(rule, path)),
        lambda: ed.indent(rule, path),
        lambda: ed.outdent(rule, path),
    ]
    for operation in operations:
        try:
            edit = operation()
        except ed.EditError:
            continue
        ed.node_at(edit.rule, edit.select)  # raises if the selection does not exist


@settings(max_examples=100, deadline=None)
@given(trees, st.data())
def test_negate_twice_and_move_back_restore_the_rule(rule: Node, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from([p for p, _ in walk(rule)]))
    once = ed.negate(rule, path)
    if not isinstance(ed.node_at(rule, path), NotOf):  # a not is unwrapped, not wrapped again
        assert ed.negate(once.rule, once.select).rule == rule
    try:
        moved = ed.move(rule, path, 1)
    except ed.EditError:
        return
    assert ed.move(moved.rule, moved.select, -1) == ed.Edit(rule, path)


def test_a_group_of_only_bad_conditions_is_left_out_whole() -> None:
    bad = AttributeCondition("age", "greater_than", "abc")
    rule = AllOf((MALE, AnyOf((bad, NotOf(bad))), AnyOf()))
    out = ed.left_out(rule, {"rule.all[1].any[0]", "rule.all[1].any[1].not"})
    assert out == {"rule.all[1].any[0]", "rule.all[1].any[1]", "rule.all[1]"}
    # Left out, the group no longer turns the audience into "no one"; a group
    # that is empty by definition still counts as the spec says.
    assert ed.countable(rule, out) == AllOf((MALE, AllOf(), AnyOf()))
    assert ed.countable(AnyOf((bad,)), {"rule.any[0]"}) is None
