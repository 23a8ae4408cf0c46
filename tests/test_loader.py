"""The strict loader: located, fixable messages for every kind of broken definition."""

from __future__ import annotations

import textwrap

import pydantic
import pytest

from pro_app.domain.errors import DefinitionError
from pro_app.domain.loader import load_questionnaire_file, load_questionnaire_text

HEADER = """\
id: toy
version: "1"
title: {nb: Leketøy, en: Toy}
instructions: {nb: Svar på alt., en: Answer everything.}
licence: {owner: Us, agreement_required: false, wording_note: Our own words.}
"""

GOOD = (
    HEADER
    + """\
option_sets:
  often:
    - {code: 0, label: {nb: Aldri, en: Never}}
    - {code: 1, label: {nb: Noen ganger, en: Sometimes}}
    - {code: 2, label: {nb: Ofte, en: Often}}
items:
  - {id: t1, type: single_choice, options: often, text: {nb: En, en: One}}
  - {id: t2, type: single_choice, options: often, text: {nb: To, en: Two}}
  - {id: t3, type: yes_no, text: {nb: Tre, en: Three}}
  - id: t3_more
    type: text
    text: {nb: Fortell mer, en: Tell more}
    show_if: {item: t3, op: eq, value: 1}
pages:
  - items: [t1..t2]
  - items: [t3]
  - items: [t3_more]
scores:
  - {id: total, method: sum, items: [t1..t2], label: {nb: Sum, en: Sum}}
  - id: level
    method: bands
    source: total
    label: {nb: Nivå, en: Level}
    bands:
      - {upto: 1, value: low, label: {nb: Lav, en: Low}}
      - {value: high, label: {nb: Høy, en: High}}
"""
)


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_questionnaire_text(textwrap.dedent(text), "toy.yaml")
    return [str(p) for p in caught.value.problems]


def test_good_definition_loads_with_ranges_and_option_sets():
    q = load_questionnaire_text(GOOD, "toy.yaml")
    assert [i.id for i in q.items] == ["t1", "t2", "t3", "t3_more"]
    assert q.item("t1").codes() == (0, 1, 2)
    assert q.pages[0].items == ("t1", "t2")
    assert q.scores_by_id["total"].items == ("t1", "t2")
    assert len(q.content_hash) == 64


def test_definition_is_immutable():
    q = load_questionnaire_text(GOOD, "toy.yaml")
    with pytest.raises(pydantic.ValidationError):
        q.items[0].skippable = True
    assert isinstance(q.items, tuple)


def test_content_hash_ignores_comments_and_layout_but_not_content():
    base = load_questionnaire_text(GOOD, "toy.yaml").content_hash
    commented = "# a comment\n" + GOOD.replace("items:\n", "items:   # the items\n", 1)
    assert load_questionnaire_text(commented, "toy.yaml").content_hash == base
    changed = GOOD.replace("{nb: En, en: One}", "{nb: Én, en: One}")
    assert load_questionnaire_text(changed, "toy.yaml").content_hash != base


def test_yes_and_no_are_text_not_booleans():
    text = GOOD.replace("{nb: Aldri, en: Never}", "{nb: Nei, en: No}")
    q = load_questionnaire_text(text, "toy.yaml")
    assert q.item("t1").options[0].label.en == "No"


def test_unknown_key_names_file_line_item_key_and_a_fix():
    text = GOOD.replace(
        "{id: t2, type: single_choice,", "{id: t2, type: single_choice, skipable: true,"
    )
    (message,) = problems(text)
    assert message.startswith("toy.yaml:13: item t2: key 'skipable': unknown key 'skipable'")
    assert "did you mean 'skippable'?" in message


def test_unknown_top_level_key():
    (message,) = problems(GOOD + "scoring: {}\n")
    assert "key 'scoring': unknown key 'scoring'" in message
    assert "Allowed keys here:" in message and "scores" in message


def test_duplicate_item_id():
    text = GOOD.replace("{id: t2,", "{id: t1,")
    found = problems(text)
    assert any("toy.yaml:13: item t1: key 'id': duplicate item id 't1'" in m for m in found)


def test_duplicate_and_missing_option_codes():
    text = (
        HEADER
        + """\
items:
  - id: a
    type: single_choice
    text: {nb: A, en: A}
    options:
      - {code: 1, label: {nb: x, en: x}}
      - {code: 1, label: {nb: y, en: y}}
      - {label: {nb: z, en: z}}
"""
    )
    found = problems(text)
    assert any(
        "toy.yaml:12: item a: key 'options[1].code': duplicate option code 1" in m for m in found
    )
    assert any(
        "toy.yaml:13: item a: key 'options[2].code': required key 'code' is missing" in m
        for m in found
    )


