"""Corrected responses and signatures in the exports: the old version stays exportable with
`--all-versions`, and a signature export says whether each signature still covers."""

from __future__ import annotations

import csv
import hashlib
import io

from .test_corrections import ask, request_id_of, response_uuid
from .test_signoff import PASSWORD, SIGN, app, investigator, next_code, signatures  # noqa: F401


def export(flask_app, *args) -> tuple[int, str]:
    out = flask_app.test_cli_runner().invoke(args=["export", *args, "-o", "-"])
    return out.exit_code, (out.stdout if out.exit_code == 0 else out.output)


def long_rows(text: str) -> list[dict]:
    start = text.index("study_code")
    return list(csv.DictReader(io.StringIO(text[start:])))


def test_a_correction_keeps_the_old_version_in_exports_and_unseats_the_signature(app):  # noqa: F811
    client, secret = investigator(app)
    signed = client.post(
        SIGN,
        data={
            "name": "Ina Investigator",
            "meaning": "reviewed",
            "password": PASSWORD,
            "code": next_code(secret),
        },
    )
    assert signed.status_code in (302, 303)
    code, before = export(app, "--format", "signatures")
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(before)))
    assert row["covers_current"] == "1" and row["hash_matches_content"] == "1"
    [stored] = signatures(app)
    assert row["content_sha256"] == hashlib.sha256(stored["content"].encode()).hexdigest()
    assert row["versions_signed"] == "nrs:v1" and row["second_factor"] == "1"

    ivar, _ = investigator(app, "ivar@example.org")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(client, uuid))
    assert ivar.post(f"/staff/changes/{request_id}/approve").status_code == 303

    code, after = export(app, "--format", "signatures")
    [row] = list(csv.DictReader(io.StringIO(after)))
    assert row["covers_current"] == "0" and row["hash_matches_content"] == "1"

    code, newest = export(app, "--format", "csv-long", "--questionnaire", "nrs")
    assert code == 0
    current = long_rows(newest)
    assert {r["response_version"] for r in current} == {"2"}
    code, history = export(app, "--format", "csv-long", "--questionnaire", "nrs", "--all-versions")
    assert code == 0
    both = long_rows(history)
    by_version = {
        v: {
            r["item"]: r["value"]
            for r in both
            if r["response_version"] == v and r["kind"] in ("item", "score")
        }
        for v in ("1", "2")
    }
    assert by_version["1"]["nrs_current"] == "5" and by_version["2"]["nrs_current"] == "2"
    assert by_version["1"]["lbp_mean"] == "6.0" and by_version["2"]["lbp_mean"] == "5.0"
    code, refused = export(app, "--format", "csv-wide", "--all-versions")
    assert code != 0 and "--all-versions works with csv-long only" in refused
