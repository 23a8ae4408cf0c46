"""Durability and concurrency (SECURITY.md, Durability; TOOLING.md, crash tests and double submits).

- append-only tables refuse UPDATE and DELETE at the database level;
- `flask audit verify` passes on real data and names a changed or removed row;
- the answer journal survives a SIGKILL of gunicorn and a lost or expired session;
- a SIGKILL at each crash point inside submit leaves all of the submission or none of it,
  and a retry with the same submission id stores it exactly once;
- 50 concurrent submits (and 20 concurrent page saves) with one id store one result;
- junk input never gives a 5xx and never changes the journal (with a hypothesis property).

The gunicorn tests (marked slow) start real servers on free ports, wait for them with a
readiness poll, and always kill the process group they started.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import re
import sqlite3
import threading
import time
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pro_app import create_app
from pro_app.catalog import catalog_for

from .factories import enrol, link_token, make_app
from .live_server import SECRET_KEY, Browser, LiveServer, audit_verify, query

CODE = "BTB-0001"
NRS = {"nrs_current": "4", "nrs_worst": "8", "nrs_usual": "6"}
NRS_ITEMS = tuple(NRS)
CRASH_POINTS = ("submit.after_scores", "submit.before_complete", "submit.before_commit")


# --- Shared helpers ------------------------------------------------------------------------------


def nrs_score_count(app) -> int:
    return len(catalog_for(app).questionnaires["nrs"].scores)


def seeded_database(folder, code=CODE):
    """A migrated database with one enrolled participant; returns (app, path, screening token)."""
    path = folder / "pro.sqlite"
    app = make_app(path, WTF_CSRF_ENABLED=False)  # for set-up through app.test_client() only
    enrol(app, code)
    return app, path, link_token(app, code, "screening")


def fill_nrs(browser: Browser, token: str, values=NRS) -> None:
    """Open the link and answer the three NRS pages over HTTP (ends on the review page)."""
    browser.open_link(token)
    for number, (item, value) in enumerate(values.items(), 1):
        reply = browser.save_page("nrs", number, {item: value})
        assert reply.status == 302, (reply.status, reply.text[:300])
    assert reply.location == "/a/nrs/review?saved=1"


def submit_odi_first(app, token) -> None:
    """Answer and send ODI (test client), so that sending NRS completes the screening."""
    client = app.test_client()
    assert client.post(f"/i/{token}").status_code == 302
    for number in range(1, 11):
        reply = client.post(f"/a/odi/{number}", data={f"odi{number}": "0", "save_id": f"o{number}"})
        assert reply.status_code == 302, reply.headers.get("Location")
    assert client.post("/a/odi/review", data={"submission_id": "odi"}).headers["Location"] == "/a"


def nrs_response(db_path) -> dict:
    rows = query(db_path, "SELECT * FROM responses WHERE questionnaire = 'nrs'")
    assert len(rows) == 1, rows
    return rows[0]


def submission_parts(db_path) -> dict:
    """What a submit writes, counted for the (single) NRS response."""
    response = nrs_response(db_path)
    rid, uuid = response["id"], response["uuid"]

    def count(sql, *params):
        return query(db_path, sql, params)[0]["n"]

    return {
        "status": response["status"],
        "submission_id": response["submission_id"],
        "scores": count("SELECT COUNT(*) AS n FROM scores WHERE response_id = ?", rid),
        "outbox": count("SELECT COUNT(*) AS n FROM outbox WHERE response_id = ?", rid),
        "audit_submit": count(
            "SELECT COUNT(*) AS n FROM audit WHERE action = 'response.submit' AND entity_id = ?",
            uuid,
        ),
    }


def current_journal(db_path, response_id) -> dict:
    rows = query(
        db_path,
        "SELECT item, value FROM answers WHERE id IN (SELECT MAX(id) FROM answers"
        " WHERE response_id = ? GROUP BY item)",
        [response_id],
    )
    return {r["item"]: r["value"] for r in rows}


@pytest.fixture
def servers(tmp_path):
    """Start LiveServers through this fixture; every one is SIGKILLed at teardown."""
    started: list[LiveServer] = []

    def start(db_path, *, workers=2, crash_at=None) -> LiveServer:
        server = LiveServer(
            db_path, tmp_path / f"gunicorn-{len(started)}.log", workers=workers, crash_at=crash_at
        )
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.kill()


# --- 1. Append-only tables -----------------------------------------------------------------------


def _client_flow_database(folder):
    """Real rows in every table, written through the HTTP flow (Flask test client).

    Screening: NRS submitted (answers, page_saves, scores, audit, outbox), ODI started.
    Baseline: HSCL-25 answered with item 20 at 4 and submitted (an alert).
    """
    path = folder / "flow.sqlite"
    app = make_app(path, WTF_CSRF_ENABLED=False)
    enrol(app, CODE)
    client = app.test_client()
    assert client.post(f"/i/{link_token(app, CODE, 'screening')}").status_code == 302
    for number, (item, value) in enumerate(NRS.items(), 1):
        reply = client.post(f"/a/nrs/{number}", data={item: value, "save_id": f"nrs{number}"})
        assert reply.status_code == 302
    assert client.post("/a/nrs/review", data={"submission_id": "sub-nrs"}).status_code == 302
    assert client.post("/a/odi/1", data={"save_id": "odi1"}).status_code < 500  # started only
    assert client.post(f"/i/{link_token(app, CODE, 'baseline')}").status_code == 302
    for number in range(1, 6):
        items = {f"hscl{i}": "4" for i in range(5 * number - 4, 5 * number + 1)}
        reply = client.post(f"/a/hscl25/{number}", data={**items, "save_id": f"hscl{number}"})
        assert reply.status_code == 302, reply.headers.get("Location")
    assert client.post("/a/hscl25/review", data={"submission_id": "sub-hscl"}).status_code == 302
    return path


@pytest.fixture(scope="module")
def flow_db(tmp_path_factory):
    path = _client_flow_database(tmp_path_factory.mktemp("flow"))
    counts = {
        t: query(path, f"SELECT COUNT(*) AS n FROM {t}")[0]["n"]
        for t in ("answers", "page_saves", "scores", "alerts", "audit", "outbox")
    }
    assert all(counts.values()), counts  # every append-only table has real rows
    return path


APPEND_ONLY_CHANGES = {
    "answers": "value = '9'",
    "page_saves": "page = 99",
    "scores": "value = '0'",
    "alerts": "alert = 'nothing'",
    "audit": "new_value = 'forged'",
    "outbox": "payload = '{}'",
}


@pytest.mark.parametrize("table", sorted(APPEND_ONLY_CHANGES))
def test_append_only_table_refuses_update_and_delete(flow_db, table):
    conn = sqlite3.connect(str(flow_db))
    try:
        before = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        target = conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]
        with pytest.raises(
            sqlite3.DatabaseError, match=f"{table} is append-only: rows cannot be changed"
        ):
            conn.execute(
                f"UPDATE {table} SET {APPEND_ONLY_CHANGES[table]} WHERE rowid = ?", (target,)
            )
        with pytest.raises(
            sqlite3.DatabaseError, match=f"{table} is append-only: rows cannot be deleted"
        ):
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (target,))
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(f"DELETE FROM {table}")
        conn.rollback()
        assert conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() == before
    finally:
        conn.close()


def test_submitted_response_is_frozen_and_responses_are_never_deleted(flow_db):
    conn = sqlite3.connect(str(flow_db))
    try:
        submitted = conn.execute(
            "SELECT id FROM responses WHERE questionnaire = 'nrs' AND status = 'submitted'"
        ).fetchone()[0]
        started = conn.execute(
            "SELECT id FROM responses WHERE questionnaire = 'odi' AND status = 'in_progress'"
        ).fetchone()[0]
        for change in ("status = 'in_progress'", "submitted_at = NULL", "submission_id = 'x'"):
            with pytest.raises(
                sqlite3.DatabaseError, match="a submitted response cannot be changed"
            ):
                conn.execute(f"UPDATE responses SET {change} WHERE id = ?", (submitted,))
        with pytest.raises(sqlite3.DatabaseError, match="identity columns cannot be changed"):
            conn.execute("UPDATE responses SET questionnaire = 'nrs' WHERE id = ?", (started,))
        for rid in (submitted, started):
            with pytest.raises(sqlite3.DatabaseError, match="responses cannot be deleted"):
                conn.execute("DELETE FROM responses WHERE id = ?", (rid,))
        conn.rollback()
        status = dict(conn.execute("SELECT id, status FROM responses").fetchall())
        assert status[submitted] == "submitted" and status[started] == "in_progress"
    finally:
        conn.close()


# --- 2. The audit chain --------------------------------------------------------------------------


def _copy_without_audit_guards(source, target):
    """An online-backup copy of the database with the audit triggers dropped (a tamperer)."""
    src, dst = sqlite3.connect(str(source)), sqlite3.connect(str(target))
    try:
        src.backup(dst)
        dst.execute("DROP TRIGGER audit_no_update")
        dst.execute("DROP TRIGGER audit_no_delete")
        dst.commit()
    finally:
        src.close()
        dst.close()
    return target


def _named_rows(output: str) -> list[int]:
    return [int(n) for n in re.findall(r"audit row (\d+)", output)]


def test_audit_verify_passes_then_names_a_changed_and_a_removed_row(flow_db, tmp_path):
    ids = [r["id"] for r in query(flow_db, "SELECT id FROM audit ORDER BY id")]
    assert len(ids) >= 10
    intact = audit_verify(flow_db)
    assert intact.returncode == 0, intact.stderr
    assert f"{len(ids)} rows" in intact.stdout

    changed = ids[len(ids) // 2]
    copy = _copy_without_audit_guards(flow_db, tmp_path / "changed.sqlite")
    conn = sqlite3.connect(str(copy))
    with conn:
        conn.execute("UPDATE audit SET new_value = '\"7\"' WHERE id = ?", (changed,))
    conn.close()
    result = audit_verify(copy)
    assert result.returncode != 0
    assert f"audit row {changed}: its content does not match its hash" in result.stderr
    assert _named_rows(result.stderr) == [changed]

    removed = ids[len(ids) // 3]
    follower = ids[ids.index(removed) + 1]
    copy = _copy_without_audit_guards(flow_db, tmp_path / "removed.sqlite")
    conn = sqlite3.connect(str(copy))
    with conn:
        conn.execute("DELETE FROM audit WHERE id = ?", (removed,))
    conn.close()
    result = audit_verify(copy)
    assert result.returncode != 0
    assert f"audit row {follower}: does not follow the row before it" in result.stderr
    assert _named_rows(result.stderr) == [follower]

    assert audit_verify(flow_db).returncode == 0  # the original is untouched


# --- 3. The journal across a server kill and a lost or expired session ---------------------------


def _session_cookie(db_path, invite_id: int, idle_seconds: int) -> str:
    """A session cookie signed with the server's key, last seen idle_seconds ago."""
    app = create_app({"TESTING": True, "DATABASE": str(db_path), "SECRET_KEY": SECRET_KEY})
    then = int(time.time()) - idle_seconds
    data = {"participant": {"invite": invite_id, "started": then, "seen": then}, "lang": "nb"}
    return app.session_interface.get_signing_serializer(app).dumps(data)


