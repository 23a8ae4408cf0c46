"""REDCap export: data dictionary, events, form-event mapping and the records import file."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import replace

import pytest

from pro_app.exports import redcap

from .test_export_fhir import build_dataset, export_records


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def written(write, *args) -> str:
    stream = io.StringIO(newline="")
    write(stream, *args)
    return stream.getvalue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("redcap") / "r.sqlite")


@pytest.fixture(scope="module")
def exported(dataset):
    catalog, found = export_records(dataset, include_partial=True)
    return catalog, found, parse(written(redcap.write_records, found, catalog))


@pytest.fixture(scope="module")
def dictionary(catalog):
    return parse(written(redcap.write_dictionary, catalog))


def choices(field: dict) -> set[str]:
    text = field["Choices, Calculations, OR Slider Labels"]
    return {part.split(",", 1)[0].strip() for part in text.split("|")} if text else set()


def test_dictionary_columns_and_first_fields(dictionary):
    header = list(dictionary[0])
    assert header == list(redcap.DICTIONARY_HEADER) and len(header) == 18
    first, second = dictionary[:2]
    assert (first["Variable / Field Name"], first["Form Name"]) == ("study_code", "participant")
    assert (second["Variable / Field Name"], second["Form Name"]) == ("site", "participant")
    assert choices(second) == {"OUS", "HUS", "STO"}
    names = [f["Variable / Field Name"] for f in dictionary]
    assert len(names) == len(set(names))
    forms = list(dict.fromkeys(f["Form Name"] for f in dictionary))
    assert forms[0] == "participant" and "nrs_weekly" not in forms
    # each form's fields are together
    assert [f["Form Name"] for f in dictionary] == sorted(
        (f["Form Name"] for f in dictionary), key=forms.index
    )
    allowed = {"text", "notes", "radio", "checkbox", "dropdown", "yesno", "calc"}
    assert {f["Field Type"] for f in dictionary} <= allowed - {"calc"}  # no calculated fields


def test_dictionary_types_labels_and_scores(catalog, dictionary):
    fields = {f["Variable / Field Name"]: f for f in dictionary}
    background = catalog.questionnaires["background"]
    assert fields["bg_aggravating"]["Field Type"] == "checkbox"
    assert fields["bg_age"]["Text Validation Type OR Show Slider Number"] == "integer"
    assert fields["bg_pain_start"]["Text Validation Type OR Show Slider Number"] == "date_ymd"
    assert fields["bg_gender"]["Field Label"] == background.item("bg_gender").text.nb
    assert fields["bg_stiffness_duration"]["Branching Logic (Show field only if...)"] == (
        "[bg_morning_stiffness] = '1'"
    )
    assert fields["bg_former_treatment_other"]["Branching Logic (Show field only if...)"] == (
        "([bg_former_treatment(6)] = '1')"
    )
    assert "declined" not in choices(fields["bg_pain_duration"])
    assert "not_applicable" not in choices(fields["odi8"])
    for definition in catalog.questionnaires.values():
        for rule in definition.scores:
            field = fields[rule.id]
            assert field["Field Annotation"] == "@READONLY"
            assert field["Field Label"] == rule.label.nb
            if field["Field Type"] == "text":
                assert field["Text Validation Type OR Show Slider Number"] in ("integer", "number")
    assert fields["odi"]["Text Validation Type OR Show Slider Number"] == "number"
    assert choices(fields["odi_band"]) >= {"minimal", "moderate"}
    assert redcap.branching_not_expressed(catalog) == []


def test_field_names_follow_redcap_rules(catalog, dictionary):
    problems = redcap.field_name_problems(catalog)
    assert problems == [], problems
    pattern = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
    assert all(pattern.match(f["Variable / Field Name"]) for f in dictionary)


def test_events_and_mappings_cover_the_study(catalog):
    study = catalog.study
    events = parse(written(redcap.write_events, study))
    assert [e["unique_event_name"] for e in events] == [f"{t.id}_arm_1" for t in study.timepoints]
    assert [e["event_name"] for e in events] == [t.id for t in study.timepoints]
    assert {e["arm_num"] for e in events} == {"1"}
    rows = parse(written(redcap.write_mappings, study, catalog.questionnaires))
    pairs = {(r["unique_event_name"], r["form"]) for r in rows}
    assert len(pairs) == len(rows) and {r["arm_num"] for r in rows} == {"1"}
    form_of = redcap.forms(catalog)
    expected = {("screening_arm_1", "participant"), ("screening_arm_1", "derived")}
    for t in study.timepoints:
        expected |= {(f"{t.id}_arm_1", form_of[q]) for q in t.questionnaires}
        expected.add((f"{t.id}_arm_1", "assessment"))  # the receipt code, on every event
    assert pairs == expected
    assert ("week1_arm_1", "nrs") in pairs and not any(f == "nrs_weekly" for _, f in pairs)
    forms = {f["Form Name"] for f in parse(written(redcap.write_dictionary, catalog))}
    assert {f for _, f in pairs} <= forms


def test_every_record_column_is_a_dictionary_field(exported, dictionary):
    _, _, rows = exported
    fields = {f["Variable / Field Name"]: f for f in dictionary}
    checkboxes = {n for n, f in fields.items() if f["Field Type"] == "checkbox"}
    forms = {f["Form Name"] for f in dictionary}
    for column in rows[0]:
        if column == "redcap_event_name" or column in fields:
            continue
        if column.endswith("_complete") and column[: -len("_complete")] in forms:
            continue
        item, _, code = column.partition("___")
        assert item in checkboxes and code in choices(fields[item]), column


def test_record_values_and_choice_codes(exported, dictionary):
    catalog, found, rows = exported
    fields = {f["Variable / Field Name"]: f for f in dictionary}
    for row in rows:
        for name, value in row.items():
            field = fields.get(name)
            if not value or field is None:
                continue
            if field["Field Type"] in ("radio", "dropdown"):
                assert value in choices(field), (name, value)
            elif field["Field Type"] == "yesno":
                assert value in ("0", "1")
        for name, value in row.items():
            if "___" in name:
                assert value in ("", "0", "1")
    by_key = {(r["study_code"], r["redcap_event_name"]): r for r in rows}
    assert len(by_key) == len(rows)
    screening = by_key[("BTB-0001", "screening_arm_1")]
    assert screening["site"] == "OUS" and screening["participant_complete"] == "2"
    assert screening["nrs_current"] == "6" and screening["nrs_complete"] == "2"
    assert screening["odi8"] == ""  # not applicable: left empty
    baseline = by_key[("BTB-0001", "baseline_arm_1")]
    assert baseline["site"] == "" and baseline["participant_complete"] == ""
    assert baseline["bg_pain_start"] == "" and baseline["bg_work_load"] == ""  # declined, n/a
    assert baseline["bg_stiffness_duration"] == ""  # hidden by its display condition
    assert [baseline[f"bg_aggravating___{c}"] for c in range(1, 9)] == list("10100000")
    assert baseline["hscl14"] == "" and baseline["hscl25_complete"] == "2"
    assert baseline["odi_complete"] == "0" and baseline["odi1"] == "3"  # partial
    assert baseline["odi"] == ""  # not scored
    assert "bg_aggravating" not in baseline  # a checkbox is only its options
    other = by_key[("BTB-0003", "baseline_arm_1")]
    assert other["bg_pain_start"] == "2020-01-15"
    # BTB-0003 has nothing at screening: a row there holds the site.
    only_site = by_key[("BTB-0003", "screening_arm_1")]
    assert only_site["site"] == "STO" and only_site["participant_complete"] == "2"
    meta = set(redcap.records_layout(catalog).header[:4])
    assert all(v == "" for k, v in only_site.items() if k not in meta)


def test_scores_are_written_unrounded(exported):
    catalog, found, rows = exported
    by_key = {(r["study_code"], r["redcap_event_name"]): r for r in rows}
    for record in found:
        row = by_key[(record.study_code, f"{record.timepoint}_arm_1")]
        for score_id, score in record.scores.items():
            expected = "" if score.value is None else score.value
            if isinstance(expected, bool):
                expected = "1" if expected else "0"
            assert row[score_id] == (expected if isinstance(expected, str) else repr(expected))


def test_nrs_weekly_answers_go_to_the_form_nrs(exported):
    _, found, rows = exported
    weekly = [r for r in found if r.questionnaire == "nrs_weekly"]
    assert weekly
    by_key = {(r["study_code"], r["redcap_event_name"]): r for r in rows}
    for record in weekly:
        row = by_key[(record.study_code, f"{record.timepoint}_arm_1")]
        assert row["nrs_current"] == str(record.items["nrs_current"])
        assert row["nrs_complete"] == ("2" if record.status == "submitted" else "0")
    assert not any(name.startswith("nrs_weekly") for name in rows[0])


def test_records_must_be_sorted_and_one_per_form(exported):
    catalog, found, _ = exported
    with pytest.raises(ValueError, match="sorted"):
        written(redcap.write_records, list(reversed(found)), catalog)
    nrs = next(r for r in found if r.questionnaire == "nrs")
    twice = [nrs, replace(nrs, questionnaire="nrs_weekly")]
    with pytest.raises(ValueError, match="two responses for the form nrs"):
        written(redcap.write_records, twice, catalog)


def test_records_are_deterministic(dataset):
    catalog, found = export_records(dataset, include_partial=True)
    again = export_records(dataset, include_partial=True)[1]
    first = written(redcap.write_records, found, catalog)
    assert first == written(redcap.write_records, again, catalog)
    assert first.startswith("study_code,redcap_event_name,site,participant_complete,")
