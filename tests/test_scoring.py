"""Scoring: the contract's public vectors, every rule and threshold, and a made-up instrument."""

from __future__ import annotations

import pytest
from pytest import approx

from pro_app.domain.answers import DECLINED, NOT_APPLICABLE
from pro_app.domain.derived import derive
from pro_app.domain.scoring import score

from .vectors import H2_VALUES, VECTORS, seq


def score_all(catalog, answers_by_q: dict) -> dict:
    sheets = {q: score(catalog.questionnaires[q], a) for q, a in answers_by_q.items()}
    values = {}
    for sheet in sheets.values():
        values.update(sheet.values())
    values.update({k: s.value for k, s in derive(catalog.study, sheets).items()})
    return values


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_public_vectors(catalog, name):
    answers, expected = VECTORS[name]
    values = score_all(catalog, answers)
    for key, want in expected.items():
        assert values[key] == want, key


def sheet(catalog, qid, answers):
    return score(catalog.questionnaires[qid], answers)


# --- ODI: percent of the maximum for answered sections, at least 8 of 10 -------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0] * 10, 0.0),
        ([5] * 10, 100.0),
        ([1] * 10, 20.0),
        ([2] * 9 + [None], 40.0),
        ([3] * 8 + [None, None], 60.0),
    ],
)
def test_odi_percent(catalog, values, expected):
    assert sheet(catalog, "odi", seq("odi", values)).scores["odi"].value == expected


def test_odi_needs_eight_sections(catalog):
    seven = seq("odi", [1, 1, 1, 1, 1, 1, 1, None, None, None])
    result = sheet(catalog, "odi", seven)
    assert result.scores["odi"].value is None
    assert result.scores["odi"].reason == "7 of 10 items answered; at least 8 needed"
    assert result.scores["odi_band"].value is None
    assert result.scores["odi_band"].reason == "odi is missing"
    eight = seq("odi", [1, 1, 1, 1, 1, 1, 1, 1, None, None])
    assert sheet(catalog, "odi", eight).scores["odi"].value == approx(20.0)


