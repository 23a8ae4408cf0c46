"""CDISC ODM 1.3.2 export: valid against the official XSD (from odmlib), and read back."""

from __future__ import annotations

import io
from pathlib import Path

import odmlib  # noqa: E402
import pytest
from lxml import etree  # noqa: E402 - test dependencies (pyproject [test])

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.exports.model import Filters
from pro_app.exports.odm import write_odm
from pro_app.exports.source import records

from .factories import answer, complete, enrol, make_app

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SUBMITTED = Filters()
OTHER_TEXT = 'Akupunktur, "nåler"\n\tog massasje; <æøå> & co'


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("odm") / "o.sqlite")
    with app.app_context():
        q = catalog_for(app).questionnaires
    enrol(app, "BTB-0001", site="OUS")
    enrol(app, "BTB-0002", site="HUS", language="en")
    answer(app, "BTB-0001", "screening", "nrs", {"nrs_current": 6, "nrs_worst": 8, "nrs_usual": 5})
    odi = {f"odi{n}": v for n, v in enumerate((2, 1, 3, 2, 1, 2, 1, 0, 2, 1), 1)}
    answer(
        app, "BTB-0001", "screening", "odi", complete(q["odi"], odi | {"odi8": "not_applicable"})
    )
    background = {
        "bg_aggravating": [1, 3],
        "bg_pain_start": "declined",
        "bg_former_treatment": [6],
        "bg_former_treatment_other": OTHER_TEXT,
        "bg_work_load": "not_applicable",
    }
    answer(app, "BTB-0001", "baseline", "background", complete(q["background"], background))
    answer(app, "BTB-0001", "baseline", "hscl25", complete(q["hscl25"], {"hscl20": "declined"}))
    answer(app, "BTB-0001", "baseline", "odi", {"odi1": 3, "odi2": 2}, done=False)  # partial
    answer(app, "BTB-0002", "screening", "nrs", {"nrs_current": 2, "nrs_worst": 9, "nrs_usual": 4})
    return app


def dataset(app, filters=SUBMITTED):
    with app.app_context():
        catalog = catalog_for(app)
        found = list(records(get_db(), catalog, filters))
    return catalog, found


def write(app, filters=SUBMITTED) -> tuple[bytes, int, list]:
    catalog, found = dataset(app, filters)
    created = max(r.submitted_at for r in found if r.submitted_at)
    stream = io.StringIO(newline="")
    count = write_odm(stream, catalog, iter(found), created=created)
    return stream.getvalue().encode("utf-8"), count, found


@pytest.fixture(scope="module")
def schema():
    path = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.fixture(scope="module")
def written(app):
    return write(app, Filters(include_partial=True))


def test_valid_against_the_official_xsd(written, schema):
    data, count, found = written
    document = etree.fromstring(data)
    assert schema.validate(document), schema.error_log
    groups = [g.get("ItemGroupOID") for g in document.iterfind(".//odm:ItemGroupData", NS)]
    assert count == len(found) == len([g for g in groups if g != "IG.derived"])
    assert document.get("FileType") == "Snapshot" and document.get("ODMVersion") == "1.3.2"
    assert document.get("CreationDateTime") == max(r.submitted_at for r in found if r.submitted_at)


def test_invalid_document_is_rejected(written, schema):
    """The schema really checks: a required attribute removed makes it fail."""
    document = etree.fromstring(written[0])
    document.find(".//odm:ItemGroupData", NS).attrib.pop("ItemGroupOID")
    assert not schema.validate(document)


def test_same_data_gives_the_same_bytes(app, written):
    again, _, _ = write(app, Filters(include_partial=True))
    assert again == written[0]


def data_of(document) -> dict:
    """{(subject, event, form, item oid): ItemData element}"""
    found = {}
    for subject in document.iterfind(".//odm:SubjectData", NS):
        for event in subject.iterfind("odm:StudyEventData", NS):
            for form in event.iterfind("odm:FormData", NS):
                for item in form.iterfind("odm:ItemGroupData/odm:ItemData", NS):
                    key = (
                        subject.get("SubjectKey"),
                        event.get("StudyEventOID"),
                        form.get("FormOID"),
                        item.get("ItemOID"),
                    )
                    assert key not in found
                    found[key] = item
    return found