def test_rule_naming_missing_or_non_numeric_item():
    text = GOOD.replace(
        "items: [t1..t2], label: {nb: Sum", "items: [t1, t9, t3_more], label: {nb: Sum"
    )
    found = problems(text)
    assert any("score total: key 'items[1]': the rule names unknown item 't9'" in m for m in found)
    assert any("item 't3_more' is a text item and has no numeric value" in m for m in found)


def test_missing_translation():
    text = GOOD.replace("{nb: To, en: Two}", "{nb: To}")
    (message,) = problems(text)
    assert "toy.yaml:13: item t2: key 'text.en': missing translation 'en'" in message
    assert "add the English text under 'en'" in message


def test_unknown_language():
    text = GOOD.replace("{nb: To, en: Two}", "{nb: To, en: Two, sv: Två}")
    (message,) = problems(text)
    assert "unknown language 'sv'" in message


def test_band_that_does_not_cover_the_range():
    text = GOOD.replace("- {value: high, label", "- {upto: 3, value: high, label")
    (message,) = problems(text)
    assert "score level: key 'bands': the bands stop at 3 but 'total' can reach 4" in message


def test_bands_out_of_order():
    text = GOOD.replace("{upto: 1, value: low", "{upto: 5, value: low").replace(
        "- {value: high, label", "- {upto: 2, value: high, label"
    )
    assert any("is not above the band before" in m for m in problems(text))


def test_display_condition_on_later_or_same_page_or_unknown_item():
    later = GOOD.replace(
        "pages:\n  - items: [t1..t2]\n  - items: [t3]\n  - items: [t3_more]\n",
        "pages:\n  - items: [t1..t2]\n  - items: [t3, t3_more]\n",
    )
    (message,) = problems(later)
    assert (
        "item t3_more: key 'show_if': the display condition refers to 't3', which is on "
        "the same page" in message
    )
    unknown = GOOD.replace("{item: t3, op: eq, value: 1}", "{item: t4, op: eq, value: 1}")
    (message,) = problems(unknown)
    assert "the condition names unknown item 't4'" in message


def test_condition_on_an_item_that_comes_later():
    text = GOOD.replace(
        "  - {id: t1, type: single_choice, options: often, text: {nb: En, en: One}}",
        "  - {id: t1, type: single_choice, options: often, text: {nb: En, en: One},"
        " show_if: {item: t3, op: eq, value: 1}}",
    )
    assert any("refers to 't3', which is on a later page" in m for m in problems(text))


def test_every_problem_in_a_file_is_reported_at_once():
    text = (
        GOOD.replace("{id: t2, type: single_choice,", "{id: t2, type: single_choice, colour: red,")
        .replace("{nb: Tre, en: Three}", "{nb: Tre}")
        .replace("items: [t1..t2], label: {nb: Sum", "items: [t1, t7], label: {nb: Sum")
        .replace("{item: t3, op: eq", "{item: nope, op: eq")
    )
    found = problems(text)
    assert len(found) == 4, found
    joined = "\n".join(found)
    for expected in (
        "unknown key 'colour'",
        "missing translation 'en'",
        "unknown item 't7'",
        "unknown item 'nope'",
    ):
        assert expected in joined


def test_unknown_item_type_and_option_set():
    text = GOOD.replace("type: yes_no", "type: slider").replace(
        "options: often, text: {nb: To", "options: oftn, text: {nb: To"
    )
    found = "\n".join(problems(text))
    assert "item t3: unknown type 'slider'" in found
    assert "unknown option set 'oftn'" in found


def test_yaml_syntax_error_has_a_line():
    (message,) = problems(HEADER + "items:\n  - {id: a, type: text\n")
    assert message.startswith("toy.yaml:") and "not valid YAML" in message


def test_duplicate_yaml_key():
    (message,) = problems(GOOD + "version: '2'\n")
    assert "key 'version' appears twice" in message


def test_bad_range():
    text = GOOD.replace("[t1..t2], label: {nb: Sum", "[t1..x2], label: {nb: Sum")
    assert any("range 't1..x2' is not of the form" in m for m in problems(text))


def test_rule_limits_must_fit_the_items():
    text = GOOD.replace(
        "items: [t1..t2], label: {nb: Sum", "items: [t1..t2], min_answered: 3, label: {nb: Sum"
    )
    assert any("min_answered 3 is more than the 2 items" in m for m in problems(text))


