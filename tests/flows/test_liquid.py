"""Studio-flavoured Liquid renders real flow templates leniently and within limits."""

import json
import time

import pytest

from bots.flows import liquid
from bots.flows.liquid import (
    MAX_LOOP_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_SOURCE_CHARS,
    RenderLimitExceeded,
    TemplateError,
    check_syntax,
    render,
    render_json,
)

MESSAGE = {
    "Body": " Hola ",
    "From": "whatsapp:+573001112233",
    "To": "whatsapp:+14155238886",
    "ProfileName": "Ana",
}
CONTEXT = {
    "trigger": {"message": MESSAGE},
    "flow": {
        "channel": {"address": "whatsapp:+14155238886"},
        "variables": {"count": "3", "tries": "2", "idx": 1},
    },
    "contact": {"channel": {"address": "whatsapp:+573001112233"}},
    "widgets": {
        "get-customer": {
            "parsed": {
                "name": "Ana",
                "sites": [{"name": "Norte"}, {"name": "Sur"}],
                "tags": ["a", "b"],
            }
        },
        "cancel": {"parsed": {"date": "2025-07-01", "dentist": "Dra. Díaz"}},
    },
}


def test_plain_text_comes_back_unchanged():
    assert render("Escribe 1 para cancelar.", CONTEXT) == "Escribe 1 para cancelar."


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{trigger.message.ProfileName}}", "Ana"),
        ("{{widgets.get-customer.parsed.name}}", "Ana"),
        ("{{flow.variables. count}}", "3"),
        ("{{ flow. variables.count }}", "3"),
        ("{{ flow .variables .count }}", "3"),
        ("{% if flow.variables. count == '3' %}yes{% endif %}", "yes"),
        ("{% assign n = flow. variables.count | plus: 1 %}{{ n }}", "4"),
        ("{{ widgets.get-customer.parsed.sites[flow.variables.idx].name }}", "Sur"),
        ("{% assign i = 0 %}{{ widgets.get-customer.parsed.sites[i].name }}", "Norte"),
        ("{{ widgets['get-customer'].parsed.name }}", "Ana"),
    ],
)
def test_paths_resolve_with_hyphens_stray_spaces_and_brackets(source, expected):
    assert render(source, CONTEXT) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ nope }}",
        "{{ flow.variables.nope }}",
        "{{ widgets.nope.parsed.x }}",
        "{{ widgets.nope.parsed.x[3].y }}",
        "{{ trigger.message.Body.nope }}",
        "{% if widgets.nope.parsed.x %}shown{% endif %}",
        "{% for x in widgets.nope.parsed.list %}{{ x }}{% endfor %}",
    ],
)
def test_missing_variables_render_empty_without_error(source):
    assert render(source, CONTEXT) == ""


def test_default_replaces_a_missing_deep_path():
    assert render("{{ widgets.nope.parsed.x | default: 'n/a' }}", CONTEXT) == "n/a"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 'HoLa' | downcase }}", "hola"),
        ("{{ 'hola' | upcase }}", "HOLA"),
        ('{{ "3" | plus: 1 }}', "4"),
        ("{{ flow.variables.count | plus: 1 }}", "4"),
        ("{{ flow.variables.count | minus: 1 }}", "2"),
        ("{{ '1.5' | plus: 1 }}", "2.5"),
        ("{{ 'a-b-c' | replace: '-', '+' }}", "a+b+c"),
        ("{{ 'a b c' | remove: ' ' }}", "abc"),
        ("{{ trigger.message.Body | strip }}", "Hola"),
        ("{{ '' | default: 'x' }}", "x"),
        ("{{ 'a,b,c' | split: ',' | first }}", "a"),
        ("{{ 'a,b,c' | split: ',' | size }}", "3"),
        ("{{ widgets.get-customer.parsed.tags | join: '/' }}", "a/b"),
        ("{{ trigger.message.ProfileName | size }}", "3"),
    ],
)
def test_filters_used_by_real_flows_behave_as_in_shopify(source, expected):
    assert render(source, CONTEXT) == expected