def _assert_resumes_on_page_3(browser: Browser, token: str) -> None:
    assert browser.open_link(token).location == "/a/nrs"
    assert browser.get("/a/nrs").location == "/a/nrs/3"
    review = browser.get("/a/nrs/review")
    assert review.status == 200
    answers = re.findall(r"<dd>([^<]*)</dd>", review.text)
    assert answers[:2] == [NRS["nrs_current"], NRS["nrs_worst"]], answers
    assert 'name="submission_id"' not in review.text  # page 3 still unanswered: no send button
    page1 = browser.get("/a/nrs/1").text
    assert re.search(rf'name="nrs_current" value="{NRS["nrs_current"]}" checked', page1)


@pytest.mark.slow
def test_journal_keeps_answers_across_server_kill_and_lost_session(tmp_path, servers):
    app, db_path, token = seeded_database(tmp_path)
    server = servers(db_path, workers=2)
    first = Browser(server.port)
    first.open_link(token)
    assert first.get("/a/nrs").location == "/a/nrs/1"
    assert (
        first.save_page("nrs", 1, {"nrs_current": NRS["nrs_current"]}).location
        == "/a/nrs/2?saved=1"
    )
    assert first.save_page("nrs", 2, {"nrs_worst": NRS["nrs_worst"]}).location == "/a/nrs/3?saved=1"
    server.kill()  # SIGKILL master and workers: nothing gets a chance to flush anything

    response = nrs_response(db_path)
    assert response["status"] == "in_progress"
    expected = {"nrs_current": NRS["nrs_current"], "nrs_worst": NRS["nrs_worst"]}
    assert current_journal(db_path, response["id"]) == expected

    server = servers(db_path, workers=2)
    # A new cookie session (another phone, or the cookie is gone): the link resumes on page 3.
    fresh = Browser(server.port)
    assert fresh.get("/a/nrs/3").status == 401  # no session yet: nothing to reach
    _assert_resumes_on_page_3(fresh, token)

    # An idle-expired session (validly signed, last seen 2 h ago): ended, answers still there.
    invite_id = query(db_path, "SELECT id FROM invites WHERE revoked_at IS NULL")[0]["id"]
    recent = Browser(server.port, {"session": _session_cookie(db_path, invite_id, 60)})
    assert recent.get("/a/nrs").location == "/a/nrs/3"  # control: the forged cookie is valid
    expired = Browser(server.port, {"session": _session_cookie(db_path, invite_id, 2 * 3600)})
    assert expired.get("/a/nrs/3").status == 401
    _assert_resumes_on_page_3(expired, token)

    # The old cookie of the first browser still works after the restart (same secret key).
    first.port = server.port
    assert first.get("/a/nrs").location == "/a/nrs/3"
    assert current_journal(db_path, response["id"]) == expected
    assert audit_verify(db_path).returncode == 0


