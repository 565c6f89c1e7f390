"""Split-based-on operators decide conditions exactly as the Studio spec says."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bots.flows.operators import (
    MAX_INPUT_LENGTH,
    MAX_PATTERN_LENGTH,
    OPERATORS,
    UnknownOperator,
    matches,
    regex_error,
)

BOGOTA = ZoneInfo("America/Bogota")  # UTC-5 all year
MADRID = ZoneInfo("Europe/Madrid")  # UTC+2 in summer

SPEC_OPERATORS = {
    "equal_to",
    "not_equal_to",
    "matches_any_of",
    "does_not_match_any_of",
    "is_blank",
    "is_not_blank",
    "regex",
    "contains",
    "does_not_contain",
    "starts_with",
    "does_not_start_with",
    "less_than",
    "greater_than",
    "is_before_time",
    "is_after_time",
    "is_before_date",
    "is_after_date",
}


def test_operators_are_exactly_the_seventeen_of_the_spec():
    assert OPERATORS == SPEC_OPERATORS
    assert len(OPERATORS) == 17


def test_an_unknown_operator_raises_naming_it():
    with pytest.raises(UnknownOperator, match='unknown operator "equals"') as info:
        matches("equals", "a", "a")
    assert info.value.operator == "equals"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("operator", "input_value", "value", "expected"),
    [
        ("equal_to", "yes", "yes", True),
        ("equal_to", "YES", "yes", True),
        ("equal_to", "  Yes \n", " yEs ", True),
        ("equal_to", "\u00a0sí\t", "SÍ", True),
        ("equal_to", "Straße", "STRASSE", True),
        ("equal_to", "yes", "ye", False),
        ("equal_to", "", "", True),
        ("equal_to", "y e s", "yes", False),
        ("not_equal_to", "YES", " yes ", False),
        ("not_equal_to", "no", "yes", True),
        ("not_equal_to", "", "x", True),
        ("contains", "I want to CANCEL please", "cancel", True),
        ("contains", "cancelar cita", " CITA ", True),
        ("contains", "hola", "adiós", False),
        ("contains", "anything", "", True),
        ("does_not_contain", "I want to CANCEL please", "Cancel", False),
        ("does_not_contain", "hola", "adiós", True),
        ("starts_with", "  Cancelar mi cita", "cancelar", True),
        ("starts_with", "mi cita cancelar", "cancelar", False),
        ("starts_with", "1032456789", "10", True),
        ("does_not_start_with", "Cancelar", "CAN", False),
        ("does_not_start_with", "no cancelar", "cancelar", True),
    ],
)
def test_text_operators_ignore_case_and_surrounding_spaces(
    operator, input_value, value, expected
):
    assert matches(operator, input_value, value) is expected


@pytest.mark.parametrize(
    ("input_value", "value", "expected"),
    [
        ("1", "1, cancelar, cancelar cita", True),
        ("  CANCELAR CITA ", "1, cancelar, cancelar cita", True),
        ("Cancelar", "1,cancelar,cancelar cita", True),
        ("cancelar la cita", "1, cancelar, cancelar cita", False),
        ("2", "1, cancelar, cancelar cita", False),
        ("cita", "1, cancelar, cancelar cita", False),
        ("", "a, , b,", False),
        ("   ", "a,,b", False),
        ("b", "a, , b,", True),
        ("anything", "", False),
        ("yes", "yes", True),
    ],
)
def test_matches_any_of_compares_the_input_with_each_trimmed_list_item(
    input_value, value, expected
):
    assert matches("matches_any_of", input_value, value) is expected
    assert matches("does_not_match_any_of", input_value, value) is not expected


@pytest.mark.parametrize(
    ("input_value", "blank"),
    [("", True), ("   ", True), ("\n\t \u00a0", True), ("x", False), (" 0 ", False)],
)
@pytest.mark.parametrize("value", ["Is Blank", "", "whatever"])
def test_is_blank_looks_at_the_input_only_and_ignores_the_value(
    input_value, blank, value
):
    assert matches("is_blank", input_value, value) is blank
    assert matches("is_not_blank", input_value, value) is not blank


@pytest.mark.parametrize(
    ("pattern", "input_value", "expected"),
    [
        (r"(?=.*\bcancel).*", "I want to CANCEL please", True),
        (r"(?=.*\bcancel).*", "please uncancel it", False),
        (r"(?=.*\bcancel)(?=.*\bcita).*", "cita: quiero Cancelar", True),
        (r"(?=.*\bcancel)(?=.*\bcita).*", "quiero cancelar", False),
        (r"\d{6,10}", "1032456789", True),
        (r"\d{6,10}", " 1032456789 ", True),
        (r"\d{6,10}", "abc1032456789", False),
        (r"\d{6,10}", "10324567890", False),
        (r"\d{6,10}", "12345", False),
        ("2|.*(asesor|agente|humano).*", "2", True),
        ("2|.*(asesor|agente|humano).*", "quiero un AGENTE", True),
        ("2|.*(asesor|agente|humano).*", "22", False),
        ("2|.*(asesor|agente|humano).*", "1", False),
        ("si|sí|yes", "SÍ", True),
        (".*cancel.*", "hola\nquiero cancelar\ngracias", True),
        ("", "", True),
        ("", "x", False),
    ],
)
def test_regex_is_case_insensitive_and_must_match_the_whole_trimmed_input(
    pattern, input_value, expected
):
    assert matches("regex", input_value, pattern) is expected


@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "*", "(?<name>x)", "a{2,1}"])
def test_an_invalid_regex_does_not_match_and_regex_error_says_why(pattern):
    assert matches("regex", "anything", pattern) is False
    assert matches("regex", pattern, pattern) is False
    assert regex_error(pattern)


def test_regex_error_is_none_for_a_valid_pattern():
    assert regex_error(r"(?=.*\bcancel).*") is None
    assert regex_error(r"\d{6,10}") is None


def test_an_over_long_regex_pattern_is_an_error_and_never_matches():
    pattern = "a" * (MAX_PATTERN_LENGTH + 1)
    assert "longer than" in (regex_error(pattern) or "")
    assert matches("regex", pattern, pattern) is False
    assert regex_error("a" * MAX_PATTERN_LENGTH) is None


def test_an_over_long_input_does_not_match_a_regex():
    assert matches("regex", "a" * MAX_INPUT_LENGTH, "a+") is True
    assert matches("regex", " " + "a" * MAX_INPUT_LENGTH + " ", "a+") is True
    assert matches("regex", "a" * (MAX_INPUT_LENGTH + 1), "a+") is False
    assert matches("regex", "a" * (MAX_INPUT_LENGTH + 1), ".*") is False


@pytest.mark.parametrize(
    ("input_value", "value", "less", "greater"),
    [
        ("3", "2", False, True),
        ("2", "3", True, False),
        ("2", "2", False, False),
        ("2.0", "2", False, False),
        (" 2.5 ", "2", False, True),
        ("-1", "0", True, False),
        ("+4", "3", False, True),
        (".5", "0.4", False, True),
        ("1e3", "999", False, True),
        ("1E-2", "0.1", True, False),
        ("10", "9", False, True),
        ("abc", "2", False, False),
        ("3", "abc", False, False),
        ("", "2", False, False),
        ("3", "", False, False),
        ("NaN", "2", False, False),
        ("Infinity", "2", False, False),
        ("-inf", "2", False, False),
        ("1_000", "2", False, False),
        ("2,5", "2", False, False),
        ("3 4", "2", False, False),
        ("٣", "2", False, False),
    ],
)
def test_less_than_and_greater_than_compare_plain_numbers_strictly(
    input_value, value, less, greater
):
    assert matches("less_than", input_value, value) is less
    assert matches("greater_than", input_value, value) is greater


@pytest.mark.parametrize(
    ("input_value", "value", "before", "after"),
    [
        ("08:59", "09:00", True, False),
        ("09:00", "09:00", False, False),
        ("09:01", "09:00", False, True),
        ("9:05", "09:00", False, True),
        (" 17:30 ", "18:00", True, False),
        ("09:00:00", "09:00", False, False),
        ("09:00:01", "09:00", False, True),
        ("23:59", "00:00", False, True),
        ("00:00", "23:59", True, False),
        ("24:00", "09:00", False, False),
        ("12:60", "09:00", False, False),
        ("9am", "09:00", False, False),
        ("", "09:00", False, False),
        ("hola", "09:00", False, False),
        ("09:00", "", False, False),
        ("09:00", "nine", False, False),
        ("2024-05-01", "09:00", False, False),
        # ISO datetimes are converted to the flow's zone (Bogotá, UTC-5).
        ("2024-05-01T13:59:00Z", "09:00", True, False),
        ("2024-05-01T14:00:00Z", "09:00", False, False),
        ("2024-05-01T14:00:00+00:00", "09:00", False, False),
        ("2024-05-01T14:01:00Z", "09:00", False, True),
        ("2024-05-01T09:30:00-05:00", "09:00", False, True),
        ("2024-05-02T02:00:00Z", "21:00", False, False),
        ("2024-05-02T01:00:00Z", "21:00", True, False),
        # Without an offset an ISO datetime is wall time in the flow's zone.
        ("2024-05-01T08:30", "09:00", True, False),
        ("2024-05-01 09:30:00", "09:00", False, True),
        ("2024-05-01T25:00", "09:00", False, False),
    ],
)
def test_time_operators_compare_the_input_time_with_the_value_strictly(
    input_value, value, before, after
):
    assert matches("is_before_time", input_value, value, tz=BOGOTA) is before
    assert matches("is_after_time", input_value, value, tz=BOGOTA) is after


def test_an_iso_datetime_takes_its_time_in_the_given_zone():
    moment = "2024-07-01T07:30:00Z"  # 09:30 in Madrid (summer), 02:30 in Bogotá
    assert matches("is_after_time", moment, "09:00", tz=MADRID) is True
    assert matches("is_before_time", moment, "09:00", tz=BOGOTA) is True
    assert matches("is_before_time", moment, "09:00", tz=dt.UTC) is True


@pytest.mark.parametrize(
    ("input_value", "value", "before", "after"),
    [
        ("2024-05-01", "2024-05-02", True, False),
        ("2024-05-02", "2024-05-02", False, False),
        ("2024-05-03", "2024-05-02", False, True),
        (" 2023-12-31 ", "2024-01-01", True, False),
        ("2024-02-30", "2024-01-01", False, False),
        ("01/05/2024", "2024-01-01", False, False),
        ("20240501", "2024-01-01", False, False),
        ("", "2024-01-01", False, False),
        ("2024-05-01", "", False, False),
        ("2024-05-01", "tomorrow", False, False),
        # ISO datetimes take their date in the flow's zone (Bogotá, UTC-5).
        ("2024-05-02T03:00:00Z", "2024-05-02", True, False),
        ("2024-05-02T05:00:00Z", "2024-05-02", False, False),
        ("2024-05-03T04:59:59Z", "2024-05-02", False, False),
        ("2024-05-03T05:00:00Z", "2024-05-02", False, True),
        ("2024-05-02T23:00", "2024-05-02", False, False),
    ],
)
def test_date_operators_compare_the_input_date_with_the_value_strictly(
    input_value, value, before, after
):
    assert matches("is_before_date", input_value, value, tz=BOGOTA) is before
    assert matches("is_after_date", input_value, value, tz=BOGOTA) is after


def test_now_on_either_side_is_the_given_moment_in_the_flows_zone():
    now = dt.datetime(2024, 5, 2, 3, 30, tzinfo=dt.UTC)  # 22:30 on 1 May in Bogotá
    assert matches("is_after_time", "now", "22:00", tz=BOGOTA, now=now) is True
    assert matches("is_before_time", "NOW", "23:00", tz=BOGOTA, now=now) is True
    assert matches("is_before_date", "now", "2024-05-02", tz=BOGOTA, now=now)
    assert matches("is_after_date", "2024-05-02", " now ", tz=BOGOTA, now=now)
    assert not matches("is_after_date", "now", "2024-05-01", tz=BOGOTA, now=now)


def test_now_defaults_to_the_current_moment():
    assert matches("is_before_date", "2000-01-01", "now", tz=BOGOTA) is True
    assert matches("is_after_date", "2999-01-01", "now", tz=BOGOTA) is True


def test_the_zone_defaults_to_the_servers_time_zone(settings):
    moment = "2024-05-01T14:30:00Z"
    settings.TIME_ZONE = "America/Bogota"
    assert matches("is_before_time", moment, "10:00") is True
    settings.TIME_ZONE = "Europe/Madrid"
    assert matches("is_after_time", moment, "10:00") is True
