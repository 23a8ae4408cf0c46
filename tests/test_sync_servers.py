"""The loopback servers the sync tests deliver to: REDCap API, FHIR endpoint, webhook receiver.

Everything goes over real HTTP on 127.0.0.1 (urllib, http.client or a raw socket), with the
fault kinds each server can inject.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from pro_app.exports import fhir as fhir_export
from pro_app.exports import redcap as redcap_export

from .sync_servers import (
    NO_PERMISSION,
    REDCAP_COLUMNS,
    REDCAP_TOKEN,
    FakeFhir,
    FakeRedcap,
    WebhookReceiver,
    webhook_headers,
)
from .test_export_fhir import build_dataset, export_records

SECRET = "webhook-test-secret"
SYSTEM = "https://pro.example.no/fhir/response-id"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
SCREENING, WEEK1 = "screening_arm_1", "week1_arm_1"
# What a client sees when the connection ends without a reply (urllib wraps only some).
CUT = (urllib.error.URLError, http.client.HTTPException, ConnectionError)


# Clients -------------------------------------------------------------------------------


def call(method, url, body=None, headers=None, timeout=5.0):
    """(status, headers, body) of any status; transport errors are raised."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=timeout) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def redcap_call(server, token=REDCAP_TOKEN, timeout=5.0, **fields):
    form = {"token": token, "format": "json", "returnFormat": "json", **fields}
    if isinstance(form.get("data"), list):
        form["data"] = json.dumps(form["data"])
    status, _, body = call(
        "POST",
        server.endpoint,
        urllib.parse.urlencode(form).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
        timeout,
    )
    return status, json.loads(body)


def fhir_put(server, resource, identifier=None, headers=None, timeout=5.0):
    identifier = identifier or f"{SYSTEM}|{resource['identifier']['value']}"
    url = f"{server.endpoint}/QuestionnaireResponse?identifier=" + urllib.parse.quote(
        identifier, safe=""
    )
    status, head, body = call(
        "PUT",
        url,
        json.dumps(resource).encode(),
        {"Content-Type": "application/fhir+json", **(headers or {})},
        timeout,
    )
    return status, head, json.loads(body) if body else None


def deliver(server, payload, message_id, timestamp=None, secret=SECRET, timeout=5.0):
    body = json.dumps(payload).encode()
    headers = webhook_headers(secret, body, message_id, timestamp)
    status, _, answer = call("POST", server.endpoint, body, headers, timeout)
    return status, json.loads(answer)


