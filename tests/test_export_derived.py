"""Study-level derived values and receipt codes in the exports, read back independently.

The dataset uses copies of the shipped pain and disability questionnaires whose items may
be declined, so that a submitted response can have a null score (with its stored reason):
the derived value must then be decided by the other score, or be null with a reason.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import sqlite3
from pathlib import Path

import odmlib
import pandas as pd
import pyreadstat
import pytest
from lxml import etree

from pro_app.catalog import catalog_for
from pro_app.cli.export import export_command
from pro_app.database import get_db
from pro_app.domain.scoring import score
from pro_app.exports import redcap
from pro_app.exports.codebook import write_codebook_csv, write_codebook_html
from pro_app.exports.csv_writers import wide_layout
from pro_app.exports.model import Filters, ScoreValue, derived_values
from pro_app.exports.odm import write_odm
from pro_app.exports.source import records
from pro_app.exports.stats_files import write_dta, write_sav
from pro_app.exports.variables import catalog_order
from pro_app.settings import ROOT

from .factories import answer, enrol, make_app
from .test_export_odm import NS

D = "declined"
ODI_18 = {f"odi{n}": 1 for n in range(1, 10)} | {"odi10": 0}  # 9 / 50 -> 18.0
ODI_20 = {f"odi{n}": 2 if n <= 5 else 0 for n in range(1, 11)}  # 10 / 50 -> 20.0
ODI_30 = {f"odi{n}": v for n, v in enumerate((2, 1, 3, 2, 1, 2, 1, 0, 2, 1), 1)}  # 30.0
ODI_NULL = {f"odi{n}": 3 if n <= 7 else D for n in range(1, 11)}  # 7 answered: null


def nrs(current, worst, usual) -> dict:
    return {"nrs_current": current, "nrs_worst": worst, "nrs_usual": usual}


# study code -> (nrs answers, odi answers, eligible_pro as written in CSV, receipt code?)
# None: no response; a tuple ("partial", answers): saved, not submitted.
CASES = {
    "BTB-0001": (nrs(6, 8, 5), ODI_18, "1", True),  # pain decides (mean 6.33)
    "BTB-0002": (nrs(2, 4, 3), ODI_20, "0", True),  # neither criterion met
    "BTB-0003": (nrs(6, 8, D), ODI_30, "1", True),  # pain mean null: ODI decides
    "BTB-0004": (nrs(6, 8, 5), ODI_NULL, "1", True),  # ODI null: pain decides
    "BTB-0005": (nrs(2, D, D), ODI_NULL, "", True),  # both null: null with a reason
    "BTB-0006": (nrs(2, 4, 3), None, "0", False),  # ODI not answered: pain decides
    "BTB-0007": (("partial", {"nrs_current": 7}), ("partial", {"odi1": 2}), "", False),
}


def skippable_copies(folder):
    """The shipped definitions, with every pain and ODI item skippable."""
    target = folder / "questionnaires"
    shutil.copytree(ROOT / "questionnaires", target)
    for name in ("nrs", "odi"):
        path = target / f"{name}.yaml"
        text = path.read_text(encoding="utf-8")
        pattern = r"^(  - id: (?:nrs_\w+|odi(?!8$)\d+))$"  # odi8 is skippable already
        text, count = re.subn(pattern, r"\1\n    skippable: true", text, flags=re.M)
        assert count >= 3
        path.write_text(text, encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("derived")
    app = make_app(folder / "d.sqlite", QUESTIONNAIRES_DIR=str(skippable_copies(folder)))
    app.cli.add_command(export_command)
    for n, (code, (pain, odi, _, _)) in enumerate(CASES.items()):
        enrol(app, code, site=("OUS", "HUS")[n % 2])
        for questionnaire, given in (("nrs", pain), ("odi", odi)):
            if given is None:
                continue
            if isinstance(given, tuple):  # ("partial", answers)
                answer(app, code, "screening", questionnaire, given[1], done=False)
            else:
                answer(app, code, "screening", questionnaire, given)
    answer(app, "BTB-0001", "baseline", "odi", ODI_30)  # a timepoint without derived values
    return app


@pytest.fixture(scope="module")
def app_catalog(app):
    with app.app_context():
        return catalog_for(app)


def stored(app) -> dict:
    """{(study code, timepoint): receipt code} and {(study code, questionnaire, score): reason}."""
    conn = sqlite3.connect(app.config["DATABASE"])
    try:
        receipts = {
            (code, timepoint): receipt
            for code, timepoint, receipt in conn.execute(
                "SELECT p.study_code, a.timepoint, a.receipt_code FROM assessments a "
                "JOIN participants p ON p.id = a.participant_id"
            )
        }
        reasons = {
            (code, questionnaire, name): reason
            for code, questionnaire, name, reason in conn.execute(
                "SELECT p.study_code, r.questionnaire, s.score, s.reason FROM scores s "
                "JOIN responses r ON r.id = s.response_id "
                "JOIN assessments a ON a.id = r.assessment_id "
                "JOIN participants p ON p.id = a.participant_id"
            )
        }
    finally:
        conn.close()
    return {"receipts": receipts, "reasons": reasons}


def export(app, tmp_path, fmt, *args, name=None):
    path = tmp_path / (name or f"{fmt}.out")
    result = app.test_cli_runner().invoke(args=["export", "--format", fmt, "-o", str(path), *args])
    assert result.exit_code == 0, result.output
    return path


def read(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def found_records(app, **filters):
    with app.app_context():
        return list(records(get_db(), catalog_for(app), Filters(**filters)))


def expected_rows(include_partial=False):
    """(study code, eligible_pro) of the screening rows an export has."""
    return {
        code: value
        for code, (pain, odi, value, _) in CASES.items()
        if include_partial or any(isinstance(g, dict) for g in (pain, odi))
    }


def check_reason(code: str, reason: str, app) -> None:
    """A null value's reason names both scores and says why each is null."""
    assert reason.startswith("nrs.lbp_mean and odi.odi missing (")
    if code == "BTB-0007":
        assert reason.endswith("(nrs not submitted; odi not submitted)")
        return
    reasons = stored(app)["reasons"]
    for part in (("nrs", "lbp_mean"), ("odi", "odi")):
        assert reasons[(code, *part)]  # stored with a reason
        assert f"{'.'.join(part)}: {reasons[(code, *part)]}" in reason


# CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize("partial", [False, True])
def test_wide_has_the_receipt_code_and_derived_values(app, tmp_path, partial):
    args = ["--include-partial"] if partial else []
    path = export(app, tmp_path, "csv-wide", *args)
    rows = read(path)
    header = list(rows[0])
    at = header.index("actual_date")
    assert header[at + 1 : at + 4] == ["receipt_code", "eligible_pro", "eligible_pro_reason"]
    assert header[at + 4] == "nrs_status"  # then the questionnaires
    receipts = stored(app)["receipts"]
    screening = {r["study_code"]: r for r in rows if r["timepoint"] == "screening"}
    assert {c: r["eligible_pro"] for c, r in screening.items()} == expected_rows(partial)
    for code, row in screening.items():
        assert row["receipt_code"] == (receipts[(code, "screening")] or "")
        assert bool(row["receipt_code"]) == CASES[code][3]
        if row["eligible_pro"]:
            assert row["eligible_pro_reason"] == ""
        else:
            check_reason(code, row["eligible_pro_reason"], app)
    baseline = next(r for r in rows if r["timepoint"] == "baseline")
    assert baseline["eligible_pro"] == baseline["eligible_pro_reason"] == ""
    assert baseline["receipt_code"] == ""  # baseline is not complete
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}", screening["BTB-0001"]["receipt_code"])
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert frame.to_dict("records") == rows


