"""One query tree rendered for each engine's SQL dialect, with positional bound parameters.

The compiler (store/query) builds one sqlglot tree per query, with SQLite's
meaning, and named placeholders ``:p1``, ``:p2``, ... whose values are
``values[N - 1]``. ``render`` turns it into the text an engine runs and the
parameters that go with it, in the order their markers appear in the text:

- ``?`` markers for every dialect: store code hands every engine SQL with
  ``?`` markers, and the PostgreSQL adapter turns them into psycopg's ``%s``
  (store/engines/postgres.py ``pyformat``), so there is one convention.

For every engine but SQLite a copy of the tree is first rewritten so that it
means there what it means on SQLite (spec/engines.md: every count is the same
on every engine); the caller's tree is never changed:

- ``INDEXED BY`` / ``NOT INDEXED`` hints are dropped.
- ``TOTAL(x)`` (a float sum, 0.0 over no row) is ``COALESCE(SUM(CAST(x AS
  DOUBLE)), 0.0)``; ``AVG(x)`` averages ``CAST(x AS DOUBLE)`` as SQLite does.
- Case folding is ASCII only, as SQLite's LIKE, ``lower()`` and ``upper()``:
  ``LIKE`` and ``ILIKE`` compare both sides through ``translate(x, 'A..Z',
  'a..z')`` (a bound pattern is folded here instead, in a value of its own), and
  ``lower()`` / ``upper()`` become such translations (ILIKE and the engines'
  own ``lower()`` fold every alphabet).
- ``instr(a, b)`` is the dialect's string position function (``strpos``).
- ``x IN (SELECT value FROM json_each(?))`` (a long list in one JSON value)
  reads a typed array parameter, ``x IN (SELECT UNNEST(CAST(? AS T[])))``, on
  PostgreSQL and DuckDB, and becomes ``x IN (?, ?, ...)`` elsewhere.
- A comparison used as a number (SQLite's 0/1, as in ``year - (month_day >
  ?)``) is ``CAST(... AS INT)`` wherever arithmetic or a sum reads it.
- ``CAST(x AS INTEGER)`` casts to a 64-bit integer (SQLite's integers), a
  cast to REAL to a double.
- Division by zero is NULL, as on SQLite; a typed division of two known
  integers on DuckDB is ``//`` (its ``/`` always divides as floats).
- ``substr(x, -n)`` (n characters from the end on SQLite) is ``RIGHT(x, n)``.
- A subquery in FROM without an alias gets one (PostgreSQL before 16 needs it).
- BigQuery has no ``ESCAPE`` clause; its LIKE escapes with a backslash already.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

DIALECTS = ("sqlite", "duckdb", "postgres", "spark", "bigquery", "snowflake", "trino")
ALIASES = {"postgresql": "postgres"}
UNNEST_DIALECTS = ("duckdb", "postgres")  # a list travels as one array parameter

ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASCII_LOWER = "abcdefghijklmnopqrstuvwxyz"
_TO_LOWER = str.maketrans(ASCII_UPPER, ASCII_LOWER)
_TO_UPPER = str.maketrans(ASCII_LOWER, ASCII_UPPER)

_INTEGER_TYPES = {exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.MEDIUMINT,
                  exp.DataType.Type.INT, exp.DataType.Type.BIGINT}
_FLOAT_TYPES = {exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE}
_BOOLEAN_NODES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Escape)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)
_PLACEHOLDER_NAME = re.compile(r"p(\d+)")


def render(expression: exp.Expression, values: Sequence[Any],
           dialect: str) -> tuple[str, tuple[Any, ...]]:
    """SQL text for ``dialect`` and its parameters, in the order of their markers in the text."""
    if dialect == "sqlite":
        return positional(expression.sql(dialect="sqlite"), values)
    dialect = ALIASES.get(dialect, dialect)
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    rewriter = _Rewriter(dialect, values)
    tree = rewriter.rewrite(expression.copy())
    # the tree is this call's own copy: the generator need not copy it again
    return positional(tree.sql(dialect=dialect, copy=False), rewriter.values, dialect)


def rewritten(expression: exp.Expression, values: Sequence[Any],
              dialect: str) -> tuple[exp.Expression, tuple[Any, ...]]:
    """The tree as ``render`` rewrites it for ``dialect`` (a copy; SQLite's is the tree itself)
    and the values of its named placeholders (the rewrites may bind more), for callers that
    print the query rather than run it (with the values as literals)."""
    dialect = ALIASES.get(dialect, dialect)
    if dialect == "sqlite":
        return expression, tuple(values)
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r} (known: {', '.join(DIALECTS)})")
    rewriter = _Rewriter(dialect, values)
    return rewriter.rewrite(expression.copy()), tuple(rewriter.values)


# ------------------------------------------------------------------ placeholders in the text


@dataclass(frozen=True)
class _Style:
    pattern: re.Pattern[str]  # a quoted section, or a named placeholder (group "n": its number)
    marker: str  # what a placeholder becomes


def _quoted(backslash: bool) -> str:
    """Regexes for a quoted section (a string or a quoted identifier), doubled quotes escaping,
    and also a backslash in the dialects that escape with it; an unclosed quote runs to the end."""
    if backslash:
        return "|".join(rf"{q}(?:[^{q}\\]+|\\.|{q}{q})*{q}?" for q in ("'", '"', "`"))
    return "|".join(rf"{q}[^{q}]*(?:{q}{q}[^{q}]*)*{q}?" for q in ("'", '"', "`"))


@functools.cache
def _style(dialect: str) -> _Style:
    from sqlglot.dialects.dialect import Dialect

    rendered = exp.Placeholder(this="p1").sql(dialect=dialect)  # ':p1', '$p1', '%(p1)s', '@p1'
    prefix, _, suffix = rendered.partition("p1")
    tokenizer = Dialect.get_or_raise(dialect).tokenizer_class
    backslash = "\\" in tokenizer.STRING_ESCAPES or "\\" in tokenizer.IDENTIFIER_ESCAPES
    named = re.escape(prefix) + r"p(?P<n>\d+)" + re.escape(suffix)
    pattern = re.compile(f"{_quoted(backslash)}|{named}", re.DOTALL)
    return _Style(pattern, "?")


def positional(text: str, values: Sequence[Any],
               dialect: str = "sqlite") -> tuple[str, tuple[Any, ...]]:
    """Replace the named placeholders ``pN`` outside quotes by the dialect's positional marker
    and order the values to match."""
    style = _style(dialect)

    out: list[str] = []
    params: list[Any] = []
    last = 0
    for match in style.pattern.finditer(text):
        number = match.group("n")
        if number is None:
            continue  # a quoted section: kept as it is
        out.append(text[last:match.start()])
        out.append(style.marker)
        params.append(values[int(number) - 1])
        last = match.end()
    out.append(text[last:])
    return "".join(out), tuple(params)


# ------------------------------------------------------------------ the rewrites


class _Rewriter:
    """Rewrites a (copied) tree in place for one dialect; ``values`` grows with the values it binds."""

    def __init__(self, dialect: str, values: Sequence[Any]) -> None:
        self.dialect = dialect
        self.values: list[Any] = list(values)
        self.aliases = 0

    def bind(self, value: Any) -> exp.Placeholder:
        self.values.append(value)
        return exp.Placeholder(this=f"p{len(self.values)}")

    def rewrite(self, tree: exp.Expression) -> exp.Expression:
        # Descendants before ancestors (reversed pre-order): each rewrite sees its operands done.
        nodes = [node for node in tree.walk(bfs=False) if isinstance(node, exp.Expression)]
        for node in reversed(nodes):
            new = self.node(node)
            if new is node:
                continue
            if node is tree:
                tree = new
            else:
                node.replace(new)
        return tree

    def node(self, node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table):
            if node.args.get("indexed") is not None:
                node.set("indexed", None)
            return node
        if isinstance(node, exp.Subquery):
            if isinstance(node.parent, exp.From | exp.Join) and not node.alias:
                self.aliases += 1
                node.set("alias", exp.TableAlias(this=exp.to_identifier(f"_q{self.aliases}",
                                                                        quoted=True)))
            return node
        if isinstance(node, exp.Not) and self.dialect == "postgres":
            return self.anti_join(node)
        if isinstance(node, exp.Select):
            return self.json_select(node)
        if isinstance(node, exp.In):
            return self.json_in(node)
        if isinstance(node, exp.Anonymous):
            return self.function(node)
        if isinstance(node, exp.Escape) and self.dialect == "duckdb":
            return self.duckdb_like(node)
        if isinstance(node, exp.Escape) and self.dialect == "bigquery":
            # BigQuery has no ESCAPE clause: its LIKE always escapes with a backslash.
            known, value = self.constant(node.expression)
            return node.this if known and value == "\\" else node
        if isinstance(node, exp.Like | exp.ILike):
            return exp.Like(this=self.fold(node.this, _TO_LOWER),
                            expression=self.fold(node.expression, _TO_LOWER),
                            negate=node.args.get("negate"))
        if isinstance(node, exp.Lower):
            return self.fold(node.this, _TO_LOWER)
        if isinstance(node, exp.Upper):
            return self.fold(node.this, _TO_UPPER)
        if isinstance(node, exp.Substring):
            return self.substring(node)
        if isinstance(node, exp.Cast):
            return self.cast(node)
        if isinstance(node, exp.Sum):
            node.set("this", as_number(node.this))
            return node
        if isinstance(node, exp.Avg):
            if not isinstance(node.this, exp.Distinct):
                node.set("this", as_double(node.this))
            return node
        if isinstance(node, exp.Neg):
            node.set("this", as_number(node.this))
            return node
        if isinstance(node, _ARITHMETIC):
            return self.arithmetic(node)
        return node

    def anti_join(self, node: exp.Not) -> exp.Expression:
        """``NOT pk IN (set)`` as ``NOT EXISTS (SELECT 1 FROM (set) AS _n(v) WHERE _n.v = pk)``
        on PostgreSQL. It runs ``NOT IN`` as a subplan that it hashes only when the set fits
        in ``work_mem``; a bigger set (every buyer of 1M profiles, with the default 4MB) is
        read again for each profile, and members-never-bought ran for minutes. ``NOT EXISTS``
        is planned as a hash anti-join, which spills to disk instead. The same answer here:
        neither a profile's pk nor any set's pk is ever NULL."""
        inner = node.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        query = inner.args.get("query") if isinstance(inner, exp.In) else None
        left = inner.this if isinstance(inner, exp.In) else None
        if not (isinstance(query, exp.Subquery) and isinstance(left, exp.Column)
                and left.name == "pk" and not left.table):
            return node
        self.aliases += 1
        alias = f"_n{self.aliases}"
        source = exp.Subquery(this=query.this, alias=exp.TableAlias(
            this=exp.to_identifier(alias, quoted=True), columns=[exp.to_identifier("v")]))
        match = exp.EQ(this=exp.column("v", table=exp.to_identifier(alias, quoted=True)),
                       expression=left.copy())
        probe = exp.select(exp.Literal.number(1)).from_(source, copy=False).where(match, copy=False)
        return exp.Not(this=exp.Exists(this=probe))

    # -- values ------------------------------------------------------------------------
    def constant(self, node: exp.Expression) -> tuple[bool, Any]:
        """(True, value) for a bound placeholder or a literal, else (False, None)."""
        if isinstance(node, exp.Placeholder) and isinstance(node.this, str):
            match = _PLACEHOLDER_NAME.fullmatch(node.this)
            if match and 1 <= int(match.group(1)) <= len(self.values):
                return True, self.values[int(match.group(1)) - 1]
            return False, None
        if isinstance(node, exp.Literal):
            if node.is_string:
                return True, node.this
            try:
                return True, int(node.this)
            except ValueError:
                return True, float(node.this)
        if isinstance(node, exp.Neg):
            known, value = self.constant(node.this)
            if known and isinstance(value, int | float) and not isinstance(value, bool):
                return True, -value
        if isinstance(node, exp.Paren):
            return self.constant(node.this)
        return False, None

    # -- case folding ------------------------------------------------------------------
    def fold(self, node: exp.Expression, table: dict[int, int]) -> exp.Expression:
        """``node`` with ASCII letters folded (``table``: to lower or to upper case) only."""
        source, target = ((ASCII_UPPER, ASCII_LOWER) if table is _TO_LOWER
                          else (ASCII_LOWER, ASCII_UPPER))
        if isinstance(node, exp.Literal) and node.is_string:
            return exp.Literal.string(node.this.translate(table))
        known, value = self.constant(node)
        if known and isinstance(node, exp.Placeholder):
            if value is None:
                return node
            if isinstance(value, str):
                return self.bind(value.translate(table))
        if is_translation(node, source, target):
            return node
        if self.dialect == "postgres":
            # Under the C collation PostgreSQL's lower() and upper() fold ASCII letters only
            # (and far faster than translate).
            folded = exp.Lower if table is _TO_LOWER else exp.Upper
            return folded(this=exp.Collate(this=node, expression=exp.Identifier(this="C", quoted=True)))
        return exp.Anonymous(this="translate", expressions=[
            node, exp.Literal.string(source), exp.Literal.string(target)])

    def duckdb_like(self, node: exp.Escape) -> exp.Expression:
        """DuckDB's translate() is ten times slower than ILIKE, which folds every alphabet as
        lower() does. On a text of ASCII characters only, and a pattern of ASCII characters, the
        two agree; a text with any other character (its byte length ``strlen`` differs from its
        length in characters: rare in the fields segments search) takes the translate() branch,
        which is exact on every text. Testing for the two characters whose lower case holds an
        ASCII letter (U+212A KELVIN SIGN, U+0130 I WITH DOT ABOVE) instead costs two substring
        searches per text (bench/RESULTS.md, "Hash joins built on the subquery"). DuckDB has no
        default escape character, so a pattern without the escape character needs no ESCAPE
        clause (which takes a slower path)."""
        like = node.this
        if not isinstance(like, exp.Like):
            return node
        known, pattern = self.constant(like.expression)
        known_escape, escape = self.constant(node.expression)
        needs_escape = not (known and isinstance(pattern, str) and known_escape
                            and isinstance(escape, str) and escape not in pattern)
        subject = like.this
        if not (known and isinstance(pattern, str) and pattern.isascii()
                and is_translation(subject, ASCII_UPPER, ASCII_LOWER)):
            return node if needs_escape else like
        text = subject.expressions[0]
        rare = exp.NEQ(this=exp.Anonymous(this="strlen", expressions=[text.copy()]),
                       expression=exp.Anonymous(this="length", expressions=[text.copy()]))
        fast: exp.Expression = exp.ILike(this=text.copy(), expression=like.expression.copy())
        exact: exp.Expression = node
        if needs_escape:
            fast = exp.Escape(this=fast, expression=node.expression.copy())
        else:
            exact = like
        return exp.Paren(this=exp.Case(ifs=[exp.If(this=rare, true=exact.copy())], default=fast))

    # -- functions ---------------------------------------------------------------------
    def function(self, node: exp.Anonymous) -> exp.Expression:
        name = str(node.this).lower()
        args = node.expressions
        if name == "total" and len(args) == 1:
            return exp.Coalesce(this=exp.Sum(this=as_double(args[0])),
                                expressions=[exp.Literal.number("0.0")])
        if name == "instr" and len(args) == 2:
            return exp.StrPosition(this=args[0], substr=args[1])
        return node

    def substring(self, node: exp.Substring) -> exp.Expression:
        """SQLite's ``substr(x, -n[, m])``: from the n-th character before the end."""
        start = node.args.get("start")
        if start is None:
            return node
        count: exp.Expression | None = None
        known, value = self.constant(start)
        if known and isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                count = self.bind(-value)
        elif isinstance(start, exp.Neg):
            count = start.this
        if count is None:
            return node
        text = node.this
        length = node.args.get("length")
        if length is None:
            return exp.Right(this=text, expression=count)
        # The m characters from there; fewer when n reaches back before the first character.
        shortfall = exp.Greatest(this=exp.Sub(this=count.copy(), expression=exp.Length(this=text.copy())),
                                 expressions=[exp.Literal.number(0)])
        kept = exp.Greatest(this=exp.Sub(this=length, expression=shortfall),
                            expressions=[exp.Literal.number(0)])
        return exp.Substring(this=exp.Right(this=text, expression=count),
                             start=exp.Literal.number(1), length=kept)

    # -- numbers -----------------------------------------------------------------------
    def cast(self, node: exp.Cast) -> exp.Expression:
        to = node.to
        if not isinstance(to, exp.DataType) or to.expressions:
            return node
        if to.this in _INTEGER_TYPES:
            # SQLite's integers are 64-bit; a boolean casts to INT (PostgreSQL has no bool -> bigint).
            kind = "INT" if is_boolean(node.this) else "BIGINT"
            node.set("to", exp.DataType.build(kind))
        elif to.this in _FLOAT_TYPES:
            node.set("this", as_number(node.this))
            node.set("to", exp.DataType.build("DOUBLE"))
        return node

    def arithmetic(self, node: exp.Expression) -> exp.Expression:
        node.set("this", as_number(node.this))
        node.set("expression", as_number(node.expression))
        if isinstance(node, exp.Div):
            node.set("safe", True)  # SQLite: x / 0 is NULL
            if (node.args.get("typed") and self.dialect == "duckdb"
                    and self.is_integer(node.this) and self.is_integer(node.expression)):
                divisor = exp.Nullif(this=node.expression, expression=exp.Literal.number(0))
                return exp.IntDiv(this=node.this, expression=divisor)
        elif isinstance(node, exp.Mod | exp.IntDiv):
            node.set("expression", exp.Nullif(this=node.expression, expression=exp.Literal.number(0)))
        return node

    def is_integer(self, node: exp.Expression) -> bool:
        """Whether ``node`` is known to be an integer (SQLite divides two integers as integers)."""
        known, value = self.constant(node)
        if known:
            return isinstance(value, int) and not isinstance(value, bool)
        if isinstance(node, exp.Paren):
            return self.is_integer(node.this)
        if isinstance(node, exp.Cast):
            return isinstance(node.to, exp.DataType) and node.to.this in _INTEGER_TYPES
        return isinstance(node, exp.Count | exp.Length | exp.StrPosition | exp.IntDiv)

    # -- long value lists --------------------------------------------------------------
    def json_items(self, select: exp.Select) -> list[Any] | None:
        """The values of ``SELECT value FROM json_each(<JSON list>)``, or None for another query."""
        source = select.args.get("from_") or select.args.get("from")
        table = source.this if isinstance(source, exp.From) else None
        if not (isinstance(table, exp.Table) and isinstance(table.this, exp.Anonymous)
                and str(table.this.this).lower() == "json_each"):
            return None
        if (len(table.this.expressions) != 1 or len(select.expressions) != 1
                or select.expressions[0].alias_or_name != "value"
                or any(select.args.get(key) for key in ("joins", "where", "group", "having"))):
            raise ValueError(f"cannot render {select.sql(dialect='sqlite')!r} for {self.dialect}")
        known, payload = self.constant(table.this.expressions[0])
        items = json.loads(payload) if known and isinstance(payload, str) else None
        if not isinstance(items, list) or any(isinstance(i, list | dict) for i in items):
            raise ValueError(f"json_each needs a bound JSON list of values, not {payload!r}")
        return items

    def json_select(self, select: exp.Select) -> exp.Expression:
        """``SELECT UNNEST(CAST(? AS T[])) AS value`` on the engines with arrays."""
        items = self.json_items(select)
        if items is None:
            return select
        if self.dialect not in UNNEST_DIALECTS:
            parent = select.parent
            if not (isinstance(parent, exp.Subquery) and isinstance(parent.parent, exp.In)
                    and parent.arg_key == "query"):
                raise ValueError(f"json_each outside of IN (...) cannot be rendered for {self.dialect}")
            return select  # the enclosing IN lists the values (json_in)
        kind, items = array_of(items)
        array = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[exp.DataType.build(kind)],
                             nested=True)
        unnest = exp.Anonymous(this="UNNEST", expressions=[exp.Cast(this=self.bind(items), to=array)])
        return exp.select(exp.alias_(unnest, "value", quoted=False))

    def json_in(self, node: exp.In) -> exp.Expression:
        """``x IN (?, ?, ...)``, one value each, on the engines without array parameters."""
        query = node.args.get("query")
        if self.dialect in UNNEST_DIALECTS or not isinstance(query, exp.Subquery):
            return node
        inner = query.this
        items = self.json_items(inner) if isinstance(inner, exp.Select) else None
        if items is None:
            return node
        if not items:
            return exp.false()
        return exp.In(this=node.this, expressions=[self.bind(item) for item in items])


