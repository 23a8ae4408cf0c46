"""Exports: CSV long and wide and the codebook, through the real services and the command."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from dataclasses import replace

import pytest

from pro_app.catalog import catalog_for
from pro_app.cli.export import export_command
from pro_app.exports.csv_writers import wide_layout, write_wide
from pro_app.exports.model import NOT_SCORED, ExportRecord, cell
from pro_app.storage.contacts import new_key

from .factories import answer, complete, enrol, local_today, make_app

EMAIL, PHONE = "kari.nordmann@example.no", "91234567"
OTHER_TEXT = 'Akupunktur, "nåler"\nog massasje; æøå'


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("x") / "e.sqlite", CONTACT_KEY=new_key())
    app.cli.add_command(export_command)
    with app.app_context():
        q = catalog_for(app).questionnaires
    enrol(app, "BTB-0001", site="OUS", email=EMAIL, phone=PHONE)
    enrol(app, "BTB-0002", site="HUS", language="en", email="ola@example.com")
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
        "bg_morning_stiffness": 0,  # hides bg_stiffness_duration: its answer no longer counts
        "bg_former_treatment": [6],
        "bg_former_treatment_other": OTHER_TEXT,
        "bg_work_load": "not_applicable",
    }
    answer(app, "BTB-0001", "baseline", "background", first, complete(q["background"], background))
    answer(app, "BTB-0001", "baseline", "hscl25", complete(q["hscl25"], {"hscl14": "declined"}))
    answer(app, "BTB-0001", "baseline", "odi", {"odi1": 3, "odi2": 2}, done=False)  # partial
    answer(app, "BTB-0002", "screening", "nrs", {"nrs_current": 2, "nrs_worst": 9, "nrs_usual": 4})
    answer(app, "BTB-0002", "screening", "odi", complete(q["odi"], {}))
    answer(app, "BTB-0002", "week1", "nrs_weekly", {"nrs_current": 1, "nrs_worst": 2}, done=False)
    return app


def run(app, *args):
    return app.test_cli_runner().invoke(args=["export", *args])


def export(app, tmp_path, fmt, *args, name=None):
    path = tmp_path / (name or f"{fmt}.out")
    result = run(app, "--format", fmt, "-o", str(path), *args)
    assert result.exit_code == 0, result.output
    return path, result


def read(path, delimiter=","):
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def stored_scores(app) -> dict:
    conn = sqlite3.connect(app.config["DATABASE"])
    try:
        found = conn.execute(
            "SELECT p.study_code, a.timepoint, r.questionnaire, s.score, s.value, s.reason "
            "FROM scores s JOIN responses r ON r.id = s.response_id "
            "JOIN assessments a ON a.id = r.assessment_id "
            "JOIN participants p ON p.id = a.participant_id"
        ).fetchall()
    finally:
        conn.close()
    return {row[:4]: (json.loads(row[4]), row[5]) for row in found}


def test_long_has_every_answer_and_score_as_stored(app, tmp_path):
    path, result = export(app, tmp_path, "csv-long")
    rows = read(path)
    assert f"Wrote {len(rows)} rows" in result.output
    got = {(r["study_code"], r["timepoint"], r["questionnaire"], r["item"]): r for r in rows}
    one = ("BTB-0001", "screening")
    assert got[(*one, "nrs", "nrs_current")]["value"] == "6"
    assert got[(*one, "odi", "odi8")]["value"] == "not_applicable"
    base = ("BTB-0001", "baseline", "background")
    assert got[(*base, "bg_aggravating")]["value"] == "1|3"
    assert got[(*base, "bg_pain_start")]["value"] == "declined"
    assert got[(*base, "bg_work_load")]["value"] == "not_applicable"
    assert got[(*base, "bg_stiffness_duration")]["value"] == ""  # hidden: not counted
    assert got[(*base, "bg_former_treatment_other")]["value"] == OTHER_TEXT
    assert got[("BTB-0001", "baseline", "hscl25", "hscl14")]["value"] == "declined"
    scores = stored_scores(app)
    exported = {k: r for k, r in got.items() if r["kind"] == "score"}
    assert set(exported) == set(scores)
    for key, (value, reason) in scores.items():
        assert exported[key]["value"] == cell(value)
        assert exported[key]["reason"] == (reason or "")
    assert exported[(*one, "odi", "odi")]["value"] == repr(15 * 100 / 45)  # odi8 n/a: 9 items
    responses = [r for r in rows if r["kind"] != "derived"]
    assert {r["status"] for r in responses} == {"submitted"}  # partial only on request
    assert all(r["submitted_at"].endswith("Z") and r["actual_date"] for r in responses)
    derived = [r for r in rows if r["kind"] == "derived"]
    assert {(r["study_code"], r["timepoint"], r["item"]) for r in derived} == {
        ("BTB-0001", "screening", "eligible_pro"),
        ("BTB-0002", "screening", "eligible_pro"),
    }


def test_partial_responses_are_marked(app, tmp_path):
    rows = read(export(app, tmp_path, "csv-long", "--include-partial")[0])
    partial = [r for r in rows if r["status"] == "partial"]
    assert {(r["study_code"], r["questionnaire"]) for r in partial} == {
        ("BTB-0001", "odi"),
        ("BTB-0002", "nrs_weekly"),
    }
    odi1 = next(r for r in partial if r["item"] == "odi1")
    assert odi1["value"] == "3" and odi1["submitted_at"] == odi1["actual_date"] == ""
    score = next(r for r in partial if r["kind"] == "score")
    assert score["value"] == "" and score["reason"] == NOT_SCORED


def test_wide_has_a_row_per_participant_and_timepoint(app, tmp_path):
    rows = read(export(app, tmp_path, "csv-wide", "--include-partial")[0])
    keys = [(r["study_code"], r["timepoint"]) for r in rows]
    assert keys == [
        ("BTB-0001", "screening"),
        ("BTB-0001", "baseline"),
        ("BTB-0002", "screening"),
        ("BTB-0002", "week1"),
    ]
    screening, baseline, other, week1 = rows
    assert screening["odi8"] == "not_applicable" and screening["nrs_worst"] == "8"
    assert screening["actual_date"] == local_today(app).isoformat()
    scores = stored_scores(app)
    assert screening["odi"] == cell(scores[("BTB-0001", "screening", "odi", "odi")][0])
    assert screening["odi_band"] == "moderate"
    assert screening["background_status"] == screening["bg_age"] == ""
    assert baseline["bg_aggravating"] == "1|3"
    assert [baseline[f"bg_aggravating___{c}"] for c in range(1, 9)] == list("10100000")
    assert baseline["bg_pain_start"] == "declined" and baseline["bg_stiffness_duration"] == ""
    assert baseline["hscl_case"] in ("0", "1") and baseline["hscl14"] == "declined"
    assert baseline["odi_status"] == "partial" and baseline["odi"] == ""
    assert baseline["nrs_status"] == "" and baseline["nrs_current"] == ""
    assert other["site"] == "HUS" and other["nrs_current"] == "2"
    assert week1["nrs_weekly_status"] == "partial" and week1["nrs_current"] == "1"
    assert week1["nrs_status"] == "" and week1["lbp_mean"] == ""
    complete_only = read(export(app, tmp_path, "csv-wide", name="c.csv")[0])
    assert [(r["study_code"], r["timepoint"]) for r in complete_only] == keys[:3]


def test_bom_semicolon_and_repeat_exports_give_the_same_bytes(app, tmp_path):
    plain, first = export(app, tmp_path, "csv-wide", name="a.csv")
    again, second = export(app, tmp_path, "csv-wide", name="b.csv")
    assert plain.read_bytes() == again.read_bytes()
    sha = hashlib.sha256(plain.read_bytes()).hexdigest()
    assert f"SHA-256 {sha}" in first.output and f"SHA-256 {sha}" in second.output
    excel, _ = export(app, tmp_path, "csv-wide", "--delimiter", ";", "--bom", name="x.csv")
    assert excel.read_bytes().startswith("\ufeff".encode())
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read(excel, ";") == read(plain)
    assert ";" in excel.read_text(encoding="utf-8-sig").splitlines()[0]


ALL_FORMATS = [
    "csv-wide",
    "csv-long",
    "codebook",
    "codebook-html",
    "odm",
    "fhir",
    "fhir-questionnaires",
    "redcap-dictionary",
    "redcap-records",
]


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_no_contact_details_in_any_export(app, tmp_path, fmt):
    path, _ = export(app, tmp_path, fmt, "--include-partial")
    text = path.read_bytes().decode("utf-8", errors="replace")
    for secret in (EMAIL, "ola@example.com", PHONE, "@example"):
        assert secret not in text


def test_standard_output(app):
    result = run(app, "--format", "csv-long", "-o", "-", "--site", "HUS")
    assert result.exit_code == 0
    assert result.stdout.startswith("study_code,site,timepoint,questionnaire,kind,item")
    assert "rows" in result.stderr and "BTB-0001" not in result.stdout


def test_filters(app, tmp_path):
    def keys(*args):
        rows = read(export(app, tmp_path, "csv-long", *args, name="f.csv")[0])
        return {
            (r["study_code"], r["timepoint"], r["questionnaire"])
            for r in rows
            if r["kind"] != "derived"
        }

    every = keys()
    assert keys("--timepoint", "baseline") == {k for k in every if k[1] == "baseline"}
    assert keys("--site", "HUS") == {k for k in every if k[0] == "BTB-0002"}
    assert keys("--questionnaire", "odi", "--questionnaire", "nrs") == {
        k for k in every if k[2] in ("odi", "nrs")
    }
    today = local_today(app).isoformat()
    assert keys("--from", today, "--to", today) == every
    assert keys("--to", "2000-01-01") == set()
    assert keys("--timepoint", "week1", "--include-partial") == {
        ("BTB-0002", "week1", "nrs_weekly")
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timepoint", "week99"], "unknown timepoint 'week99' (known: screening, baseline"),
        (["--site", "XYZ"], "unknown site 'XYZ' (known: OUS, HUS, STO)"),
        (["--questionnaire", "eq5d"], "unknown questionnaire 'eq5d' (known: nrs, odi"),
        (["--from", "2024-13-01"], "--from '2024-13-01' is not a date"),
        (["--from", "2024-02-01", "--to", "2024-01-01"], "is after --to"),
    ],
)
def test_bad_filters_exit_1(app, tmp_path, args, message):
    result = run(app, "--format", "csv-wide", "-o", str(tmp_path / "x.csv"), *args)
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "x.csv").exists()


def test_a_failed_export_leaves_no_file(app, tmp_path, monkeypatch):
    target = tmp_path / "keep.csv"
    target.write_text("earlier export")

    def broken(stream, records, **options):
        stream.write("half a file")
        raise ValueError("disk trouble")

    monkeypatch.setattr("pro_app.services.exporting.write_long", broken)
    result = run(app, "--format", "csv-long", "-o", str(target))
    assert result.exit_code == 1 and "disk trouble" in result.output
    assert target.read_text() == "earlier export"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.csv"]


def test_codebook_lists_every_variable_in_both_languages(app, tmp_path):
    # The receipt code and derived values (no questionnaire): tests/test_export_derived.py.
    rows = [r for r in read(export(app, tmp_path, "codebook")[0]) if r["questionnaire"]]
    html = export(app, tmp_path, "codebook-html")[0].read_text(encoding="utf-8")
    with app.app_context():
        definitions = catalog_for(app).questionnaires
    assert set(definitions) == {r["questionnaire"] for r in rows}
    for q, d in definitions.items():
        names = [r["name"] for r in rows if r["questionnaire"] == q]
        expected = [f"{q}_source"]  # where the answers came from: phone or paper
        for item in d.items:
            expected.append(item.id)
            if item.type == "multiple_choice":
                expected += [f"{item.id}___{o.code}" for o in item.options]
        assert names == expected + [s.id for s in d.scores]
        assert f'<section id="{q}">' in html
    assert all(r["label_nb"] and r["label_en"] and r["definition_hash"] for r in rows)
    by_name = {(r["questionnaire"], r["name"]): r for r in rows}
    hscl1 = by_name[("hscl25", "hscl1")]
    assert hscl1["codes_nb"].startswith("1=Ikke plaget|2=") and hscl1["codes_en"]
    assert "not_applicable=" in by_name[("odi", "odi8")]["codes_nb"]
    assert by_name[("odi", "odi8")]["codes_nb"].endswith("declined=Vil ikke svare")
    assert by_name[("odi", "odi_band")]["type"] == "category"
    assert by_name[("hscl25", "hscl_case")]["type"] == "boolean"
    assert by_name[("odi", "odi")]["rule"].startswith("sum of (code − lowest code)")
    assert by_name[("background", "bg_aggravating___1")]["type"] == "boolean"
    assert html.startswith('<!DOCTYPE html>\n<html lang="nb">') and "<script" not in html.lower()
    assert all(f"<code>{r['name']}</code>" in html for r in rows)


def test_wide_writer_needs_sorted_records_and_distinct_names(catalog):
    layout = wide_layout(catalog.study, catalog.questionnaires)
    meta = dict.fromkeys(("site", "target_day", "first_day", "last_day", "started_at"), "")
    record = ExportRecord(
        **meta,
        study_code="BTB-0002",
        timepoint="screening",
        questionnaire="nrs",
        definition_version="1",
        definition_hash="h",
        response_uuid="u",
        response_version=1,
        status="submitted",
        submitted_at=None,
        actual_date=None,
    )
    with pytest.raises(ValueError, match="sorted"):
        write_wide(io.StringIO(), [record, replace(record, study_code="BTB-0001")], layout)
    both = catalog.study.timepoints[0].model_copy(update={"questionnaires": ("nrs", "nrs_weekly")})
    study = catalog.study.model_copy(update={"timepoints": (both,)})
    with pytest.raises(ValueError, match="nrs and nrs_weekly both have a variable nrs_current"):
        wide_layout(study, catalog.questionnaires)


def test_cell_formats():
    values = (None, True, False, 3, 0.1 + 0.2, "declined", [1, 3])
    expected = ["", "1", "0", "3", "0.30000000000000004", "declined", "1|3"]
    assert [cell(v) for v in values] == expected


def test_every_export_is_recorded_in_the_audit_log(tmp_path):
    import sqlite3

    from pro_app.cli.export import export_command

    from .factories import make_app

    app = make_app(tmp_path / "audit.sqlite")
    app.cli.add_command(export_command)
    out = tmp_path / "codebook.csv"
    result = app.test_cli_runner().invoke(args=["export", "--format", "codebook", "-o", str(out)])
    assert result.exit_code == 0, result.output
    row = (
        sqlite3.connect(app.config["DATABASE"])
        .execute("SELECT action, entity_id, new_value FROM audit WHERE action = 'export'")
        .fetchone()
    )
    assert row[0] == "export" and row[1] == "codebook.csv"
    assert result.output.split("SHA-256 ")[1].strip() in row[2]


def test_every_format_through_the_command(app, tmp_path):
    """Each format is written by `flask export`, twice to the same bytes, and parses."""
    import json
    import xml.etree.ElementTree as ET

    for fmt in ALL_FORMATS:
        first, _ = export(app, tmp_path, fmt, name=f"a-{fmt}.out")
        second, _ = export(app, tmp_path, fmt, name=f"b-{fmt}.out")
        assert first.read_bytes() == second.read_bytes(), fmt
        text = first.read_bytes().decode("utf-8-sig", errors="replace")
        if fmt.startswith("fhir"):
            assert json.loads(text)["resourceType"] == "Bundle"
        elif fmt == "odm":
            assert ET.fromstring(text.encode()).tag.endswith("ODM")
        elif fmt in ("sav", "dta"):
            import pyreadstat

            reader = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
            frame, meta = reader(str(first), user_missing=True)
            assert len(frame) and meta.column_labels, fmt
        elif fmt != "codebook-html":
            assert read(first), fmt
    assert (tmp_path / "a-redcap-dictionary-events.csv").exists()
    assert (tmp_path / "a-redcap-dictionary-mappings.csv").exists()


def test_audit_trail_exports_with_the_chain_checked(tmp_path):
    import json
    import sqlite3

    from pro_app.cli.export import export_command

    from .factories import enrol, make_app

    app = make_app(tmp_path / "trail.sqlite")
    app.cli.add_command(export_command)
    enrol(app, "BTB-0001")
    trail, _ = export(app, tmp_path, "audit-json", name="trail.json")
    data = json.loads(trail.read_text(encoding="utf-8"))
    assert data["verification"]["intact"] is True
    assert data["verification"]["rows"] == len(data["rows"]) > 1
    assert data["rows"][0]["action"] == "participant.enrol" and data["rows"][0]["hash"]
    table, _ = export(app, tmp_path, "audit-csv", name="trail.csv")
    assert read(table)[0]["prev_hash"] == "0" * 64
    conn = sqlite3.connect(app.config["DATABASE"])
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET actor = 'someone else' WHERE id = 1")
    conn.commit()
    broken, result = export(app, tmp_path, "audit-json", name="broken.json")
    verdict = json.loads(broken.read_text(encoding="utf-8"))["verification"]
    assert verdict["intact"] is False
    assert verdict["problems"][0].startswith("audit row 1: its content does not match its hash")


def test_dates_far_outside_any_study_are_refused_clearly(tmp_path):
    app = make_app(tmp_path / "far.sqlite")
    runner = app.test_cli_runner()
    for option, value in (("--from", "0001-01-01"), ("--to", "9999-12-31")):
        out = runner.invoke(args=["export", "--format", "csv-long", "-o", "-", option, value])
        assert out.exit_code != 0
        assert f"{option} {value} is outside the years 1900-2999" in out.output