def test_file_name_must_match_id(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_questionnaire_file(path)
    assert "differs from the file name 'other.yaml'" in str(caught.value)


def test_alert_that_can_never_fire():
    text = (
        GOOD
        + """\
alerts:
  - id: never
    when: {item: t1, op: ge, value: 9}
    message: {nb: Aldri, en: Never}
"""
    )
    (message,) = problems(text)
    assert "alert never: key 'when': the condition on 't1' can never hold: 'ge 9'" in message


def test_condition_values_must_be_codes_and_ops_must_fit():
    text = GOOD.replace("{item: t3, op: eq, value: 1}", "{item: t3, op: eq, value: 7}")
    (message,) = problems(text)
    assert "uses [7], which is not among the item's codes [1, 0]" in message
    text = GOOD.replace("{item: t3, op: eq, value: 1}", "{item: t3, op: eq, value: [1]}")
    assert "use 'in' or 'not_in' for a list" in problems(text)[0]
    text = GOOD.replace("{item: t3, op: eq, value: 1}", "{item: t3, op: eq, value: '1'}")
    assert "Input should be a valid integer" in "\n".join(problems(text))


def test_cutoff_outside_the_source_range():
    text = (
        GOOD
        + """\
  - {id: high, method: cutoff, source: total, op: ge, value: 17.5, label: {nb: H, en: H}}
"""
    )
    (message,) = problems(text)
    assert "the cut-off 17.5 is outside the range of 'total' (0-4)" in message


def test_option_codes_are_numbers_not_text():
    text = GOOD.replace("{code: 2, label: {nb: Ofte", "{code: '2', label: {nb: Ofte")
    (message,) = problems(text)
    assert message.startswith("toy.yaml:10: option set often: key '[2].code': Input should be a")
    assert "(got '2')" in message


def test_a_broken_option_set_is_reported_once():
    text = GOOD.replace("{code: 2, label: {nb: Ofte, en: Often}}", "{code: 2, label: {nb: Ofte}}")
    (message,) = problems(text)
    assert "option set often" in message and "missing translation 'en'" in message


def test_comma_in_unquoted_text_gets_a_hint():
    text = GOOD.replace("{nb: To, en: Two}", "{nb: To, en: Two, or three}")
    (message,) = problems(text)
    assert "unknown language 'or three'" in message and "put the whole text in quotes" in message


def test_empty_sections():
    no_scores = GOOD.split("scores:\n")[0] + "scores:\nalerts:\n"
    assert load_questionnaire_text(no_scores, "toy.yaml").scores == ()
    (message,) = problems(
        GOOD.replace(
            "pages:\n  - items: [t1..t2]\n  - items: [t3]\n  - items: [t3_more]\n", "pages: []\n"
        )
    )
    assert "'pages' is empty" in message
    (message,) = problems(HEADER + "items:\n")
    assert "'items' is empty" in message


def test_booleans_must_be_true_or_false():
    (message,) = problems(
        GOOD.replace(
            "{id: t2, type: single_choice,", "{id: t2, skippable: yes, type: single_choice,"
        )
    )
    assert "item t2: key 'skippable': Input should be a valid boolean (got 'yes')" in message


def test_numbers_follow_yaml_1_2():
    from pro_app.domain.yamlsource import parse_yaml

    data = parse_yaml("a: 21:00\nb: 012\nc: 0x1f\nd: 1.5\ne: no\n").data
    assert data == {"a": "21:00", "b": 12, "c": 31, "d": 1.5, "e": "no"}


def test_key_of_a_text_item_is_not_confused_with_its_type():
    (message,) = problems(GOOD.replace("    type: text\n", "    type: text\n    max_length: 0\n"))
    assert "item t3_more: key 'max_length':" in message


def test_count_where_needs_a_list_only_for_in():
    text = (
        GOOD
        + """\
  - {id: c, method: count, items: [t1], where: {op: in, value: 2}, label: {nb: C, en: C}}
"""
    )
    assert "use a list of codes with 'in'" in problems(text)[0]


def test_max_selected_and_duplicate_alerts():
    text = (
        HEADER
        + """\
items:
  - id: m
    type: multiple_choice
    max_selected: 3
    text: {nb: M, en: M}
    options:
      - {code: 1, label: {nb: x, en: x}}
      - {code: 2, label: {nb: y, en: y}}
alerts:
  - {id: a, when: {item: m, op: in, value: [1]}, message: {nb: A, en: A}}
  - {id: a, when: {item: m, op: in, value: [2]}, message: {nb: A, en: A}}
"""
    )
    found = "\n".join(problems(text))
    assert "max_selected 3 is more than the 2 options" in found
    assert "alert a: key 'id': duplicate alert id" in found