# ------------------------------------------------------------------ helpers


def is_boolean(node: exp.Expression) -> bool:
    """Whether ``node`` is a truth value (SQLite's 0 or 1), parentheses aside."""
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, _BOOLEAN_NODES)


def as_number(node: exp.Expression) -> exp.Expression:
    """``node`` where it is read as a number: a truth value becomes the integer 0 or 1."""
    if is_boolean(node):
        return exp.Cast(this=node, to=exp.DataType.build("INT"))
    return node


def as_double(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=as_number(node), to=exp.DataType.build("DOUBLE"))


def is_translation(node: exp.Expression, source: str, target: str) -> bool:
    """Whether ``node`` is already ``translate(x, source, target)``."""
    if not (isinstance(node, exp.Anonymous) and str(node.this).lower() == "translate"):
        return False
    args = node.expressions
    return (len(args) == 3 and all(isinstance(a, exp.Literal) and a.is_string for a in args[1:])
            and args[1].this == source and args[2].this == target)


def array_of(items: list[Any]) -> tuple[str, list[Any]]:
    """The SQL element type of a list of values and the values in that type."""
    present = [item for item in items if item is not None]
    if all(isinstance(item, str) for item in present):
        return "TEXT", items
    if all(isinstance(item, int | float) and not isinstance(item, bool) for item in present):
        if all(isinstance(item, int) and -(2**63) <= item < 2**63 for item in present):
            return "BIGINT", items
        return "DOUBLE", [None if item is None else float(item) for item in items]
    raise ValueError("a list of values mixes text and numbers")
