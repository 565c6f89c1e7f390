"""TaskRouter expressions: the grammar, typed comparisons, keys and their errors.

Plain functions over JSON: no database, no Django."""

import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.expressions import (
    MAX_DEPTH,
    Expression,
    ExpressionError,
    check,
    matches,
    parse,
)

ATTRIBUTES: dict[str, Any] = {
    "language": "es",
    "vip": True,
    "level": 3,
    "score": 2.5,
    "zero": 0,
    "code": "2",
    "name": "Ana Smith",
    "nothing": None,
    "languages": ["es", "en"],
    "levels": [1, 2.5],
    "flags": [1],
    "mixed": ["1", None, ["nested"], {"k": 1}],
    "empty": [],
    "profile": {"tier": "gold"},
    "skills": {"languages": ["es", "fr"], "billing": True},
    "customer-tier": "gold",
}


def cases(*rows: tuple[str, bool]) -> Any:
    """Parametrize (expression, expected) rows, each named by its expression."""
    return pytest.mark.parametrize(
        ("source", "expected"), rows, ids=[r[0] for r in rows]
    )


# ---------------------------------------------------------------- grammar


@cases(
    ("language == 'es'", True),
    ("language == 'en'", False),
    ("language = 'es'", True),
    ("language != 'en'", True),
    ("language != 'es'", False),
    ("level > 2", True),
    ("level > 3", False),
    ("level >= 3", True),
    ("level >= 4", False),
    ("level < 4", True),
    ("level < 3", False),
    ("level <= 3", True),
    ("level <= 2", False),
    ("name CONTAINS 'Smith'", True),
    ("name CONTAINS 'Jones'", False),
    ("languages HAS 'en'", True),
    ("languages HAS 'fr'", False),
    ("language IN ['fr', 'es']", True),
    ("language IN ['fr', 'de']", False),
    ("language NOT IN ['fr', 'de']", True),
    ("language NOT IN ['fr', 'es']", False),
    ("language IN languages", True),
    ("'fr' NOT IN languages", True),
)
def test_every_operator_compares_as_taskrouter_documents(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("languages has 'es'", True),
    ("languages Has 'es'", True),
    ("language in ['es']", True),
    ("language In ['es']", True),
    ("language not in ['es']", False),
    ("language Not   In ['fr']", True),
    ("name contains 'Ana'", True),
    ("vip == TRUE", True),
    ("vip == True", True),
    ("vip != FALSE", True),
    ("nothing == NULL", True),
    ("1==1 and 2==2", True),
    ("1==2 Or 1==1", True),
    ("1==1 && 2==2", True),
    ("1==2 || 1==1", True),
)
def test_keywords_and_operators_are_case_insensitive(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("1==1 OR 1==2 AND 1==2", True),
    ("1==2 AND 1==2 OR 1==1", True),
    ("(1==1 OR 1==2) AND 1==2", False),
    ("1==2 AND (1==2 OR 1==1)", False),
    ("1==1 AND 1==1 AND 1==2", False),
    ("1==2 OR 1==2 OR 1==1", True),
    ("((language == 'es'))", True),
    ("(vip == true AND (level > 2 OR score < 1)) AND languages HAS 'en'", True),
    ("(vip == false OR (level > 5 AND score < 1)) OR languages HAS 'de'", False),
    ("( ( 1==1 ) )", True),
)
def test_and_binds_tighter_than_or_and_parentheses_group(source, expected):
    assert matches(source, ATTRIBUTES) is expected


def test_parentheses_nest_as_deep_as_the_limit():
    source = "(" * MAX_DEPTH + "1==1" + ")" * MAX_DEPTH

    assert matches(source, {}) is True


def test_a_long_chain_of_conditions_does_not_exhaust_the_stack():
    source = " AND ".join(["level == 3"] * 5000)

    assert matches(source, ATTRIBUTES) is True


@cases(
    ("true", True),
    ("false", False),
    ("TRUE AND 1==1", True),
    ("(false) OR true", True),
    ("false AND languages HAS 'es'", False),
)
def test_a_bare_boolean_constant_is_a_valid_condition(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("1 == 1", True),
    ("0 != 1", True),
    ("-1 < 0", True),
    ("2.5 > 2", True),
    ("1 == 1.0", True),
    ("-2.5 <= -2.5", True),
    ("'apple' != \"orange\"", True),
    ("'it\\'s' == \"it's\"", True),
    ('"say \\"hi\\"" CONTAINS \'"\'', True),
    ("'a\\\\b' CONTAINS '\\\\'", True),
    ("'a\\\\b' == 'a\\b'", False),
    ("'' == \"\"", True),
    ("null == null", True),
    ("true != false", True),
    ("['a', 1, true, null] HAS null", True),
    ('1 IN ["a", 1, true]', True),
)
def test_constants_can_stand_on_either_side(source, expected):
    assert matches(source, {}) is expected