def raw_exchange(server, data: bytes, timeout=5.0) -> bytes:
    """Send bytes on one connection and read until the server closes it."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# Fixtures ------------------------------------------------------------------------------


@pytest.fixture
def redcap(catalog):
    with FakeRedcap.from_catalog(catalog) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def fhir():
    with FakeFhir() as server:
        yield server
    assert server.errors == []


@pytest.fixture
def hook():
    with WebhookReceiver(SECRET) as server:
        yield server
    assert server.errors == []


def written(write, *args) -> str:
    stream = io.StringIO(newline="")
    write(stream, *args)
    return stream.getvalue()


def participant(code="BTB-0001", site="OUS"):
    return {
        "study_code": code,
        "redcap_event_name": SCREENING,
        "site": site,
        "participant_complete": "2",
    }


def nrs(code="BTB-0001", event=SCREENING, **values):
    row = {"study_code": code, "redcap_event_name": event, "nrs_complete": "2"}
    return row | {"nrs_current": "6", "nrs_worst": "8", "nrs_usual": "5"} | values


def response(value="3f1d6c8e-0000-4000-8000-000000000001", status="completed", answer=6):
    return {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": SYSTEM, "value": value},
        "questionnaire": "https://pro.example.no/fhir/Questionnaire/nrs|1.0",
        "status": status,
        "subject": {
            "identifier": {"system": "https://pro.example.no/fhir/study-code", "value": "x"}
        },
        "authored": "2024-05-01T10:00:00Z",
        "item": [{"linkId": "nrs_current", "answer": [{"valueInteger": answer}]}],
    }


def error_lines(error: str) -> list[list[str]]:
    return [next(csv.reader([line])) for line in error.splitlines()]


# REDCap ----------------------------------------------------------------------------------


def test_redcap_metadata_events_and_mapping_are_our_files(redcap, catalog):
    status, metadata = redcap_call(redcap, content="metadata")
    assert status == 200
    dictionary = list(csv.reader(io.StringIO(written(redcap_export.write_dictionary, catalog))))
    assert dictionary[0] == list(REDCAP_COLUMNS)
    assert [list(field.values()) for field in metadata] == dictionary[1:]
    assert list(metadata[0]) == list(REDCAP_COLUMNS.values())
    assert metadata[0]["field_name"] == "study_code" and redcap.record_id == "study_code"
    _, only_nrs = redcap_call(redcap, content="metadata", **{"forms[0]": "nrs"})
    assert {f["form_name"] for f in only_nrs} == {"nrs"}

    status, events = redcap_call(redcap, content="event")
    timepoints = catalog.study.timepoints
    assert [e["unique_event_name"] for e in events] == [f"{t.id}_arm_1" for t in timepoints]
    assert {e["arm_num"] for e in events} == {1}
    _, mapping = redcap_call(redcap, content="formEventMapping")
    text = written(redcap_export.write_mappings, catalog.study, catalog.questionnaires)
    expected = list(csv.DictReader(io.StringIO(text)))
    assert [(m["unique_event_name"], m["form"]) for m in mapping] == [
        (m["unique_event_name"], m["form"]) for m in expected
    ]
    _, project = redcap_call(redcap, content="project")
    assert project["is_longitudinal"] == 1 and project["project_title"]
    _, names = redcap_call(redcap, content="exportFieldNames")
    assert {
        "original_field_name": "bg_aggravating",
        "choice_value": "1",
        "export_field_name": "bg_aggravating___1",
    } in names


def test_redcap_import_is_counted_and_exported(redcap):
    status, answer = redcap_call(
        redcap,
        content="record",
        action="import",
        type="flat",
        overwriteBehavior="normal",
        returnContent="count",
        data=[participant(), nrs(), nrs(event=WEEK1, nrs_usual="")],
    )
    assert (status, answer) == (200, {"count": 1})
    assert redcap.imports("BTB-0001", SCREENING) == 1 and redcap.imports("BTB-0001", WEEK1) == 1
    status, rows = redcap_call(
        redcap,
        content="record",
        action="export",
        type="flat",
        **{"records[0]": "BTB-0001", "events[0]": SCREENING},
    )
    assert status == 200 and len(rows) == 1
    row = rows[0]
    assert row["study_code"] == "BTB-0001" and row["redcap_event_name"] == SCREENING
    assert (row["site"], row["nrs_current"], row["nrs_complete"]) == ("OUS", "6", "2")
    assert row["odi1"] == "" and row["odi_complete"] == "0"  # designated, no data yet
    assert row["bg_aggravating___1"] == "" and row["background_complete"] == ""  # not designated
    assert all(isinstance(v, str) for v in row.values())
    _, both = redcap_call(redcap, content="record", action="export", records="BTB-0001")
    assert [r["redcap_event_name"] for r in both] == [SCREENING, WEEK1]
    _, some = redcap_call(redcap, content="record", action="export", **{"fields[0]": "nrs_worst"})
    assert list(some[0]) == ["study_code", "redcap_event_name", "nrs_worst"]

    # The same import again is a resend: counted, but it changes nothing.
    status, ids = redcap_call(
        redcap, content="record", returnContent="ids", data=[participant(), nrs()]
    )
    assert (status, ids) == (200, ["BTB-0001"])
    assert redcap.imports("BTB-0001", SCREENING) == 2
    assert redcap.changes("BTB-0001", SCREENING) == 1
    assert redcap.resends() == {("BTB-0001", SCREENING): 1}
    assert set(redcap.effects()) == {("BTB-0001", SCREENING), ("BTB-0001", WEEK1)}


def test_redcap_refuses_unknown_fields_codes_events_and_forms(redcap):
    status, answer = redcap_call(redcap, content="record", data=[nrs(nrs_colour="red")])
    assert status == 400 and "nrs_colour" in answer["error"]
    bad = [
        participant(site="XYZ"),  # not a site code
        nrs(nrs_current="11"),  # not on the scale
        {"study_code": "BTB-0001", "redcap_event_name": WEEK1, "odi1": "2"},  # odi not at week1
        {"study_code": "BTB-0001", "redcap_event_name": "week99_arm_1", "nrs_current": "1"},
        nrs(event=WEEK1, nrs_complete="3"),
        {"study_code": "", "redcap_event_name": SCREENING},
    ]
    status, answer = redcap_call(redcap, content="record", data=[nrs(code="BTB-0002"), *bad])
    assert status == 400
    lines = error_lines(answer["error"])
    assert all(len(line) == 4 for line in lines), lines
    found = {(record, field, value) for record, field, value, _ in lines}
    assert found == {
        ("BTB-0001", "site", "XYZ"),
        ("BTB-0001", "nrs_current", "11"),
        ("BTB-0001", "odi1", "2"),
        ("BTB-0001", "redcap_event_name", "week99_arm_1"),
        ("BTB-0001", "nrs_complete", "3"),
        ("", "study_code", ""),
    }
    assert "not designated" in next(why for _, f, _, why in lines if f == "odi1")
    assert redcap.effects() == {}  # a refused import stores nothing, not even its good rows
    assert redcap.imports("BTB-0002", SCREENING) == 0


def test_redcap_checks_values_against_validation(redcap):
    base = {"study_code": "BTB-0001", "redcap_event_name": "baseline_arm_1"}
    cases = {
        "bg_age": ["abc", "1.5", "999"],
        "bg_pain_start": ["2024-02-30", "01.02.2024"],
        "bg_aggravating___1": ["2"],
        "odi": ["much"],
        "hscl_case": ["yes"],
    }
    for name, values in cases.items():
        for value in values:
            status, answer = redcap_call(redcap, content="record", data=[base | {name: value}])
            assert status == 400, (name, value)
            [[_, field, given, _why]] = error_lines(answer["error"])
            assert (field, given) == (name, value)
    good = base | {
        "bg_age": "40",
        "bg_pain_start": "2024-02-29",
        "bg_aggravating___1": "1",
        "hscl_case": "0",
        "hscl_total": "1.52",
    }
    assert redcap_call(redcap, content="record", data=[good])[0] == 200


def test_redcap_token_and_call_shape(redcap):
    assert redcap_call(redcap, token="F" * 32, content="metadata") == (
        403,
        {"error": NO_PERMISSION},
    )
    assert redcap_call(redcap, token="", content="record", data=[nrs()])[0] == 403
    assert redcap_call(redcap, content="metadata", format="xml")[0] == 400
    assert redcap_call(redcap, content="nonsense")[0] == 400
    assert redcap_call(redcap, content="record", data="[{not json")[0] == 400
    assert redcap_call(redcap, content="record", type="eav", data=[nrs()])[0] == 400
    assert redcap.effects() == {}


def test_redcap_normal_overwrite_keeps_stored_values(redcap):
    assert redcap_call(redcap, content="record", data=[nrs(nrs_worst="9")])[0] == 200
    blank = nrs(nrs_worst="", nrs_usual="")
    assert redcap_call(redcap, content="record", overwriteBehavior="normal", data=[blank])[0] == 200
    assert redcap.stored("BTB-0001", SCREENING)["nrs_worst"] == "9"
    assert redcap.changes("BTB-0001", SCREENING) == 1  # the blank resend changed nothing
    status, _ = redcap_call(redcap, content="record", overwriteBehavior="overwrite", data=[blank])
    assert status == 200 and "nrs_worst" not in redcap.stored("BTB-0001", SCREENING)


def test_redcap_project_files_are_checked(catalog):
    dictionary = written(redcap_export.write_dictionary, catalog)
    events = written(redcap_export.write_events, catalog.study)
    mappings = written(redcap_export.write_mappings, catalog.study, catalog.questionnaires)
    FakeRedcap(dictionary, events, mappings)  # ours are fine
    broken = dictionary.replace(",radio,", ",radiobutton,", 1)
    with pytest.raises(ValueError, match="unknown field type 'radiobutton'"):
        FakeRedcap(broken, events, mappings)
    with pytest.raises(ValueError, match="form 'ghost' is not in the dictionary"):
        FakeRedcap(dictionary, events, mappings + "1,screening_arm_1,ghost\r\n")
    with pytest.raises(ValueError, match="REDCap would name it"):
        FakeRedcap(dictionary, events.replace(",screening_arm_1,", ",screen_arm_2,"), mappings)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    app = build_dataset(tmp_path_factory.mktemp("sync-servers") / "s.sqlite")
    return export_records(app, include_partial=True)


def test_our_redcap_records_and_fhir_responses_are_accepted(dataset):
    """The exporter's records file imports cleanly, and its responses pass FakeFhir."""
    catalog, found = dataset
    rows = list(csv.DictReader(io.StringIO(written(redcap_export.write_records, found, catalog))))
    with FakeRedcap.from_catalog(catalog) as server:
        status, answer = redcap_call(server, content="record", data=rows)
        assert (status, answer) == (200, {"count": 3}), answer
        _, exported = redcap_call(server, content="record", action="export")
        assert server.errors == []
    assert len(exported) == len(rows)
    held = {(r["study_code"], r["redcap_event_name"]): r for r in exported}
    for row in rows:
        back = held[(row["study_code"], row["redcap_event_name"])]
        assert {k: v for k, v in row.items() if v} == {k: back[k] for k, v in row.items() if v}

    bundle = fhir_export.responses_bundle(found, catalog, "https://pro.example.no/")
    with FakeFhir() as server:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            status, _, body = fhir_put(server, resource, f"{SYSTEM}|{resource['id']}")
            assert status == 201, body
        assert server.errors == [] and server.refusals == []
        assert len(server.resources()) == len(bundle["entry"])


