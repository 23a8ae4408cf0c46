"""The admin's API token page: a token is shown once, works, and is revoked from the page."""

from __future__ import annotations

from pro_app.database import get_db
from tests.factories import enrol, make_app
from tests.test_staff import account, sign_in


def test_an_admin_makes_a_token_that_works_once_shown_and_revokes_it(tmp_path):
    app = make_app(tmp_path / "t.sqlite", WTF_CSRF_ENABLED=False)
    enrol(app, "BTB-0001")
    password, secret = account(app, "admin@example.org", "admin")
    admin = sign_in(app, "admin@example.org", password, secret)
    refused = admin.post("/staff/api-tokens", data={"name": "", "role": "data_manager"})
    assert refused.status_code == 400 and "Gi tokenet et navn" in refused.get_data(as_text=True)
    wrong = admin.post("/staff/api-tokens", data={"name": "x", "role": "coordinator"})
    assert wrong.status_code == 400
    made = admin.post("/staff/api-tokens", data={"name": "statistikk", "role": "data_manager"})
    page = made.get_data(as_text=True)
    assert made.status_code == 200
    token = page.split('<code class="secret">')[1].split("</code>")[0]
    assert token.startswith("pro_")
    api = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/participants", headers=auth).status_code == 200
    listing = admin.get("/staff/api-tokens").get_data(as_text=True)
    assert "statistikk" in listing and token not in listing  # shown once only
    with app.app_context():
        (token_id, stored) = (
            get_db().conn.execute("SELECT id, token_hash FROM api_tokens").fetchone()
        )
    assert token not in stored
    gone = admin.post(f"/staff/api-tokens/{token_id}/revoke")
    assert gone.status_code == 302
    assert api.get("/api/v1/participants", headers=auth).status_code == 401
    again = admin.post(f"/staff/api-tokens/{token_id}/revoke", follow_redirects=True)
    assert "finnes ikke eller er alt trukket tilbake" in again.get_data(as_text=True)
    password, secret = account(app, "dm@example.org", "data_manager")
    manager = sign_in(app, "dm@example.org", password, secret)
    assert manager.get("/staff/api-tokens").status_code == 403