def test_date_filter_formats_now():
    before = time.strftime("%Y-%m-%d")
    rendered = render('{{ "now" | date: "%Y-%m-%d" }}', CONTEXT)
    assert rendered in {before, time.strftime("%Y-%m-%d")}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% if flow.variables.count == '3' %}a{% else %}c{% endif %}", "a"),
        ("{% if nope %}a{% elsif flow.variables.tries %}b{% else %}c{% endif %}", "b"),
        ("{% unless flow.variables.nope %}none{% endunless %}", "none"),
        (
            "{% case flow.variables.count %}{% when '2' %}two{% when '3' %}three"
            "{% else %}other{% endcase %}",
            "three",
        ),
        ("{% assign who = trigger.message.ProfileName | upcase %}{{ who }}", "ANA"),
        (
            "{% capture c %}Hola {{ trigger.message.ProfileName }}{% endcapture %}"
            "{{ c | downcase }}",
            "hola ana",
        ),
        ("{% for i in (1..3) %}{{ i }}{% endfor %}", "123"),
        ("{% for i in (1..flow.variables.count) %}{{ i }}{% endfor %}", "123"),
        (
            "{% for s in widgets.get-customer.parsed.sites %}{{ s.name }};{% endfor %}",
            "Norte;Sur;",
        ),
        ("a \n{%- if true -%}\n  b  \n{%- endif -%}\n c", "abc"),
        ("{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"),
    ],
)
def test_tags_used_by_real_flows_behave_as_in_shopify(source, expected):
    assert render(source, CONTEXT) == expected


@pytest.mark.parametrize(
    ("variables", "expected"),
    [({}, "1"), ({"tries": "1"}, "2"), ({"tries": 2}, "3")],
)
def test_the_appointments_retry_counter_starts_at_one_and_counts_up(
    variables, expected
):
    source = (
        "{% if flow.variables.tries %}{{flow.variables.tries | plus: 1}}"
        "{% else %}1{% endif %}"
    )
    assert render(source, {"flow": {"variables": variables}}) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{trigger.message.From | split: ':' | first}}", "whatsapp"),
        ("Hola {{trigger.message.ProfileName | default: 'de nuevo'}}", "Hola Ana"),
        ("{{widgets.welcome.inbound.Body}}", ""),
        ("{{flow.channel.address}}", "whatsapp:+14155238886"),
        (
            "del {{widgets.cancel.parsed.date}} con {{widgets.cancel.parsed.dentist}}.",
            "del 2025-07-01 con Dra. Díaz.",
        ),
    ],
)
def test_the_appointments_flow_expressions_render(source, expected):
    assert render(source, CONTEXT) == expected


def test_the_appointments_greeting_falls_back_without_a_profile_name():
    source = "Hola {{trigger.message.ProfileName | default: 'de nuevo'}}"
    assert render(source, {"trigger": {"message": {}}}) == "Hola de nuevo"


def test_the_appointments_flex_attributes_render_as_valid_json():
    source = (
        '{"name": "{{trigger.message.ProfileName}}", "channelType": '
        "\"{{trigger.message.From | split: ':' | first}}\", "
        '"from": "{{contact.channel.address}}", "reason": "{% if '
        "flow.variables.documento %}cancel_failed{% else %}asked_for_agent{% endif %}"
        '", "documento": "{{flow.variables.documento}}"}'
    )
    assert json.loads(render(source, CONTEXT)) == {
        "name": "Ana",
        "channelType": "whatsapp",
        "from": "whatsapp:+573001112233",
        "reason": "asked_for_agent",
        "documento": "",
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ trigger.message | to_json }}", json.dumps(MESSAGE, separators=(",", ":"))),
        (
            "{{ widgets.cancel.parsed | to_json }}",
            '{"date":"2025-07-01","dentist":"Dra. Díaz"}',
        ),
        ("{{ widgets.get-customer.parsed.tags | to_json }}", '["a","b"]'),
        ("{{ 'dice \"hola\"' | to_json }}", '"dice \\"hola\\""'),
        ("{{ '1.5' | plus: 1 | to_json }}", "2.5"),
        ("{{ widgets.nope.parsed | to_json }}", "null"),
    ],
)
def test_to_json_gives_compact_json_keeping_non_ascii(source, expected):
    assert render(source, CONTEXT) == expected