# FHIR -----------------------------------------------------------------------------------


def test_fhir_capability_statement(fhir):
    status, headers, body = call("GET", f"{fhir.endpoint}/metadata")
    assert status == 200 and headers["Content-Type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(json.loads(body))
    assert statement.rest[0].resource[0].type == "QuestionnaireResponse"


def test_fhir_conditional_update_keeps_one_resource(fhir):
    key = f"{SYSTEM}|3f1d6c8e-0000-4000-8000-000000000001"
    status, headers, created = fhir_put(fhir, response())
    assert status == 201
    rid = created["id"]
    assert headers["Location"].endswith(f"/QuestionnaireResponse/{rid}/_history/1")
    assert created["meta"]["versionId"] == "1"
    status, headers, updated = fhir_put(fhir, response(answer=7))
    assert status == 200 and updated["id"] == rid and updated["meta"]["versionId"] == "2"
    assert headers["ETag"] == 'W/"2"'
    assert len(fhir.matching(key)) == 1 and fhir.version(key) == 2
    assert fhir.received(key) == 2 and fhir.changes(key) == 2
    fhir_put(fhir, response(answer=7))  # a resend: a new version with the same content
    assert fhir.received(key) == 3 and fhir.changes(key) == 2 and list(fhir.effects()) == [key]

    status, _, body = call(
        "GET", f"{fhir.endpoint}/QuestionnaireResponse?identifier={urllib.parse.quote(key)}"
    )
    bundle = json.loads(body)
    assert (status, bundle["type"], bundle["total"]) == (200, "searchset", 1)
    assert bundle["entry"][0]["resource"]["item"][0]["answer"] == [{"valueInteger": 7}]
    status, _, body = call("GET", f"{fhir.endpoint}/QuestionnaireResponse/{rid}/_history/1")
    assert status == 200 and json.loads(body)["item"][0]["answer"] == [{"valueInteger": 6}]
    QuestionnaireResponse.model_validate(fhir.resource(key))
    assert call("GET", f"{fhir.endpoint}/QuestionnaireResponse/nope")[0] == 404


def test_fhir_refuses_invalid_and_ambiguous_writes(fhir):
    no_status = response()
    del no_status["status"]
    not_integer = response()
    not_integer["item"][0]["answer"] = [{"valueInteger": "six"}]
    for broken, named in ((no_status, "status"), (not_integer, "valueInteger")):
        status, _, body = fhir_put(fhir, broken)
        assert status == 400
        OperationOutcome.model_validate(body)
        assert named in " ".join(i["diagnostics"] for i in body["issue"])
    assert fhir_put(fhir, response(status="done"))[0] == 400
    assert fhir_put(fhir, response(), identifier=f"{SYSTEM}|another")[0] == 400
    status, _, _ = call(
        "PUT",
        f"{fhir.endpoint}/QuestionnaireResponse?identifier=x",
        b"{}",
        {"Content-Type": "text/plain"},
    )
    assert status == 415
    assert fhir.resources() == []
    fhir.seed(response(value="twice"))
    fhir.seed(response(value="twice"))
    assert fhir_put(fhir, response(value="twice"))[0] == 412


def test_fhir_bearer_token():
    with FakeFhir(token="s3cret") as server:
        assert fhir_put(server, response())[0] == 401
        status, _, _ = fhir_put(server, response(), headers={"Authorization": "Bearer s3cret"})
        assert status == 201


# Webhook --------------------------------------------------------------------------------


def test_webhook_signatures_timestamps_and_duplicates(hook):
    assert deliver(hook, {"n": 1}, "m-1") == (200, {"received": "m-1"})
    status, answer = deliver(hook, {"n": 2}, "m-2", secret="wrong")
    assert status == 401 and "error" in answer
    status, _ = deliver(hook, {"n": 3}, "m-3", timestamp=int(time.time()) - 301)
    assert status == 401
    assert deliver(hook, {"n": 4}, "m-4", timestamp=int(time.time()) + 200)[0] == 200
    body = json.dumps({"n": 5}).encode()
    headers = webhook_headers(SECRET, body, "m-5")
    tampered = call("POST", hook.endpoint, body.replace(b"5", b"6"), headers)
    assert tampered[0] == 401
    no_id = {k: v for k, v in headers.items() if k != "X-Message-Id"}
    assert call("POST", hook.endpoint, body, no_id)[0] == 401
    assert deliver(hook, {"n": 1}, "m-1") == (200, {"received": "m-1"})  # a duplicate
    assert hook.received("m-1") == 2 and hook.duplicates() == 1
    assert hook.duplicate_ids() == ["m-1"] and hook.conflicts() == []
    assert hook.messages() == {"m-1": {"n": 1}, "m-4": {"n": 4}}
    deliver(hook, {"n": "other"}, "m-1")
    assert hook.conflicts() == ["m-1"]


# Faults ---------------------------------------------------------------------------------


def test_status_faults_reply_without_effect(hook):
    hook.fail_next("status500")
    hook.fail_next("status503")
    hook.fail_next("status429")
    assert deliver(hook, {}, "a")[0] == 500
    status, headers, _ = call("POST", hook.endpoint, b"{}", webhook_headers(SECRET, b"{}", "a"))
    assert (status, headers["Retry-After"]) == (503, "1")
    assert deliver(hook, {}, "a")[0] == 429
    assert hook.received("a") == 0
    assert deliver(hook, {}, "a")[0] == 200 and hook.received("a") == 1
    assert [r.fault for r in hook.requests()] == ["status500", "status503", "status429", None]


def test_timeout_raises_in_the_client_and_the_effect_arrives_late(hook):
    hook.fail_next("timeout", seconds=1.0)
    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        deliver(hook, {}, "late", timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert not hook.idle()
    assert hook.received("late") == 0
    hook.wait_for(lambda s: s.received("late") == 1, timeout=5)
    hook.fail_next("timeout", seconds=0.4, apply=False)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        deliver(hook, {}, "never", timeout=0.1)
    hook.wait_idle()
    last = hook.requests()[-1]
    assert (last.fault, last.applied, last.status) == ("timeout", 0, None)
    assert hook.received("never") == 0


def test_slow_replies_normally(hook):
    hook.fail_next("slow", seconds=0.3)
    started = time.monotonic()
    assert deliver(hook, {}, "s", timeout=5)[0] == 200
    assert time.monotonic() - started >= 0.3 and hook.received("s") == 1


def test_malformed_replies(hook, redcap):
    hook.fail_next("malformed")
    status, headers, body = call("POST", hook.endpoint, b"{}", webhook_headers(SECRET, b"{}", "x"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert body.startswith(b"<!DOCTYPE html>") and hook.received("x") == 0
    redcap.fail_next("malformed", apply=True)
    form = {
        "token": REDCAP_TOKEN,
        "format": "json",
        "content": "record",
        "data": json.dumps([nrs()]),
    }
    status, _, body = call(
        "POST",
        redcap.endpoint,
        urllib.parse.urlencode(form).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)
    assert redcap.imports("BTB-0001", SCREENING) == 1  # the import happened


def test_drop_and_reset_give_connection_errors_without_effect(hook):
    hook.fail_next("drop")
    with pytest.raises(CUT):
        deliver(hook, {}, "d")
    hook.fail_next("reset")
    with pytest.raises(CUT):
        deliver(hook, {}, "d")
    assert hook.received("d") == 0
    assert [(r.fault, r.status, r.applied) for r in hook.requests()] == [
        ("drop", None, 0),
        ("reset", None, 0),
    ]
    assert deliver(hook, {}, "d")[0] == 200


def test_process_then_drop_keeps_the_effect_but_loses_the_ack(hook, redcap):
    hook.fail_next("process_then_drop")
    with pytest.raises(CUT):
        deliver(hook, {"n": 1}, "lost-ack")
    assert hook.received("lost-ack") == 1
    assert deliver(hook, {"n": 1}, "lost-ack")[0] == 200  # the sender's resend
    assert hook.messages() == {"lost-ack": {"n": 1}} and hook.duplicates() == 1

    redcap.fail_next("process_then_drop", only="record:import")
    assert redcap_call(redcap, content="metadata")[0] == 200  # not an import: untouched
    with pytest.raises(CUT):
        redcap_call(redcap, content="record", data=[nrs()])
    assert redcap.imports("BTB-0001", SCREENING) == 1
    assert redcap_call(redcap, content="record", data=[nrs()])[0] == 200
    assert (redcap.imports("BTB-0001", SCREENING), redcap.changes("BTB-0001", SCREENING)) == (2, 1)


def test_duplicate_ack_and_duplicate_delivery(hook, fhir):
    hook.fail_next("duplicate_ack")
    body = b'{"n": 1}'
    head = "".join(f"{k}: {v}\r\n" for k, v in webhook_headers(SECRET, body, "two-acks").items())
    wire = raw_exchange(
        hook,
        (f"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n").encode()
        + body,
    )
    assert wire.count(b"HTTP/1.1 200 OK") == 2 and wire.count(b'{"received": "two-acks"}') == 2
    assert hook.received("two-acks") == 1

    hook.fail_next("duplicate_delivery")
    assert deliver(hook, {"n": 2}, "twice") == (200, {"received": "twice"})
    assert hook.received("twice") == 2 and hook.duplicate_ids() == ["twice"]
    assert list(hook.messages()) == ["two-acks", "twice"]

    fhir.fail_next("duplicate_delivery")
    status, _, first = fhir_put(fhir, response())
    key = f"{SYSTEM}|{response()['identifier']['value']}"
    assert status == 201 and fhir.version(key) == 2 and len(fhir.matching(key)) == 1


def test_hold_and_release_and_a_sender_killed_while_held(hook):
    hook.fail_next("hold")
    result = {}
    sender = threading.Thread(target=lambda: result.update(r=deliver(hook, {}, "held")))
    sender.start()
    hook.wait_for(lambda s: s.held() == 1)
    assert hook.received("held") == 0
    assert hook.release() == 1
    sender.join(5)
    assert result["r"] == (200, {"received": "held"})

    # The sender dies while the request is held: the effect still happens on release, and
    # the reply finds nobody (as when a worker is killed with SIGKILL mid-send).
    hook.fail_next("hold")
    body = b"{}"
    head = "".join(f"{k}: {v}\r\n" for k, v in webhook_headers(SECRET, body, "orphan").items())
    with socket.create_connection((hook.host, hook.port), timeout=5) as sock:
        sock.sendall(
            f"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n{head}\r\n".encode() + body
        )
        hook.wait_for(lambda s: s.held() == 1)
    hook.release()
    hook.wait_for(lambda s: s.received("orphan") == 1)


def test_a_body_cut_short_is_logged_and_has_no_effect(hook):
    body = b'{"n": 1}'
    head = "".join(f"{k}: {v}\r\n" for k, v in webhook_headers(SECRET, body, "cut").items())
    with socket.create_connection((hook.host, hook.port), timeout=5) as sock:
        sock.sendall(
            f"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
            + body[:3]
        )
    hook.wait_for(lambda s: len(s.requests()) == 1)
    [request] = hook.requests()
    assert not request.complete and request.applied == 0 and hook.received("cut") == 0


def test_down_and_up_on_the_same_port_keep_the_data(redcap):
    assert redcap_call(redcap, content="record", data=[nrs()])[0] == 200
    port, url = redcap.port, redcap.endpoint
    redcap.down()
    assert not redcap.running
    with pytest.raises(urllib.error.URLError) as refused:
        redcap_call(redcap, content="metadata", timeout=2)
    assert isinstance(refused.value.reason, ConnectionRefusedError)
    redcap.up()
    assert (redcap.port, redcap.endpoint) == (port, url)
    assert redcap_call(redcap, content="record", data=[nrs()])[0] == 200
    assert redcap.imports("BTB-0001", SCREENING) == 2


def test_stop_cuts_kept_alive_connections_and_sleeping_requests(hook):
    connection = http.client.HTTPConnection(hook.host, hook.port, timeout=5)
    try:
        body = b"{}"
        connection.request("POST", "/hook", body, webhook_headers(SECRET, body, "k1"))
        with connection.getresponse() as reply:
            assert reply.status == 200
            reply.read()
        hook.fail_next("timeout", seconds=30)
        outcome = []

        def send_and_note():
            try:
                outcome.append(deliver(hook, {}, "k2", timeout=10))
            except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
                outcome.append(error)

        sleeper = threading.Thread(target=send_and_note)
        sleeper.start()
        hook.wait_for(lambda s: len(s.requests()) == 2)
        started = time.monotonic()
        hook.stop()
        assert time.monotonic() - started < 2
        sleeper.join(5)
        assert not sleeper.is_alive() and hook.received("k2") == 0
        assert isinstance(outcome[0], Exception)  # the connection was cut, no reply
        with pytest.raises(CUT):
            connection.request("POST", "/hook", body, webhook_headers(SECRET, body, "k3"))
            with connection.getresponse() as reply:
                reply.read()
    finally:
        connection.close()
    hook.start()
    assert deliver(hook, {}, "k3")[0] == 200


def test_fault_selection_and_persistence(redcap):
    redcap.fail_always("status503", only="record:import")
    for _ in range(3):
        assert redcap_call(redcap, content="record", data=[nrs()])[0] == 503
    assert redcap_call(redcap, content="metadata")[0] == 200
    assert redcap.pending_faults() == [("status503", None)]
    redcap.clear_faults()
    assert redcap_call(redcap, content="record", data=[nrs()])[0] == 200
    redcap.fail_next("drop", times=2, only=lambda r: r.value("content") == "event")
    for _ in range(2):
        with pytest.raises(CUT):
            redcap_call(redcap, content="event")
    assert redcap_call(redcap, content="event")[0] == 200
    assert [r.label for r in redcap.requests()][:4] == ["record:import"] * 3 + ["metadata"]
    with pytest.raises(ValueError):
        redcap.fail_next("explode")