def test_long_has_derived_rows_and_a_receipt_code_column(app, tmp_path):
    rows = read(export(app, tmp_path, "csv-long", "--include-partial"))
    assert list(rows[0])[-2:] == ["receipt_code", "source"]  # source: the paper part's column
    receipts = stored(app)["receipts"]
    for row in rows:
        assert row["receipt_code"] == (receipts[(row["study_code"], row["timepoint"])] or "")
    derived = [r for r in rows if r["kind"] == "derived"]
    assert {r["study_code"]: r["value"] for r in derived} == expected_rows(True)
    for row in derived:
        assert (row["timepoint"], row["item"], row["questionnaire"]) == (
            "screening",
            "eligible_pro",
            "",
        )
        assert row["status"] == row["response_uuid"] == row["submitted_at"] == row["source"] == ""
        if not row["value"]:
            check_reason(row["study_code"], row["reason"], app)
    # The derived row closes its participant's timepoint.
    for n, row in enumerate(rows):
        if row["kind"] == "derived" and n + 1 < len(rows):
            after = rows[n + 1]
            assert (after["study_code"], after["timepoint"]) != (row["study_code"], "screening")
    first = next(r for r in derived if r["study_code"] == "BTB-0001")
    responses = [r for r in rows if r["study_code"] == "BTB-0001" and r["kind"] != "derived"]
    assert first["actual_date"] == min(r["actual_date"] for r in responses)
    frame = pd.read_csv(io.StringIO("".join(csv_lines(rows))), dtype=str, keep_default_na=False)
    assert len(frame) == len(rows)


def csv_lines(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_questionnaire_filter_keeps_derived_values_that_read_one_of_them(app, tmp_path):
    odi_only = read(export(app, tmp_path, "csv-wide", "--questionnaire", "odi", name="o.csv"))
    screening = {r["study_code"]: r for r in odi_only if r["timepoint"] == "screening"}
    # Computed from every submitted score of the timepoint, also the filtered-out pain score.
    assert (
        screening["BTB-0001"]["eligible_pro"] == "1" and "nrs_current" not in screening["BTB-0001"]
    )
    assert "BTB-0006" not in screening  # no ODI response: no row
    other = read(export(app, tmp_path, "csv-wide", "--questionnaire", "rmdq", name="r.csv"))
    assert other == []
    header = (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "eligible_pro" not in header and "receipt_code" in header


def test_exports_stay_deterministic(app, tmp_path):
    for fmt in ("csv-wide", "csv-long", "odm", "redcap-records"):
        first = export(app, tmp_path, fmt, "--include-partial", name=f"a-{fmt}")
        second = export(app, tmp_path, fmt, "--include-partial", name=f"b-{fmt}")
        assert first.read_bytes() == second.read_bytes(), fmt


# Codebook -------------------------------------------------------------------------------


def test_codebook_lists_the_receipt_code_and_derived_values(catalog):
    chosen = [catalog.questionnaires[q] for q in catalog_order(catalog)]
    stream = io.StringIO(newline="")
    count = write_codebook_csv(stream, chosen, study=catalog.study)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue(), newline="")))
    assert count == len(rows)
    first = rows[:3]
    assert [r["name"] for r in first] == ["receipt_code", "eligible_pro", "eligible_pro_reason"]
    assert [r["kind"] for r in first] == ["assessment", "derived", "reason"]
    receipt, value, reason = first
    assert receipt["type"] == "text" and receipt["questionnaire"] == ""
    rule = catalog.study.derived[0]
    assert (value["label_nb"], value["label_en"]) == (rule.label.nb, rule.label.en)
    assert value["type"] == "boolean"
    assert value["codes_nb"] == "1=Ja|0=Nei" and value["codes_en"] == "1=Yes|0=No"
    assert value["description_nb"] == rule.description.nb
    assert value["description_en"] == rule.description.en
    assert "nrs.lbp_mean ≥ 5" in value["rule"] and "odi.odi ≥ 25" in value["rule"]
    assert value["definition_hash"] == catalog.study.content_hash
    assert reason["type"] == "text"
    without = io.StringIO(newline="")
    write_codebook_csv(without, [catalog.questionnaires["rmdq"]], study=catalog.study)
    names = [r["name"] for r in csv.DictReader(io.StringIO(without.getvalue(), newline=""))]
    assert names[0] == "receipt_code" and "eligible_pro" not in names
    html = io.StringIO()
    write_codebook_html(html, chosen, "Kodebok", study=catalog.study)
    page = html.getvalue()
    assert '<section id="study-values">' in page and "<code>eligible_pro</code>" in page
    assert page.index("study-values") < page.index('<section id="nrs">')
    assert "<code>receipt_code</code>" in page and "<script" not in page


