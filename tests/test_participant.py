"""The participant's flow through the Flask test client, with a real database."""

from __future__ import annotations

import re
import sqlite3

import pytest

from .factories import enrol, link_token, make_app


@pytest.fixture
def app(tmp_path):
    return make_app(tmp_path / "p.sqlite", WTF_CSRF_ENABLED=False)


def rows(app, sql, params=()):
    conn = sqlite3.connect(app.config["DATABASE"])
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(app, table):
    return rows(app, f"SELECT COUNT(*) FROM {table}")[0][0]


def start(app, code="BTB-0001", timepoint="screening", **enrolment):
    enrol(app, code, **enrolment)
    token = link_token(app, code, timepoint)
    client = app.test_client()
    return client, token


def open_link(client, token):
    return client.post(f"/i/{token}")


def answer_page(client, url, data, action="next"):
    return client.post(url, data={**data, "action": action})


def fill_nrs(client, values=(5, 6, 4)):
    for number, (item, value) in enumerate(
        zip(("nrs_current", "nrs_worst", "nrs_usual"), values, strict=True), 1
    ):
        reply = answer_page(client, f"/a/nrs/{number}", {item: str(value)})
        assert reply.status_code == 302, reply.get_data(as_text=True)[:500]


def test_opening_a_link_changes_nothing(app):
    client, token = start(app)
    before = (count(app, "audit"), rows(app, "SELECT first_used_at FROM invites"))
    page = client.get(f"/i/{token}")
    assert page.status_code == 200
    assert "Start" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert (count(app, "audit"), rows(app, "SELECT first_used_at FROM invites")) == before


def test_exchange_redirects_without_the_token(app):
    client, token = start(app)
    reply = open_link(client, token)
    assert reply.status_code == 302 and reply.headers["Location"] == "/a"
    assert token not in reply.headers["Location"]
    overview = client.get("/a").get_data(as_text=True)
    assert "Skjemaene dine" in overview and "Smerter i korsryggen" in overview
    assert rows(app, "SELECT first_used_at IS NOT NULL FROM invites") == [(1,)]


def test_unknown_and_revoked_links_answer_alike(app):
    client, token = start(app)
    link_token(app, "BTB-0001", "screening")  # reissue: the first token is revoked
    revoked = client.get(f"/i/{token}")
    unknown = client.get("/i/" + "x" * 43)
    assert revoked.status_code == unknown.status_code == 404
    assert revoked.get_data() == unknown.get_data()
    assert "Lenken virker ikke" in unknown.get_data(as_text=True)
    assert open_link(client, token).status_code == 404


def test_expired_and_upcoming_links(app):
    client, token = start(app, enrolled=-80, day0=-60, timepoint="baseline")
    page = client.get(f"/i/{token}")
    assert page.status_code == 410 and "Lenken er utløpt" in page.get_data(as_text=True)
    enrol(app, "BTB-0002", enrolled=-1, day0=30)
    upcoming = client.get(f"/i/{link_token(app, 'BTB-0002', 'baseline')}")
    assert upcoming.status_code == 200
    assert "Skjemaene er ikke åpne ennå" in upcoming.get_data(as_text=True)


def test_pages_reach_only_the_timepoint_of_the_link(app):
    client, token = start(app)
    open_link(client, token)
    assert client.get("/a/rmdq/1").status_code == 404  # baseline only, not screening
    assert client.get("/a/nope/1").status_code == 404
    assert client.get("/a/nrs/1").status_code == 200


def test_no_session_no_pages(app):
    client = app.test_client()
    page = client.get("/a")
    assert page.status_code == 401
    assert "Åpne lenken på nytt" in page.get_data(as_text=True)


def test_required_item_blocks_with_an_error_summary(app):
    client, token = start(app)
    open_link(client, token)
    page = answer_page(client, "/a/nrs/1", {})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Noe må rettes" in html and 'href="#i-nrs_current-0"' in html
    assert 'id="i-nrs_current-0"' in html
    assert "Du må svare på dette spørsmålet." in html
    assert count(app, "answers") == 0


def test_autosave_every_page_and_resume(app):
    client, token = start(app)
    open_link(client, token)
    answer_page(client, "/a/nrs/1", {"nrs_current": "7"})
    assert rows(app, "SELECT item, value, actor FROM answers") == [
        ("nrs_current", "7", "participant:BTB-0001")
    ]
    assert "Lagret" in client.get("/a/nrs/2?saved=1").get_data(as_text=True)
    # A fresh browser: the same link continues at the first unanswered page.
    again = app.test_client()
    reply = open_link(again, token)
    assert reply.headers["Location"] == "/a/nrs"
    assert again.get("/a/nrs").headers["Location"] == "/a/nrs/2"
    assert 'value="7" checked' in again.get("/a/nrs/1").get_data(as_text=True)