def test_whole_objects_and_lists_render_as_json_without_to_json():
    # Python-liquid alone would print a Python repr; Studio users expect JSON.
    assert render("{{ widgets.cancel.parsed }}", CONTEXT) == (
        '{"date":"2025-07-01","dentist":"Dra. Díaz"}'
    )
    assert render("{{ widgets.get-customer.parsed.sites }}", CONTEXT) == (
        '[{"name":"Norte"},{"name":"Sur"}]'
    )
    assert render("{% echo widgets.get-customer.parsed.tags %}", CONTEXT) == '["a","b"]'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "ñ", "b": [1, None, True]}, '{"a":"ñ","b":[1,null,true]}'),
        ("🙂", '"🙂"'),
        (range(1, 4), "[1,2,3]"),
    ],
)
def test_render_json_is_compact_and_keeps_non_ascii(value, expected):
    assert render_json(value) == expected


def test_customer_text_that_looks_like_liquid_is_output_literally():
    context = {
        "trigger": {"message": {"Body": "{{flow.variables.secret}}"}},
        "flow": {"variables": {"secret": "x"}},
    }
    assert render("{{trigger.message.Body}}", context) == "{{flow.variables.secret}}"


def test_customer_tags_are_output_literally_even_through_filters():
    context = {"trigger": {"message": {"Body": "{% for i in (1..99) %}x{% endfor %}"}}}
    source = "{{ trigger.message.Body | strip }} / {{ trigger | to_json }}"
    assert render(source, context) == (
        '{% for i in (1..99) %}x{% endfor %} / {"message":{"Body":'
        '"{% for i in (1..99) %}x{% endfor %}"}}'
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("[{{ 1 | divided_by: 0 }}]", "[]"),
        ("{{ 1 | divided_by: 0 | default: 'n/a' }}", "n/a"),
        ("[{{ 1 | plus: }}]", "[]"),
        ("a{% if '3' > 2 %}b{% endif %}c", "ac"),
        ("a{% break %}c", "ac"),
        ("{% assign r = (1..99999999999999999999999) %}a{{ r.size }}c", "ac"),
    ],
)
def test_runtime_errors_drop_only_their_piece_instead_of_raising(source, expected):
    assert render(source, CONTEXT) == expected


def test_a_source_that_does_not_parse_raises_template_error_saying_where():
    with pytest.raises(TemplateError, match=r"unexpected tag 'frob' \(line 2"):
        render("Hola\n{% frob %}", CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "",
        "plain text",
        "{{ trigger.message.Body }}",
        "{{ trigger | to_json }}",
        "{% if a %}{% elsif b %}{% else %}{% endif %}",
        "{%- for i in (1..3) -%}{{ i }}{%- endfor -%}",
    ],
)
def test_check_syntax_accepts_valid_sources(source):
    assert check_syntax(source) is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{% if x %}never closed", "endif"),
        ("{{ x ", "'}}'"),
        ("{% frob %}", "unexpected tag 'frob' (line 1, column 4)"),
        ("line 1\nline {% for %}", "(line 2, column 9)"),
        ("{{ x | }}", "expected"),
        ("{{ x | plus 1 }}", "(line 1, column 13)"),
        ("{{ x | no_such_filter }}", "unknown filter 'no_such_filter'"),
        ("{{ 'open }}", "line 1"),
        ("{% include 'other' %}", "unexpected tag 'include'"),
        ("x" * (MAX_SOURCE_CHARS + 1), "longer than"),
    ],
)
def test_check_syntax_reports_broken_sources_in_one_line(source, message):
    result = check_syntax(source)
    assert result is not None
    assert message in result
    assert "\n" not in result


def test_parsing_is_cached_per_source():
    source = "{{ flow.variables.count }} cached"
    render(source, CONTEXT)
    hits = liquid._parse.cache_info().hits
    render(source, CONTEXT)
    assert liquid._parse.cache_info().hits == hits + 1


def test_loops_run_up_to_the_iteration_limit():
    source = f"{{% for i in (1..{MAX_LOOP_ITERATIONS}) %}}.{{% endfor %}}"
    assert render(source, CONTEXT) == "." * MAX_LOOP_ITERATIONS


def test_a_loop_left_early_with_break_counts_only_what_ran():
    source = (
        "{% for i in (1..100) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}"
        "{% endfor %}"
    )
    assert render(source, CONTEXT) == "12"


