"""The sync queue without a network: configuration, backoff, claims and leases, dead and
retried messages, the REDCap metadata comparison and REDCap error texts."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.sync import queue
from pro_app.sync.config import Target, TargetConfigError, parse_targets
from pro_app.sync.redcap import compare, expected_fields, redcap_errors
from pro_app.sync.transport import Reply
from tests.factories import answer, complete, enrol, make_app

HOOK = {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret"}


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "sync.sqlite")
    enrol(app, "BTB-0001")
    enrol(app, "BTB-0002", site="HUS")
    with app.app_context():
        catalog = catalog_for(app)
    for code in ("BTB-0001", "BTB-0002"):
        for qid in ("nrs", "odi"):
            answer(app, code, "baseline", qid, complete(catalog.questionnaires[qid], {}))
    return app


def test_targets_are_checked_with_every_problem_named(monkeypatch):
    raw = [
        {"name": "Bad Name", "type": "redcap", "url": "ftp://x", "token": "t"},
        {"name": "hook", "type": "webhook", "url": "https://user:pw@example.org/h"},
        {"name": "fhir", "type": "fhir", "url": "https://fhir.example.org/r4", "colour": 1},
    ]
    with pytest.raises(TargetConfigError) as caught:
        parse_targets(json.dumps(raw))
    text = str(caught.value)
    assert "PRO_SYNC_TARGETS[0].name" in text and "lower-case" in text
    assert "PRO_SYNC_TARGETS[0].url" in text and "http(s)" in text
    assert "PRO_SYNC_TARGETS[1].url" in text and "credentials" in text
    assert "PRO_SYNC_TARGETS[2].colour" in text
    with pytest.raises(TargetConfigError, match="not valid JSON"):
        parse_targets("[{")
    with pytest.raises(TargetConfigError, match="used twice"):
        parse_targets([HOOK, HOOK])
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    with pytest.raises(TargetConfigError, match="HOOK_SECRET is empty"):
        parse_targets([{**HOOK, "secret": "", "secret_env": "HOOK_SECRET"}])
    monkeypatch.setenv("HOOK_SECRET", "from-env")
    (target,) = parse_targets([{**HOOK, "secret": "", "secret_env": "HOOK_SECRET"}])
    assert target.credential() == "from-env"
    assert parse_targets("") == ()


def test_backoff_grows_is_capped_and_jittered():
    target = Target(**HOOK, backoff_seconds=10, backoff_max_seconds=100)
    rng = random.Random(1)
    waits = [queue.backoff(target, n, rng) for n in range(1, 9)]
    for n, wait in enumerate(waits, 1):
        step = min(100, 10 * 2 ** (n - 1))
        assert step / 2 <= wait <= step
    assert len({round(queue.backoff(target, 3, rng), 6) for _ in range(20)}) > 1


def _now():
    return dt.datetime.now(dt.UTC)


def test_each_message_is_claimed_once_and_versions_wait_their_turn(app):
    with app.app_context():
        db = get_db()
        assert queue.add_new(db, "hook", ("response.submitted",), _now()) == 4
        assert queue.add_new(db, "hook", ("response.submitted",), _now()) == 0
        first = queue.claim(db, "hook", "w1", _now(), 60)
        second = queue.claim(db, "hook", "w2", _now(), 60)
        assert first and second and first.message_id != second.message_id
        claimed = {first.message_id, second.message_id}
        rest = [queue.claim(db, "hook", "w3", _now(), 60) for _ in range(3)]
        assert len([c for c in rest if c]) == 2 and rest[2] is None
        claimed |= {c.message_id for c in rest if c}
        assert len(claimed) == 4
        # A lease that ran out (a worker killed mid-send) frees the message again.
        later = _now() + dt.timedelta(seconds=61)
        again = queue.claim(db, "hook", "w4", later, 60)
        assert again is not None and again.message_id in claimed


def test_a_later_version_is_not_sent_before_the_earlier_one(app):
    with app.app_context():
        db = get_db()
        response_id, created = db.conn.execute(
            "SELECT response_id, created_at FROM outbox ORDER BY id LIMIT 1"
        ).fetchone()
        # A correction of the same response: a second message, for version 2.
        db.conn.execute(
            "INSERT INTO outbox (message_id, kind, response_id, payload, created_at)"
            " VALUES ('v2', 'response.corrected', ?, '{}', ?)",
            [response_id, created],
        )
        db.conn.commit()
        queue.add_new(db, "hook", ("response.submitted", "response.corrected"), _now())
        taken = []
        while claim := queue.claim(db, "hook", "w", _now(), 60):
            taken.append(claim.message_id)
        assert "v2" not in taken and len(taken) == 4
        first = db.conn.execute(
            "SELECT message_id FROM outbox WHERE response_id = ? ORDER BY id LIMIT 1",
            [response_id],
        ).fetchone()[0]
        target = Target(**HOOK)
        claim = queue.Claim(first, "hook", 0, created)
        queue.finish(
            db,
            claim,
            config=target,
            worker="w",
            started=_now(),
            now=_now(),
            outcome="sent",
            detail="ok",
        )
        later, freed = _now() + dt.timedelta(seconds=61), []
        while claim := queue.claim(db, "hook", "w", later, 60):
            freed.append(claim.message_id)
        assert "v2" in freed and first not in freed


def test_failures_park_a_message_as_dead_and_a_retry_is_audited(app):
    target = Target(**HOOK, max_attempts=3, backoff_seconds=1)
    with app.app_context():
        db = get_db()
        queue.add_new(db, "hook", target.kinds, _now())
        moment = _now()
        statuses = []
        for _ in range(3):
            claim = queue.claim(db, "hook", "w", moment, 60)
            assert claim is not None
            statuses.append(
                queue.finish(
                    db,
                    claim,
                    config=target,
                    worker="w",
                    started=moment,
                    now=moment,
                    outcome="retry",
                    detail="HTTP 500",
                )
            )
            moment += dt.timedelta(hours=1)
            # Other messages are due too; only follow the first one.
            db.conn.execute(
                "UPDATE sync_deliveries SET next_attempt_at = '9999' WHERE message_id != ?",
                [claim.message_id],
            )
            db.conn.commit()
        assert statuses == ["pending", "pending", "dead"]
        (row,) = queue.dead_messages(db)
        assert "HTTP 500" in row["last_error"] and "gave up after 3 attempts" in row["last_error"]
        assert row["study_code"] == "BTB-0001"
        outcomes = [
            r[0]
            for r in db.conn.execute(
                "SELECT outcome FROM sync_attempts WHERE message_id = ? ORDER BY id",
                [row["message_id"]],
            )
        ]
        assert outcomes == ["retry", "retry", "dead"]
        assert (
            queue.retry_dead(
                db, target="hook", message_id=None, actor="dm@x.org", role="data_manager"
            )
            == 1
        )
        assert queue.claim(db, "hook", "w", moment, 60).message_id == row["message_id"]
        audit_row = db.conn.execute(
            "SELECT actor, action, entity_id, reason FROM audit ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert audit_row[:3] == ("dm@x.org", "sync.retry", row["message_id"])
        (summary,) = queue.summary(db, [target])
        assert summary["dead"] == 0 and summary["pending"] == 4
        assert "HTTP 500" in summary["last_error"]


def test_a_refusal_is_dead_at_once(app):
    target = Target(**HOOK)
    with app.app_context():
        db = get_db()
        queue.add_new(db, "hook", target.kinds, _now())
        claim = queue.claim(db, "hook", "w", _now(), 60)
        status = queue.finish(
            db,
            claim,
            config=target,
            worker="w",
            started=_now(),
            now=_now(),
            outcome="refused",
            detail="HTTP 400 bad field",
        )
        assert status == "dead"


def test_redcap_metadata_is_compared_field_by_field(app):
    with app.app_context():
        catalog = catalog_for(app)
    ours = expected_fields(catalog)
    theirs = [
        {
            "field_name": name,
            "form_name": f["form"],
            "field_type": f["type"],
            "select_choices_or_calculations": " | ".join(f"{c}, x" for c in sorted(f["codes"])),
            "text_validation_type_or_show_slider_number": f["validation"],
        }
        for name, f in ours.items()
    ]
    sent = set(ours)
    assert compare(ours, theirs, sent) == []
    radio = next(n for n, f in ours.items() if f["type"] == "radio")
    number = next(n for n, f in ours.items() if f["validation"] == "number")
    changed = []
    for field in theirs:
        if field["field_name"] == radio:
            field = {**field, "select_choices_or_calculations": "0, x"}
        if field["field_name"] == number:
            field = {**field, "text_validation_type_or_show_slider_number": "integer"}
        changed.append(field)
    gone = next(n for n in ours if n not in (radio, number, "study_code"))
    changed = [f for f in changed if f["field_name"] != gone]
    problems = compare(ours, changed, sent)
    assert any(p.startswith(f"{radio}: choices lack the codes") for p in problems)
    assert f"{number}: validation 'integer', expected number" in problems
    assert any(p.startswith(f"{gone}: missing in the REDCap project") for p in problems)
    assert len(problems) == 3


def test_redcap_errors_read_as_one_reason_per_problem():
    body = json.dumps(
        {
            "error": '"BTB-0001","odi_1","9","not a valid choice"\n'
            '"BTB-0001","odi_x","1","no such field"'
        }
    ).encode()
    text = redcap_errors(Reply(400, {}, body))
    assert text == ("BTB-0001 odi_1='9': not a valid choice; BTB-0001 odi_x='1': no such field")
    assert redcap_errors(Reply(403, {}, b'{"error": "You may not"}')) == "You may not"
    assert redcap_errors(Reply(400, {}, b"<html>proxy</html>")) == "<html>proxy</html>"