def test_a_repeated_save_id_stores_nothing_new(app):
    client, token = start(app)
    open_link(client, token)
    data = {"nrs_current": "3", "save_id": "same-save"}
    assert answer_page(client, "/a/nrs/1", data).status_code == 302
    assert answer_page(client, "/a/nrs/1", {**data, "nrs_current": "9"}).status_code == 302
    assert rows(app, "SELECT value FROM answers") == [("3",)]


def test_every_save_is_a_journal_row(app):
    client, token = start(app)
    open_link(client, token)
    for value in ("2", "4", "4"):
        answer_page(client, "/a/nrs/1", {"nrs_current": value})
    assert rows(app, "SELECT value FROM answers ORDER BY id") == [("2",), ("4",)]
    audit = rows(
        app,
        "SELECT action, field, old_value, new_value FROM audit "
        "WHERE action = 'answer.save' ORDER BY id",
    )
    assert audit == [
        ("answer.save", "nrs_current", '{"nrs_current":null}', '{"nrs_current":2}'),
        ("answer.save", "nrs_current", '{"nrs_current":2}', '{"nrs_current":4}'),
    ]


def test_skippable_item_asks_once_then_stores_declined(app):
    client, token = start(app, timepoint="baseline")
    open_link(client, token)
    first = answer_page(
        client, "/a/hscl25/3", {f"hscl{n}": "1" for n in range(11, 14)} | {"hscl15": "1"}
    )
    html = first.get_data(as_text=True)
    assert "Du har ikke svart. Velg et svar" in html  # hscl14 is skippable
    assert 'name="confirm_skip" value="hscl14"' in html
    second = answer_page(
        client,
        "/a/hscl25/3",
        {f"hscl{n}": "1" for n in (11, 12, 13, 15)} | {"confirm_skip": "hscl14"},
    )
    assert second.status_code == 302
    assert ("hscl14", '"declined"') in rows(app, "SELECT item, value FROM answers")


def test_back_and_language_buttons_save_without_blocking(app):
    client, token = start(app)
    open_link(client, token)
    answer_page(client, "/a/nrs/1", {"nrs_current": "1"})
    back = answer_page(client, "/a/nrs/2", {"nrs_worst": "8"}, action="back")
    assert back.headers["Location"] == "/a/nrs/1"
    switch = answer_page(client, "/a/nrs/2", {}, action="en")
    assert switch.headers["Location"] == "/a/nrs/2?lang=en"
    html = client.get(switch.headers["Location"]).get_data(as_text=True)
    assert '<html lang="en">' in html and 'value="8" checked' in html and ">Next<" in html


def test_display_condition_on_an_earlier_page(app):
    client, token = start(app, timepoint="baseline")
    open_link(client, token)
    stiffness = _page_with(client, "background", "bg_morning_stiffness")
    answer_page(client, f"/a/background/{stiffness}", {"bg_morning_stiffness": "0"})
    following = client.get(f"/a/background/{stiffness + 1}").get_data(as_text=True)
    assert 'name="bg_stiffness_duration"' not in following
    answer_page(client, f"/a/background/{stiffness}", {"bg_morning_stiffness": "1"})
    following = client.get(f"/a/background/{stiffness + 1}").get_data(as_text=True)
    assert 'name="bg_stiffness_duration"' in following


def _page_with(client, qid, item):
    for number in range(1, 30):
        html = client.get(f"/a/{qid}/{number}").get_data(as_text=True)
        if f'name="{item}"' in html:
            return number
    raise AssertionError(f"{item} not found")


def test_review_submit_and_receipt(app):
    client, token = start(app)
    open_link(client, token)
    fill_nrs(client)
    review = client.get("/a/nrs/review").get_data(as_text=True)
    assert "Se over svarene dine" in review and "Endre" in review
    submission = re.search(r'name="submission_id" value="([0-9a-f]+)"', review).group(1)
    reply = client.post("/a/nrs/review", data={"submission_id": submission})
    assert reply.status_code == 302 and reply.headers["Location"] == "/a"
    assert rows(app, "SELECT status FROM responses") == [("submitted",)]
    assert rows(app, "SELECT score, value FROM scores") == [("lbp_mean", "5.0")]
    assert count(app, "outbox") == 1
    # A double tap, a retry or a second tab: nothing new, the same place.
    again = client.post("/a/nrs/review", data={"submission_id": submission})
    other = client.post("/a/nrs/review", data={"submission_id": "another-tab"})
    assert again.headers["Location"] == other.headers["Location"] == "/a"
    assert count(app, "outbox") == 1 and count(app, "scores") == 1
    # Answers can no longer change.
    assert client.get("/a/nrs/1").headers["Location"] == "/a"
    assert answer_page(client, "/a/nrs/1", {"nrs_current": "0"}).status_code == 302
    assert rows(app, "SELECT COUNT(*) FROM answers WHERE value = '0'") == [(0,)]


