"""Start checks: serving outside the demo refuses an unsafe configuration, and says why."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys

import click
import pytest

from pro_app import create_app
from pro_app.settings import ROOT
from pro_app.startup import UnsafeConfig, problems, serving
from pro_app.storage.contacts import new_key

SECRET = "s" * 40
KEY = new_key()


def safe(**changes) -> dict:
    config = {
        "SECRET_KEY": SECRET,
        "BASE_URL": "https://pro.example.no",
        "CONTACT_KEY": KEY,
    }
    config.update(changes)
    return config


def test_a_safe_configuration_has_no_problems():
    assert problems(safe()) == []
    # http is fine on this machine (a trial run behind no proxy), nowhere else
    assert problems(safe(BASE_URL="http://localhost:8000")) == []
    assert problems(safe(BASE_URL="http://127.0.0.1:8080")) == []


@pytest.mark.parametrize(
    ("changes", "setting", "words"),
    [
        ({"SECRET_KEY": "dev-only-not-secret"}, "SECRET_KEY", "development default"),
        ({"SECRET_KEY": ""}, "SECRET_KEY", "development default"),
        ({"SECRET_KEY": "x" * 31}, "SECRET_KEY", "31 characters, fewer than 32"),
        ({"BASE_URL": "http://127.0.0.1:5000"}, "BASE_URL", "is not set"),
        ({"BASE_URL": None}, "BASE_URL", "is not set"),
        ({"BASE_URL": "http://pro.example.no"}, "BASE_URL", "is not https"),
        ({"BASE_URL": "pro.example.no"}, "BASE_URL", "is not a full address"),
        ({"DEBUG": True}, "DEBUG", "debug mode is on"),
        ({"CONTACT_KEY": ""}, "CONTACT_KEY", "contact details cannot be stored"),
        ({"CONTACT_KEY": "not-a-key"}, "CONTACT_KEY", "not a valid key"),
    ],
)
def test_each_unsafe_setting_is_named_with_its_fix(changes, setting, words):
    found = problems(safe(**changes))
    assert [p.setting for p in found] == [setting]
    assert words in found[0].problem and found[0].fix
    text = str(found[0])
    assert text.startswith(f"PRO_{setting}: ")


def test_the_fixes_say_how():
    found = {p.setting: p for p in problems({})}
    assert set(found) == {"SECRET_KEY", "BASE_URL", "CONTACT_KEY"}
    assert "secrets.token_urlsafe" in found["SECRET_KEY"].fix
    assert "https://" in found["BASE_URL"].fix
    assert "flask --app pro_app contacts new-key" in found["CONTACT_KEY"].fix


def _serve(config: dict):
    """create_app as `flask run` calls it: inside the run command."""
    with click.Context(click.Command("run")):
        assert serving()
        return create_app(config)


def test_serving_refuses_an_unsafe_configuration(tmp_path):
    with pytest.raises(UnsafeConfig) as refused:
        _serve({"DATABASE": str(tmp_path / "a.sqlite")})
    message = str(refused.value)
    assert message.startswith("The app will not start")
    for setting in ("PRO_SECRET_KEY", "PRO_BASE_URL", "PRO_CONTACT_KEY"):
        assert setting in message
    assert "flask --app pro_app doctor" in message
    with pytest.raises(UnsafeConfig, match="PRO_DEBUG"):
        _serve({"DATABASE": str(tmp_path / "a.sqlite"), **safe(DEBUG=True)})


def test_flask_debug_in_the_environment_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    with pytest.raises(UnsafeConfig, match="debug mode is on"):
        _serve({"DATABASE": str(tmp_path / "a.sqlite"), **safe()})


def test_serving_starts_with_a_safe_configuration(tmp_path):
    app = _serve({"DATABASE": str(tmp_path / "a.sqlite"), **safe()})
    assert app.config["BASE_URL"] == "https://pro.example.no"


def test_the_demo_and_the_tests_start_with_development_settings(tmp_path):
    demo = _serve({"DATABASE": str(tmp_path / "d.sqlite"), "DEMO": True})
    assert demo.config["SECRET_KEY"] == "dev-only-not-secret"
    testing = _serve({"DATABASE": str(tmp_path / "t.sqlite"), "TESTING": True})
    assert testing.config["TESTING"]


def test_other_commands_start_so_that_they_can_fix_things(tmp_path):
    with click.Context(click.Command("db")):
        assert not serving()
        app = create_app({"DATABASE": str(tmp_path / "a.sqlite")})
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output


def _environment(tmp_path, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRO_", "FLASK_"))}
    env["PRO_DATABASE"] = str(tmp_path / "pro.sqlite")
    env.update(settings)
    return env


def test_the_wsgi_entry_point_refuses_and_starts(tmp_path, monkeypatch):
    for name in [k for k in os.environ if k.startswith(("PRO_", "FLASK_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PRO_DATABASE", str(tmp_path / "pro.sqlite"))
    with pytest.raises(UnsafeConfig, match="PRO_SECRET_KEY"):
        runpy.run_path(str(ROOT / "wsgi.py"))
    for name, value in {
        "PRO_SECRET_KEY": SECRET,
        "PRO_BASE_URL": "https://pro.example.no",
        "PRO_CONTACT_KEY": KEY,
    }.items():
        monkeypatch.setenv(name, value)
    app = runpy.run_path(str(ROOT / "wsgi.py"))["app"]
    assert app.test_client().get("/healthz").status_code == 200


def test_flask_run_refuses_with_a_plain_message(tmp_path):
    """The real command: exit 1, 'Error: The app will not start', no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "pro_app", "run", "--port", "0"],
        cwd=ROOT,
        env=_environment(tmp_path, PRO_SECRET_KEY="short"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Error: The app will not start" in result.stderr
    assert "PRO_SECRET_KEY: has 5 characters" in result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_refuses_an_app_factory_too(tmp_path):
    """`gunicorn 'pro_app:create_app()'` bypasses wsgi.py; it must refuse as well."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            "127.0.0.1:0",
            "--no-control-socket",
            "pro_app:create_app()",
        ],
        cwd=ROOT,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "The app will not start" in result.stderr and "PRO_CONTACT_KEY" in result.stderr