# SPSS and Stata -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_stats_files_have_the_values_with_labels(app, app_catalog, tmp_path, fmt):
    catalog = app_catalog
    found = found_records(app, include_partial=True)
    layout = wide_layout(catalog.study, catalog.questionnaires)
    path = tmp_path / f"w.{fmt}"
    (write_sav if fmt == "sav" else write_dta)(path, catalog, found, layout)
    reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    frame, meta = reader(str(path), user_missing=True)
    names = list(frame.columns)
    at = names.index("actual_date")
    assert names[at + 1 : at + 4] == ["receipt_code", "eligible_pro", "eligible_pro_reason"]
    assert meta.readstat_variable_types["receipt_code"] == "string"
    assert meta.readstat_variable_types["eligible_pro_reason"] == "string"
    assert meta.readstat_variable_types["eligible_pro"] != "string"
    assert meta.column_names_to_labels["eligible_pro"] == catalog.study.derived[0].label.nb
    assert meta.variable_value_labels["eligible_pro"] == {0: "Nei", 1: "Ja"}
    receipts = stored(app)["receipts"]
    for _, row in frame.iterrows():
        code, timepoint = row["study_code"], row["timepoint"]
        assert row["receipt_code"] == (receipts[(code, timepoint)] or "")
        if timepoint != "screening":
            assert pd.isna(row["eligible_pro"]) and row["eligible_pro_reason"] == ""
            continue
        expected = CASES[code][2]
        if expected:
            assert row["eligible_pro"] == float(expected) and row["eligible_pro_reason"] == ""
        else:
            assert pd.isna(row["eligible_pro"])
            check_reason(code, row["eligible_pro_reason"], app)


# ODM ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odm(app, app_catalog):
    catalog = app_catalog
    found = found_records(app, include_partial=True)
    stream = io.StringIO(newline="")
    write_odm(stream, catalog, found, created="2026-01-01T00:00:00Z")
    return etree.fromstring(stream.getvalue().encode("utf-8"))


def test_odm_is_valid_and_has_a_form_for_the_timepoints_own_values(odm):
    path = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
    schema = etree.XMLSchema(etree.parse(str(path)))
    assert schema.validate(odm), schema.error_log
    mdv = odm.find("odm:Study/odm:MetaDataVersion", NS)
    group = mdv.find("odm:ItemGroupDef[@OID='IG.derived']", NS)
    refs = [r.get("ItemOID") for r in group.iterfind("odm:ItemRef", NS)]
    assert refs == ["IT.derived.receipt_code", "IT.derived.eligible_pro"]
    item = mdv.find("odm:ItemDef[@OID='IT.derived.eligible_pro']", NS)
    assert item.get("DataType") == "boolean" and item.get("Origin") == "Derived"
    method = group.find("odm:ItemRef[@ItemOID='IT.derived.eligible_pro']", NS).get("MethodOID")
    assert mdv.find(f"odm:MethodDef[@OID='{method}']", NS) is not None
    assert mdv.find("odm:FormDef[@OID='F.derived']", NS) is not None
    for event in mdv.iterfind("odm:StudyEventDef", NS):
        forms = [r.get("FormOID") for r in event.iterfind("odm:FormRef", NS)]
        assert forms[-1] == "F.derived"


def test_odm_values_and_null_reasons(app, odm):
    receipts = stored(app)["receipts"]
    seen = {}
    for subject in odm.iterfind(".//odm:SubjectData", NS):
        code = subject.get("SubjectKey")
        for event in subject.iterfind("odm:StudyEventData", NS):
            timepoint = event.get("StudyEventOID")[3:]
            forms = event.findall("odm:FormData", NS)
            own = [f for f in forms if f.get("FormOID") == "F.derived"]
            items = {
                i.get("ItemOID"): i
                for f in own
                for i in f.iterfind("odm:ItemGroupData/odm:ItemData", NS)
            }
            receipt = items.get("IT.derived.receipt_code")
            assert (receipt.get("Value") if receipt is not None else None) == receipts[
                (code, timepoint)
            ]
            if own:
                assert forms[-1] is own[0]  # after the questionnaires
            value = items.get("IT.derived.eligible_pro")
            if timepoint != "screening":
                assert value is None
                continue
            if value.get("IsNull") == "Yes":
                assert value.get("Value") is None
                check_reason(code, value.findtext(".//odm:Comment", namespaces=NS), app)
                seen[code] = ""
            else:
                seen[code] = value.get("Value")
    assert seen == expected_rows(True)


# REDCap ---------------------------------------------------------------------------------


