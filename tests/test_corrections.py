"""Data change requests: a site asks, a second person (or a password) approves, a version is made.

Real database files and the real pages (Flask's test client); the sync test sends over real
HTTP to the loopback FHIR server and webhook receiver.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import pytest

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.services import corrections
from pro_app.storage import audit
from pro_app.storage.migrations_review import review as migration_0011
from pro_app.storage.schema import migrations

from .factories import answer, complete, enrol, make_app
from .test_staff import PASSWORD, account, sign_in

NRS = {"nrs_current": 5, "nrs_worst": 7, "nrs_usual": 6}  # lbp_mean 6.0


def _build(tmp_path, **config):
    app = make_app(tmp_path / "c.sqlite", WTF_CSRF_ENABLED=False, STAFF_TOTP=True, **config)
    enrol(app, "BTB-0001", site="OUS")
    enrol(app, "BTB-0002", site="HUS")
    answer(app, "BTB-0001", "baseline", "nrs", NRS)
    return app


@pytest.fixture
def app(tmp_path):
    return _build(tmp_path)


def people(app, *roles):
    """Signed-in clients (English pages) for the named people."""
    sites = {
        "ina": ("investigator", ("OUS",)),
        "ivar": ("investigator", ("OUS",)),
        "kari": ("coordinator", ("OUS",)),
        "hans": ("investigator", ("HUS",)),
        "dm": ("data_manager", ()),
        "admin": ("admin", ()),
    }
    clients = {}
    for name in roles:
        role, where = sites[name]
        _, secret = account(app, f"{name}@example.org", role, where)
        client = sign_in(app, f"{name}@example.org", PASSWORD, secret)
        client.get("/staff/?lang=en")
        clients[name] = client
    return clients


def conn(app):
    return sqlite3.connect(app.config["DATABASE"])


def response_uuid(app, questionnaire="nrs"):
    return (
        conn(app)
        .execute("SELECT uuid FROM responses WHERE questionnaire = ?", [questionnaire])
        .fetchone()[0]
    )


def ask(client, uuid, item="nrs_current", value="2", **extra):
    data = {
        "item": item,
        "value": value,
        "reason": "Wrong box ticked",
        "source": "Participant phoned on 3 March and said item 1 should be 2",
        **extra,
    }
    return client.post(f"/staff/participants/BTB-0001/responses/{uuid}/change", data=data)


def request_id_of(reply) -> int:
    assert reply.status_code == 303, reply.get_data(as_text=True)[:2000]
    return int(reply.headers["Location"].rsplit("/", 1)[1])


def versions(app, uuid):
    with app.app_context():
        db = get_db()
        found = []
        for row in corrections.versions(db, uuid):
            scores = corrections.scores_of(db, row["id"])
            answers = corrections.current_answers(db, row["id"])
            found.append((row["version"], answers, {k: v[0] for k, v in scores.items()}))
        return found


def test_an_approved_request_makes_version_2_with_new_scores(app):
    c = people(app, "ina", "ivar")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(c["ina"], uuid))
    assert versions(app, uuid) == [(1, NRS, {"lbp_mean": 6.0})]  # nothing yet: awaiting approval
    detail = c["ivar"].get(f"/staff/changes/{request_id}").get_data(as_text=True)
    assert "awaiting approval" in detail and "Approve the correction" in detail

    approved = c["ivar"].post(f"/staff/changes/{request_id}/approve")
    assert approved.status_code == 303
    assert approved.headers["Location"] == f"/staff/participants/BTB-0001/responses/{uuid}"
    assert versions(app, uuid) == [
        (1, NRS, {"lbp_mean": 6.0}),  # the original stays, with its scores
        (2, {**NRS, "nrs_current": 2}, {"lbp_mean": 5.0}),
    ]
    db = conn(app)
    rows = db.execute(
        "SELECT version, status, submitted_at, submission_id, definition_hash FROM responses"
        " WHERE uuid = ? ORDER BY version",
        [uuid],
    ).fetchall()
    assert [r[:2] for r in rows] == [(1, "submitted"), (2, "submitted")]
    assert rows[1][2] == rows[0][2] and rows[1][3] is None and rows[1][4] == rows[0][4]
    # The journal of version 2 is written by the approver.
    assert {
        a
        for (a,) in db.execute(
            "SELECT DISTINCT actor FROM answers a JOIN responses r ON r.id = a.response_id"
            " WHERE r.uuid = ? AND r.version = 2",
            [uuid],
        )
    } == {"ivar@example.org"}

    corrected = db.execute(
        "SELECT actor, role, entity_id, field, old_value, new_value, reason FROM audit"
        " WHERE action = 'response.correct'"
    ).fetchall()
    assert corrected == [
        (
            "ivar@example.org",
            "investigator",
            uuid,
            "nrs_current",
            '{"value":5,"version":1}',
            f'{{"change_request":{request_id},"value":2,"version":2}}',
            "Wrong box ticked (source: Participant phoned on 3 March and said item 1 should"
            " be 2; requested by ina@example.org at "
            + db.execute("SELECT requested_at FROM change_requests").fetchone()[0]
            + ")",
        )
    ]
    actions = [a for (a,) in db.execute("SELECT action FROM audit WHERE entity = 'change_request'")]
    assert actions == ["change_request.create", "change_request.approve"]
    with app.app_context():
        assert audit.verify(get_db())[1] == []

    kind, payload = db.execute(
        "SELECT kind, payload FROM outbox ORDER BY id DESC LIMIT 1"
    ).fetchone()
    payload = json.loads(payload)
    assert kind == "response.corrected"
    assert payload["response_id"] == uuid and payload["version"] == 2
    assert payload["answers"]["nrs_current"] == 2 and payload["scores"] == {"lbp_mean": 5.0}
    assert payload["submitted_at"] == rows[0][2] and payload["corrected_at"]

    history = c["ivar"].get(f"/staff/participants/BTB-0001/responses/{uuid}").get_data(True)
    assert "Version 2" in history and "Version 1" in history
    assert re.search(r"<del>5</del></td><td><ins>2</ins>", history)
    assert re.search(r"<del>6\.0</del></td><td><ins>5\.0</ins>", history)
    assert "Wrong box ticked" in history and "ina@example.org" in history

    # Exports and the API take the newest version; the first is still in the database.
    out = app.test_cli_runner().invoke(
        args=["export", "--format", "csv-long", "-o", "-", "--questionnaire", "nrs"]
    )
    assert out.exit_code == 0, out.output
    body = out.output[out.output.index("study_code,") :]
    exported = {
        (r["kind"], r["item"]): (r["value"], r["response_version"], r["response_uuid"])
        for r in csv.DictReader(io.StringIO(body))
    }
    assert len(exported) == 4
    assert exported[("item", "nrs_current")] == ("2", "2", uuid)
    assert exported[("score", "lbp_mean")] == ("5.0", "2", uuid)


def test_the_requester_cannot_approve_under_second_person(app):
    c = people(app, "ina", "kari")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(c["ina"], uuid))
    page = c["ina"].get(f"/staff/changes/{request_id}").get_data(as_text=True)
    assert "Approve the correction" not in page and "You made this request" in page
    refused = c["ina"].post(f"/staff/changes/{request_id}/approve")
    assert refused.status_code == 400
    assert "Another investigator or coordinator at the site must approve it" in (
        refused.get_data(as_text=True)
    )
    assert [v[0] for v in versions(app, uuid)] == [1]
    assert conn(app).execute("SELECT COUNT(*) FROM change_request_events").fetchone()[0] == 0
    # A coordinator of the site is a second person.
    assert c["kari"].post(f"/staff/changes/{request_id}/approve").status_code == 303
    assert [v[0] for v in versions(app, uuid)] == [1, 2]


def _password_study(tmp_path) -> Path:
    source = Path(__file__).parent.parent / "studies" / "backtobasic.yaml"
    text = source.read_text(encoding="utf-8")
    assert "corrections: {approval: second_person}" in text
    copy = tmp_path / "studies" / "backtobasic.yaml"
    copy.parent.mkdir()
    copy.write_text(
        text.replace("corrections: {approval: second_person}", "corrections: {approval: password}"),
        encoding="utf-8",
    )
    return copy


def test_with_the_password_setting_the_requester_approves_with_the_password(tmp_path):
    app = _build(tmp_path, STUDY=str(_password_study(tmp_path)))
    with app.app_context():
        assert catalog_for(app).study.corrections.approval == "password"
    c = people(app, "ina")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(c["ina"], uuid))
    page = c["ina"].get(f"/staff/changes/{request_id}").get_data(as_text=True)
    assert 'name="password"' in page
    for password in ("", "not my password"):
        wrong = c["ina"].post(f"/staff/changes/{request_id}/approve", data={"password": password})
        assert wrong.status_code == 400 and "The password is wrong" in wrong.get_data(True)
    assert [v[0] for v in versions(app, uuid)] == [1]
    right = c["ina"].post(f"/staff/changes/{request_id}/approve", data={"password": PASSWORD})
    assert right.status_code == 303
    assert [v[0] for v in versions(app, uuid)] == [1, 2]
    assert conn(app).execute(
        "SELECT status, decided_by, password_confirmed FROM change_request_events"
    ).fetchone() == ("approved", "ina@example.org", 1)


def test_data_managers_and_admins_see_but_cannot_change(app):
    c = people(app, "ina", "dm", "admin")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(c["ina"], uuid))
    for who in ("dm", "admin"):
        client = c[who]
        assert ask(client, uuid).status_code == 403
        assert client.post(f"/staff/changes/{request_id}/approve").status_code == 403
        assert (
            client.post(f"/staff/changes/{request_id}/reject", data={"note": "x"}).status_code
            == 403
        )
        assert (
            client.post(
                "/staff/participants/BTB-0001/review/baseline/sign", data={"password": PASSWORD}
            ).status_code
            == 403
        )
        detail = client.get(f"/staff/changes/{request_id}")
        assert detail.status_code == 200
        text = detail.get_data(as_text=True)
        assert (
            "Wrong box ticked" in text and '<form method="post" action="/staff/changes' not in text
        )
        assert "cannot make or decide them" in text
        assert f"no. {request_id}" in client.get("/staff/changes").get_data(as_text=True)
        review = client.get("/staff/participants/BTB-0001/review/baseline").get_data(as_text=True)
        assert "Request a correction" not in review and "Sign-off" in review
        assert client.get(f"/staff/participants/BTB-0001/responses/{uuid}").status_code == 200
    assert [v[0] for v in versions(app, uuid)] == [1]
    assert conn(app).execute("SELECT COUNT(*) FROM change_request_events").fetchone()[0] == 0


def test_a_rejected_or_withdrawn_request_changes_nothing(app):
    c = people(app, "ina", "ivar")
    uuid = response_uuid(app)
    before = conn(app).execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    first = request_id_of(ask(c["ina"], uuid))
    no_note = c["ivar"].post(f"/staff/changes/{first}/reject", data={"note": " "})
    assert no_note.status_code == 400 and "Give the reason for rejecting" in no_note.get_data(True)
    rejected = c["ivar"].post(f"/staff/changes/{first}/reject", data={"note": "Source unclear"})
    assert rejected.status_code == 303
    late = c["ina"].post(f"/staff/changes/{first}/approve")
    assert late.status_code == 400  # not the requester's to approve, and already decided
    again = c["ivar"].post(f"/staff/changes/{first}/approve")
    assert again.status_code == 400 and "already decided (rejected)" in again.get_data(True)
    second = request_id_of(ask(c["ina"], uuid, value="3"))
    assert (
        c["ina"].post(f"/staff/changes/{second}/reject", data={"note": "Typo"}).status_code == 303
    )
    db = conn(app)
    assert db.execute(
        "SELECT request_id, status, decided_by, note FROM change_request_events ORDER BY id"
    ).fetchall() == [
        (first, "rejected", "ivar@example.org", "Source unclear"),
        (second, "withdrawn", "ina@example.org", "Typo"),
    ]
    assert [v[0] for v in versions(app, uuid)] == [1]
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == before
    assert [
        a for (a,) in db.execute("SELECT action FROM audit WHERE entity = 'change_request'")
    ] == [
        "change_request.create",
        "change_request.reject",
        "change_request.create",
        "change_request.withdraw",
    ]
    listing = c["ivar"].get("/staff/changes?status=withdrawn").get_data(as_text=True)
    assert f"no. {second}<" in listing and f"no. {first}<" not in listing


def test_an_invalid_new_value_is_refused_with_what_is_allowed(app):
    c = people(app, "ina")
    uuid = response_uuid(app)
    eleven = ask(c["ina"], uuid, value="11")
    assert eleven.status_code == 400
    assert "11 is not an answer this question allows. Allowed: 0–10." in eleven.get_data(True)
    word = ask(c["ina"], uuid, value="declined")  # the item cannot be skipped
    assert "declined is not an answer this question allows" in word.get_data(True)
    same = ask(c["ina"], uuid, value="5")
    assert "The new value is the same as the current answer." in same.get_data(True)
    empty = ask(c["ina"], uuid, value="", reason="", source="")
    text = empty.get_data(as_text=True)
    assert empty.status_code == 400
    assert "Give the new value." in text and "Give the reason for the correction." in text
    assert "Give the source of the new value" in text
    unknown = ask(c["ina"], uuid, item="no_such_item")
    assert unknown.status_code == 400 and "cannot be corrected" in unknown.get_data(True)
    assert conn(app).execute("SELECT COUNT(*) FROM change_requests").fetchone()[0] == 0


def test_another_site_sees_nothing(app):
    c = people(app, "ina", "hans")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(c["ina"], uuid))
    hans = c["hans"]
    assert hans.get("/staff/participants/BTB-0001/review/baseline").status_code == 404
    assert hans.get(f"/staff/participants/BTB-0001/responses/{uuid}").status_code == 404
    assert hans.get(f"/staff/changes/{request_id}").status_code == 404
    assert hans.post(f"/staff/changes/{request_id}/approve").status_code == 404
    assert ask(hans, uuid).status_code == 404
    assert f"no. {request_id}<" not in hans.get("/staff/changes").get_data(as_text=True)


def test_a_request_on_a_version_that_has_since_changed_is_refused(app):
    c = people(app, "ina", "ivar")
    uuid = response_uuid(app)
    first = request_id_of(ask(c["ina"], uuid, value="2"))
    second = request_id_of(ask(c["ina"], uuid, value="3"))
    assert c["ivar"].post(f"/staff/changes/{first}/approve").status_code == 303
    stale = c["ivar"].post(f"/staff/changes/{second}/approve")
    assert stale.status_code == 400 and "it is now version 2" in stale.get_data(as_text=True)
    assert [v[0] for v in versions(app, uuid)] == [1, 2]
    # A new request is made against version 2.
    third = request_id_of(ask(c["ina"], uuid, value="3"))
    assert c["ivar"].post(f"/staff/changes/{third}/approve").status_code == 303
    assert [(v[0], v[1]["nrs_current"]) for v in versions(app, uuid)] == [(1, 5), (2, 2), (3, 3)]


def test_a_correction_that_raises_an_alert_records_it(app):
    with app.app_context():
        definition = catalog_for(app).questionnaires["hscl25"]
    answer(app, "BTB-0001", "baseline", "hscl25", complete(definition, {"hscl20": 1}))
    c = people(app, "ina", "ivar")
    uuid = response_uuid(app, "hscl25")
    assert conn(app).execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0
    request_id = request_id_of(ask(c["ina"], uuid, item="hscl20", value="4"))
    assert c["ivar"].post(f"/staff/changes/{request_id}/approve").status_code == 303
    raised = (
        conn(app)
        .execute(
            "SELECT al.alert, r.version FROM alerts al JOIN responses r ON r.id = al.response_id"
        )
        .fetchall()
    )
    assert raised == [("hscl20_thoughts", 2)]
    review = c["ivar"].get("/staff/participants/BTB-0001/review/baseline").get_data(as_text=True)
    assert "Safety alert (version 2" in review and "Not acknowledged." in review


def test_the_participant_page_links_to_the_review(app):
    c = people(app, "ina")
    page = c["ina"].get("/staff/participants/BTB-0001").get_data(as_text=True)
    assert "Responses and sign-off" in page
    assert "/staff/participants/BTB-0001/review/baseline" in page and "not signed" in page


def test_migration_0011_keeps_rows_and_can_run_again(tmp_path):
    from pro_app import create_app

    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "m.sqlite")})
    with app.app_context():
        migrations.apply(get_db(), stop_before="0011_review")
    enrol(app, "BTB-0001")
    answer(app, "BTB-0001", "baseline", "nrs", NRS)
    db = conn(app)
    tables = ("responses", "answers", "scores", "outbox", "audit")
    before = {t: db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}
    with app.app_context():
        migrations.apply(get_db())
        migration_0011(get_db())  # a second run (after a crash before it was recorded)
        assert get_db().conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    after = {t: db.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}
    assert after == before
    triggers = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert {"responses_frozen", "responses_fixed_columns", "responses_no_delete"} <= triggers
    assert {"change_requests_no_update", "signatures_no_delete"} <= triggers
    uuid = before["responses"][0][1]
    with pytest.raises(sqlite3.IntegrityError):  # (uuid, version) is still unique
        db.execute(
            "INSERT INTO responses (uuid, assessment_id, questionnaire, version,"
            " definition_version, definition_hash, status, started_at)"
            " SELECT uuid, assessment_id, questionnaire, version, definition_version,"
            " definition_hash, 'submitted', started_at FROM responses WHERE uuid = ?",
            [uuid],
        )
    with pytest.raises(sqlite3.IntegrityError, match="cannot be changed"):
        db.execute("UPDATE responses SET submitted_at = 'x'")


def test_requests_and_decisions_cannot_be_changed(app):
    c = people(app, "ina", "ivar")
    request_id = request_id_of(ask(c["ina"], response_uuid(app)))
    c["ivar"].post(f"/staff/changes/{request_id}/approve")
    db = conn(app)
    for sql in (
        "UPDATE change_requests SET new_value = '9'",
        "DELETE FROM change_requests",
        "UPDATE change_request_events SET status = 'rejected'",
        "DELETE FROM change_request_events",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)


def test_the_sync_sends_version_2_to_fhir_and_the_webhook(app):
    from pro_app.sync.config import Target
    from pro_app.sync.worker import Worker

    from .sync_servers import FakeFhir, WebhookReceiver

    secret = "webhook-secret-for-corrections"
    base = "https://pro.example.no"
    app.config["BASE_URL"] = base
    uuid = response_uuid(app)
    fast = {"timeout_seconds": 2.0, "backoff_seconds": 0.001, "backoff_max_seconds": 0.002}

    def drain(chosen):
        with app.app_context():
            worker = Worker(get_db(), catalog_for(app), chosen, base)
            for _ in range(20):
                worker.run_once()
                pending = (
                    get_db()
                    .conn.execute("SELECT COUNT(*) FROM sync_deliveries WHERE status = 'pending'")
                    .fetchone()[0]
                )
                if not pending:
                    return

    with FakeFhir() as fhir, WebhookReceiver(secret) as hook:
        chosen = (
            Target(name="fhir", type="fhir", url=fhir.endpoint, **fast),
            Target(name="hook", type="webhook", url=hook.endpoint, secret=secret, **fast),
        )
        drain(chosen)
        key = f"{base}/fhir/response-id|{uuid}"
        assert fhir.version(key) == 1
        c = people(app, "ina", "ivar")
        request_id = request_id_of(ask(c["ina"], uuid))
        assert c["ivar"].post(f"/staff/changes/{request_id}/approve").status_code == 303
        drain(chosen)
        assert len(fhir.matching(key)) == 1 and fhir.version(key) == 2
        resource = fhir.resource(key)
        first = next(i for i in resource["item"] if i["linkId"] == "nrs_current")
        assert first["answer"][0]["valueCoding"]["code"] == "2"
        corrected = [m for m in hook.messages().values() if m["kind"] == "response.corrected"]
        assert len(corrected) == 1
        assert corrected[0]["response"]["version"] == 2


def test_two_people_approving_at_once_make_one_version(app):
    import threading

    c = people(app, "ina")
    uuid = response_uuid(app)
    request_id = request_id_of(ask(c["ina"], uuid))
    approvers = [
        {"email": "ivar@example.org", "role": "investigator"},
        {"email": "kari@example.org", "role": "coordinator"},
    ]
    barrier, outcomes = threading.Barrier(len(approvers)), []

    def approve(staff):
        with app.app_context():
            barrier.wait()
            try:
                made = corrections.approve(
                    get_db(),  # this thread's own connection
                    catalog_for(app),
                    request_id,
                    staff=staff,
                    sites=("OUS",),
                    mode="second_person",
                    password_confirmed=False,
                )
                outcomes.append(("made", made["version"]))
            except corrections.CorrectionError as exc:
                outcomes.append(("refused", exc.problems[0][0]))

    threads = [threading.Thread(target=approve, args=(s,)) for s in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [("made", 2), ("refused", "decided")]
    assert [v[0] for v in versions(app, uuid)] == [1, 2]
    assert conn(app).execute(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'response.corrected'"
    ).fetchone() == (1,)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["3"], 3),
        (["-1"], "-1 is not"),
        (["--1"], "--1 is not"),
        (["²"], "² is not"),
        (["3", "4"], "3,4 is not"),
        ([" declined "], "declined is not"),
        ([""], "value_missing"),
        ([], "value_missing"),
    ],
)
def test_form_values_are_read_strictly(app, raw, expected):
    with app.app_context():
        item = catalog_for(app).questionnaires["nrs"].item("nrs_current")
    try:
        assert corrections.checked_value(item, raw) == expected
    except corrections.CorrectionError as exc:
        key, values = exc.problems[0]
        assert key == expected or f"{values['value']} is not" == expected


def test_several_choices_and_numbers_are_corrected_through_the_form(app):
    with app.app_context():
        definition = catalog_for(app).questionnaires["background"]
    given = complete(definition, {"bg_age": 40, "bg_aggravating": [1]})
    answer(app, "BTB-0001", "baseline", "background", given)
    c = people(app, "ina", "kari")
    uuid = response_uuid(app, "background")
    form = (
        c["ina"]
        .get(f"/staff/participants/BTB-0001/responses/{uuid}/change?item=bg_aggravating")
        .get_data(as_text=True)
    )
    assert form.count('type="checkbox" id="value-') == 8
    several = request_id_of(ask(c["ina"], uuid, item="bg_aggravating", value=["2", "5"]))
    assert c["kari"].post(f"/staff/changes/{several}/approve").status_code == 303
    age = ask(c["ina"], uuid, item="bg_age", value="101")
    assert "101 is not an answer this question allows. Allowed: 18–100." in age.get_data(True)
    number = request_id_of(ask(c["ina"], uuid, item="bg_age", value="41"))
    assert c["kari"].post(f"/staff/changes/{number}/approve").status_code == 303
    [*_, (version, answers, _)] = versions(app, uuid)
    assert version == 3 and answers["bg_aggravating"] == [2, 5] and answers["bg_age"] == 41
    history = c["ina"].get(f"/staff/participants/BTB-0001/responses/{uuid}").get_data(True)
    assert "<del>1 – Sitting</del></td><td><ins>2 – Standing; 5 – Lifting</ins>" in history
    assert "<del>40 years</del></td><td><ins>41 years</ins>" in history
