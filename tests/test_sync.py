"""Sync over real HTTP on loopback: REDCap, FHIR and a webhook, with injected faults.

After recovery every submitted response has arrived at every target, none twice in effect.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.exports.redcap import write_dictionary, write_events, write_mappings
from pro_app.storage.contacts import cipher_for
from pro_app.sync.config import Target
from pro_app.sync.messages import load
from pro_app.sync.worker import Worker
from tests.factories import answer, complete, enrol, make_app

from .sync_servers import REDCAP_TOKEN, FakeFhir, FakeRedcap, WebhookReceiver

SECRET = "webhook-secret-for-tests"
BASE_URL = "https://pro.example.no"
FAST = {"timeout_seconds": 1.0, "backoff_seconds": 0.001, "backoff_max_seconds": 0.002}


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "sync.sqlite", BASE_URL=BASE_URL)
    with app.app_context():
        catalog = catalog_for(app)
    enrol(app, "BTB-0001")
    enrol(app, "BTB-0002", site="HUS", language="en")
    for code in ("BTB-0001", "BTB-0002"):
        for qid in catalog.study.timepoint("baseline").questionnaires:
            given = {}
            if code == "BTB-0002":  # a declined item in one response
                first = catalog.questionnaires[qid].items[0]
                if first.skippable:
                    given = {first.id: "declined"}
            answer(app, code, "baseline", qid, complete(catalog.questionnaires[qid], given))
    return app


@pytest.fixture
def servers(app):
    with app.app_context():
        catalog = catalog_for(app)
    with (
        FakeRedcap.from_catalog(catalog) as redcap,
        FakeFhir() as fhir,
        WebhookReceiver(SECRET) as hook,
    ):
        yield {"redcap": redcap, "fhir": fhir, "hook": hook}


def targets(servers, **options):
    settings = {**FAST, **options}
    return (
        Target(
            name="redcap",
            type="redcap",
            url=servers["redcap"].endpoint,
            token=REDCAP_TOKEN,
            **settings,
        ),
        Target(name="fhir", type="fhir", url=servers["fhir"].endpoint, **settings),
        Target(
            name="hook", type="webhook", url=servers["hook"].endpoint, secret=SECRET, **settings
        ),
    )


def messages(app) -> list[dict]:
    with app.app_context():
        found = (
            get_db()
            .conn.execute(
                "SELECT o.message_id, p.study_code, a.timepoint, r.uuid, r.questionnaire"
                " FROM outbox o JOIN responses r ON r.id = o.response_id"
                " JOIN assessments a ON a.id = r.assessment_id"
                " JOIN participants p ON p.id = a.participant_id"
            )
            .fetchall()
        )
    return [
        dict(zip(("message_id", "code", "timepoint", "uuid", "qid"), f, strict=True)) for f in found
    ]


def drain(app, chosen, passes=40):
    """Run passes until nothing is pending (or passes run out); return the last results."""
    with app.app_context():
        worker = Worker(get_db(), catalog_for(app), chosen, BASE_URL)
        results = []
        for _ in range(passes):
            results = worker.run_once()
            waiting = (
                get_db()
                .conn.execute("SELECT COUNT(*) FROM sync_deliveries WHERE status = 'pending'")
                .fetchone()[0]
            )
            if not waiting:
                break
        return results


def status_of(app) -> dict:
    with app.app_context():
        return {
            (m, t): s
            for m, t, s in get_db().conn.execute(
                "SELECT message_id, target, status FROM sync_deliveries"
            )
        }


def assert_all_arrived_once(app, servers):
    sent = messages(app)
    assert len(sent) == 14
    assert set(status_of(app).values()) == {"sent"}
    assert len(status_of(app)) == 3 * len(sent)
    redcap, fhir, hook = servers["redcap"], servers["fhir"], servers["hook"]
    # REDCap: every participant's baseline event holds every form, complete.
    forms = {f"{q}_complete" for q in ("odi", "nrs", "rmdq", "hscl25", "fabq", "shc")}
    for code in ("BTB-0001", "BTB-0002"):
        row = redcap.stored(code, "baseline_arm_1")
        assert row is not None and {row[f] for f in forms} == {"2"}, row
        assert redcap.stored(code, "screening_arm_1")["site"] in ("OUS", "HUS")
    # FHIR: one resource per response, whatever was resent.
    for message in sent:
        key = f"{BASE_URL}/fhir/response-id|{message['uuid']}"
        assert len(fhir.matching(key)) == 1
        assert fhir.changes(key) >= 1
    assert len(fhir.resources()) == len(sent)
    # Webhook: every message id once in effect.
    assert set(hook.messages()) == {m["message_id"] for m in sent}
    assert not hook.conflicts()
    for server in servers.values():
        assert not server.errors


def test_every_response_reaches_every_target(app, servers):
    results = drain(app, targets(servers))
    assert [r.sent for r in results] in ([14, 14, 14], [0, 0, 0])
    assert_all_arrived_once(app, servers)
    # What REDCap holds is what we hold: reconcile reads it back and finds no difference.
    runner = app.test_cli_runner()
    app.config["SYNC_TARGETS"] = [t.model_dump() for t in targets(servers)]
    out = runner.invoke(args=["sync", "reconcile"])
    assert out.exit_code == 0, out.output
    lines = [x for x in out.output.splitlines() if "\t" in x]
    assert len(lines) == 3 * 14
    assert all("\tacknowledged\t" in x for x in lines), out.output
    assert sum("matches the target" in x for x in lines) == 28  # REDCap and FHIR read back
    # Each REDCap form row matches the values of the record export.
    with app.app_context():
        worker = Worker(get_db(), catalog_for(app), targets(servers), BASE_URL)
        for message in messages(app):
            loaded = load(get_db(), catalog_for(app), message["message_id"])
            ours = worker.adapters["redcap"].rows(loaded)[-1]
            held = servers["redcap"].stored(message["code"], "baseline_arm_1")
            for field, value in ours.items():
                if field not in ("study_code", "redcap_event_name") and value != "":
                    assert held[field] == value, (message, field)


def test_the_webhook_signature_is_the_documented_one(app, servers):
    drain(app, [targets(servers)[2]])
    hook = servers["hook"]
    (request, *_) = hook.requests(method="POST")
    body = json.loads(request.body)
    assert body["message_id"] == request.header("X-Message-Id")
    assert set(body["response"]) >= {"answers", "scores", "study_code", "questionnaire"}
    assert hook.rejections == []


def test_a_redcap_project_that_does_not_match_is_refused_with_a_report(app):
    with app.app_context():
        catalog = catalog_for(app)
    dictionary, events, mappings = io.StringIO(), io.StringIO(), io.StringIO()
    write_dictionary(dictionary, catalog)
    write_events(events, catalog.study)
    write_mappings(mappings, catalog.study, catalog.questionnaires)
    lines = dictionary.getvalue().splitlines(keepends=True)
    removed = lines[5].split(",")[0]
    changed = "".join(lines[:5] + lines[6:])
    with FakeRedcap(changed, events.getvalue(), mappings.getvalue()) as redcap:
        target = Target(
            name="redcap", type="redcap", url=redcap.endpoint, token=REDCAP_TOKEN, **FAST
        )
        app.config["SYNC_TARGETS"] = [target.model_dump()]
        out = app.test_cli_runner().invoke(args=["sync", "run"])
        assert out.exit_code == 1
        assert f"{removed}: missing in the REDCap project" in out.output
        assert redcap.requests("record:import") == []
        status = app.test_cli_runner().invoke(args=["sync", "status"])
        assert "does not match our data dictionary" in status.output
        assert "pending 14" in status.output


def test_a_wrong_redcap_token_is_reported(app, servers):
    target = Target(
        name="redcap", type="redcap", url=servers["redcap"].endpoint, token="0" * 32, **FAST
    )
    results = drain(app, [target], passes=1)
    assert "permissions" in results[0].error
    assert servers["redcap"].requests("record:import") == []


FAULTS = [
    ("down", {}),
    ("status500", {"times": 3}),
    ("status503", {"times": 2}),
    ("timeout", {"seconds": 1.5, "times": 2}),
    ("slow", {"seconds": 0.3, "times": 3}),
    ("malformed", {"times": 2}),
    ("malformed", {"times": 1, "apply": True}),
    ("drop", {"times": 2}),
    ("reset", {"times": 1}),
    ("process_then_drop", {"times": 3}),
    ("duplicate_ack", {"times": 2}),
    ("duplicate_delivery", {"times": 2}),
]


@pytest.mark.parametrize(
    ("kind", "options"), FAULTS, ids=[f"{k}-{n}" for n, (k, _) in enumerate(FAULTS)]
)
def test_faults_on_every_target_end_with_everything_delivered_once(app, servers, kind, options):
    for name, server in servers.items():
        if kind == "down":
            server.down()
        else:
            label = {"redcap": "record:import", "fhir": "update", "hook": None}[name]
            server.fail_next(kind, only=label, **options)
    first = drain(app, targets(servers), passes=2)
    if kind == "down":
        assert all(r.error for r in first)
        for server in servers.values():
            server.up()
    drain(app, targets(servers))
    assert_all_arrived_once(app, servers)
    if kind in ("process_then_drop", "duplicate_delivery"):
        assert servers["hook"].duplicates()  # it came twice; the receiver kept it once


def test_a_refusal_is_dead_visible_and_can_be_retried(app, servers):
    servers["hook"].fail_next("status400", times=1)
    drain(app, targets(servers), passes=3)
    dead = [k for k, s in status_of(app).items() if s == "dead"]
    assert len(dead) == 1 and dead[0][1] == "hook"
    app.config["SYNC_TARGETS"] = [t.model_dump() for t in targets(servers)]
    runner = app.test_cli_runner()
    status = runner.invoke(args=["sync", "status"])
    assert "dead 1" in status.output and "HTTP 400" in status.output
    reconcile = runner.invoke(args=["sync", "reconcile", "--no-read-back"])
    assert reconcile.exit_code == 1 and "\tdead\t" in reconcile.output
    refused = runner.invoke(args=["sync", "retry", "--target", "hook", "--by", "nobody@x.org"])
    assert refused.exit_code != 0 and "not an active data manager" in refused.output
    with app.app_context():
        from pro_app.staff import accounts

        accounts.add(
            get_db(),
            catalog_for(app).study,
            cipher_for(app.config),
            email="dm@example.org",
            role="data_manager",
        )
    again = runner.invoke(args=["sync", "retry", "--target", "hook", "--by", "dm@example.org"])
    assert again.exit_code == 0 and "1 dead message" in again.output
    drain(app, targets(servers))
    assert_all_arrived_once(app, servers)


def test_configuration_problems_are_named_by_the_commands(app):
    runner = app.test_cli_runner()
    app.config["SYNC_TARGETS"] = ""
    out = runner.invoke(args=["sync", "run"])
    assert out.exit_code != 0 and "no sync targets are configured" in out.output
    app.config["SYNC_TARGETS"] = '[{"name": "x", "type": "sftp", "url": "http://h"}]'
    out = runner.invoke(args=["sync", "status"])
    assert out.exit_code != 0 and "PRO_SYNC_TARGETS[0].type" in out.output


# Worker processes: SIGKILL in the middle of a send, SIGTERM, two workers at once ---------

ROOT = Path(__file__).resolve().parent.parent


def start_worker(app, chosen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRO_")}
    env.update(
        PRO_DATABASE=app.config["DATABASE"],
        PRO_SECRET_KEY="sync-test-secret-key-long-enough-for-the-start-checks",
        PRO_CONTACT_KEY=Fernet.generate_key().decode(),
        PRO_BASE_URL=BASE_URL,
        PRO_SYNC_TARGETS=json.dumps([t.model_dump() for t in chosen]),
        no_proxy="*",
    )
    command = [sys.executable, "-m", "flask", "--app", "pro_app", "sync", "worker"]
    return subprocess.Popen(
        [*command, "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def all_sent(app) -> bool:
    found = status_of(app)
    return len(found) == 3 * 14 and set(found.values()) == {"sent"}


def stop(process) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    return err


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["redcap", "fhir", "hook"])
def test_a_worker_killed_mid_send_loses_and_doubles_nothing(app, servers, victim):
    label = {"redcap": "record:import", "fhir": "update", "hook": None}[victim]
    servers[victim].fail_next("hold", only=label, seconds=60)
    chosen = targets(servers)
    first = start_worker(app, chosen)
    try:
        assert wait_until(lambda: servers[victim].held(), 30), first.stderr
        first.kill()  # SIGKILL while the request is in the target's hands
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        first.stdout.close()
        first.stderr.close()
    servers[victim].release()  # the target applies it; nobody hears the reply
    second = start_worker(app, chosen)
    try:
        assert wait_until(lambda: all_sent(app), 60)
    finally:
        err = stop(second)
    assert "sync worker stopped" in err
    assert_all_arrived_once(app, servers)


@pytest.mark.slow
def test_two_workers_never_send_the_same_message_at_once(app, servers):
    for server in servers.values():
        server.fail_always("slow", seconds=0.1)
    chosen = targets(servers)
    workers = [start_worker(app, chosen) for _ in range(2)]
    try:
        assert wait_until(lambda: all_sent(app), 90)
    finally:
        for process in workers:
            stop(process)
    assert_all_arrived_once(app, servers)
    for message in messages(app):
        assert servers["fhir"].received(f"{BASE_URL}/fhir/response-id|{message['uuid']}") == 1
        assert servers["hook"].received(message["message_id"]) == 1
    with app.app_context():
        senders = {
            row[0]
            for row in get_db().conn.execute(
                "SELECT DISTINCT worker FROM sync_attempts WHERE outcome = 'sent'"
            )
        }
    assert len(senders) == 2  # both did work


# The data manager's sync page ------------------------------------------------------------


def test_the_sync_page_shows_each_target_and_retries_dead_messages(app, servers):
    from tests.test_staff import account, sign_in

    app.config["WTF_CSRF_ENABLED"] = False
    app.config["SYNC_TARGETS"] = [t.model_dump() for t in targets(servers)]
    servers["hook"].fail_next("status422", times=1)
    drain(app, targets(servers), passes=3)
    password, secret = account(app, "dm@example.org", "data_manager")
    client = sign_in(app, "dm@example.org", password, secret)
    page = client.get("/staff/sync")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for name in ("redcap", "fhir", "hook"):
        assert f"{name} (" in text
    assert "HTTP 422" in text and "BTB-000" in text
    assert "kari" not in text  # nothing personal beyond the study code
    with app.app_context():
        (dead,) = [m for (m, t), s in status_of(app).items() if s == "dead"]
    retried = client.post("/staff/sync/retry", data={"target": "hook", "message_id": dead})
    assert retried.status_code == 302
    assert status_of(app)[(dead, "hook")] == "pending"
    with app.app_context():
        actor, action = (
            get_db()
            .conn.execute("SELECT actor, action FROM audit ORDER BY id DESC LIMIT 1")
            .fetchone()
        )
    assert (actor, action) == ("dm@example.org", "sync.retry")
    assert client.post("/staff/sync/retry", data={"target": "nope"}).status_code == 302
    drain(app, targets(servers))
    assert_all_arrived_once(app, servers)


def test_reconcile_finds_what_a_target_changed_or_lost(app, servers):
    drain(app, targets(servers))
    first = messages(app)[0]
    # Someone edits a form in REDCap by hand, and a FHIR resource disappears.
    redcap = servers["redcap"]
    with app.app_context():
        loaded = load(get_db(), catalog_for(app), first["message_id"])
        worker = Worker(get_db(), catalog_for(app), targets(servers), BASE_URL)
        ours = worker.adapters["redcap"].rows(loaded)[-1]
    field = next(
        name
        for name, value in ours.items()
        if name not in ("study_code", "redcap_event_name") and value not in ("", "2")
    )
    with redcap._lock:
        redcap.data[(first["code"], "baseline_arm_1")][field] = "999"
    fhir = servers["fhir"]
    key = f"{BASE_URL}/fhir/response-id|{first['uuid']}"
    with fhir._lock:
        for resource_id, history in list(fhir.history.items()):
            if history[-1]["identifier"]["value"] == first["uuid"]:
                del fhir.history[resource_id]
    assert fhir.matching(key) == []
    app.config["SYNC_TARGETS"] = [t.model_dump() for t in targets(servers)]
    out = app.test_cli_runner().invoke(args=["sync", "reconcile", "--json"])
    assert out.exit_code == 1
    lines = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
    differs = {
        (x["target"], x["message_id"]): x["detail"] for x in lines if x["state"] == "differs"
    }
    assert set(differs) == {("redcap", first["message_id"]), ("fhir", first["message_id"])}
    assert field in differs[("redcap", first["message_id"])]
    assert "does not hold it" in differs[("fhir", first["message_id"])]
