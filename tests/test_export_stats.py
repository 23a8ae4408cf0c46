"""SPSS .sav and Stata .dta exports, read back with pyreadstat."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from dataclasses import replace

import pyreadstat  # noqa: E402 - a test dependency (pyproject [test])
import pytest

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.exports.csv_writers import wide_layout, write_wide
from pro_app.exports.model import Filters
from pro_app.exports.source import records as read_records
from pro_app.exports.stats_files import name_problems, write_dta, write_sav
from pro_app.exports.stats_labels import cut_bytes as _cut_bytes
from pro_app.exports.stats_labels import cut_chars as _cut_chars
from pro_app.exports.variables import variables_for

from .factories import answer, complete, enrol, make_app

OTHER_TEXT = "Akupunktur; æøå"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Records of submitted, declined, not applicable and partial answers, and the catalog."""
    app = make_app(tmp_path_factory.mktemp("stats") / "s.sqlite")
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
        "bg_age": 47,
        "bg_aggravating": [1, 3],
        "bg_pain_start": "declined",
        "bg_former_treatment": [6],
        "bg_former_treatment_other": OTHER_TEXT,
        "bg_work_load": "not_applicable",
    }
    answer(app, "BTB-0001", "baseline", "background", complete(q["background"], background))
    hscl = {f"hscl{n}": 1 + n % 4 for n in range(1, 26)} | {"hscl20": "declined"}
    answer(app, "BTB-0001", "baseline", "hscl25", hscl)
    answer(app, "BTB-0001", "baseline", "odi", {"odi1": 3, "odi2": 2}, done=False)  # partial
    answer(app, "BTB-0002", "screening", "nrs", {"nrs_current": 2, "nrs_worst": 9, "nrs_usual": 4})
    answer(app, "BTB-0002", "screening", "odi", complete(q["odi"], {}))
    with app.app_context():
        catalog = catalog_for(app)
        found = list(read_records(get_db(), catalog, Filters(include_partial=True)))
    return catalog, found, wide_layout(catalog.study, catalog.questionnaires)


@pytest.fixture(scope="module")
def files(data, tmp_path_factory):
    catalog, found, layout = data
    folder = tmp_path_factory.mktemp("files")
    sav, dta = folder / "w.sav", folder / "w.dta"
    assert write_sav(sav, catalog, found, layout) == 3
    assert write_dta(dta, catalog, found, layout) == 3
    return sav, dta


def wide_csv(data) -> list[dict]:
    catalog, found, layout = data
    stream = io.StringIO()
    write_wide(stream, found, layout)
    return list(csv.DictReader(io.StringIO(stream.getvalue(), newline="")))


def same(text: str, value, declined, not_applicable) -> bool:
    """Does a cell read from the file hold what the CSV wide file says?"""
    if text == "":
        return value == "" or value is None or (isinstance(value, float) and math.isnan(value))
    if text == "declined":
        return value == declined
    if text == "not_applicable":
        return value == not_applicable
    if isinstance(value, dt.date):
        return value.isoformat() == text
    if isinstance(value, float):
        return value == float(text)
    return value == text


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_every_cell_matches_the_csv_wide_export(data, files, fmt):
    if fmt == "sav":
        frame, meta = pyreadstat.read_sav(files[0], user_missing=True)
        codes = {"declined": (-7.0, "-7"), "not_applicable": (-8.0, "-8")}
    else:
        frame, meta = pyreadstat.read_dta(files[1], user_missing=True)
        codes = {"declined": ("a", "declined"), "not_applicable": ("b", "not_applicable")}
    rows = wide_csv(data)
    assert list(frame.columns) == list(rows[0]) == list(data[2].header)
    assert len(frame) == len(rows) == 3
    for n, row in enumerate(rows):
        for name, text in row.items():
            value = frame[name].iloc[n]
            numeric = meta.readstat_variable_types[name] != "string"
            declined = codes["declined"][0 if numeric else 1]
            na = codes["not_applicable"][0 if numeric else 1]
            assert same(text, value, declined, na), (fmt, n, name, text, value)


