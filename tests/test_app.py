"""The app shell: settings, languages, headers, and the house rules the code must keep."""

from __future__ import annotations

import re

import pytest

from pro_app import create_app
from pro_app.settings import ROOT, SETTINGS


def test_landing_page_is_norwegian_by_default(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<html lang="nb">' in html
    assert "Skjemaer for studien" in html
    assert "Du åpner skjemaet fra lenken studieteamet har sendt deg" in html
    assert 'lang="en"' in html and "English" in html


def test_english_on_request_and_kept(client):
    html = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "Questionnaires for the study" in html
    assert "Norsk (bokmål)" in html
    assert '<html lang="en">' in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("lang", ["xx", "../../etc", "nb_NO.UTF-8", ""])
def test_unknown_language_falls_back_to_norwegian(client, lang):
    page = client.get(f"/?lang={lang}")
    assert page.status_code == 200
    assert '<html lang="nb">' in page.get_data(as_text=True)


def test_security_headers(client):
    headers = client.get("/").headers
    assert "object-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in headers
    assert "Strict-Transport-Security" in client.get("/", base_url="https://x").headers


def test_environment_overrides_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("PRO_DATABASE", str(tmp_path / "x.sqlite"))
    monkeypatch.setenv("PRO_DEMO", "true")
    app = create_app({"TESTING": True})
    assert app.config["DATABASE"] == str(tmp_path / "x.sqlite")
    assert app.config["DEMO"] is True


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"PRO_{setting.name}" in readme, setting.name


def test_norwegian_catalogue_is_complete():
    po = (ROOT / "translations" / "nb" / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    entries = re.findall(r'msgid "(.+?)"\nmsgstr "(.*?)"', po)
    assert entries
    assert [m for m, s in entries if not s] == []
    assert (ROOT / "translations" / "nb" / "LC_MESSAGES" / "messages.mo").exists()


def test_no_instrument_knowledge_in_code(catalog):
    """No questionnaire, item or score id of the shipped definitions appears in pro_app/."""
    names = set(catalog.questionnaires)
    for q in catalog.questionnaires.values():
        names.update(i.id for i in q.items)
        names.update(s.id for s in q.scores)
    names.update(d.id for d in catalog.study.derived)
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")
    offenders = []
    for path in sorted((ROOT / "pro_app").rglob("*")):
        if path.suffix in (".py", ".html", ".js"):  # CSS has its own "background"
            for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_wsgi_entry_point_serves_the_app(monkeypatch):
    import runpy

    monkeypatch.setenv("PRO_DEMO", "1")
    app = runpy.run_path(str(ROOT / "wsgi.py"))["app"]
    assert app.test_client().get("/").status_code == 200