# --- 4. A crash inside submit --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("label", CRASH_POINTS)
def test_crash_inside_submit_leaves_all_or_nothing_and_a_retry_stores_once(
    tmp_path, servers, label
):
    app, db_path, token = seeded_database(tmp_path)
    submit_odi_first(app, token)  # the NRS submit completes the timepoint (receipt code)
    scores = nrs_score_count(app)
    server = servers(db_path, workers=2, crash_at=label)
    browser = Browser(server.port)
    fill_nrs(browser, token)
    form = browser.review_form("nrs")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        browser.post("/a/nrs/review", form)  # the worker SIGKILLs itself at the label
    assert server.wait_for_log("was sent SIGKILL"), server.log()  # the master saw it die
    server.kill()

    parts = submission_parts(db_path)
    nothing = {"status": "in_progress", "submission_id": None}
    nothing |= {"scores": 0, "outbox": 0, "audit_submit": 0}
    everything = {"status": "submitted", "submission_id": form["submission_id"]}
    everything |= {"scores": scores, "outbox": 1, "audit_submit": 1}
    assert parts in (nothing, everything), parts  # never a part
    # Every crash point lies before COMMIT, and no reply was sent: nothing may be stored.
    assert parts == nothing
    completed = "SELECT id FROM assessments WHERE completed_at IS NOT NULL OR receipt_code != ''"
    assert query(db_path, completed) == []
    assert query(db_path, "SELECT COUNT(*) AS n FROM outbox")[0]["n"] == 1  # ODI's only
    assert len(current_journal(db_path, nrs_response(db_path)["id"])) == 3  # answers kept
    assert audit_verify(db_path).returncode == 0

    server = servers(db_path, workers=2)  # no crash point now
    browser.port = server.port
    assert browser.open_link(token).location == "/a/nrs"  # still in progress
    assert browser.get("/a/nrs").location == "/a/nrs/review"
    retry = {**form, "csrf_token": browser.review_form("nrs")["csrf_token"]}  # same submission
    first = browser.post("/a/nrs/review", retry)
    again = browser.post("/a/nrs/review", retry)
    assert first.status == again.status == 302
    assert first.location == again.location == "/a/receipt"
    other_tab = browser.post("/a/nrs/review", {**retry, "submission_id": "another-tab"})
    assert (other_tab.status, other_tab.location) == (302, "/a/receipt")
    assert submission_parts(db_path) == everything
    assert query(db_path, "SELECT COUNT(*) AS n FROM outbox")[0]["n"] == 2  # ODI + NRS
    done = query(db_path, "SELECT receipt_code FROM assessments WHERE completed_at IS NOT NULL")
    assert len(done) == 1 and done[0]["receipt_code"]
    receipt = browser.get("/a/receipt")
    assert receipt.status == 200 and done[0]["receipt_code"] in receipt.text
    completions = "SELECT COUNT(*) AS n FROM audit WHERE action = 'assessment.complete'"
    assert query(db_path, completions)[0]["n"] == 1
    server.kill()
    result = audit_verify(db_path)
    assert result.returncode == 0, result.stderr


