"""The JSON API: tokens, roles and sites, pagination, errors, responses and every export."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re

import pytest

from pro_app.api.auth import API_ROUTE_ROLES
from pro_app.api.openapi import document
from pro_app.api.params import encode_cursor
from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.exports.model import cell
from pro_app.services import api_tokens
from pro_app.services.exporting import FORMATS
from pro_app.staff import accounts
from pro_app.storage.contacts import cipher_for, new_key
from pro_app.storage.db import rows, stamp

from .factories import answer, complete, enrol, make_app

ADMIN = "admin@example.org"
EMAIL, PHONE = "kari.nordmann@example.no", "91234567"
ROLE_SITES = {"admin": (), "data_manager": (), "coordinator": ("OUS",), "investigator": ("OUS",)}


def seed_app(path):
    """An app over a database with participants at three sites, answers and an admin."""
    app = make_app(path, CONTACT_KEY=new_key())
    with app.app_context():
        catalog = catalog_for(app)
        accounts.add(get_db(), catalog.study, cipher_for(app.config), email=ADMIN, role="admin")
    q = catalog.questionnaires
    enrol(app, "BTB-0001", site="OUS", email=EMAIL, phone=PHONE)
    enrol(app, "BTB-0002", site="HUS", language="en", email="ola@example.com")
    enrol(app, "BTB-0003", site="OUS")
    enrol(app, "BTB-0004", site="STO", day0=None)
    answer(app, "BTB-0001", "screening", "nrs", {"nrs_current": 6, "nrs_worst": 8, "nrs_usual": 5})
    odi = complete(q["odi"], {"odi8": "not_applicable"})
    answer(app, "BTB-0001", "screening", "odi", odi)
    answer(app, "BTB-0001", "baseline", "hscl25", complete(q["hscl25"], {"hscl14": "declined"}))
    answer(app, "BTB-0001", "baseline", "odi", {"odi1": 3}, done=False)  # partial
    answer(app, "BTB-0002", "screening", "nrs", {"nrs_current": 2, "nrs_worst": 9, "nrs_usual": 4})
    answer(app, "BTB-0002", "screening", "odi", complete(q["odi"], {}))
    answer(app, "BTB-0003", "screening", "nrs", {"nrs_current": 1, "nrs_worst": 1, "nrs_usual": 1})
    return app


def make_token(app, role="data_manager", sites=None, name=None, **options):
    with app.app_context():
        _, token = api_tokens.create(
            get_db(),
            catalog_for(app).study,
            name=name or f"test {role}",
            role=role,
            sites=ROLE_SITES[role] if sites is None else sites,
            created_by=ADMIN,
            **options,
        )
    return token


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return seed_app(tmp_path_factory.mktemp("api") / "api.sqlite")


@pytest.fixture(scope="module")
def tokens(app):
    return {role: make_token(app, role) for role in ROLE_SITES}


def get(app, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().get(path, headers=headers, query_string=params, buffered=True)


def walk(app, token, path, limit, **params):
    """Every item of a list, page by page; also the number of pages."""
    found, cursor, pages = [], None, 0
    while True:
        extra = {"cursor": cursor} if cursor else {}
        reply = get(app, path, token, limit=limit, **params, **extra)
        assert reply.status_code == 200, reply.get_json()
        body = reply.get_json()
        assert len(body["data"]) <= limit
        found += body["data"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return found, pages


# Tokens -------------------------------------------------------------------------------


def test_token_is_shown_once_and_only_its_hash_is_kept(app):
    runner = app.test_cli_runner()
    made = runner.invoke(
        args=["api-token", "create", "--name", "stats", "--role", "data_manager", "--by", ADMIN]
    )
    assert made.exit_code == 0, made.output
    token = re.search(r"^(pro_[A-Za-z0-9_-]{43})$", made.output, re.M).group(1)
    assert "only time the token is shown" in made.output
    assert made.stdout.strip() == token  # alone on standard output, for scripts
    with app.app_context():
        db = get_db()
        row = rows(db, "SELECT * FROM api_tokens WHERE name = 'stats'")[0]
        assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        assert row["prefix"] == token[:8] and row["created_by"] == ADMIN
        kept = json.dumps(rows(db, "SELECT * FROM api_tokens")) + json.dumps(
            rows(db, "SELECT * FROM audit")
        )
        assert token not in kept and token[8:] not in kept
        created = rows(db, "SELECT * FROM audit WHERE action = 'api_token.create'")
        assert any(r["actor"] == ADMIN and r["entity_id"] == str(row["id"]) for r in created)
    listed = runner.invoke(args=["api-token", "list"])
    assert listed.exit_code == 0 and "stats" in listed.output and token[:8] in listed.output
    assert token not in listed.output
    assert get(app, "/api/v1/participants", token).status_code == 200
    with app.app_context():
        used = rows(get_db(), "SELECT last_used_at FROM api_tokens WHERE name = 'stats'")[0]
    assert used["last_used_at"] is not None


def test_revoked_token_is_refused_at_once(app):
    token = make_token(app, name="to revoke")
    assert get(app, "/api/v1/participants", token).status_code == 200
    with app.app_context():
        token_id = rows(get_db(), "SELECT id FROM api_tokens WHERE name = 'to revoke'")[0]["id"]
    runner = app.test_cli_runner()
    done = runner.invoke(args=["api-token", "revoke", str(token_id), "--by", ADMIN])
    assert done.exit_code == 0, done.output
    refused = get(app, "/api/v1/participants", token)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'
    assert refused.get_json()["error"]["code"] == "unauthorized"
    again = runner.invoke(args=["api-token", "revoke", str(token_id), "--by", ADMIN])
    assert again.exit_code == 1 and "already revoked" in again.output
    listed = runner.invoke(args=["api-token", "list"]).output
    assert re.search(rf"^{token_id} .*to revoke.* by {re.escape(ADMIN)}\s*$", listed, re.M)
    with app.app_context():
        revoked = rows(get_db(), "SELECT * FROM audit WHERE action = 'api_token.revoke'")
    assert any(r["entity_id"] == str(token_id) and r["actor"] == ADMIN for r in revoked)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "coordinator"], "give --site"),
        (["--role", "coordinator", "--site", "XYZ"], "unknown site(s) XYZ (sites: OUS, HUS, STO)"),
        (["--role", "data_manager", "--site", "OUS"], "leave out --site"),
        (["--role", "wizard"], "'wizard' is not one of"),
        (["--role", "admin", "--expires-days", "0"], "between 1 and"),
    ],
)
def test_create_refuses_bad_input(app, args, message):
    made = app.test_cli_runner().invoke(
        args=["api-token", "create", "--name", "x", "--by", ADMIN, *args]
    )
    assert made.exit_code != 0 and message in made.output, made.output


def test_only_an_admin_manages_tokens(app):
    with app.app_context():
        db, study = get_db(), catalog_for(app).study
        accounts.add(db, study, cipher_for(app.config), email="dm@example.org", role="data_manager")
        for by in ("dm@example.org", "nobody@example.org"):
            with pytest.raises(api_tokens.TokenError, match="admin|no staff account"):
                api_tokens.create(db, study, name="x", role="admin", created_by=by)
        with pytest.raises(api_tokens.TokenError, match="unknown role 'boss'"):
            api_tokens.create(db, study, name="x", role="boss", created_by=ADMIN)


def test_last_use_is_recorded_at_most_once_a_minute(app):
    token = make_token(app, name="clock")
    start = dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)
    with app.app_context():
        db = get_db()

        def last_used():
            return rows(db, "SELECT last_used_at FROM api_tokens WHERE name = 'clock'")[0][
                "last_used_at"
            ]

        assert last_used() is None
        assert api_tokens.authenticate(db, token, now=start)["name"] == "clock"
        assert last_used() == stamp(start)
        api_tokens.authenticate(db, token, now=start + dt.timedelta(seconds=59))
        assert last_used() == stamp(start)
        api_tokens.authenticate(db, token, now=start + dt.timedelta(seconds=61))
        assert last_used() == stamp(start + dt.timedelta(seconds=61))
        assert api_tokens.authenticate(db, token + "x") is None
        assert api_tokens.authenticate(db, "pro_" + "A" * 43) is None
        assert api_tokens.authenticate(db, None) is None


def test_expired_token_is_refused(app):
    token = make_token(app, name="short", expires_days=1)
    with app.app_context():
        db = get_db()
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1, seconds=1)
        assert api_tokens.authenticate(db, token) is not None
        assert api_tokens.authenticate(db, token, now=later) is None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer pro_unknown"},
    ],
)
def test_no_token_no_data(app, tokens, headers):
    reply = app.test_client().get("/api/v1/participants", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="api"')
    assert reply.get_json()["error"]["message"]


def test_a_token_in_the_url_is_not_accepted(app, tokens):
    for name in ("access_token", "token"):
        query = {name: tokens["data_manager"]}
        reply = app.test_client().get("/api/v1/participants", query_string=query)
        assert reply.status_code == 401
        assert "never in the URL" in reply.get_json()["error"]["message"]


# Roles and sites ----------------------------------------------------------------------


def _api_requests(app, response_uuid="00000000-0000-4000-8000-000000000000"):
    """Every API route with example arguments, as (path, endpoint)."""
    examples = {"study_code": "BTB-0001", "fmt": "csv-long", "uuid": response_uuid}
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: examples[m.group(1)], rule.rule)
            found.append((path, rule.endpoint))
    return found


def test_every_api_route_is_classified_and_documented(app):
    found = _api_requests(app)
    assert {endpoint for _, endpoint in found} == set(API_ROUTE_ROLES)
    with app.app_context():
        paths = document(catalog_for(app))["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?fmt>", "{format}", rule.rule)
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", path).removeprefix("/api/v1")
            assert path in paths, path
            assert rule.methods == {"GET", "HEAD"}, rule


def test_api_role_matrix(app, tokens):
    response_uuid = get(app, "/api/v1/responses", tokens["admin"]).get_json()["data"][0]["uuid"]
    for path, endpoint in _api_requests(app, response_uuid):
        for role, token in tokens.items():
            reply = get(app, path, token)
            if role in API_ROUTE_ROLES[endpoint]:
                assert reply.status_code == 200, (role, path, reply.get_data(as_text=True)[:300])
            else:
                assert reply.status_code == 403, (role, path, reply.status_code)
                assert reply.get_json()["error"]["code"] == "forbidden"
        assert get(app, path).status_code == 401, path


def test_coordinator_sees_only_their_sites(app, tokens):
    token = tokens["coordinator"]
    people = get(app, "/api/v1/participants", token).get_json()["data"]
    assert [p["study_code"] for p in people] == ["BTB-0001", "BTB-0003"]
    seen = get(app, "/api/v1/assessments", token, limit=500).get_json()["data"]
    assert seen and {a["site"] for a in seen} == {"OUS"}
    assert get(app, "/api/v1/participants/BTB-0001", token).status_code == 200
    other = get(app, "/api/v1/participants/BTB-0002", token)
    assert other.status_code == 404  # the same answer as for a code nobody has
    nobody = get(app, "/api/v1/participants/BTB-9999", token)
    assert nobody.status_code == 404
    message = nobody.get_json()["error"]["message"]
    assert other.get_json()["error"]["message"] == message.replace("BTB-9999", "BTB-0002")
    refused = get(app, "/api/v1/participants", token, site="HUS")
    assert refused.status_code == 403 and "sees: OUS" in refused.get_json()["error"]["message"]
    assert get(app, "/api/v1/assessments", token, participant="BTB-0002").get_json()["data"] == []
    everyone = get(app, "/api/v1/participants", tokens["data_manager"]).get_json()["data"]
    assert len(everyone) == 4


# Lists --------------------------------------------------------------------------------

LISTS = [
    ("/api/v1/participants", lambda p: p["study_code"]),
    ("/api/v1/assessments", lambda a: (a["study_code"], a["timepoint"])),
    ("/api/v1/responses", lambda r: r["uuid"]),
]


@pytest.mark.parametrize(("path", "key"), LISTS)
@pytest.mark.parametrize("limit", [1, 2])
def test_pagination_walks_every_row_exactly_once(app, tokens, path, key, limit):
    whole = get(app, path, tokens["admin"], limit=500).get_json()
    assert whole["next_cursor"] is None
    found, pages = walk(app, tokens["admin"], path, limit)
    assert [key(item) for item in found] == [key(item) for item in whole["data"]]
    assert len(set(map(key, found))) == len(found) > 2
    assert pages == -(-len(found) // limit)  # the last page says there is no more


def test_pagination_with_a_state_filter(app, tokens):
    whole = get(app, "/api/v1/assessments", tokens["admin"], limit=500, state="upcoming")
    upcoming = whole.get_json()["data"]
    assert upcoming and {a["state"] for a in upcoming} == {"upcoming"}
    found, _ = walk(app, tokens["admin"], "/api/v1/assessments", 3, state="upcoming")
    assert found == upcoming


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "AAAA",
        "x" * 600,
        encode_cursor("participants", ["BTB-0001"]),  # another list's cursor
        encode_cursor("assessments", ["BTB-0001", "week99"]),
        encode_cursor("assessments", ["BTB-0001"]),
    ],
)
def test_a_bad_cursor_is_a_400(app, tokens, cursor):
    reply = get(app, "/api/v1/assessments", tokens["admin"], cursor=cursor)
    assert reply.status_code == 400
    assert "cursor" in reply.get_json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/assessments", {"timepoint": "week99"}, "known: screening, baseline, week1"),
        ("/api/v1/responses", {"site": "XYZ"}, "Unknown site 'XYZ' (known: OUS, HUS, STO)"),
        ("/api/v1/responses", {"questionnaire": "sf36"}, "Unknown questionnaire 'sf36' (known:"),
        ("/api/v1/responses", {"submitted_since": "2027-01-01"}, "such as 2027-01-31T08:00:00Z"),
        ("/api/v1/responses", {"submitted_since": "2027-13-01T00:00:00Z"}, "with its offset"),
        ("/api/v1/responses", {"participant": "BTB-1"}, "must be a study code matching"),
        ("/api/v1/participants", {"limit": "0"}, "from 1 to 500"),
        ("/api/v1/participants", {"limit": "501"}, "from 1 to 500"),
        ("/api/v1/participants", {"limit": "ten"}, "from 1 to 500"),
        ("/api/v1/participants", {"limit": ["1", "2"]}, "Give 'limit' once"),
        ("/api/v1/participants", {"status": "asleep"}, "known: active, withdrawn, completed"),
        ("/api/v1/participants", {"sites": "OUS"}, "Unknown parameter 'sites'"),
        ("/api/v1/exports/csv-wide", {"from": "31.01.2027"}, "YYYY-MM-DD"),
        ("/api/v1/exports/csv-wide", {"from": "2027-02-01", "to": "2027-01-01"}, "is after"),
        ("/api/v1/exports/csv-wide", {"bom": "yes"}, "true or false"),
        ("/api/v1/exports/csv-wide", {"delimiter": "|"}, "Unknown delimiter '|'"),
    ],
)
def test_bad_parameters_are_a_400_that_says_why(app, tokens, path, params, message):
    reply = get(app, path, tokens["admin"], **params)
    assert reply.status_code == 400, reply.get_data(as_text=True)
    assert message in reply.get_json()["error"]["message"]
    assert reply.get_json()["error"]["code"] == "bad_request"


def test_errors_are_json_with_the_security_headers(app, tokens):
    for method, path, status in [
        ("GET", "/api/v1/nothing/here", 404),
        ("GET", "/api/v2/participants", 404),
        ("GET", "/api/v1/exports/xlsx", 404),
        ("GET", "/api/v1/responses/not-a-uuid", 404),
        ("POST", "/api/v1/participants", 405),
        ("DELETE", "/api/v1/responses", 405),
        ("OPTIONS", "/api/v1/assessments", 405),
    ]:
        reply = app.test_client().open(
            path, method=method, headers={"Authorization": f"Bearer {tokens['admin']}"}
        )
        assert reply.status_code == status, (method, path)
        assert reply.mimetype == "application/json"
        error = reply.get_json()["error"]
        assert error["code"] and error["message"] and error["request_id"]
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
        if status == 405:
            assert set(reply.headers["Allow"].split(", ")) == {"GET", "HEAD"}
    # A POST from another site is not refused by the Origin check: it never gets a cookie.
    cross = app.test_client().post("/api/v1/participants", headers={"Origin": "https://evil"})
    assert cross.status_code == 405 and cross.mimetype == "application/json"


def test_a_server_error_is_json(app, tokens, monkeypatch):
    import pro_app.api.people as people

    def broken(row):
        raise RuntimeError("boom")

    monkeypatch.setattr(people, "participant_json", broken)
    reply = get(app, "/api/v1/participants", tokens["admin"])
    assert reply.status_code == 500
    error = reply.get_json()["error"]
    assert error["code"] == "server_error" and error["request_id"] in error["message"]
    assert "boom" not in reply.get_data(as_text=True)


# Data ---------------------------------------------------------------------------------


def test_participant_with_schedule(app, tokens):
    body = get(app, "/api/v1/participants/BTB-0001", tokens["coordinator"]).get_json()["data"]
    assert body["study_code"] == "BTB-0001" and body["site"] == "OUS"
    states = {a["timepoint"]: a for a in body["assessments"]}
    assert states["screening"]["state"] == "completed" and states["screening"]["receipt_code"]
    assert states["baseline"]["state"] == "in_progress"
    assert set(body) == {
        "study_code", "site", "language", "enrolled_on", "day0", "status", "assessments"
    }  # fmt: skip


def test_assessment_filters(app, tokens):
    done = get(app, "/api/v1/assessments", tokens["admin"], state="completed").get_json()["data"]
    assert {(a["study_code"], a["timepoint"]) for a in done} == {
        ("BTB-0001", "screening"),
        ("BTB-0002", "screening"),
    }
    one = get(app, "/api/v1/assessments", tokens["admin"], participant="BTB-0004").get_json()
    assert [a["timepoint"] for a in one["data"]] == ["screening"]  # no day 0 yet
    both = get(
        app, "/api/v1/assessments", tokens["admin"], site=["HUS", "STO"], timepoint="screening"
    )
    assert [a["study_code"] for a in both.get_json()["data"]] == ["BTB-0002", "BTB-0004"]


def test_responses_agree_with_the_long_export(app, tokens):
    found = get(app, "/api/v1/responses", tokens["data_manager"], limit=500).get_json()["data"]
    assert {(r["study_code"], r["timepoint"], r["questionnaire"]) for r in found} == {
        ("BTB-0001", "screening", "nrs"),
        ("BTB-0001", "screening", "odi"),
        ("BTB-0001", "baseline", "hscl25"),
        ("BTB-0002", "screening", "nrs"),
        ("BTB-0002", "screening", "odi"),
        ("BTB-0003", "screening", "nrs"),
    }
    export = get(app, "/api/v1/exports/csv-long", tokens["data_manager"])
    lines = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    from_export = {(r["response_uuid"], r["kind"], r["item"]): r for r in lines}
    for response in found:
        assert response["status"] == "submitted" and response["version"] == 1
        for item, value in response["answers"].items():
            row = from_export[(response["uuid"], "item", item)]
            assert row["value"] == cell(value), (item, value)
        for score, stored in response["scores"].items():
            row = from_export[(response["uuid"], "score", score)]
            assert row["value"] == cell(stored["value"]) and row["reason"] == (
                stored["reason"] or ""
            )
    odi = next(r for r in found if r["questionnaire"] == "odi" and r["study_code"] == "BTB-0001")
    assert odi["answers"]["odi8"] == "not_applicable"
    hscl = next(r for r in found if r["questionnaire"] == "hscl25")
    assert hscl["answers"]["hscl14"] == "declined"
    assert list(odi["answers"])[:3] == ["odi1", "odi2", "odi3"]  # definition order


def test_response_filters_and_by_uuid(app, tokens):
    token = tokens["data_manager"]
    odi = get(app, "/api/v1/responses", token, questionnaire="odi", site="HUS").get_json()["data"]
    assert [(r["study_code"], r["questionnaire"]) for r in odi] == [("BTB-0002", "odi")]
    mine = get(app, "/api/v1/responses", token, participant="BTB-0003").get_json()["data"]
    assert [r["questionnaire"] for r in mine] == ["nrs"]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
    assert get(app, "/api/v1/responses", token, submitted_since=later).get_json()["data"] == []
    since = get(app, "/api/v1/responses", token, submitted_since="2000-01-01T00:00:00Z")
    assert len(since.get_json()["data"]) == 6
    newest = max(r["submitted_at"] for r in since.get_json()["data"])
    at = get(app, "/api/v1/responses", token, submitted_since=newest).get_json()["data"]
    assert [r["submitted_at"] for r in at] == [newest]  # inclusive
    one = get(app, f"/api/v1/responses/{odi[0]['uuid']}", token)
    assert one.status_code == 200 and one.get_json()["data"] == odi[0]
    with app.app_context():
        partial = rows(get_db(), "SELECT uuid FROM responses WHERE status = 'in_progress'")[0]
    assert get(app, f"/api/v1/responses/{partial['uuid']}", token).status_code == 404


MEDIA = {
    "csv-wide": "text/csv",
    "codebook-html": "text/html",
    "odm": "application/xml",
    "fhir": "application/fhir+json",
    "sav": "application/x-spss-sav",
    "dta": "application/x-stata-dta",
    "audit-json": "application/json",
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_format_downloads_and_is_audited(app, tokens, fmt):
    token = make_token(app, name=f"export {fmt}")
    reply = get(app, f"/api/v1/exports/{fmt}", token, site="OUS", include_partial="true")
    assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
    body = reply.get_data()
    sha = hashlib.sha256(body).hexdigest()
    assert reply.headers["X-Content-SHA256"] == sha
    assert reply.headers["Content-Length"] == str(len(body)) and body
    assert reply.headers["Content-Disposition"].startswith("attachment; filename=")
    assert reply.mimetype == MEDIA.get(fmt, reply.mimetype)
    assert reply.headers["Cache-Control"] == "no-store"
    with app.app_context():
        db = get_db()
        token_id = rows(db, "SELECT id FROM api_tokens WHERE name = ?", [f"export {fmt}"])[0]["id"]
        audited = rows(db, "SELECT * FROM audit WHERE action = 'export' ORDER BY id DESC")[0]
    assert audited["actor"] == f"api-token:{token_id}:export {fmt}"
    assert audited["role"] == "data_manager"
    recorded = json.loads(audited["new_value"])
    assert recorded["format"] == fmt and recorded["sha256"] == sha
    assert recorded["filter"]["sites"] == ["OUS"] and recorded["filter"]["include_partial"]
    assert str(recorded["rows"]) == reply.headers["X-Export-Rows"]


def test_export_options_reach_the_file(app, tokens):
    reply = get(app, "/api/v1/exports/csv-wide", tokens["admin"], delimiter=";", bom="true")
    assert reply.get_data().startswith(b"\xef\xbb\xbfstudy_code;")
    again = get(app, "/api/v1/exports/csv-wide", tokens["admin"], delimiter=";", bom="true")
    assert again.get_data() == reply.get_data()  # the same data give the same bytes


def test_no_contact_details_anywhere(app, tokens):
    token = tokens["admin"]
    texts = []
    for path in ("/api/v1/participants", "/api/v1/assessments", "/api/v1/responses"):
        texts.append(get(app, path, token, limit=500).get_data(as_text=True))
    for code in ("BTB-0001", "BTB-0002"):
        texts.append(get(app, f"/api/v1/participants/{code}", token).get_data(as_text=True))
    for fmt in FORMATS:
        texts.append(get(app, f"/api/v1/exports/{fmt}", token).get_data().decode("latin-1"))
    texts.append(get(app, "/api/v1/openapi.json", token).get_data(as_text=True))
    everything = "\n".join(texts)
    assert "BTB-0001" in everything
    for secret in (EMAIL, "ola@example.com", PHONE, "+47" + PHONE, "example.no"):
        assert secret not in everything


def test_the_document_describes_the_study(app, tokens):
    served = get(app, "/api/v1/openapi.json", tokens["coordinator"]).get_json()
    with app.app_context():
        assert served == document(catalog_for(app))
    assert served["openapi"].startswith("3.1")
    assert served["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    formats = served["paths"]["/exports/{format}"]["get"]["parameters"][0]["schema"]["enum"]
    assert formats == list(FORMATS)
    assert get(app, "/api/v1/openapi.json").status_code == 401