def test_sav_values_labels_and_missing_codes(data, files):
    frame, meta = pyreadstat.read_sav(files[0], user_missing=True)
    screening, baseline, other = (frame.iloc[n] for n in range(3))
    assert (screening["study_code"], screening["timepoint"]) == ("BTB-0001", "screening")
    assert screening["odi8"] == -8 and screening["odi1"] == 2 and screening["nrs_worst"] == 8
    assert screening["odi"] == pytest.approx(15 * 100 / 45) and screening["odi_band"]
    assert baseline["hscl20"] == -7 and baseline["hscl19"] == 4
    assert baseline["bg_work_load"] == -8 and baseline["bg_pain_start"] == "-7"
    assert baseline["bg_aggravating"] == "1|3" and baseline["bg_age"] == 47
    assert [baseline[f"bg_aggravating___{c}"] for c in range(1, 9)] == [1, 0, 1, 0, 0, 0, 0, 0]
    assert baseline["bg_former_treatment_other"] == OTHER_TEXT
    assert baseline["odi_status"] == "partial" and math.isnan(baseline["odi"])
    assert baseline["odi1"] == 3 and baseline["hscl_case"] in (0, 1)
    assert other["site"] == "HUS" and math.isnan(other["hscl20"])
    assert isinstance(screening["target_day"], dt.date)

    definitions = data[0].questionnaires
    hscl20 = next(v for v in variables_for(definitions["hscl25"]) if v.name == "hscl20")
    assert meta.column_names_to_labels["hscl20"] == hscl20.label_nb
    assert meta.column_names_to_labels["study_code"] == "Studiekode"
    labels = meta.variable_value_labels
    expected = {float(c): nb for c, nb, _ in hscl20.codes if c != "declined"}
    assert labels["hscl20"] == expected | {-7.0: "Vil ikke svare"}
    assert labels["odi8"][-8.0] == "Ikke aktuelt" and labels["odi8"][-7.0] == "Vil ikke svare"
    assert labels["bg_aggravating___1"] == {1.0: "Valgt", 0.0: "Ikke valgt"}
    assert labels["hscl_case"] == {1.0: "Ja", 0.0: "Nei"}
    assert labels["odi_band"]["minimal"] == "Minimal funksjonsnedsettelse"
    assert labels["bg_pain_start"] == {"-7": "Vil ikke svare"}
    assert "hscl1" in labels and "bg_gender" in labels
    missing = meta.missing_ranges
    assert missing["hscl20"] == [{"lo": -7.0, "hi": -7.0}]
    assert sorted(r["lo"] for r in missing["odi8"]) == [-8.0, -7.0]
    assert missing["bg_pain_start"] == [{"lo": "-7", "hi": "-7"}]
    assert "hscl1" not in missing and "odi" not in missing
    # without user_missing, the declared codes read as missing
    plain, _ = pyreadstat.read_sav(files[0])
    assert math.isnan(plain["hscl20"].iloc[1]) and math.isnan(plain["odi8"].iloc[0])


def test_dta_values_labels_and_extended_missing(files):
    frame, meta = pyreadstat.read_dta(files[1], user_missing=True)
    screening, baseline, _ = (frame.iloc[n] for n in range(3))
    assert screening["odi8"] == "b" and screening["odi1"] == 2
    assert baseline["hscl20"] == "a" and baseline["bg_work_load"] == "b"
    assert baseline["bg_pain_start"] == "declined" and baseline["bg_aggravating"] == "1|3"
    assert baseline["bg_aggravating___3"] == 1
    assert baseline["bg_former_treatment_other"] == OTHER_TEXT
    labels = meta.variable_value_labels
    assert labels["hscl20"]["a"] == "Vil ikke svare" and labels["hscl20"][1] == "Ikke plaget"
    assert labels["odi8"]["b"] == "Ikke aktuelt"
    assert labels["hscl_case"] == {1: "Ja", 0: "Nei"}
    assert meta.missing_user_values["hscl20"] == ["a"]
    # Stata has no declaration: .a-.z are always missing; the reader lists those present
    assert meta.missing_user_values["odi8"] == ["b"] and labels["odi8"]["a"] == "Vil ikke svare"
    assert meta.column_names_to_labels["study_code"] == "Studiekode"
    assert all(len(label or "") <= 80 for label in meta.column_labels)
    plain, _ = pyreadstat.read_dta(files[1])
    assert math.isnan(plain["hscl20"].iloc[1])


