"""The analysis rule (`--select EXPR`): which accounts met in a list join the traversal.

A small, safe expression language read with `ast` and evaluated by walking its tree, never
by `eval`: comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`), `and`, `or`, `not`,
unary minus, parentheses, numbers, strings, `True`/`False`/`None`, lists or tuples of
constants, and the account's fields (`FIELDS`). Twittomatic's rule reads
`lang == 'it' and statuses_count > 100`. A field the network did not give is None, and an
ordering comparison with None is false (never an error), so an account without counts is
simply not selected by `followers_count > 10`.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FIELDS = (
    "network",
    "handle",
    "lang",
    "statuses_count",
    "followers_count",
    "following_count",
    "depth",
)
Value = str | int | float | bool | None

_ORDER: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_MAX_LENGTH = 1000


class SelectError(ValueError):
    """An expression that is not one of the language's, with where and why."""


def _compare(op: ast.cmpop, left: Value, right: Any) -> bool:
    if isinstance(op, ast.Eq):
        return bool(left == right)
    if isinstance(op, ast.NotEq):
        return bool(left != right)
    if isinstance(op, (ast.In, ast.NotIn)):
        found = isinstance(right, tuple) and left in right
        return found if isinstance(op, ast.In) else not found
    if left is None or right is None:
        return False
    if isinstance(left, str) != isinstance(right, str):
        return False
    return _ORDER[type(op)](left, right)


@dataclass(frozen=True)
class Selector:
    """A checked expression: `matches(fields)` evaluates it on an account's fields."""

    text: str
    tree: ast.Expression

    @property
    def fields(self) -> frozenset[str]:
        """The fields it reads (the analysis fetches posts only when it reads `lang`)."""
        return frozenset(n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name))

    def matches(self, values: Mapping[str, Value]) -> bool:
        return bool(self._eval(self.tree.body, values))

    def _eval(self, node: ast.expr, values: Mapping[str, Value]) -> Any:
        if isinstance(node, ast.BoolOp):
            parts = (self._eval(v, values) for v in node.values)
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.UnaryOp):
            inner = self._eval(node.operand, values)
            if isinstance(node.op, ast.Not):
                return not inner
            return -inner if isinstance(inner, (int, float)) else None
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, values)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self._eval(comparator, values)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            return values.get(node.id)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self._eval(e, values) for e in node.elts)
        raise SelectError(f"cannot evaluate {ast.dump(node)}")  # parse() lets none through


def _check(node: ast.AST, text: str) -> None:
    where = f" at column {node.col_offset + 1}" if isinstance(node, ast.expr) else ""
    if isinstance(node, ast.Expression):
        _check(node.body, text)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, text)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub)):
            raise SelectError(f"only `not` and `-` apply to one value{where}")
        _check(node.operand, text)
    elif isinstance(node, ast.Compare):
        allowed = (*_ORDER, ast.Eq, ast.NotEq, ast.In, ast.NotIn)
        if not all(isinstance(op, allowed) for op in node.ops):
            raise SelectError(f"comparisons are ==, !=, <, <=, >, >=, in, not in{where}")
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)) and not isinstance(right, (ast.Tuple, ast.List)):
                raise SelectError(f"`in` takes a list of constants, as lang in ['it', 'en']{where}")
        for part in (node.left, *node.comparators):
            _check(part, text)
    elif isinstance(node, ast.Name):
        if node.id not in FIELDS:
            raise SelectError(f"unknown field {node.id!r}{where}: the fields are {FIELDS}")
    elif isinstance(node, ast.Constant):
        if not (node.value is None or isinstance(node.value, (str, int, float, bool))):
            raise SelectError(f"constants are numbers, strings, True, False, None{where}")
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            if not isinstance(element, ast.Constant):
                raise SelectError(f"a list holds constants only{where}")
            _check(element, text)
    else:
        name = type(node).__name__
        raise SelectError(f"{name} is not part of the selection language{where}: {text!r}")


def parse(text: str) -> Selector:
    """The expression checked against the language; SelectError says what is wrong."""
    if len(text) > _MAX_LENGTH:
        raise SelectError(f"a selection expression is at most {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SelectError(f"not an expression: {exc.msg} at column {exc.offset}") from None
    _check(tree, text)
    return Selector(text, tree)
