"""TaskRouter's expression language: parsed once, evaluated against JSON attributes.

`language == 'es' AND vip == true`, `worker.level >= task.level`, `languages HAS 'es'`,
`language IN ['es', 'en']`, `1==1`. A small tokenizer and a recursive-descent parser
build an immutable AST; nothing is ever handed to eval.

Semantics where TaskRouter leaves room (specs/taskrouter.md, "Expression language"):
- Keywords and operators are case-insensitive; keys and string values are not.
  `&&`/`||` are accepted for AND/OR and `=` for `==`. AND binds tighter than OR.
- Keys are `[A-Za-z_][A-Za-z0-9_-]*` segments joined by dots, each optionally indexed
  (`skills.languages[0]`). A missing key, a bad index or a JSON null reads as null.
- Values are typed: null, boolean, number (int or float, never bool), string, array.
  A type mismatch is false, so `'2' == 2` and `'2' != 2` are both false, and so is
  any scalar operator on an array or object and any array operator on two scalars.
- Null is the exception: `==`/`!=` with a null side test presence, whatever the
  other side holds (`skills != null` is true when `skills` is present, even an array;
  `missing != 'es'` is true). Ordering and CONTAINS with null are false.
- `<`, `<=`, `>`, `>=` order two numbers or two strings (by code point), nothing else.
- CONTAINS is a case-sensitive substring test between two strings.
- HAS: array on the left holds the scalar on the right. IN / NOT IN: scalar on the
  left is / is not an element of the array on the right (a constant or a key).
  Elements match by `==` above, so `[1, 2] HAS 1.0` but not `[1] HAS true`.
- A bare `true` or `false` is a valid term; a bare key or other constant is an error.
- Strings take backslash escapes: a backslash makes the next character literal.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, TypeAlias

MAX_DEPTH = 100  # nested parentheses; keeps parsing and evaluation off the stack limit


class ExpressionError(ValueError):
    """Malformed expression, naming the 0-based character offset of the problem."""

    def __init__(self, message: str, position: int, expression: str) -> None:
        super().__init__(f"{message} at position {position}: {expression}")
        self.message = message
        self.position = position
        self.expression = expression

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.message, self.position, self.expression)


# ---------------------------------------------------------------- values


_KINDS = ((bool, "bool"), (int | float, "number"), (str, "string"), (list, "array"))
_SCALARS = frozenset({"null", "bool", "number", "string"})
_ORDER = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _kind(value: Any) -> str:
    """null, bool, number, string, array or object (a bool is not a number)."""
    if value is None:
        return "null"
    if isinstance(value, tuple):  # an array constant
        return "array"
    return next((name for types, name in _KINDS if isinstance(value, types)), "object")


def _same(a: Any, b: Any) -> bool:
    kind = _kind(a)
    return kind == _kind(b) and kind in _SCALARS and bool(a == b)


def _apply(op: str, left: Any, right: Any) -> bool:
    """`left op right` on JSON values; a type mismatch is false."""
    lk, rk = _kind(left), _kind(right)
    if op in ("==", "!="):
        if "null" in (lk, rk):
            equal = lk == rk
        elif lk == rk and lk in _SCALARS:
            equal = bool(left == right)
        else:
            return False
        return equal if op == "==" else not equal
    if op in _ORDER:
        return lk == rk and lk in ("number", "string") and bool(_ORDER[op](left, right))
    if op == "contains":
        return lk == rk == "string" and right in left
    if op == "has":
        return lk == "array" and rk in _SCALARS and any(_same(x, right) for x in left)
    if rk != "array" or lk not in _SCALARS:  # in, not in
        return False
    found = any(_same(left, x) for x in right)
    return found if op == "in" else not found


def _lookup(scope: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(scope, list | tuple) or step >= len(scope):
                return None
        elif not isinstance(scope, Mapping) or step not in scope:
            return None
        scope = scope[step]
    return scope


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Const:
    value: Any  # str, int, float, bool, None, or a tuple of those (an array)

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        return self.value

    def evaluate(self, scope: Mapping[str, Any]) -> bool:  # a bare true / false
        return self.value is True

    def keys(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True)
class Key:
    name: str  # as written: "skills.languages[0]"
    path: tuple[str | int, ...]

    def resolve(self, scope: Mapping[str, Any]) -> Any:
        return _lookup(scope, self.path)


@dataclass(frozen=True)
class Compare:
    op: str  # ==, !=, >, >=, <, <=, contains, has, in, not in
    left: Const | Key
    right: Const | Key

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        return _apply(self.op, self.left.resolve(scope), self.right.resolve(scope))

    def keys(self) -> frozenset[str]:
        sides = (self.left, self.right)
        return frozenset(side.name for side in sides if isinstance(side, Key))


@dataclass(frozen=True)
class Logic:
    op: str  # and, or
    terms: tuple[Node, ...]

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        test = all if self.op == "and" else any
        return test(term.evaluate(scope) for term in self.terms)

    def keys(self) -> frozenset[str]:
        return frozenset().union(*(term.keys() for term in self.terms))


Node: TypeAlias = Compare | Logic | Const


@dataclass(frozen=True)
class Expression:
    """A parsed expression: the root of the tree and the text it came from."""

    source: str
    root: Node

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        return self.root.evaluate(scope)

    def keys(self) -> frozenset[str]:
        """The keys it reads, as written (`task.language`, `skills.languages[0]`)."""
        return self.root.keys()


# ---------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<punct>==|!=|>=|<=|&&|\|\||[=<>()\[\],])
    |(?P<notin>(?i:not)\s+(?i:in)(?![A-Za-z0-9_-]))
    |(?P<num>-?[0-9]+(?:\.[0-9]+)?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\])*)
    """,
    re.VERBOSE,
)
_WORDS = {"and": "and", "or": "or", "not": "not", "in": "op", "has": "op"}
_WORDS |= {"contains": "op", "true": "value", "false": "value", "null": "value"}
_CONSTANTS = {"true": True, "false": False, "null": None}