def test_english_labels(data, tmp_path):
    catalog, found, layout = data
    write_sav(tmp_path / "en.sav", catalog, found, layout, language="en")
    write_dta(tmp_path / "en.dta", catalog, found, layout, language="en")
    _, sav = pyreadstat.read_sav(tmp_path / "en.sav", metadataonly=True)
    _, dta = pyreadstat.read_dta(tmp_path / "en.dta", metadataonly=True)
    for meta in (sav, dta):
        assert meta.column_names_to_labels["study_code"] == "Study code"
        assert "Declined to answer" in meta.variable_value_labels["hscl20"].values()
        assert "Not applicable" in meta.variable_value_labels["odi8"].values()
    with pytest.raises(ValueError, match="language"):
        write_sav(tmp_path / "x.sav", catalog, found, layout, language="sv")


def test_two_writes_give_the_same_bytes(data, files, tmp_path):
    catalog, found, layout = data
    write_sav(tmp_path / "again.sav", catalog, found, layout)
    write_dta(tmp_path / "again.dta", catalog, found, layout)
    assert (tmp_path / "again.sav").read_bytes() == files[0].read_bytes()
    assert (tmp_path / "again.dta").read_bytes() == files[1].read_bytes()


def test_the_header_stamp_comes_from_the_data(data, tmp_path):
    catalog, found, layout = data
    # Oslo is UTC+1 in March: the latest submission decides, not the clock.
    moved = [
        replace(r, submitted_at="2024-03-05T10:20:30.000000Z" if r.submitted_at else None)
        for r in found
    ]
    moved = [replace(r, started_at="2024-03-01T08:00:00.000000Z") for r in moved]
    write_sav(tmp_path / "s.sav", catalog, moved, layout)
    write_dta(tmp_path / "s.dta", catalog, moved, layout)
    assert (tmp_path / "s.sav").read_bytes()[92:109] == b"05 Mar 2411:20:30"
    assert b"<timestamp>\x1105 Mar 2024 11:20</timestamp>" in (tmp_path / "s.dta").read_bytes()
    _, meta = pyreadstat.read_sav(tmp_path / "s.sav", metadataonly=True)
    assert meta.creation_time == dt.datetime(2024, 3, 5, 11, 20, 30)


def test_no_records_still_give_readable_files(data, tmp_path):
    catalog, _, layout = data
    assert write_sav(tmp_path / "e.sav", catalog, [], layout) == 0
    assert write_dta(tmp_path / "e.dta", catalog, [], layout) == 0
    assert pyreadstat.read_sav(tmp_path / "e.sav")[0].shape == (0, len(layout.header))
    assert pyreadstat.read_dta(tmp_path / "e.dta")[0].shape == (0, len(layout.header))


def test_names_and_label_limits(catalog):
    layout = wide_layout(catalog.study, catalog.questionnaires)
    assert name_problems(layout.header) == []  # every shipped name fits SPSS and Stata
    long = "a" * 33
    assert name_problems([long, "ok", "OK", "_all", "TO", "1x", "bad-name"]) == [
        f"{long}: longer than 32 characters (Stata)",
        "OK: the same SPSS name as ok (SPSS ignores case)",
        "_all: not a valid SPSS variable name",
        "_all: not a valid Stata variable name",
        "TO: not a valid SPSS variable name",
        "1x: not a valid SPSS variable name",
        "1x: not a valid Stata variable name",
        "bad-name: not a valid SPSS variable name",
        "bad-name: not a valid Stata variable name",
    ]
    assert _cut_chars("ø" * 81, 80) == "ø" * 79 + "…"
    cut = _cut_bytes("æ" * 70, 120)  # 140 bytes: cut on a character boundary
    assert cut.endswith("…") and len(cut.encode()) <= 120 and cut.startswith("æ" * 58)
