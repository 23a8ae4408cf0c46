"""FHIR export: Questionnaires and QuestionnaireResponses, read back with fhir.resources R4B."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.domain.answers import DECLINED, NOT_APPLICABLE
from pro_app.exports import fhir
from pro_app.exports.model import Filters
from pro_app.exports.source import records

from .factories import answer, complete, enrol, make_app
from .test_exports import OTHER_TEXT

BASE = "https://pro.example.no/"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def build_dataset(path):
    """Submitted, partial, declined, not-applicable and hidden answers; both languages."""
    app = make_app(path)
    with app.app_context():
        q = catalog_for(app).questionnaires
    enrol(app, "BTB-0001", site="OUS")
    enrol(app, "BTB-0002", site="HUS", language="en")
    enrol(app, "BTB-0003", site="STO")
    answer(app, "BTB-0001", "screening", "nrs", {"nrs_current": 6, "nrs_worst": 8, "nrs_usual": 5})
    odi = {f"odi{n}": v for n, v in enumerate((2, 1, 3, 2, 1, 2, 1, 0, 2, 1), 1)}
    answer(
        app, "BTB-0001", "screening", "odi", complete(q["odi"], odi | {"odi8": "not_applicable"})
    )
    first = {"bg_morning_stiffness": 1, "bg_stiffness_duration": 2}
    background = {
        "bg_aggravating": [1, 3],
        "bg_pain_start": "declined",
        "bg_morning_stiffness": 0,  # hides bg_stiffness_duration
        "bg_former_treatment": [6],
        "bg_former_treatment_other": OTHER_TEXT,
        "bg_work_load": "not_applicable",
    }
    answer(app, "BTB-0001", "baseline", "background", first, complete(q["background"], background))
    answer(app, "BTB-0001", "baseline", "hscl25", complete(q["hscl25"], {"hscl14": "declined"}))
    answer(app, "BTB-0001", "baseline", "odi", {"odi1": 3, "odi2": 2}, done=False)  # partial
    answer(app, "BTB-0002", "screening", "nrs", {"nrs_current": 2, "nrs_worst": 9, "nrs_usual": 4})
    answer(app, "BTB-0002", "week1", "nrs_weekly", {"nrs_current": 1, "nrs_worst": 2}, done=False)
    answer(app, "BTB-0003", "baseline", "background", complete(q["background"], {}))
    answer(app, "BTB-0003", "baseline", "shc", complete(q["shc"], {}))
    return app


def export_records(app, **filters):
    with app.app_context():
        return catalog_for(app), list(records(get_db(), catalog_for(app), Filters(**filters)))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("fhir") / "f.sqlite")


@pytest.fixture(scope="module")
def exported(dataset):
    catalog, found = export_records(dataset, include_partial=True)
    return catalog, found, fhir.responses_bundle(found, catalog, BASE)


def roundtrip(text: str) -> dict:
    return json.loads(text)


def test_questionnaires_validate_with_r4b(catalog):
    bundle = roundtrip(fhir.dumps(fhir.questionnaires_bundle(catalog, BASE)))
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    ids = [e["resource"]["url"].rsplit("/", 1)[1] for e in bundle["entry"]]
    assert sorted(ids) == sorted(catalog.questionnaires)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        model = Questionnaire.model_validate(resource)
        definition = catalog.questionnaires[ids[bundle["entry"].index(entry)]]
        assert model.url == f"https://pro.example.no/fhir/Questionnaire/{definition.id}"
        assert model.version == definition.version
        assert model.title == definition.title.nb
        link_ids = [i["linkId"] for i in resource["item"]]
        expected = [i.id for i in definition.items] + [s.id for s in definition.scores]
        assert link_ids == expected and len(set(link_ids)) == len(link_ids)
        assert all(i.get("readOnly") for i in resource["item"][len(definition.items) :])


def test_question_types_options_and_translations(catalog):
    bundle = fhir.questionnaires_bundle(catalog, BASE)
    by_url = {e["resource"]["url"].rsplit("/", 1)[1]: e["resource"] for e in bundle["entry"]}
    items = {i["linkId"]: i for i in by_url["background"]["item"]}
    assert items["bg_age"]["type"] == "integer" and items["bg_pain_start"]["type"] == "date"
    assert items["bg_aggravating"]["type"] == "choice" and items["bg_aggravating"]["repeats"]
    assert items["bg_former_treatment_other"]["type"] in ("string", "text")
    gender = catalog.questionnaires["background"].item("bg_gender")
    options = [o["valueCoding"] for o in items["bg_gender"]["answerOption"]]
    assert [(c["code"], c["display"]) for c in options] == [
        (str(o.code), o.label.nb) for o in gender.options
    ]
    english = options[0]["_display"]["extension"][0]["extension"]
    assert {"url": "content", "valueString": gender.options[0].label.en} in english
    assert items["bg_pain_start"]["required"] is False  # skippable
    rmdq = catalog.questionnaires["rmdq"]
    yes_no = next(i for i in by_url["rmdq"]["item"] if i["linkId"] == rmdq.items[0].id)
    assert [o["valueCoding"]["code"] for o in yes_no["answerOption"]] == ["1", "0"]
    assert yes_no["answerOption"][0]["valueCoding"]["display"] == rmdq.items[0].yes.nb


def test_display_conditions_become_enable_when(catalog):
    assert fhir.conditions_not_expressed(catalog) == []
    bundle = fhir.questionnaires_bundle(catalog, BASE)
    by_url = {e["resource"]["url"].rsplit("/", 1)[1]: e["resource"] for e in bundle["entry"]}
    items = {i["linkId"]: i for i in by_url["background"]["item"]}
    duration = items["bg_stiffness_duration"]
    assert duration["enableWhen"] == [
        {
            "question": "bg_morning_stiffness",
            "operator": "=",
            "answerCoding": {
                "system": "https://pro.example.no/fhir/CodeSystem/background-bg_morning_stiffness",
                "code": "1",
            },
        }
    ]
    shc = {i["linkId"]: i for i in by_url["shc"]["item"]}
    definition = catalog.questionnaires["shc"]
    conditional = [i for i in definition.items if i.show_if is not None]
    for item in conditional:  # "gt 0" on a coded item: "= one of the codes above 0"
        whens = shc[item.id]["enableWhen"]
        target = definition.item(item.show_if.item)
        assert [w["answerCoding"]["code"] for w in whens] == [
            str(c) for c in target.codes() if c > item.show_if.value
        ]
        assert len(whens) == 1 or shc[item.id]["enableBehavior"] == "any"


def test_responses_validate_and_point_to_their_questionnaire(exported):
    catalog, found, bundle = exported
    bundle = roundtrip(fhir.dumps(bundle))
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection" and len(bundle["entry"]) == len(found)
    for record, entry in zip(found, bundle["entry"], strict=True):
        resource = entry["resource"]
        model = QuestionnaireResponse.model_validate(resource)
        # The R4B model accepts any status string: check it here.
        assert model.status == {"submitted": "completed", "partial": "in-progress"}[record.status]
        assert model.status in ("completed", "in-progress")
        url = f"https://pro.example.no/fhir/Questionnaire/{record.questionnaire}"
        assert model.questionnaire == f"{url}|{record.definition_version}"
        assert model.identifier.system == "https://pro.example.no/fhir/response-id"
        assert model.identifier.value == record.response_uuid
        assert model.subject.identifier.value == record.study_code
        authored = record.submitted_at if record.status == "submitted" else record.started_at
        assert resource["authored"] == authored
        assert entry["fullUrl"] == f"urn:uuid:{record.response_uuid}"


def _answer_values(item: dict) -> list:
    values = []
    for given in item.get("answer", []):
        (key, value), *_ = given.items()
        values.append(value["code"] if key == "valueCoding" else value)
    return values


def test_answers_equal_the_stored_values(exported):
    catalog, found, bundle = exported
    seen_kinds = set()
    for record, entry in zip(found, bundle["entry"], strict=True):
        definition = catalog.questionnaires[record.questionnaire]
        items = {i["linkId"]: i for i in entry["resource"].get("item", [])}
        for item in definition.items:
            value = record.items.get(item.id)
            if value is None:
                assert item.id not in items
                continue
            got = items[item.id]
            if value in (DECLINED, NOT_APPLICABLE):
                code = "asked-declined" if value == DECLINED else "not-applicable"
                assert got["extension"] == [{"url": DAR, "valueCode": code}]
                assert "answer" not in got
                seen_kinds.add(value)
                continue
            expected = value if isinstance(value, list) else [value]
            if item.type in ("single_choice", "multiple_choice", "scale", "yes_no"):
                expected = [str(v) for v in expected]
            assert _answer_values(got) == expected, (record.questionnaire, item.id)
            seen_kinds.add(item.type)
        for rule in definition.scores:
            score = record.scores[rule.id]
            if record.status == "partial":
                assert rule.id not in items
            elif score.value is None:
                assert items[rule.id]["extension"][0] == {"url": DAR, "valueCode": "unknown"}
            else:
                got = _answer_values(items[rule.id])
                assert got == [score.value] or got == [str(score.value)]
                seen_kinds.add("score")
    assert seen_kinds >= {
        DECLINED,
        NOT_APPLICABLE,
        "single_choice",
        "multiple_choice",
        "scale",
        "yes_no",
        "integer",
        "text",
        "date",
        "score",
    }


def test_hidden_and_declined_items(exported):
    catalog, found, bundle = exported
    index = next(
        n
        for n, r in enumerate(found)
        if (r.study_code, r.questionnaire) == ("BTB-0001", "background")
    )
    items = {i["linkId"]: i for i in bundle["entry"][index]["resource"]["item"]}
    assert "bg_stiffness_duration" not in items  # hidden by its display condition
    assert items["bg_pain_start"]["extension"][0]["valueCode"] == "asked-declined"
    assert items["bg_work_load"]["extension"][0]["valueCode"] == "not-applicable"
    assert items["bg_former_treatment_other"]["answer"] == [{"valueString": OTHER_TEXT}]
    codes = [a["valueCoding"]["code"] for a in items["bg_aggravating"]["answer"]]
    assert codes == ["1", "3"]


def test_output_is_deterministic(dataset, catalog):
    first = fhir.dumps(fhir.responses_bundle(export_records(dataset)[1], catalog, BASE))
    again = fhir.dumps(fhir.responses_bundle(export_records(dataset)[1], catalog, BASE))
    assert first == again and first.endswith("}\n")
    questionnaires = fhir.dumps(fhir.questionnaires_bundle(catalog, BASE))
    assert questionnaires == fhir.dumps(fhir.questionnaires_bundle(catalog, BASE.rstrip("/")))
    assert "Hvor sterke er smertene" in questionnaires  # UTF-8 characters, not \u escapes


def test_the_validator_catches_a_bad_resource(catalog):
    """The check has teeth: a definition id with '_' is not a FHIR id."""
    resource = fhir.questionnaire(catalog.questionnaires["nrs_weekly"], BASE)
    assert resource["id"] == "nrs-weekly"
    with pytest.raises(ValidationError):
        Questionnaire.model_validate({**resource, "id": "nrs_weekly"})