def _fill_odi(client):
    for number in range(1, 11):
        assert answer_page(client, f"/a/odi/{number}", {f"odi{number}": "1"}).status_code == 302


def test_last_questionnaire_gives_one_receipt_for_the_timepoint(app):
    client, token = start(app)
    open_link(client, token)
    fill_nrs(client)
    client.post("/a/nrs/review", data={"submission_id": "s-nrs"})
    _fill_odi(client)
    reply = client.post("/a/odi/review", data={"submission_id": "s-odi"})
    assert reply.headers["Location"] == "/a/receipt"
    html = client.get("/a/receipt").get_data(as_text=True)
    code = re.search(r'class="code">([A-Z2-9]{4}-[A-Z2-9]{4})<', html).group(1)
    assert rows(app, "SELECT receipt_code FROM assessments WHERE completed_at IS NOT NULL") == [
        (code,)
    ]
    # Blinded trial: no scores on the participant's pages.
    assert "lbp_mean" not in html and "odi_band" not in html
    finished = app.test_client().get(f"/i/{token}")
    assert "Du har allerede sendt inn svarene dine" in finished.get_data(as_text=True)


def test_submit_refuses_gaps_and_points_to_them(app):
    client, token = start(app)
    open_link(client, token)
    answer_page(client, "/a/nrs/1", {"nrs_current": "2"})
    reply = client.post("/a/nrs/review", data={"submission_id": "gap"})
    assert reply.headers["Location"] == "/a/nrs/2"
    assert rows(app, "SELECT status FROM responses") == [("in_progress",)]


def test_safety_item_raises_an_alert_and_shows_help(app):
    client, token = start(app, timepoint="baseline")
    open_link(client, token)
    for page in range(1, 6):
        items = {f"hscl{n}": "1" for n in range(5 * page - 4, 5 * page + 1)}
        if page == 4:
            items["hscl20"] = "3"
        assert answer_page(client, f"/a/hscl25/{page}", items).status_code == 302
    client.post("/a/hscl25/review", data={"submission_id": "h"})
    assert rows(app, "SELECT alert, site FROM alerts") == [("hscl20_thoughts", "OUS")]
    html = client.get("/a").get_data(as_text=True)
    assert "Trenger du noen å snakke med?" in html
    assert "Ring 113 hvis det haster." in html and "116 123" in html
    assert "Studieteamet ved Oslo universitetssykehus" in html


def test_session_idle_timeout_keeps_answers(app, monkeypatch):
    client, token = start(app)
    open_link(client, token)
    answer_page(client, "/a/nrs/1", {"nrs_current": "6"})
    import pro_app.participant.session as participant_session

    monkeypatch.setattr(participant_session, "IDLE_SECONDS", -1)
    assert client.get("/a/nrs/2").status_code == 401
    monkeypatch.undo()
    fresh = app.test_client()
    open_link(fresh, token)
    assert 'value="6" checked' in fresh.get("/a/nrs/1").get_data(as_text=True)


def test_pages_are_not_cached(app):
    client, token = start(app)
    open_link(client, token)
    assert client.get("/a/nrs/1").headers["Cache-Control"] == "no-store"


def test_csrf_and_origin_are_checked(tmp_path):
    app = make_app(tmp_path / "c.sqlite")
    enrol(app, "BTB-0009")
    token = link_token(app, "BTB-0009", "screening")
    client = app.test_client()
    assert client.post(f"/i/{token}").status_code == 400  # no CSRF token
    html = client.get(f"/i/{token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    evil = client.post(
        f"/i/{token}", data={"csrf_token": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    good = client.post(
        f"/i/{token}", data={"csrf_token": csrf}, headers={"Origin": "http://localhost"}
    )
    assert good.status_code == 302


def test_manifest_and_service_worker(app):
    client = app.test_client()
    manifest = client.get("/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    assert manifest.json["start_url"] == "/" and len(manifest.json["icons"]) == 3
    worker = client.get("/sw.js")
    assert worker.headers["Service-Worker-Allowed"] == "/"
    assert "caches.open" in worker.get_data(as_text=True)
    worker.close()
    assert client.get("/offline").status_code == 200