# --- 5. Concurrent repeats -----------------------------------------------------------------------


def _hammer(port: int, cookies: dict, path: str, form: dict, count: int) -> list:
    """POST the same form from count threads released at once; return (status, location)."""
    gate = threading.Barrier(count)

    def one(_):
        browser = Browser(port, cookies)
        gate.wait(timeout=30)
        try:
            reply = browser.post(path, form, keep_cookies=False)
        except (OSError, http.client.HTTPException) as exc:
            return ("error", repr(exc))
        return (reply.status, reply.location)

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.fixture
def ready_to_submit(tmp_path, servers):
    """A gunicorn server (2 workers) and a browser on the NRS review page; the form to send."""
    app, db_path, token = seeded_database(tmp_path)
    server = servers(db_path, workers=2)
    browser = Browser(server.port)
    fill_nrs(browser, token)
    return app, db_path, server, browser, browser.review_form("nrs")


@pytest.mark.slow
def test_fifty_concurrent_submits_store_one_response(ready_to_submit):
    app, db_path, server, browser, form = ready_to_submit
    results = _hammer(server.port, browser.cookies, "/a/nrs/review", form, 50)
    statuses = sorted({s for s, _ in results}, key=str)
    assert all(isinstance(s, int) and s < 500 for s, _ in results), statuses
    assert all(s in (302, 429) for s, _ in results), statuses
    assert {loc for s, loc in results if s == 302} == {"/a"}
    assert submission_parts(db_path) == {
        "status": "submitted",
        "submission_id": form["submission_id"],
        "scores": nrs_score_count(app),
        "outbox": 1,
        "audit_submit": 1,
    }
    assert query(db_path, "SELECT COUNT(*) AS n FROM responses")[0]["n"] == 1
    assert browser.get("/a/nrs/review").location == "/a"  # the back button: no form again
    assert submission_parts(db_path)["submission_id"] == form["submission_id"]
    assert query(db_path, "SELECT COUNT(*) AS n FROM outbox")[0]["n"] == 1
    assert audit_verify(db_path).returncode == 0


