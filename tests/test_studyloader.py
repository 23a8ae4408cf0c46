"""The study protocol loader: located problems, and study-level scoring settings."""

from __future__ import annotations

import pytest

from pro_app.domain.errors import DefinitionError
from pro_app.domain.scoring import score
from pro_app.domain.studyloader import apply_overrides, load_study_text
from pro_app.settings import ROOT

from .vectors import seq

STUDY_TEXT = (ROOT / "studies" / "backtobasic.yaml").read_text(encoding="utf-8")


def problems(text: str, catalog) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_study_text(text, catalog.questionnaires, "study.yaml")
    return [str(p) for p in caught.value.problems]


def test_shipped_study_loads(catalog):
    study = load_study_text(STUDY_TEXT, catalog.questionnaires, "study.yaml")
    assert study.id == "backtobasic" and study.registration == "NCT03704363"
    assert study.content_hash


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "questionnaires: [nrs, odi]",
            "questionnaires: [nrs, odx]",
            "timepoint screening: key 'questionnaires[1]': unknown questionnaire 'odx'",
        ),
        ("{score: odi.odi, op: ge", "{score: odi.odx, op: ge", "'odi' has no score 'odx'"),
        (
            "{score: odi.odi, op: ge",
            "{score: rmdq.rmdq, op: ge",
            "'rmdq' is not asked at timepoint 'screening'",
        ),
        (
            "code_pattern: '^BTB-\\d{4}$'",
            "code_pattern: '^BTB-(\\d{4}$'",
            "code_pattern is not a valid regular expression",
        ),
        ("timezone: Europe/Oslo", "timezone: Europe/Olso", "unknown time zone 'Europe/Olso'"),
        ("  - id: week2\n", "  - id: week1\n", "duplicate timepoint id 'week1'"),
        ("  - id: OUS\n", "  - id: Oslo\n", "'Oslo' is not a valid site id"),
        (
            "    ends_before_day0: true\n    can_be_late: false\n    questionnaires: [nrs, odi]",
            "    can_be_late: false\n    questionnaires: [nrs, odi]\n    ends_befor_day0: true",
            "unknown key 'ends_befor_day0'",
        ),
        (
            "scoring: {}",
            "scoring: {odi: {odi: {min_answered: 11}}}",
            "min_answered 11 is more than the 10 items of 'odi'",
        ),
        (
            "scoring: {}",
            "scoring: {odi: {odi: {prorate: true}}}",
            "only sum and count scores can be prorated",
        ),
        (
            "scoring: {}",
            "scoring: {odi: {odi_band: {min_answered: 1}}}",
            "'odi' has no item-based score 'odi_band'",
        ),
    ],
)
def test_located_problems(catalog, old, new, expected):
    assert old in STUDY_TEXT
    found = problems(STUDY_TEXT.replace(old, new, 1), catalog)
    assert any(expected in message for message in found), found
    assert all(message.startswith("study.yaml:") for message in found)


def test_study_scoring_settings_change_the_rule_and_the_hash(catalog):
    text = STUDY_TEXT.replace("scoring: {}", "scoring: {odi: {odi: {min_answered: 7}}}")
    study = load_study_text(text, catalog.questionnaires, "study.yaml")
    effective = apply_overrides(catalog.questionnaires, study)
    seven = seq("odi", [1, 1, 1, 1, 1, 1, 1, None, None, None])
    assert score(catalog.questionnaires["odi"], seven).scores["odi"].value is None
    assert score(effective["odi"], seven).scores["odi"].value == 20.0
    assert effective["odi"].content_hash != catalog.questionnaires["odi"].content_hash
    assert effective["nrs"] is catalog.questionnaires["nrs"]
