"""Builders over sqlglot's expression tree, and rendering with bound parameters.

Segment SQL is an expression tree, never text pasted together. Every value
goes through ``Binder.bind`` and becomes a named placeholder (``:p1``,
``:p2``, ...); ``render`` turns the tree into SQL for an engine's dialect
(``store.engines.dialects``) with positional markers in the order they appear
in the text, so the parameter tuple always matches the SQL whatever order the
tree was built in.

Long AND/OR chains are built as balanced, parenthesised trees: SQLite parses
``a AND b AND c ...`` into a left-deep tree and refuses expressions deeper
than 1000 levels, so a rule with thousands of conditions would otherwise fail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from store.engines import dialects
from store.schema.values import format_datetime

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
FLAT_CHAIN_LIMIT = 32  # longer AND/OR chains are balanced
UNION_CHUNK = 64  # SQLite allows at most 500 terms in one compound SELECT


class Binder:
    """Collects the values of one query; each ``bind`` returns a fresh placeholder."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, value: Any) -> exp.Placeholder:
        self.values.append(sql_value(value))
        return exp.Placeholder(this=f"p{len(self.values)}")


def sql_value(value: Any) -> Any:
    """A Python value in the form SQLite stores and compares it."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        # SQLite integers are 64-bit; a larger bound compares correctly as a float.
        return value if INT64_MIN <= value <= INT64_MAX else float(value)
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | float):
        return value
    raise TypeError(f"cannot bind {value!r}")


def sql_values(values: Sequence[Any]) -> list[Any]:
    """``sql_value`` of each value, quickly for the common all-text lists."""
    if all(type(v) is str for v in values):
        return list(values)
    return [sql_value(v) for v in values]


# ------------------------------------------------------------------ identifiers


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def column(name: str, table: str | None = None) -> exp.Column:
    """A quoted column, optionally qualified by a (quoted) table alias."""
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table(name: str, alias: str | None = None) -> exp.Table:
    node = exp.Table(this=ident(name))
    if alias:
        node.set("alias", exp.TableAlias(this=ident(alias)))
    return node


def json_values(placeholder: exp.Expression) -> exp.Select:
    """``SELECT value FROM json_each(?)``: a whole list in one JSON parameter (an array parameter
    on the engines that have them, see ``store.engines.dialects``)."""
    source = exp.Table(this=exp.Anonymous(this="json_each", expressions=[placeholder]))
    return exp.select(exp.column("value")).from_(source, copy=False)


# ------------------------------------------------------------------ boolean logic

TRUE: exp.Expression = exp.true()
FALSE: exp.Expression = exp.false()


def is_true(node: exp.Expression) -> bool:
    return isinstance(node, exp.Boolean) and bool(node.this)


def is_false(node: exp.Expression) -> bool:
    return isinstance(node, exp.Boolean) and not node.this


def not_null(node: exp.Expression) -> exp.Expression:
    return exp.Is(this=node.copy(), expression=exp.Not(this=exp.Null()))


def is_null(node: exp.Expression) -> exp.Expression:
    return exp.Is(this=node.copy(), expression=exp.Null())


def negate(node: exp.Expression) -> exp.Expression:
    """NOT x, folding constants and double negation."""
    if is_true(node):
        return exp.false()
    if is_false(node):
        return exp.true()
    if isinstance(node, exp.Not) and not isinstance(node.this, exp.Null):
        inner = node.this
        return inner.this if isinstance(inner, exp.Paren) else inner
    return exp.Not(this=_paren(node))


def conjunction(terms: Sequence[exp.Expression]) -> exp.Expression:
    """AND of the terms (TRUE when there are none), constants folded, balanced when long."""
    kept = [t for t in terms if not is_true(t)]
    if any(is_false(t) for t in kept):
        return exp.false()
    return _chain(kept, exp.And, exp.true())


def disjunction(terms: Sequence[exp.Expression]) -> exp.Expression:
    """OR of the terms (FALSE when there are none), constants folded, balanced when long."""
    kept = [t for t in terms if not is_false(t)]
    if any(is_true(t) for t in kept):
        return exp.true()
    return _chain(kept, exp.Or, exp.false())


def _chain(terms: list[exp.Expression], kind: type[exp.And] | type[exp.Or],
           empty: exp.Expression) -> exp.Expression:
    if not terms:
        return empty
    if len(terms) == 1:
        return terms[0]
    if len(terms) <= FLAT_CHAIN_LIMIT:
        node: exp.Expression = _paren(terms[0])
        for term in terms[1:]:
            node = kind(this=node, expression=_paren(term))
        return node
    middle = len(terms) // 2
    left = exp.Paren(this=_chain(terms[:middle], kind, empty))
    right = exp.Paren(this=_chain(terms[middle:], kind, empty))
    balanced: exp.Expression = kind(this=left, expression=right)
    return balanced


def _paren(node: exp.Expression) -> exp.Expression:
    return exp.Paren(this=node) if isinstance(node, exp.Connector) else node


# ------------------------------------------------------------------ set queries


def union(queries: Sequence[exp.Query]) -> exp.Query:
    """UNION (distinct) of one-column queries, nested in chunks to stay within SQLite's limits."""
    return _compound(queries, exp.Union)