@pytest.mark.slow
def test_fifty_concurrent_submits_all_get_the_same_answer(ready_to_submit):
    app, db_path, server, browser, form = ready_to_submit
    results = _hammer(server.port, browser.cookies, "/a/nrs/review", form, 50)
    assert sorted({str(r) for r in results}) == [str((302, "/a"))]


@pytest.mark.slow
def test_twenty_concurrent_page_saves_with_one_save_id_store_once(tmp_path, servers):
    app, db_path, token = seeded_database(tmp_path)
    server = servers(db_path, workers=2)
    browser = Browser(server.port)
    browser.open_link(token)
    page = browser.get("/a/nrs/1")  # no response row yet: the saves also race to create it
    form = {
        "nrs_current": "7",
        "csrf_token": page.hidden("csrf_token"),
        "save_id": page.hidden("save_id"),
        "action": "next",
    }
    results = _hammer(server.port, browser.cookies, "/a/nrs/1", form, 20)
    assert set(results) == {(302, "/a/nrs/2?saved=1")}, results
    response = nrs_response(db_path)
    answers = query(db_path, "SELECT * FROM answers WHERE response_id = ?", [response["id"]])
    assert [(a["item"], a["value"], a["save_id"]) for a in answers] == [
        ("nrs_current", "7", form["save_id"])
    ]
    saves = query(db_path, "SELECT * FROM page_saves WHERE response_id = ?", [response["id"]])
    assert [s["save_id"] for s in saves] == [form["save_id"]]
    audit_saves = query(db_path, "SELECT COUNT(*) AS n FROM audit WHERE action = 'answer.save'")
    assert audit_saves[0]["n"] == 1
    assert query(db_path, "SELECT COUNT(*) AS n FROM responses")[0]["n"] == 1


