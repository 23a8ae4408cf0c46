"""One gunicorn server and one chromium per session; a fresh phone-sized context per test.

The server runs `wsgi:app` with two workers on a socket this process binds to port 0 and hands
over (`--bind fd://N`), over a database file created and migrated with tests/factories.py.
Participants and invite links are written to that same file in-process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories import enrol, link_token, make_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "locale": "nb-NO",
}
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


@dataclass
class Server:
    """The running app: its address, its database file and the in-process factory app."""

    url: str
    db_path: Path
    app: object
    log_path: Path

    def link(self, code: str, timepoint: str = "baseline", **enrol_args) -> str:
        """Enrol a participant (baseline and screening open) and return a full invite URL."""
        enrol(self.app, code, **enrol_args)
        return f"{self.url}/i/{link_token(self.app, code, timepoint)}"

    def query(self, sql: str, params=()) -> list[tuple]:
        """Read the database file directly (a separate connection, as a reviewer would)."""
        conn = sqlite3.connect(str(self.db_path), timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_until_up(url: str, proc: subprocess.Popen, log_path: Path, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{url}/offline", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer in {seconds} s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """gunicorn -w 2 on 127.0.0.1:<free port> over a fresh, migrated database file."""
    folder = tmp_path_factory.mktemp("browser")
    db_path = folder / "pro.sqlite"
    secret = "browser-tests-" + secrets.token_hex(16)
    app = make_app(db_path, SECRET_KEY=secret)

    with gunicorn(
        folder, {"PRO_DATABASE": str(db_path), "PRO_DEMO": "1", "PRO_SECRET_KEY": secret}
    ) as (url, log_path):
        yield Server(url=url, db_path=db_path, app=app, log_path=log_path)


@contextlib.contextmanager
def gunicorn(folder: Path, settings: dict):
    """gunicorn -w 2 on 127.0.0.1:<free port> with these PRO_* settings; yields (url, log)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRO_")}
    env.update(settings)
    env["PRO_BASE_URL"] = url
    log_path = folder / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "2",
                "-b",
                f"fd://{listener.fileno()}",
                "--graceful-timeout",
                "2",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    listener.close()  # gunicorn holds its own copy of the socket
    try:
        _wait_until_up(url, proc, log_path)
        yield url, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def context(browser):
    """A fresh phone-sized context (own cookies, storage and service worker) per test."""
    ctx = browser.new_context(**PHONE)
    ctx.set_default_timeout(10_000)
    ctx.set_default_navigation_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    """A page that records uncaught script errors; the test fails if any occurred."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    assert not errors, f"uncaught script errors in the page: {errors}"


@pytest.fixture
def shoot():
    """Save a phone-size screenshot, only when PRO_SCREENSHOTS is set (CI writes nothing)."""

    def save(page, name: str) -> None:
        if not os.environ.get("PRO_SCREENSHOTS"):
            return
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return save
