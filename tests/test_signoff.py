"""Investigator sign-off: password and code, the signed content and its hash, and coverage."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

import pyotp
import pytest

from pro_app.database import get_db
from pro_app.services import signoff

from .factories import answer, enrol, make_app
from .test_corrections import NRS, ask, people, request_id_of, response_uuid
from .test_staff import PASSWORD, account, sign_in

SIGN = "/staff/participants/BTB-0001/review/baseline/sign"
REVIEW = "/staff/participants/BTB-0001/review/baseline"


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "s.sqlite", WTF_CSRF_ENABLED=False, STAFF_TOTP=True)
    enrol(app, "BTB-0001", site="OUS")
    answer(app, "BTB-0001", "baseline", "nrs", NRS)
    return app


def investigator(app, email="ina@example.org"):
    _, secret = account(app, email, "investigator", ("OUS",))
    client = sign_in(app, email, PASSWORD, secret)
    client.get("/staff/?lang=en")
    return client, secret


def next_code(secret) -> str:
    """The code of the next 30-second step: the one used to sign in cannot be used again."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def signatures(app):
    db = sqlite3.connect(app.config["DATABASE"])
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM signatures ORDER BY id")]


def test_sign_off_needs_the_password_and_a_fresh_code(app):
    client, secret = investigator(app)
    page = client.get(REVIEW).get_data(as_text=True)
    assert 'name="code"' in page and "Not signed yet." in page
    form = {"name": "Ina Investigator", "meaning": "reviewed"}
    wrong_password = client.post(SIGN, data={**form, "password": "nope", "code": next_code(secret)})
    assert wrong_password.status_code == 400
    assert "The password is wrong." in wrong_password.get_data(as_text=True)
    used = pyotp.TOTP(secret).now()  # the code used at sign-in
    wrong_code = client.post(SIGN, data={**form, "password": PASSWORD, "code": used})
    assert wrong_code.status_code == 400
    assert "The code is wrong or already used" in wrong_code.get_data(as_text=True)
    no_name = client.post(
        SIGN, data={"meaning": "reviewed", "password": PASSWORD, "code": next_code(secret)}
    )
    assert no_name.status_code == 400 and "Write your full name" in no_name.get_data(True)
    assert signatures(app) == []

    signed = client.post(SIGN, data={**form, "password": PASSWORD, "code": next_code(secret)})
    assert signed.status_code == 303, signed.get_data(as_text=True)[:3000]
    [row] = signatures(app)
    assert row["signer_email"] == "ina@example.org" and row["signer_name"] == "Ina Investigator"
    assert row["meaning"] == "reviewed" and row["second_factor"] == 1
    assert row["signer_role"] == "investigator" and row["timepoint"] == "baseline"
    # The stored hash is the SHA-256 of the stored content, which is the canonical JSON of
    # what the page showed.
    assert row["content_sha256"] == hashlib.sha256(row["content"].encode("utf-8")).hexdigest()
    content = json.loads(row["content"])
    assert row["content"] == json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    [response] = content["responses"]
    assert content["participant"] == "BTB-0001" and content["timepoint"] == "baseline"
    assert response["answers"] == NRS and response["version"] == 1
    assert response["scores"] == {"lbp_mean": {"value": 6.0, "reason": None}}
    assert response["source"] == "phone" and response["uuid"] == response_uuid(app)
    assert len(response["definition_hash"]) == 64
    audit = (
        sqlite3.connect(app.config["DATABASE"])
        .execute(
            "SELECT actor, action, entity_id, new_value FROM audit WHERE action = 'signature.sign'"
        )
        .fetchall()
    )
    assert len(audit) == 1 and audit[0][:3] == (
        "ina@example.org",
        "signature.sign",
        "BTB-0001/baseline",
    )
    assert json.loads(audit[0][3])["sha256"] == row["content_sha256"]
    # The audit export carries the signature with its hash.
    exported = app.test_cli_runner().invoke(args=["export", "--format", "audit-json", "-o", "-"])
    body = json.loads(exported.stdout)
    [sign_row] = [r for r in body["rows"] if r["action"] == "signature.sign"]
    assert json.loads(sign_row["new_value"])["sha256"] == row["content_sha256"]
    assert body["verification"]["intact"] is True
    page = client.get(REVIEW).get_data(as_text=True)
    assert "Signed by Ina Investigator (ina@example.org)" in page
    assert "This signature covers the current version of every response." in page
    assert row["content_sha256"] in page