# --- 6. Junk input -------------------------------------------------------------------------------


@pytest.fixture
def csrf_client(tmp_path):
    """A test client with CSRF on, inside a participant session on the NRS page 1."""
    app = make_app(tmp_path / "junk.sqlite")
    enrol(app, CODE)
    token = link_token(app, CODE, "screening")
    client = app.test_client()
    start = client.get(f"/i/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', start).group(1)
    assert client.post(f"/i/{token}", data={"csrf_token": csrf}).status_code == 302
    # The session starts afresh at the exchange (new CSRF secret): take the page's token.
    page = client.get("/a/nrs/1").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
    # Save page 1 once so a response and a journal exist to stay unchanged.
    reply = client.post("/a/nrs/1", data={"nrs_current": "3", "csrf_token": csrf, "save_id": "s1"})
    assert reply.status_code == 302
    return app, client, csrf


def _journal_rows(app) -> list:
    return query(app.config["DATABASE"], "SELECT item, value, save_id FROM answers ORDER BY id")


JUNK_VALUES = [
    "11",
    "-1",
    "100000000000000000000000000",
    "9" * 5000,
    "abc",
    "5.5",
    "1e1",
    "0x5",
    "five",
    "\x00",
    "5\x00",
    "' OR 1=1 --",
    "declined",
    "not_applicable",
    "<script>alert(1)</script>",
    "\uff11\uff11",  # fullwidth 11
    " ",
]


def test_out_of_range_or_junk_codes_change_nothing(csrf_client):
    app, client, csrf = csrf_client
    before = _journal_rows(app)
    for number, value in enumerate(JUNK_VALUES):
        form = {"nrs_current": value, "csrf_token": csrf, "save_id": f"junk{number}"}
        reply = client.post("/a/nrs/1", data=form)
        assert reply.status_code in (200, 400, 422), (value, reply.status_code)  # not saved
        assert _journal_rows(app) == before, value


def test_junk_requests_get_4xx_and_change_nothing(csrf_client):
    app, client, csrf = csrf_client
    before = _journal_rows(app)
    checks = [
        # unknown items, items of other pages and questionnaires: ignored, never stored
        (
            "/a/nrs/1",
            {"nrs_worst": "2", "odi1": "1", "bogus": "5", "nrs_current": "12"},
            {},
            (200,),
        ),
        ("/a/nrs/1", {"nrs_current": ["99", "2"], "nrs_current[]": "1"}, {}, (200,)),
        ("/a/nrs/2", {"nrs_usual": "1", "nrs_worst": ""}, {}, (200,)),
        ("/a/nrs/0", {"nrs_current": "2"}, {}, (302,)),
        ("/a/nrs/99", {"nrs_current": "2"}, {}, (302,)),
        ("/a/nope/1", {"nrs_current": "2"}, {}, (404,)),
        ("/a/nrs/review", {"submission_id": "x" * 1000}, {}, (302,)),
        # no CSRF token, a wrong one, another site's Origin
        ("/a/nrs/1", {"nrs_current": "2"}, {"no_csrf": True}, (400,)),
        ("/a/nrs/1", {"nrs_current": "2", "csrf_token": "forged"}, {"no_csrf": True}, (400,)),
        ("/a/nrs/1", {"nrs_current": "2"}, {"Origin": "https://evil.example"}, (403,)),
        ("/a/nrs/review", {}, {"Origin": "https://evil.example"}, (403,)),
        ("/i/whatever", {}, {"no_csrf": True}, (400,)),
    ]
    for path, data, options, expected in checks:
        options = dict(options)
        form = dict(data) if options.pop("no_csrf", False) else {**data, "csrf_token": csrf}
        reply = client.post(path, data=form, headers=options)
        assert reply.status_code in expected, (path, data.keys(), reply.status_code)
        assert _journal_rows(app) == before, (path, data.keys())
    response = query(app.config["DATABASE"], "SELECT status FROM responses")
    assert [r["status"] for r in response] == ["in_progress"]


def test_body_over_256_kb_gets_413_and_saves_nothing(csrf_client):
    app, client, csrf = csrf_client
    before = _journal_rows(app)
    form = {"nrs_current": "2", "csrf_token": csrf, "save_id": "big", "pad": "x" * (300 * 1024)}
    reply = client.post("/a/nrs/1", data=form)
    assert (reply.status_code, _journal_rows(app)) == (413, before)


def test_session_cookie_on_https_is_host_prefixed_secure_and_lax(tmp_path):
    app = make_app(tmp_path / "https.sqlite", BASE_URL="https://pro.example")
    enrol(app, CODE)
    client = app.test_client()
    token = link_token(app, CODE, "screening")
    start = client.get(f"/i/{token}", base_url="https://pro.example")
    cookie = start.headers.get("Set-Cookie", "")
    assert cookie.startswith("__Host-session="), cookie
    assert "; Secure" in cookie and "; HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie


def test_random_form_values_never_5xx_and_store_only_valid_codes(tmp_path):
    app = make_app(tmp_path / "prop.sqlite", WTF_CSRF_ENABLED=False)
    enrol(app, CODE)
    client = app.test_client()
    assert client.post(f"/i/{link_token(app, CODE, 'screening')}").status_code == 302
    database = app.config["DATABASE"]
    text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
    value = st.one_of(
        st.integers(-20, 30).map(str),
        st.sampled_from(["", " 5 ", "10", "0", "declined", "not_applicable", "1 0", "٥", "５"]),
        st.sampled_from(NRS_ITEMS),  # as a confirm_skip value: NRS items cannot be skipped
        text,
    )
    field = st.one_of(st.sampled_from(NRS_ITEMS + ("action", "save_id", "confirm_skip")), text)
    forms = st.dictionaries(field, st.one_of(value, st.lists(value, max_size=3)), max_size=6)
    raw_bodies = st.binary(max_size=200).map(
        lambda b: b"nrs_current=" + quote_from_bytes(b).encode()
    )

    @settings(max_examples=60, deadline=None)
    @given(number=st.integers(1, 3), form=forms, raw=st.one_of(st.none(), raw_bodies))
    def post_page(number, form, raw):
        before = query(database, "SELECT COUNT(*) AS n FROM answers")[0]["n"]
        if raw is not None:
            reply = client.post(
                f"/a/nrs/{number}",
                data=raw,
                content_type="application/x-www-form-urlencoded",
            )
        else:
            reply = client.post(f"/a/nrs/{number}", data=form)
        assert reply.status_code < 500, reply.get_data(as_text=True)[:500]
        rows = query(database, "SELECT item, value FROM answers")
        assert len(rows) - before <= 1  # one item per NRS page: at most one new journal row
        for row in rows:
            assert row["item"] in NRS_ITEMS, row
            assert row["value"] in {str(code) for code in range(11)}, row

    post_page()