def test_odi_not_relevant_and_declined_count_as_unanswered(catalog):
    answers = seq("odi", [2, 1, 3, 2, 1, 2, 1, None, 2, 1])
    answers["odi8"] = NOT_APPLICABLE
    result = sheet(catalog, "odi", answers)
    assert result.scores["odi"].value == approx(15 / 45 * 100)
    answers["odi9"] = DECLINED
    answers["odi10"] = DECLINED
    result = sheet(catalog, "odi", answers)
    assert result.scores["odi"].value is None
    assert result.scores["odi"].reason == (
        "7 of 10 items answered (2 declined, 1 not applicable); at least 8 needed"
    )


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (10, "minimal"),
        (11, "moderate"),
        (20, "moderate"),
        (21, "severe"),
        (30, "severe"),
        (31, "crippling"),
        (40, "crippling"),
        (41, "bed_bound"),
        (50, "bed_bound"),
    ],
)
def test_odi_bands_at_every_threshold(catalog, total, band):
    # Sum over 10 answered sections: the percentage is 2 x sum, so 10 -> exactly 20.
    values = [5] * (total // 5) + ([total % 5] if total % 5 else [])
    values += [0] * (10 - len(values))
    result = sheet(catalog, "odi", seq("odi", values))
    assert result.scores["odi"].value == total * 2
    assert result.scores["odi_band"].value == band


def test_odi_band_uses_the_unrounded_score(catalog):
    # 9 sections, sum 9: 20.0 exactly -> minimal; sum 10 over 10 sections with odi8 missing
    # gives 10/45 = 22.2 -> moderate (rounding to 22 would not matter; 20.04 would).
    nine = seq("odi", [1] * 7 + [None] + [1, 1])
    assert sheet(catalog, "odi", nine).scores["odi_band"].value == "minimal"
    result = sheet(catalog, "odi", seq("odi", [2, 1, 1, 1, 1, 1, 1, None, 1, 1]))
    assert result.scores["odi"].value == approx(10 / 45 * 100)
    assert result.scores["odi_band"].value == "moderate"


# --- NRS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("qid", ["nrs", "nrs_weekly"])
def test_lbp_mean_needs_all_three(catalog, qid):
    full = {"nrs_current": 0, "nrs_worst": 10, "nrs_usual": 5}
    assert sheet(catalog, qid, full).scores["lbp_mean"].value == 5.0
    for item in full:
        partial = {k: v for k, v in full.items() if k != item}
        result = sheet(catalog, qid, partial).scores["lbp_mean"]
        assert result.value is None
        assert result.reason == "2 of 3 items answered; at least 3 needed"


# --- HSCL-25 ------------------------------------------------------------------------------


def test_hscl_half_rules_at_their_thresholds(catalog):
    anxiety4 = seq("hscl", [2, 2, 2, 2])
    anxiety5 = seq("hscl", [2, 2, 2, 2, 2])
    assert sheet(catalog, "hscl25", anxiety4).scores["hscl_anxiety"].value is None
    assert sheet(catalog, "hscl25", anxiety5).scores["hscl_anxiety"].value == 2.0
    dep7 = seq("hscl", [3] * 7, start=11)
    dep8 = seq("hscl", [3] * 8, start=11)
    result = sheet(catalog, "hscl25", dep7).scores["hscl_depression"]
    assert result.value is None and result.reason.startswith("7 of 15 items answered")
    assert sheet(catalog, "hscl25", dep8).scores["hscl_depression"].value == 3.0
    total12 = {**seq("hscl", [1] * 5), **seq("hscl", [1] * 7, start=11)}
    total13 = {**seq("hscl", [1] * 5), **seq("hscl", [1] * 8, start=11)}
    assert sheet(catalog, "hscl25", total12).scores["hscl_total"].value is None
    assert sheet(catalog, "hscl25", total12).scores["hscl_case"].value is None
    assert sheet(catalog, "hscl25", total13).scores["hscl_total"].value == 1.0


def test_hscl_case_at_exactly_1_75(catalog):
    # 24 answered items summing to 42: total = 1.75 exactly -> case.
    values = [2] * 18 + [1] * 6 + [None]
    result = sheet(catalog, "hscl25", seq("hscl", values))
    assert result.scores["hscl_total"].value == 1.75
    assert result.scores["hscl_case"].value is True
    values = [2] * 17 + [1] * 7 + [None]
    assert sheet(catalog, "hscl25", seq("hscl", values)).scores["hscl_case"].value is False


@pytest.mark.parametrize(("code", "alert"), [(1, False), (2, False), (3, True), (4, True)])
def test_hscl_item_20_alert(catalog, code, alert):
    values = list(H2_VALUES)
    values[19] = code
    result = sheet(catalog, "hscl25", seq("hscl", values))
    assert bool(result.alerts) is alert
    # The alert changes no score: the total is the plain mean.
    assert result.scores["hscl_total"].value == approx((sum(H2_VALUES) - 1 + code) / 25)


def test_hscl_declined_item_20_raises_no_alert(catalog):
    answers = seq("hscl", [1] * 25)
    answers["hscl20"] = DECLINED
    result = sheet(catalog, "hscl25", answers)
    assert result.alerts == ()
    assert result.scores["hscl_depression"].value == 1.0


# --- FABQ ---------------------------------------------------------------------------------


def test_fabq_work_items_not_applicable(catalog):
    answers = seq("fabq", [3, 4, 5, 2, 3] + [NOT_APPLICABLE] * 11)
    result = sheet(catalog, "fabq", answers)
    assert result.scores["fabq_pa"].value == 14
    assert result.scores["fabq_w"].value is None
    assert "7 not applicable" in result.scores["fabq_w"].reason


def test_fabq_subscale_null_if_any_own_item_missing(catalog):
    answers = seq("fabq", [3, 4, 5, 2, 3, 6, 5, 4, 3, 2, 1, 0, 5, 4, 3, 2])
    del answers["fabq3"]
    del answers["fabq1"]  # not scored: no effect
    result = sheet(catalog, "fabq", answers)
    assert result.scores["fabq_pa"].value is None
    assert result.scores["fabq_pa"].reason == "3 of 4 items answered; none may be missing"
    assert result.scores["fabq_w"].value == 20
    answers = seq("fabq", [0] * 16)
    answers["fabq8"] = DECLINED  # not scored
    assert sheet(catalog, "fabq", answers).scores["fabq_w"].value == 0


# --- SHC ----------------------------------------------------------------------------------


def test_shc_missing_item_nulls_its_sums_only(catalog):
    answers = seq("shc", [2] * 29)
    del answers["shc5"]  # neck pain: musculoskeletal
    result = sheet(catalog, "shc", answers)
    for name in ("shc_msk", "shc_total", "shc_count"):
        assert result.scores[name].value is None, name
    assert result.scores["shc_pn"].value == 14
    assert result.scores["shc_flu"].value == 4


def test_shc_count_counts_complaints_above_zero(catalog):
    values = [0] * 29
    values[0] = 1
    values[6] = 3
    answers = seq("shc", values)
    answers.update({"shc1_days": 4, "shc7_days": 30})
    result = sheet(catalog, "shc", answers)
    assert result.scores["shc_count"].value == 2
    assert result.scores["shc_total"].value == 4
    assert result.scores["shc_msk"].value == 3


# --- RMDQ ---------------------------------------------------------------------------------


def test_rmdq_prorates_one_or_two_missing(catalog):
    values = [1 if n % 2 and n <= 19 else 0 for n in range(1, 25)]
    one = seq("rmdq", values[:-1] + [None])  # 23 answered, 10 yes
    assert sheet(catalog, "rmdq", one).scores["rmdq"].value == approx(10 * 24 / 23)
    two = seq("rmdq", values[:-2] + [None, None])  # 22 answered, 10 yes
    assert sheet(catalog, "rmdq", two).scores["rmdq"].value == approx(10 * 24 / 22)
    three = seq("rmdq", values[:-3] + [None, None, None])
    result = sheet(catalog, "rmdq", three).scores["rmdq"]
    assert result.value is None
    assert result.reason == "21 of 24 items answered; at most 2 missing"


def test_rmdq_all_yes_and_all_no(catalog):
    assert sheet(catalog, "rmdq", seq("rmdq", [1] * 24)).scores["rmdq"].value == 24
    assert sheet(catalog, "rmdq", seq("rmdq", [0] * 24)).scores["rmdq"].value == 0


# --- Nothing answered -----------------------------------------------------------------------


@pytest.mark.parametrize("qid", ["odi", "nrs", "nrs_weekly", "hscl25", "fabq", "shc", "rmdq"])
def test_all_missing_gives_null_with_reasons(catalog, qid):
    result = score(catalog.questionnaires[qid], {})
    assert result.scores
    for name, one in result.scores.items():
        assert one.value is None, name
        assert one.reason, name


def test_background_has_no_scores(catalog):
    assert score(catalog.questionnaires["background"], {}).scores == {}


# --- eligible_pro ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nrs_values", "odi_values", "expected"),
    [
        ((5, 5, 5), None, True),  # lbp_mean exactly 5, no ODI
        ((5, 5, 4), None, False),  # lbp_mean 4.67, no ODI
        (None, [2, 2, 2, 2, 2, 2, 1, 1, 1, 0], True),  # ODI 30, no NRS
        (None, [2, 2, 1, 1, 1, 1, 1, 1, 1, 1], False),  # ODI 24, no NRS
        ((4, 4, 4), [2, 1, 1, 1, 1, 1, 1, 1, 1, 0], False),  # 4 and 20
        ((4, 4, 4), [2, 2, 2, 1, 1, 1, 1, 1, 1, 1], True),  # 4 and 26
        ((4, 4, 4), [2, 1, 1, 1, 1, 1, 1, 2, None, None], True),  # 4 and exactly 25 (10/40)
        ((5, 5, 5), [0] * 10, True),  # 5 and 0
        ((6, 6, None), [1, 1, 1, 1, 1, None, None, None, None, None], None),  # both null
        ((6, 6, None), [3] * 10, True),  # NRS null, ODI 60 decides
        ((9, 9, None), [0] * 10, False),  # NRS null, ODI 0 decides
    ],
)
def test_eligible_pro(catalog, nrs_values, odi_values, expected):
    answers = {}
    if nrs_values is not None:
        names = ("nrs_current", "nrs_worst", "nrs_usual")
        answers["nrs"] = {k: v for k, v in zip(names, nrs_values, strict=True) if v is not None}
    if odi_values is not None:
        answers["odi"] = seq("odi", odi_values)
    assert score_all(catalog, answers)["eligible_pro"] is expected


def test_eligible_pro_reason_when_both_missing(catalog):
    sheets = {
        "nrs": score(catalog.questionnaires["nrs"], {}),
        "odi": score(catalog.questionnaires["odi"], {}),
    }
    result = derive(catalog.study, sheets)["eligible_pro"]
    assert result.value is None
    assert result.reason == "nrs.lbp_mean and odi.odi missing"


def test_derived_values_need_one_of_their_questionnaires(catalog):
    sheets = {"rmdq": score(catalog.questionnaires["rmdq"], seq("rmdq", [0] * 24))}
    assert derive(catalog.study, sheets) == {}
