"""Studio's split-based-on operators, as pure functions of two rendered strings.

`matches(operator, input_value, value)` decides one condition: `input_value` is the
split's rendered input and `value` the condition's rendered value. Rules:

- Text operators trim surrounding whitespace and ignore case (casefold).
- `matches_any_of`: `value` is a comma-separated list; items are trimmed and empty
  items ignored.
- `is_blank` / `is_not_blank` look at the input only.
- `regex`: case-insensitive, `.` also matches newlines, and the pattern must match
  the whole trimmed input. An invalid or over-long pattern, or an over-long input,
  does not match (`regex_error` explains a pattern at import).
- `less_than` / `greater_than`: plain decimal numbers (`"-2.5"`, `"1e3"`); anything
  else, NaN and infinities included, does not match.
- Times (`HH:MM` or `HH:MM:SS`) and dates (`YYYY-MM-DD`) are compared in `tz`
  (default: the server's TIME_ZONE). Either side may also be an ISO datetime,
  converted to `tz` first (without an offset it is read as `tz` wall time), or the
  word `now` (the `now` argument, default the current moment).
- Before/after/less/greater are strict. Anything that does not parse: no match.
"""

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from django.utils import timezone

MAX_PATTERN_LENGTH = 500
MAX_INPUT_LENGTH = 2_000

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}\S{0,24}")

_T = TypeVar("_T", Decimal, dt.time, dt.date)


class UnknownOperator(ValueError):
    """An operator name that Studio does not have."""

    def __init__(self, operator: str) -> None:
        super().__init__(f'unknown operator "{operator}"')
        self.operator = operator


def _fold(text: str) -> str:
    return text.strip().casefold()


def _matches_any_of(input_value: str, value: str) -> bool:
    wanted = _fold(input_value)
    return any(item == wanted for item in map(_fold, value.split(",")) if item)


def regex_error(pattern: str) -> str | None:
    """Why `pattern` can never match (too long, or does not compile), else None."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"pattern longer than {MAX_PATTERN_LENGTH} characters"
    try:
        re.compile(pattern, re.IGNORECASE | re.DOTALL)
    except re.error as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    if regex_error(pattern) is not None:
        return None
    return re.compile(pattern, re.IGNORECASE | re.DOTALL)


def _regex(input_value: str, pattern: str) -> bool:
    text = input_value.strip()
    compiled = _compiled(pattern)
    if compiled is None or len(text) > MAX_INPUT_LENGTH:
        return False
    return compiled.fullmatch(text) is not None


def _number(text: str) -> Decimal | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _order(a: _T | None, b: _T | None) -> int | None:
    """-1, 0 or 1 as `a` is below, equal to or above `b`; None if either is None."""
    if a is None or b is None:
        return None
    return (a > b) - (a < b)


def _moment(text: str, tz: dt.tzinfo, now: dt.datetime | None) -> dt.datetime | None:
    """`now` or an ISO datetime (with a time part) as an aware datetime in `tz`."""
    if text.casefold() == "now":
        moment = now if now is not None else timezone.now()
    elif _DATETIME.fullmatch(text):
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


def _as_time(text: str, tz: dt.tzinfo, now: dt.datetime | None) -> dt.time | None:
    text = text.strip()
    if found := _TIME.fullmatch(text):
        hour, minute, second = found.groups(default="0")
        return dt.time(int(hour), int(minute), int(second))
    moment = _moment(text, tz, now)
    return moment.time() if moment else None


def _as_date(text: str, tz: dt.tzinfo, now: dt.datetime | None) -> dt.date | None:
    text = text.strip()
    if _DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    moment = _moment(text, tz, now)
    return moment.date() if moment else None


def _numbers(input_value: str, value: str) -> int | None:
    return _order(_number(input_value), _number(value))


def _times(i: str, v: str, tz: dt.tzinfo, now: dt.datetime | None) -> int | None:
    return _order(_as_time(i, tz, now), _as_time(v, tz, now))


def _dates(i: str, v: str, tz: dt.tzinfo, now: dt.datetime | None) -> int | None:
    return _order(_as_date(i, tz, now), _as_date(v, tz, now))


_TEXT: dict[str, Callable[[str, str], bool]] = {
    "equal_to": lambda i, v: _fold(i) == _fold(v),
    "not_equal_to": lambda i, v: _fold(i) != _fold(v),
    "contains": lambda i, v: _fold(v) in _fold(i),
    "does_not_contain": lambda i, v: _fold(v) not in _fold(i),
    "starts_with": lambda i, v: _fold(i).startswith(_fold(v)),
    "does_not_start_with": lambda i, v: not _fold(i).startswith(_fold(v)),
    "matches_any_of": _matches_any_of,
    "does_not_match_any_of": lambda i, v: not _matches_any_of(i, v),
    "is_blank": lambda i, v: not i.strip(),
    "is_not_blank": lambda i, v: bool(i.strip()),
    "regex": _regex,
    "less_than": lambda i, v: _numbers(i, v) == -1,
    "greater_than": lambda i, v: _numbers(i, v) == 1,
}

_Compare = Callable[[str, str, dt.tzinfo, dt.datetime | None], int | None]
_CLOCK: dict[str, tuple[_Compare, int]] = {
    "is_before_time": (_times, -1),
    "is_after_time": (_times, 1),
    "is_before_date": (_dates, -1),
    "is_after_date": (_dates, 1),
}

OPERATORS: frozenset[str] = frozenset(_TEXT) | frozenset(_CLOCK)


def matches(
    operator: str,
    input_value: str,
    value: str,
    *,
    tz: dt.tzinfo | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Whether the condition `input_value <operator> value` holds, as Studio says.

    Raises UnknownOperator for a name Studio does not have.
    """
    if operator in _TEXT:
        return _TEXT[operator](input_value, value)
    if operator not in _CLOCK:
        raise UnknownOperator(operator)
    compare, wanted = _CLOCK[operator]
    zone = tz if tz is not None else timezone.get_default_timezone()
    return compare(input_value, value, zone, now) == wanted