def null_reason(item) -> str | None:
    assert item.get("IsNull") == "Yes" and item.get("Value") is None
    return item.findtext("odm:Annotation/odm:Flag/odm:FlagValue", namespaces=NS)


def test_values_read_back_as_stored(written):
    data, _, found = written
    items = data_of(etree.fromstring(data))
    for record in found:
        key = (record.study_code, f"SE.{record.timepoint}", f"F.{record.questionnaire}")
        q = record.questionnaire
        for item_id, value in record.items.items():
            element = items.get((*key, f"IT.{q}.{item_id}"))
            if value is None:
                assert element is None
            elif value in ("declined", "not_applicable"):
                assert null_reason(element) == value
            elif isinstance(value, list):
                assert element.get("Value") == "|".join(str(v) for v in value)
            else:
                assert element.get("Value") == str(value)
        for score_id, score in record.scores.items():
            element = items.get((*key, f"IT.{q}.{score_id}"))
            if score.value is None:
                assert element is None or element.findtext(".//odm:Comment", namespaces=NS)
            elif isinstance(score.value, bool):
                assert element.get("Value") == str(int(score.value))
            elif isinstance(score.value, float):
                assert float(element.get("Value")) == score.value
            else:
                assert element.get("Value") == str(score.value)
    one = ("BTB-0001", "SE.screening", "F.odi")
    assert null_reason(items[(*one, "IT.odi.odi8")]) == "not_applicable"
    assert float(items[(*one, "IT.odi.odi")].get("Value")) == 15 * 100 / 45
    base = ("BTB-0001", "SE.baseline")
    assert null_reason(items[(*base, "F.hscl25", "IT.hscl25.hscl20")]) == "declined"
    bg = (*base, "F.background")
    assert items[(*bg, "IT.background.bg_aggravating")].get("Value") == "1|3"
    options = [
        items[(*bg, f"IT.background.bg_aggravating___{c}")].get("Value") for c in range(1, 9)
    ]
    assert options == list("10100000")
    assert null_reason(items[(*bg, "IT.background.bg_pain_start")]) == "declined"
    assert (*bg, "IT.background.bg_pain_start___1") not in items
    assert items[(*bg, "IT.background.bg_former_treatment_other")].get("Value") == OTHER_TEXT
    assert items[("BTB-0002", "SE.screening", "F.nrs", "IT.nrs.nrs_worst")].get("Value") == "9"


def test_partial_responses_are_flagged(app, written):
    document = etree.fromstring(written[0])
    flags = {
        (f.getparent().getparent().get("SubjectKey"), f.get("FormOID")): f.findtext(
            "odm:Annotation/odm:Flag/odm:FlagValue", namespaces=NS
        )
        for f in document.iterfind(".//odm:StudyEventData/odm:FormData", NS)
    }
    assert flags[("BTB-0001", "F.odi")] in ("submitted", "partial")
    assert "partial" in flags.values()
    only_submitted, count, found = write(app)
    assert count == len(found) == written[1] - 1
    assert b"partial</FlagValue>" not in only_submitted