def intersect(queries: Sequence[exp.Query]) -> exp.Query:
    """INTERSECT of one-column queries, nested in chunks like ``union``."""
    return _compound(queries, exp.Intersect)


def _compound(queries: Sequence[exp.Query],
              kind: type[exp.Union] | type[exp.Intersect]) -> exp.Query:
    if len(queries) == 1:
        return queries[0]
    # SQLite has no parentheses in compounds and reads them left to right: a UNION inside an
    # INTERSECT (or the reverse) would regroup, so such a part becomes a subquery.
    queries = [_subquery(q) if isinstance(q, exp.SetOperation) and not isinstance(q, kind) else q
               for q in queries]
    if len(queries) > UNION_CHUNK:
        size = -(-len(queries) // UNION_CHUNK)
        parts = [_compound(queries[i:i + size], kind) for i in range(0, len(queries), size)]
        queries = [_subquery(part) for part in parts]
    node: exp.Query = queries[0]
    for query in queries[1:]:
        node = kind(this=node, expression=query, distinct=True)
    return node


def _subquery(query: exp.Query) -> exp.Select:
    """``SELECT * FROM (query)``."""
    return exp.select(exp.Star()).from_(exp.Subquery(this=query), copy=False)


# ------------------------------------------------------------------ rendering


def render(expression: exp.Expression, values: Sequence[Any],
           dialect: str = "sqlite") -> tuple[str, tuple[Any, ...]]:
    """SQL text for ``dialect`` and its parameters in the order of their markers
    (``store.engines.dialects.render``: the tree rewritten to mean on that engine what it
    means on SQLite, with the engine's positional markers)."""
    return dialects.render(expression, values, dialect)


def with_literals(expression: exp.Expression, values: Sequence[Any]) -> exp.Expression:
    """A copy of the tree with every placeholder ``pN`` replaced by its value as a SQL literal
    (made by ``literal``: sqlglot's own conversion leaves a None unreplaced and makes a tuple a
    row; a negative number an operator takes is parenthesised)."""
    literals = {f"p{number}": literal(value) for number, value in enumerate(values, 1)}
    replaced = exp.replace_placeholders(expression, **literals)  # a copy
    assert isinstance(replaced, exp.Expression)
    return replaced


def literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, list | tuple):  # an array parameter (a long list, on some engines)
        return exp.Array(expressions=[literal(item) for item in value])
    if isinstance(value, int | float):
        number = exp.Literal.number(abs(value))
        return exp.Neg(this=number) if value < 0 else number
    raise TypeError(f"no literal for {value!r}")