@pytest.mark.parametrize(
    "source",
    [
        f"{{% for i in (1..{MAX_LOOP_ITERATIONS + 1}) %}}{{% endfor %}}",
        "{% for i in (1..4) %}{% for j in (1..16) %}{% endfor %}{% endfor %}",
        "{% tablerow i in (1..20) %}{{ i }}{% endtablerow %}",
    ],
)
def test_a_loop_over_more_iterations_than_the_limit_raises(source):
    with pytest.raises(RenderLimitExceeded, match="loop iterations"):
        render(source, CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in (1..10) %}{% endfor %}{% for j in (1..10) %}{% endfor %}",
        "{% for i in (1..4) %}{% for j in (1..4) %}{% endfor %}{% endfor %}",
    ],
)
def test_the_limit_is_per_loop_as_in_studio(source):
    assert render(source, CONTEXT) == ""


def test_a_nested_loop_bomb_stops_quickly():
    bomb = "{% for a in (1..1000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded, match="loop iterations"):
        render(bomb, CONTEXT)
    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in (1..100000000) reversed %}{% break %}{% endfor %}",
        "{% for i in (1..100000000) offset: 99999990 %}{% break %}{% endfor %}",
        "{% for i in (1..99999999999999999999999999) %}{% endfor %}",
        "{% assign r = (1..100000000) %}{{ r | join: ',' }}",
        "{% assign r = (1..100000000) %}{{ r | reverse | first }}",
    ],
)
def test_huge_ranges_are_refused_before_they_cost_time(source):
    started = time.monotonic()
    with pytest.raises(RenderLimitExceeded):
        render(source, CONTEXT)
    assert time.monotonic() - started < 0.1


def test_output_up_to_the_limit_counts_characters_not_bytes():
    text = "ñ" * MAX_OUTPUT_CHARS  # twice as many UTF-8 bytes
    assert render("{{ t }}", {"t": text}) == text


@pytest.mark.parametrize(
    "source",
    [
        "{{ t }}!",
        "{% for i in (1..2) %}{{ half }}{{ half }}{% endfor %}",
        "{% capture c %}{{ t }}!{% endcapture %}",
    ],
)
def test_output_over_the_limit_raises(source):
    text = "x" * MAX_OUTPUT_CHARS
    context = {"t": text, "half": text[: MAX_OUTPUT_CHARS // 2]}
    with pytest.raises(RenderLimitExceeded, match="output over"):
        render(source, context)


@pytest.mark.parametrize(
    "source",
    [
        "{{ t | append: t }}",
        "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
        "{% assign s = s | replace: 'x', s %}{% assign s = s | replace: 'x', s %}",
    ],
)
def test_filter_results_over_the_limit_raise_even_when_not_output(source):
    context = {"t": "x" * (MAX_OUTPUT_CHARS // 2 + 1)}
    with pytest.raises(RenderLimitExceeded, match="over"):
        render(source, context)


def test_assigned_values_are_bounded_in_total():
    big = "x" * MAX_OUTPUT_CHARS
    source = "".join(f"{{% assign v{i} = big %}}" for i in range(100))
    with pytest.raises(RenderLimitExceeded, match="namespace"):
        render(source, {"big": big})


@pytest.mark.parametrize(
    "source", ["x" * (MAX_SOURCE_CHARS + 1), "{{ a }}" * MAX_SOURCE_CHARS]
)
def test_a_source_over_the_limit_raises_without_rendering(source):
    with pytest.raises(RenderLimitExceeded, match="longer than"):
        render(source, CONTEXT)


class SlowClock:
    """A monotonic clock that advances a quarter second each time it is read."""

    def __init__(self):
        self.now = 0.0
        self.reads = 0

    def __call__(self):
        self.reads += 1
        self.now += 0.25
        return self.now


def test_a_render_past_the_time_limit_stops_midway(monkeypatch):
    clock = SlowClock()
    monkeypatch.setattr(liquid.time, "monotonic", clock)
    source = "{% for i in (1..10) %}{{ i | plus: 1 | minus: 1 }}{% endfor %}"
    with pytest.raises(RenderLimitExceeded, match="seconds"):
        render(source, CONTEXT)
    assert clock.reads < 10  # checked between filter calls, not only at the end


def test_a_render_that_finishes_late_still_raises(monkeypatch):
    monkeypatch.setattr(liquid, "MAX_RENDER_SECONDS", -1.0)
    with pytest.raises(RenderLimitExceeded, match="seconds"):
        render("{{ trigger.message.ProfileName }}", CONTEXT)