def test_metadata_oids_texts_and_references(written):
    document = etree.fromstring(written[0])
    mdv = document.find("odm:Study/odm:MetaDataVersion", NS)
    oids = {
        tag: [e.get("OID") for e in mdv.iterfind(f"odm:{tag}", NS)]
        for tag in ("StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList", "MethodDef")
    }
    refs = [r.get("StudyEventOID") for r in mdv.iterfind("odm:Protocol/odm:StudyEventRef", NS)]
    assert refs == oids["StudyEventDef"] and refs[:2] == ["SE.screening", "SE.baseline"]
    assert "F.hscl25" in oids["FormDef"] and "IG.hscl25" in oids["ItemGroupDef"]
    assert (
        "IT.odi.odi8" in oids["ItemDef"] and "IT.background.bg_aggravating___3" in oids["ItemDef"]
    )
    # The XSD has no key references: check every reference resolves.
    for ref, attribute, tag in (
        ("FormRef", "FormOID", "FormDef"),
        ("ItemGroupRef", "ItemGroupOID", "ItemGroupDef"),
        ("ItemRef", "ItemOID", "ItemDef"),
        ("CodeListRef", "CodeListOID", "CodeList"),
    ):
        used = {e.get(attribute) for e in mdv.iterfind(f".//odm:{ref}", NS)}
        assert used and used <= set(oids[tag]), ref
    methods = {e.get("MethodOID") for e in mdv.iterfind(".//odm:ItemRef", NS)} - {None}
    assert methods == set(oids["MethodDef"])
    clinical = document.find("odm:ClinicalData", NS)
    assert clinical.get("MetaDataVersionOID") == mdv.get("OID")
    for element, attribute, tag in (
        ("StudyEventData", "StudyEventOID", "StudyEventDef"),
        ("FormData", "FormOID", "FormDef"),
        ("ItemGroupData", "ItemGroupOID", "ItemGroupDef"),
        ("ItemData", "ItemOID", "ItemDef"),
    ):
        used = {e.get(attribute) for e in clinical.iterfind(f".//odm:{element}", NS)}
        assert used and used <= set(oids[tag]), element
    subjects = [s.get("SubjectKey") for s in clinical.iterfind("odm:SubjectData", NS)]
    assert subjects == ["BTB-0001", "BTB-0002"]
    flags = {f.get("CodeListOID") for f in document.iterfind(".//odm:FlagValue", NS)}
    assert flags <= set(oids["CodeList"])

    def texts(element, path):
        found = element.findall(f"{path}/odm:TranslatedText", NS)
        return {t.get(LANG): t.text for t in found}

    item = mdv.find("odm:ItemDef[@OID='IT.hscl25.hscl20']", NS)
    assert texts(item, "odm:Question") == {
        "nb": "Tanker om å avslutte livet ditt",
        "en": "Thoughts of ending your life",
    }
    codes = mdv.find("odm:CodeList[@OID='CL.hscl25.hscl20']", NS)
    decodes = [texts(c, "odm:Decode") for c in codes.iterfind("odm:CodeListItem", NS)]
    assert len(decodes) == 4 and all(set(d) == {"nb", "en"} and all(d.values()) for d in decodes)
    values = [c.get("CodedValue") for c in codes.iterfind("odm:CodeListItem", NS)]
    assert "declined" not in values
    score = mdv.find("odm:ItemDef[@OID='IT.odi.odi']", NS)
    assert score.get("Origin") == "Derived" and score.get("DataType") == "float"
    assert "Derived" in texts(score, "odm:Description")["en"]
    assert "Avledet" in texts(score, "odm:Description")["nb"]
    types = {e.get("DataType") for e in mdv.iterfind("odm:ItemDef", NS)}
    assert types <= {"integer", "float", "text", "date", "boolean"}
    assert {"integer", "float", "text", "boolean"} <= types
    option = mdv.find("odm:ItemDef[@OID='IT.background.bg_aggravating___1']", NS)
    assert option.get("DataType") == "boolean"
    for element in mdv.iter(f"{{{NS['odm']}}}TranslatedText"):
        assert element.get(LANG) in ("nb", "en") and element.text
    for parent in mdv.iter():
        langs = [t.get(LANG) for t in parent.findall("odm:TranslatedText", NS)]
        if langs:
            assert sorted(langs) == ["en", "nb"], parent.tag


def test_records_out_of_order_are_refused(app):
    catalog, found = dataset(app)
    first, *rest = found
    with pytest.raises(ValueError, match="export order"):
        write_odm(io.StringIO(), catalog, [first, *rest, first], created="2026-01-01T00:00:00Z")


def test_empty_export_is_valid(app, schema):
    catalog, _ = dataset(app)
    stream = io.StringIO()
    assert write_odm(stream, catalog, [], created="2026-01-01T00:00:00Z") == 0
    assert schema.validate(etree.fromstring(stream.getvalue().encode())), schema.error_log