class _Token(NamedTuple):
    kind: str  # value, key, op, and, or, not, ( ) [ ] , end
    pos: int
    end: int
    value: Any = None


def _string(source: str, start: int) -> _Token:
    chars, i = [], start + 1
    while i < len(source):
        if source[i] == "\\" and i + 1 < len(source):
            chars.append(source[i + 1])
            i += 2
        elif source[i] == source[start]:
            return _Token("value", start, i + 1, "".join(chars))
        else:
            chars.append(source[i])
            i += 1
    raise ExpressionError("unterminated string", start, source)


def _int(digits: str, pos: int, source: str) -> int:
    try:
        return int(digits)
    except ValueError:  # more digits than int() accepts
        raise ExpressionError("number too long", pos, source) from None


def _token(source: str, match: re.Match[str]) -> _Token:
    kind, text, pos, end = match.lastgroup, match.group(), match.start(), match.end()
    if kind == "space":
        return _Token("space", pos, end)
    if kind == "punct":
        if text in ("&&", "||"):
            return _Token("and" if text == "&&" else "or", pos, end)
        if text in "()[],":
            return _Token(text, pos, end)
        return _Token("op", pos, end, "==" if text == "=" else text)
    if kind == "notin":
        return _Token("op", pos, end, "not in")
    if kind == "num":
        number = float(text) if "." in text else _int(text, pos, source)
        return _Token("value", pos, end, number)
    word = text.lower()
    if word in _WORDS:
        return _Token(_WORDS[word], pos, end, _CONSTANTS.get(word, word))
    path = re.findall(r"([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]", text)
    steps = tuple(_int(index, pos, source) if index else name for name, index in path)
    return _Token("key", pos, end, steps)


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        if source[pos] in "'\"":
            token = _string(source, pos)
        elif match := _TOKEN.match(source, pos):
            token = _token(source, match)
        else:
            raise ExpressionError(f'unexpected character "{source[pos]}"', pos, source)
        if token.kind != "space":
            tokens.append(token)
        pos = token.end
    return [*tokens, _Token("end", len(source), len(source))]


# ---------------------------------------------------------------- grammar
#   logic    := and_expr (OR and_expr)*
#   and_expr := term (AND term)*
#   term     := "(" logic ")" | operand [operator operand]    (bare: true / false)
#   operand  := key | constant | "[" [constant ("," constant)*] "]"


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, position, self.source)

    def unexpected(self, tok: _Token, opener: _Token | None = None) -> ExpressionError:
        if tok.kind == "end" and opener is not None:
            text = self.source[opener.pos]
            return self.error(f'unclosed "{text}"', opener.pos)
        if tok.kind == "end":
            return self.error("unexpected end of expression", tok.pos)
        text = self.source[tok.pos : tok.end]
        return self.error(f'unexpected token "{text}"', tok.pos)

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty expression", 0)
        node = self.logic()
        token = self.peek()
        if token.kind == ")":
            raise self.error('unmatched ")"', token.pos)
        if token.kind != "end":
            raise self.unexpected(token)
        return node

    def logic(self, op: str = "or") -> Node:
        terms = [self.logic("and") if op == "or" else self.term()]
        while self.peek().kind == op:
            self.advance()
            terms.append(self.logic("and") if op == "or" else self.term())
        return terms[0] if len(terms) == 1 else Logic(op, tuple(terms))

    def term(self) -> Node:
        opening = self.peek()
        if opening.kind != "(":
            return self.comparison()
        self.advance()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("too deeply nested", opening.pos)
        node = self.logic()
        closing = self.advance()
        if closing.kind != ")":
            raise self.unexpected(closing, opening)
        self.depth -= 1
        return node

    def comparison(self) -> Node:
        start = self.peek()
        left = self.operand()
        if self.peek().kind == "op":
            op = self.advance().value
            return Compare(op, left, self.operand())
        if isinstance(left, Const) and isinstance(left.value, bool):
            return left
        text = self.source[start.pos : self.tokens[self.index - 1].end]
        raise self.error(f'expected an operator after "{text}"', self.peek().pos)

    def operand(self) -> Const | Key:
        token = self.advance()
        if token.kind == "value":
            return Const(token.value)
        if token.kind == "key":
            return Key(self.source[token.pos : token.end], token.value)
        if token.kind == "[":
            return Const(self.array(token))
        raise self.unexpected(token)

    def array(self, opening: _Token) -> tuple[Any, ...]:
        items: list[Any] = []
        if self.peek().kind == "]":
            self.advance()
            return ()
        while True:
            item = self.advance()
            if item.kind != "value":
                raise self.unexpected(item, opening)
            items.append(item.value)
            separator = self.advance()
            if separator.kind == "]":
                return tuple(items)
            if separator.kind != ",":
                raise self.unexpected(separator, opening)


@lru_cache(maxsize=1024)
def parse(source: str) -> Expression:
    """The tree of `source`, parsed once per text; ExpressionError if malformed."""
    return Expression(source, _Parser(source).parse())


def matches(source: str, scope: Mapping[str, Any]) -> bool:
    """Whether the expression `source` holds for `scope` (JSON attributes)."""
    return parse(source).evaluate(scope)


def check(source: str) -> str | None:
    """None when `source` parses, else the error message (for form validation)."""
    try:
        parse(source)
    except ExpressionError as exc:
        return str(exc)
    return None