def test_redcap_dictionary_mappings_and_records(app, app_catalog):
    catalog = app_catalog

    def written(write, *args):
        stream = io.StringIO(newline="")
        write(stream, *args)
        return list(csv.DictReader(io.StringIO(stream.getvalue(), newline="")))

    fields = {f["Variable / Field Name"]: f for f in written(redcap.write_dictionary, catalog)}
    assert (fields["receipt_code"]["Form Name"], fields["receipt_code"]["Field Type"]) == (
        "assessment",
        "text",
    )
    assert (fields["eligible_pro"]["Form Name"], fields["eligible_pro"]["Field Type"]) == (
        "derived",
        "yesno",
    )
    assert fields["eligible_pro"]["Field Annotation"] == "@READONLY"
    assert fields["eligible_pro_reason"]["Form Name"] == "derived"
    assert redcap.field_name_problems(catalog) == []
    mapped = written(redcap.write_mappings, catalog.study, catalog.questionnaires)
    derived_events = {m["unique_event_name"] for m in mapped if m["form"] == "derived"}
    assert derived_events == {"screening_arm_1"}
    receipt_events = {m["unique_event_name"] for m in mapped if m["form"] == "assessment"}
    assert receipt_events == {f"{t.id}_arm_1" for t in catalog.study.timepoints}
    rows = written(redcap.write_records, found_records(app, include_partial=True), catalog)
    receipts = stored(app)["receipts"]
    seen = {}
    for row in rows:
        code, timepoint = row["study_code"], row["redcap_event_name"].removesuffix("_arm_1")
        receipt = receipts[(code, timepoint)] or ""
        assert row["receipt_code"] == receipt
        assert row["assessment_complete"] == ("2" if receipt else "")
        if timepoint == "screening":
            seen[code] = row["eligible_pro"]
            assert row["derived_complete"] == "2"
            if not row["eligible_pro"]:
                check_reason(code, row["eligible_pro_reason"], app)
        else:
            assert row["eligible_pro"] == row["derived_complete"] == ""
    assert seen == expected_rows(True)


# The rule itself, from stored scores ----------------------------------------------------


@pytest.mark.parametrize(
    ("pain", "odi", "expected"),
    [
        ((6.0, None), (18.0, None), True),
        ((4.9, None), (24.9, None), False),
        ((5.0, None), (0.0, None), True),
        ((None, "2 of 3 answered"), (25.0, None), True),
        ((None, "2 of 3 answered"), (10.0, None), False),
        ((7.0, None), (None, "7 of 10 answered"), True),
        ("absent", (30.0, None), True),
        ("absent", (20.0, None), False),
    ],
)
def test_derived_values_from_stored_scores(catalog, pain, odi, expected):
    stored_scores = {"odi": {"odi": odi, "odi_band": ("x", None)}}
    if pain != "absent":
        stored_scores["nrs"] = {"lbp_mean": pain}
    found = derived_values(catalog.study.derived, stored_scores)
    assert found == {"eligible_pro": ScoreValue(expected)}


def test_derived_value_is_null_with_the_reasons(catalog):
    both = {"nrs": {"lbp_mean": (None, "2 of 3 answered")}, "odi": {"odi": (None, "too few")}}
    assert derived_values(catalog.study.derived, both)["eligible_pro"] == ScoreValue(
        None,
        "nrs.lbp_mean and odi.odi missing (nrs.lbp_mean: 2 of 3 answered; odi.odi: too few)",
    )
    nothing = derived_values(catalog.study.derived, {})["eligible_pro"]
    assert nothing.value is None
    assert nothing.reason.endswith("(nrs not submitted; odi not submitted)")


def test_same_value_as_scoring_does(catalog):
    """The export evaluates the rule as `flask score` does, from the scores it stored."""
    from pro_app.domain.derived import derive

    definitions = catalog.questionnaires
    sheets = {
        "nrs": score(definitions["nrs"], nrs(6, 8, 5)),
        "odi": score(definitions["odi"], ODI_18),
    }
    as_scored = derive(catalog.study, sheets)["eligible_pro"]
    from_store = {
        q: {k: (s.value, s.reason) for k, s in sheet.scores.items()} for q, sheet in sheets.items()
    }
    exported = derived_values(catalog.study.derived, from_store)["eligible_pro"]
    assert exported.value is as_scored.value is True
