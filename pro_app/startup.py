"""Start checks: what in a configuration makes it unsafe for real participants.

`problems(config)` is pure and is shared by the start refusal (serving outside the demo
refuses to start) and `flask doctor` (reports the same problems as failures). Commands other
than `flask run` still start, so that an operator can fix things with them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from urllib.parse import urlsplit

import click

from .settings import defaults

MIN_SECRET_LENGTH = 32
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


@dataclass(frozen=True)
class Problem:
    """One unsafe setting: which, what is wrong with it, and how to fix it."""

    setting: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"PRO_{self.setting}: {self.problem}; {self.fix}"


class UnsafeConfig(click.ClickException):
    """The app refuses to serve: the message lists every problem and its fix.

    A ClickException, so that `flask run` prints it as a plain error (exit 1); under
    gunicorn it stops the worker from booting, and gunicorn stops.
    """

    def __init__(self, found: list[Problem]):
        self.problems = list(found)
        lines = [
            "The app will not start: its configuration is not safe for real participants.",
            *(f"  - {p}" for p in self.problems),
            "Fix these in instance/config.py or the PRO_* environment, then check with "
            "'flask --app pro_app doctor'. (A demo on this machine: 'make run'.)",
        ]
        super().__init__("\n".join(lines))


def problems(config) -> list[Problem]:
    """Return what makes this configuration unsafe to serve participants with."""
    found: list[Problem] = []
    known = defaults()
    secret = str(config.get("SECRET_KEY") or "")
    if not secret or secret == known["SECRET_KEY"]:
        found.append(
            Problem(
                "SECRET_KEY",
                "is the development default (anyone could forge sessions)",
                f"set a random value of at least {MIN_SECRET_LENGTH} characters, e.g. from "
                f"{MAKE_SECRET}",
            )
        )
    elif len(secret) < MIN_SECRET_LENGTH:
        found.append(
            Problem(
                "SECRET_KEY",
                f"has {len(secret)} characters, fewer than {MIN_SECRET_LENGTH}",
                f"set a longer random value, e.g. from {MAKE_SECRET}",
            )
        )
    found.extend(_base_url_problems(config.get("BASE_URL"), known["BASE_URL"]))
    if config.get("DEBUG"):
        found.append(
            Problem(
                "DEBUG",
                "debug mode is on (its debugger lets anyone run code on the server)",
                "unset FLASK_DEBUG and PRO_DEBUG, and do not pass --debug",
            )
        )
    found.extend(_contact_key_problems(config.get("CONTACT_KEY")))
    return found


def _base_url_problems(value, default) -> list[Problem]:
    url = str(value or "")
    if not url or url == default:
        return [
            Problem(
                "BASE_URL",
                "is not set (links in invitations would point to this machine)",
                "set it to the app's public address, e.g. https://pro.sykehus.no",
            )
        ]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Problem(
                "BASE_URL",
                f"'{url}' is not a full address",
                "set it to the app's public address, e.g. https://pro.sykehus.no",
            )
        ]
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        return [
            Problem(
                "BASE_URL",
                f"'{url}' is not https (links and sessions would travel unencrypted)",
                "serve the app over https behind a proxy and set the https address",
            )
        ]
    return []


def _contact_key_problems(value) -> list[Problem]:
    from cryptography.fernet import Fernet

    key = str(value or "")
    make = "make one with 'flask --app pro_app contacts new-key' and keep it apart from backups"
    if not key:
        return [Problem("CONTACT_KEY", "is not set (contact details cannot be stored)", make)]
    try:
        Fernet(key.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError):
        return [Problem("CONTACT_KEY", "is not a valid key (32 url-safe base64 bytes)", make)]
    return []


def exempt(config) -> bool:
    """The demo and the test suite may start with development settings."""
    return bool(config.get("DEMO") or config.get("TESTING"))


def serving() -> bool:
    """Is this process about to serve requests (not a CLI command that fixes things)?

    `flask run` loads the app inside its own command; any other `flask` command loads it
    while choosing the command. gunicorn and uWSGI are recognised by their modules, so
    `gunicorn 'pro_app:create_app()'` refuses as well as `gunicorn wsgi:app`.
    """
    context = click.get_current_context(silent=True)
    if context is not None and context.command.name == "run":
        return True
    return "gunicorn.arbiter" in sys.modules or "uwsgi" in sys.modules


def refuse_unsafe(app):
    """Raise UnsafeConfig if the app's configuration is unsafe (outside demo/tests)."""
    if not exempt(app.config):
        found = problems(app.config)
        if found:
            raise UnsafeConfig(found)
    return app


def check_start(app) -> None:
    """At create_app: refuse an unsafe configuration when the process will serve."""
    if serving():
        refuse_unsafe(app)