# ---------------------------------------------------------------- types


@cases(
    ("languages == 'es'", False),
    ("languages != 'es'", False),
    ("languages > 'a'", False),
    ("languages CONTAINS 'es'", False),
    ("profile == 'gold'", False),
    ("profile != 'gold'", False),
    ("['es'] == ['es']", False),
    ("['es'] != ['fr']", False),
)
def test_a_scalar_operator_on_an_array_or_object_is_false(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("language HAS 'es'", False),
    ("language IN 'es'", False),
    ("language NOT IN 'fr'", False),
    ("languages IN ['es']", False),
    ("languages NOT IN ['fr']", False),
    ("languages HAS ['es']", False),
    ("mixed HAS ['nested']", False),
    ("profile HAS 'tier'", False),
    ("'a' IN profile", False),
)
def test_an_array_operator_without_an_array_where_it_belongs_is_false(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("code == 2", False),
    ("code != 2", False),
    ("code > 1", False),
    ("code == '2'", True),
    ("level == '3'", False),
    ("level != '3'", False),
    ("level < 'z'", False),
    ("name CONTAINS 3", False),
    ("level CONTAINS 3", False),
    ("vip == 1", False),
    ("vip != 1", False),
    ("zero == false", False),
    ("vip > false", False),
    ("vip >= true", False),
    ("flags HAS true", False),
    ("flags HAS 1.0", True),
    ("levels HAS 2.5", True),
    ("mixed HAS 1", False),
    ("mixed HAS '1'", True),
    ("'1' IN levels", False),
    ("1.0 IN flags", True),
    ("true IN [1]", False),
    ("'1' IN [1]", False),
)
def test_numbers_strings_and_booleans_never_equal_each_other(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("level == 3.0", True),
    ("score > 2", True),
    ("score >= 2.5", True),
    ("zero == -0", True),
    ("-1 < zero", True),
    ("language < 'fr'", True),
    ("language >= 'es'", True),
    ("language > 'es'", False),
    ("'B' < 'a'", True),
    ("name CONTAINS 'smith'", False),
    ("name CONTAINS ''", True),
    ("language == 'ES'", False),
)
def test_numbers_compare_numerically_and_strings_by_code_point(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("missing == null", True),
    ("missing != null", False),
    ("nothing == null", True),
    ("nothing != null", False),
    ("language != null", True),
    ("language == null", False),
    ("languages != null", True),
    ("profile != null", True),
    ("empty != null", True),
    ("null == missing", True),
    ("missing == 'es'", False),
    ("missing != 'es'", True),
    ("missing == false", False),
    ("missing != 0", True),
    ("missing > 1", False),
    ("missing <= 1", False),
    ("missing CONTAINS 'a'", False),
    ("missing IN ['es']", False),
    ("missing NOT IN ['es']", True),
    ("missing HAS 'es'", False),
    ("mixed HAS null", True),
    ("languages HAS null", False),
    ("null IN mixed", True),
)
def test_a_missing_key_is_null_and_null_only_equals_null(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@cases(
    ("empty HAS 'x'", False),
    ("language IN []", False),
    ("language NOT IN []", True),
    ("empty == null", False),
)
def test_empty_arrays_hold_nothing(source, expected):
    assert matches(source, ATTRIBUTES) is expected


@pytest.mark.parametrize(
    ("left", "right"),
    [(1, 1), (1, 2), (2.5, 2.5), ("a", "a"), ("a", "b"), (True, False), (None, 1)],
)
def test_not_equal_negates_equal_for_values_of_one_type_or_null(left, right):
    scope = {"a": left, "b": right}

    assert matches("a != b", scope) is not matches("a == b", scope)


# ---------------------------------------------------------------- keys

TARGET = {
    "task": {"level": 2, "language": "es", "languages": ["es"]},
    "worker": {
        "level": 3,
        "skills": {"languages": ["es", "en"]},
        "activity_name": "Available",
    },
}


@cases(
    ("worker.level >= task.level", True),
    ("worker.level < task.level", False),
    ("worker.skills.languages[0] == 'es'", True),
    ("worker.skills.languages[1] == 'en'", True),
    ("worker.skills.languages[2] == null", True),
    ("worker.skills.languages HAS task.language", True),
    ("task.language IN worker.skills.languages", True),
    ("task.language NOT IN worker.skills.languages", False),
    ("task.languages[0] IN worker.skills.languages", True),
    ("worker.activity_name IN ['Available', 'Busy']", True),
    ("worker.level[0] == null", True),
    ("worker.skills[0] == null", True),
    ("task.languages[0].code == null", True),
    ("worker.missing.deep == null", True),
    ("level == null", True),
    ("task == null", False),
)
def test_dotted_and_indexed_keys_descend_task_and_worker_scopes(source, expected):
    assert matches(source, TARGET) is expected


def test_keys_may_hold_hyphens_digits_and_underscores():
    scope = {"customer-tier": "gold", "tier_2": {"x-1": [5]}}

    assert matches("customer-tier == 'gold' AND tier_2.x-1[0] == 5", scope)


def test_keys_are_case_sensitive():
    assert matches("Language == null", ATTRIBUTES)


def test_an_index_reads_a_list_and_reads_null_from_anything_else():
    assert matches("skills.languages[1] == 'fr'", ATTRIBUTES)
    assert matches("profile[0] == null", ATTRIBUTES)


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize(
    ("source", "scope", "expected"),
    [
        ("language == 'es' AND vip == true", {"language": "es", "vip": True}, True),
        ("language == 'es' AND vip == true", {"language": "es", "vip": False}, False),
        ("language == 'es' AND vip == true", {"language": "es"}, False),
        ("worker.level >= task.level", {"worker": {"level": 2}, "task": {}}, False),
        ("worker.level >= task.level", TARGET, True),
        ("languages HAS 'es'", {"languages": ["es"]}, True),
        ("languages HAS 'es'", {"languages": ["en"]}, False),
        ("language IN ['es', 'en']", {"language": "en"}, True),
        ("language IN ['es', 'en']", {"language": "fr"}, False),
        ("1==1", {}, True),
        ("skills.languages[0] == 'es'", {"skills": {"languages": ["es"]}}, True),
        ("skills HAS 'billing'", {"skills": ["billing", "sales"]}, True),
        ("(skills HAS 'support') AND (languages HAS 'english')", {}, False),
        ("customer_value == 'Gold' AND type == 'ticket'", {"type": "ticket"}, False),
        (
            '(language == "en" OR language == "fr") AND skill_rating >= 5.1',
            {"language": "fr", "skill_rating": 6},
            True,
        ),
        ("object.array[2] == 'c'", {"object": {"array": ["a", "b", "c"]}}, True),
    ],
)
def test_the_examples_of_the_spec_and_twilio_docs(source, scope, expected):
    assert matches(source, scope) is expected


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("source", "position", "message"),
    [
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("languages HAS AND", 14, 'unexpected token "AND"'),
        ("language == 'es", 12, "unterminated string"),
        ('language == "es', 12, "unterminated string"),
        ("language == 'es\\'", 12, "unterminated string"),
        ("language # 'es'", 9, 'unexpected character "#"'),
        ("a ! b", 2, 'unexpected character "!"'),
        ("level == - 1", 9, 'unexpected character "-"'),
        ("task. == 1", 4, 'unexpected character "."'),
        ("x == 1.5.2", 8, 'unexpected character "."'),
        ("x == .5", 5, 'unexpected character "."'),
        ("language ==", 11, "unexpected end of expression"),
        ("1 == 1 AND", 10, "unexpected end of expression"),
        ("1 == 1 AND ", 11, "unexpected end of expression"),
        ("== 'es'", 0, 'unexpected token "=="'),
        ("x == 1 OR OR y == 2", 10, 'unexpected token "OR"'),
        ("x = = 1", 4, 'unexpected token "="'),
        ("x == 1 == 2", 7, 'unexpected token "=="'),
        ("(language == 'es'", 0, 'unclosed "("'),
        ("((a == 1) OR b == 2", 0, 'unclosed "("'),
        ("(a == 1 b == 2)", 8, 'unexpected token "b"'),
        ("language == 'es')", 16, 'unmatched ")"'),
        ("()", 1, 'unexpected token ")"'),
        ("language == 'es' vip == true", 17, 'unexpected token "vip"'),
        ("vip", 3, 'expected an operator after "vip"'),
        ("vip AND 1==1", 4, 'expected an operator after "vip"'),
        ("skills.languages[0]", 19, 'expected an operator after "skills.languages'),
        ("'es'", 4, "expected an operator after \"'es'\""),
        ("1", 1, 'expected an operator after "1"'),
        ("null", 4, 'expected an operator after "null"'),
        ("['a'] OR 1==1", 6, "expected an operator after \"['a']\""),
        ("language IN ['es', 'en'", 12, 'unclosed "["'),
        ("language IN [", 12, 'unclosed "["'),
        ("language IN ['es',]", 18, 'unexpected token "]"'),
        ("language IN ['es' 'en']", 18, "unexpected token \"'en'\""),
        ("language IN [other]", 13, 'unexpected token "other"'),
        ("x IN [1, [2]]", 9, 'unexpected token "["'),
        ("language NOT 'es'", 9, 'expected an operator after "language"'),
        ("NOT language == 'es'", 0, 'unexpected token "NOT"'),
        ("a[0 == 1", 1, 'expected an operator after "a"'),
        ("x == " + "9" * 5000, 5, "number too long"),
        ("(" * (MAX_DEPTH + 1) + "1==1" + ")" * (MAX_DEPTH + 1), MAX_DEPTH, "nested"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_a_malformed_expression_names_the_position_of_the_error(
    source, position, message
):
    with pytest.raises(ExpressionError) as caught:
        parse(source)

    assert caught.value.position == position
    assert message in str(caught.value)
    assert caught.value.expression == source


def test_the_error_message_reads_problem_position_and_expression():
    with pytest.raises(ExpressionError) as caught:
        parse("languages HAS AND")

    error = caught.value
    assert str(error) == 'unexpected token "AND" at position 14: languages HAS AND'
    assert isinstance(error, ValueError)
    assert (error.message, error.position) == ('unexpected token "AND"', 14)


def test_an_expression_error_survives_pickling():
    error = ExpressionError("unterminated string", 3, "a =='x")

    copy = pickle.loads(pickle.dumps(error))

    assert (str(copy), copy.position, copy.expression) == (str(error), 3, "a =='x")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("language == 'es'", None),
        ("1==1", None),
        ("true", None),
        ("vip", 'expected an operator after "vip" at position 3: vip'),
        ("(a == 1", 'unclosed "(" at position 0: (a == 1'),
    ],
)
def test_check_returns_the_message_a_form_shows_or_none(source, expected):
    assert check(source) == expected


# ---------------------------------------------------------------- the tree


@pytest.mark.parametrize(
    ("source", "keys"),
    [
        ("language == 'es' AND vip == true", {"language", "vip"}),
        ("worker.level >= task.level", {"worker.level", "task.level"}),
        ("1==1", set()),
        ("true", set()),
        ("skills.languages[0] == 'es'", {"skills.languages[0]"}),
        ("(a == 1 OR b IN [1]) AND 'x' CONTAINS c", {"a", "b", "c"}),
        ("a == 1 OR a == 2", {"a"}),
        ("task.language IN worker.languages", {"task.language", "worker.languages"}),
    ],
)
def test_keys_lists_every_key_read_as_written(source, keys):
    assert parse(source).keys() == frozenset(keys)


def test_parse_is_cached_by_source():
    source = "languages HAS 'es' AND level >= 2"

    assert parse(source) is parse(source)
    assert parse(source).source == source


def test_a_parsed_expression_is_immutable_and_hashable():
    expression = parse("language == 'es'")

    with pytest.raises(dataclasses.FrozenInstanceError):
        expression.source = "1==1"  # type: ignore[misc]
    assert isinstance(expression, Expression)
    assert {expression: True}[expression]


def test_one_parse_evaluates_against_many_scopes():
    expression = parse("language IN ['es', 'en'] AND level > 1")

    results = [expression.evaluate({"language": lang, "level": 2}) for lang in "xy"]
    assert results == [False, False]
    assert expression.evaluate({"language": "en", "level": 2}) is True


# ---------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "level", "0"]), inner, max_size=4)
    ),
    max_leaves=12,
)
NAMES = ["language", "languages", "level", "vip", "skills", "task", "worker", "a"]
SCOPES = st.dictionaries(st.sampled_from(NAMES), JSON, max_size=6)
FIXED = [
    "language == 'es' AND vip == true",
    "worker.level >= task.level",
    "languages HAS 'es' OR skills.languages[0] CONTAINS 'e'",
    "language IN ['es', 'en', 1, null] OR level NOT IN languages",
    "(level < 2.5 OR level != null) AND task.level[1].a > worker.level",
    "a IN a OR a HAS a OR a CONTAINS a OR a <= a",
]
PIECES = [
    "(", ")", "[", "]", ",", "AND", "or", "&&", "||", "==", "=", "!=", ">=", "<",
    "has", "IN", "not in", "NOT", "contains", "true", "null", "'a'", '"b"', "'",
    "\\", "1", "-2.5", "a", "a.b[0]", "task.level", "#", ".", "-",
]  # fmt: skip


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40) | st.lists(st.sampled_from(PIECES)).map(" ".join))
def test_parse_raises_only_expression_errors_on_any_text(source):
    try:
        expression = parse(source)
    except ExpressionError as error:
        assert 0 <= error.position <= len(source)
        assert check(source) == str(error)
    else:
        assert check(source) is None
        assert expression.evaluate({"a": [1, "a"], "task": {"level": 1}}) in (
            True,
            False,
        )


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(FIXED), SCOPES)
def test_evaluate_returns_a_boolean_on_any_json_scope(source, scope):
    assert parse(source).evaluate(scope) in (True, False)
    assert isinstance(matches(source, scope), bool)
