"""Every scoring method on a made-up instrument defined inline, and property-based checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest import approx

from pro_app.domain.answers import DECLINED, NOT_APPLICABLE
from pro_app.domain.checks import rule_range
from pro_app.domain.model import ITEM_RULES, MultipleChoice, SumRule
from pro_app.domain.paths import page_path, visible_items
from pro_app.domain.scoring import score

from .conftest import QUESTIONNAIRES, definition

TOY = definition(
    """
    id: toy
    version: "0.1"
    title: {nb: Prøve, en: Trial}
    instructions: {nb: Svar., en: Answer.}
    licence: {owner: Us, agreement_required: false, wording_note: Made up for tests.}
    option_sets:
      level:
        - {code: 1, label: {nb: Lite, en: Little}}
        - {code: 2, label: {nb: Noe, en: Some}}
        - {code: 3, label: {nb: Mye, en: Much}}
    items:
      - {id: a1, type: single_choice, options: level, text: {nb: A1, en: A1}, skippable: true}
      - {id: a2, type: single_choice, options: level, text: {nb: A2, en: A2}}
      - {id: a3, type: single_choice, options: level, text: {nb: A3, en: A3}}
      - id: a4
        type: single_choice
        options: level
        text: {nb: A4, en: A4}
        not_applicable: {nb: Gjelder ikke, en: Does not apply}
      - {id: b1, type: scale, min_label: {nb: Ingen, en: None}, max_label: {nb: Mest, en: Most},
         text: {nb: B1, en: B1}}
      - {id: b2, type: yes_no, text: {nb: B2, en: B2}}
      - id: b2_more
        type: integer
        min: 0
        max: 9
        text: {nb: "Hvor mange?", en: "How many?"}
        show_if: {item: b2, op: eq, value: 1}
      - {id: c1, type: multiple_choice, text: {nb: C1, en: C1},
         options: level}
      - {id: c2, type: text, text: {nb: C2, en: C2}, show_if: {item: c1, op: in, value: [3]}}
    pages:
      - items: [a1..a4]
      - items: [b1, b2]
      - items: [b2_more, c1]
      - items: [c2]
    scores:
      - {id: a_sum, method: sum, items: [a1..a4], label: {nb: S, en: S}}
      - {id: a_pro, method: sum, items: [a1..a4], max_missing: 1, prorate: true,
         label: {nb: S, en: S}}
      - {id: a_mean, method: mean, items: [a1..a4], min_answered: 2, label: {nb: M, en: M}}
      - {id: a_pct, method: percent_of_max, items: [a1..a4], min_answered: 3,
         label: {nb: P, en: P}}
      - {id: a_much, method: count, items: [a1..a4], where: {op: eq, value: 3},
         max_missing: 1, label: {nb: C, en: C}}
      - {id: more, method: sum, items: [b2_more], label: {nb: X, en: X}}
      - id: a_band
        method: bands
        source: a_mean
        label: {nb: B, en: B}
        bands:
          - {upto: 1.5, value: low, label: {nb: Lav, en: Low}}
          - {upto: 2.5, value: mid, label: {nb: Middels, en: Middle}}
          - {value: high, label: {nb: Høy, en: High}}
      - {id: a_high, method: cutoff, source: a_pct, op: gt, value: 50, label: {nb: H, en: H}}
    alerts:
      - id: much_pain
        when: {all: [{item: b1, op: ge, value: 9}, {item: a2, op: eq, value: 3}]}
        message: {nb: Følg opp., en: Follow up.}
    """,
    "toy.yaml",
)


def values(answers):
    return score(TOY, answers).values()


def test_every_method_on_complete_answers():
    got = values({"a1": 1, "a2": 2, "a3": 3, "a4": 3, "b1": 9, "b2": 0})
    assert got["a_sum"] == 9 and isinstance(got["a_sum"], int)
    assert got["a_pro"] == 9
    assert got["a_mean"] == 2.25
    assert got["a_pct"] == approx((0 + 1 + 2 + 2) * 100 / 8)
    assert got["a_much"] == 2
    assert got["a_band"] == "mid"
    assert got["a_high"] is True


def test_missing_declined_and_not_applicable():
    answers = {"a1": DECLINED, "a2": 2, "a3": 3, "a4": NOT_APPLICABLE}
    result = score(TOY, answers)
    got = result.values()
    assert got["a_sum"] is None
    assert result.scores["a_sum"].reason == (
        "2 of 4 items answered (1 declined, 1 not applicable); none may be missing"
    )
    assert got["a_pro"] is None  # two missing, one allowed
    assert got["a_mean"] == 2.5
    assert got["a_band"] == "mid"  # 2.5 is inside 'upto: 2.5'
    assert got["a_pct"] is None and got["a_high"] is None
    assert result.scores["a_high"].reason == "a_pct is missing"


def test_proration_and_count_with_one_missing():
    got = values({"a1": 3, "a2": 3, "a3": 1})
    assert got["a_pro"] == approx(7 * 4 / 3)
    assert got["a_much"] == 2  # counts are prorated only when asked
    assert got["a_pct"] == approx(4 * 100 / 6)


def test_hidden_items_are_not_counted_and_their_answers_ignored():
    # b2 = no hides b2_more: its stale answer is ignored and the score 'more' has no items.
    result = score(TOY, {"b2": 0, "b2_more": 4})
    assert result.scores["more"].value is None
    assert result.scores["more"].reason == "none of its items were asked"
    assert score(TOY, {"b2": 1, "b2_more": 4}).scores["more"].value == 4


def test_paths_follow_display_conditions():
    assert "b2_more" not in visible_items(TOY, {"b2": 0})
    assert "b2_more" in visible_items(TOY, {"b2": 1})
    assert len(page_path(TOY, {"b2": 0, "c1": [1]})) == 3  # page with only c2 is skipped
    assert len(page_path(TOY, {"b2": 0, "c1": [1, 3]})) == 4


def test_alert_with_all_condition():
    assert score(TOY, {"b1": 9, "a2": 3}).alerts == ("much_pain",)
    assert score(TOY, {"b1": 9, "a2": 2}).alerts == ()
    assert score(TOY, {"b1": DECLINED, "a2": 3}).alerts == ()


def test_scores_record_the_definition():
    result = score(TOY, {})
    assert result.questionnaire == "toy" and result.version == "0.1"
    assert result.content_hash == TOY.content_hash


# --- Properties over every shipped definition ------------------------------------------------

SHIPPED = {p.stem: p for p in sorted(QUESTIONNAIRES.glob("*.yaml"))}


def _answer_strategy(item):
    options = [st.none(), st.just(DECLINED), st.just(NOT_APPLICABLE)]
    if isinstance(item, MultipleChoice):
        options.append(st.lists(st.sampled_from(item.codes()), unique=True, min_size=1))
    elif item.numeric:
        low, high = item.code_range()
        codes = item.codes() or range(low, high + 1)
        options.append(st.sampled_from(list(codes)))
        options.append(st.sampled_from(list(codes)))  # answered more often than not
    else:
        return st.none()
    return st.one_of(options)


@pytest.fixture(scope="module")
def shipped(catalog):
    return catalog.questionnaires


@pytest.mark.parametrize("qid", sorted(set(SHIPPED) - {"background"}))
@given(data=st.data())
def test_scores_stay_in_range_and_respect_thresholds(shipped, qid, data):
    q = shipped[qid]
    answers = {i.id: data.draw(_answer_strategy(i), label=i.id) for i in q.items}
    result = score(q, answers)
    items = q.items_by_id
    for rule in q.scores:
        value = result.scores[rule.id].value
        if not isinstance(rule, ITEM_RULES):
            continue
        answered = [i for i in rule.items if isinstance(answers.get(i), int)]
        if value is None:
            assert result.scores[rule.id].reason
            continue
        low, high = rule_range(rule, items, {})
        assert low <= value <= high, (rule.id, value)
        if rule.min_answered is not None:
            assert len(answered) >= rule.min_answered
        missing = len(rule.items) - len(answered)
        limit = (
            rule.max_missing
            if rule.max_missing is not None
            else (0 if rule.min_answered is None else len(rule.items))
        )
        assert missing <= limit


@pytest.mark.parametrize("qid", ["fabq", "shc", "hscl25", "rmdq"])
@given(data=st.data())
def test_permuting_answers_within_a_sum_keeps_the_sum(shipped, qid, data):
    q = shipped[qid]
    for rule in q.scores:
        if not isinstance(rule, SumRule):
            continue
        codes = q.item(rule.items[0]).codes()
        drawn = data.draw(
            st.lists(st.sampled_from(codes), min_size=len(rule.items), max_size=len(rule.items))
        )
        shuffled = data.draw(st.permutations(drawn))
        first = score(q, dict(zip(rule.items, drawn, strict=True))).scores[rule.id].value
        second = score(q, dict(zip(rule.items, shuffled, strict=True))).scores[rule.id].value
        assert first == second == sum(drawn)


def test_answered_means_a_real_answer():
    from pro_app.domain.conditions import compare

    assert compare("answered", 0, None) and compare("answered", "text", None)
    assert not compare("answered", DECLINED, None)
    assert not compare("answered", NOT_APPLICABLE, None)
    assert not compare("answered", None, None) and not compare("answered", [], None)