def test_a_correction_after_signing_shows_the_signature_no_longer_covers(app):
    client, secret = investigator(app)
    client.post(
        SIGN,
        data={
            "name": "Ina Investigator",
            "meaning": "reviewed",
            "password": PASSWORD,
            "code": next_code(secret),
        },
    )
    [signed] = signatures(app)
    ivar, ivar_secret = investigator(app, "ivar@example.org")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(client, uuid))
    assert ivar.post(f"/staff/changes/{request_id}/approve").status_code == 303
    page = client.get(REVIEW).get_data(as_text=True)
    assert "This signature no longer covers the current version." in page
    assert "Version 2 of Back pain (NRS) was made after signing." in page
    participant = client.get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "signed, but no longer covers the current version" in participant
    # The signature itself is unchanged: its hash still matches what was signed.
    [after] = signatures(app)
    assert after == signed and signoff.verify(after)
    with app.app_context():
        db = get_db()
        person = db.conn.execute("SELECT * FROM participants").fetchone()
        state = signoff.state(
            db,
            {"id": person[0], "study_code": "BTB-0001"},
            {"id": signed["assessment_id"], "timepoint": "baseline"},
        )
    assert state[0]["covers"] is False
    assert state[0]["changes"] == [{"kind": "corrected", "questionnaire": "nrs", "version": 2}]
    # A new sign-off (here by the other investigator) covers version 2.
    again = ivar.post(
        SIGN,
        data={
            "name": "Ivar Investigator",
            "meaning": "reviewed",
            "password": PASSWORD,
            "code": next_code(ivar_secret),
        },
    )
    assert again.status_code == 303
    page = client.get(REVIEW).get_data(as_text=True)
    assert page.count("This signature covers the current version") == 1
    assert page.count("This signature no longer covers the current version.") == 1


def test_a_questionnaire_submitted_after_signing_is_named(app):
    client, secret = investigator(app)
    client.post(
        SIGN,
        data={
            "name": "Ina I",
            "meaning": "reviewed",
            "password": PASSWORD,
            "code": next_code(secret),
        },
    )
    answer(app, "BTB-0001", "baseline", "odi", {f"odi{n}": 1 for n in range(1, 11)})
    page = client.get(REVIEW).get_data(as_text=True)
    assert "was submitted after signing." in page and "no longer covers" in page


def test_without_the_second_factor_the_signature_says_so(tmp_path):
    app = make_app(tmp_path / "p.sqlite", WTF_CSRF_ENABLED=False, STAFF_TOTP=False)
    enrol(app, "BTB-0001", site="OUS")
    answer(app, "BTB-0001", "baseline", "nrs", NRS)
    account(app, "ina@example.org", "investigator", ("OUS",))
    client = app.test_client()
    client.post("/staff/login", data={"email": "ina@example.org", "password": PASSWORD})
    client.get("/staff/?lang=en")
    page = client.get(REVIEW).get_data(as_text=True)
    assert 'name="code"' not in page
    signed = client.post(SIGN, data={"name": "Ina I", "meaning": "reviewed", "password": PASSWORD})
    assert signed.status_code == 303
    assert signatures(app)[0]["second_factor"] == 0
    page = client.get(REVIEW).get_data(as_text=True)
    assert "Signed with password only (no second factor was in use)." in page


def test_only_investigators_sign_and_only_what_is_submitted(app):
    c = people(app, "kari", "dm", "admin")
    for who in ("kari", "dm", "admin"):
        assert c[who].post(SIGN, data={"password": PASSWORD}).status_code == 403
        assert 'action="' + SIGN not in c[who].get(REVIEW).get_data(as_text=True)
    client, secret = investigator(app)
    empty = client.post(
        "/staff/participants/BTB-0001/review/week1/sign",
        data={
            "name": "Ina I",
            "meaning": "reviewed",
            "password": PASSWORD,
            "code": next_code(secret),
        },
    )
    assert empty.status_code == 400 and "nothing to sign" in empty.get_data(as_text=True)
    odd = client.post(
        SIGN,
        data={"name": "Ina I", "meaning": "approved", "password": PASSWORD, "code": "000000"},
    )
    assert odd.status_code == 400 and "Choose what the signature means." in odd.get_data(True)
    assert signatures(app) == []


def test_signatures_cannot_be_changed(app):
    client, secret = investigator(app)
    client.post(
        SIGN,
        data={
            "name": "Ina I",
            "meaning": "reviewed",
            "password": PASSWORD,
            "code": next_code(secret),
        },
    )
    db = sqlite3.connect(app.config["DATABASE"])
    for sql in ("UPDATE signatures SET content_sha256 = 'x'", "DELETE FROM signatures"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)
    row = signatures(app)[0]
    assert signoff.verify(row)
    assert not signoff.verify({**row, "content": row["content"].replace("6.0", "5.0")})
