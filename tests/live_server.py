"""A real gunicorn server over a database file, and a small cookie-keeping HTTP client.

Used by the durability tests: servers are killed with SIGKILL (the whole process group the
test started), restarted over the same file, and hit by many threads at once. Only the
standard library is used on the client side (http.client), so no test dependency is added.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "durability-tests-fixed-secret-key-0123456789"
READY_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_members(pgid: int) -> list[int]:
    """Pids of live (not zombie) processes in a process group, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


class LiveServer:
    """gunicorn (sync workers) serving wsgi:app over one database file, in its own session."""

    def __init__(self, db_path: Path, log_path: Path, *, workers: int = 2, crash_at=None):
        self.db_path = Path(db_path)
        self.log_path = Path(log_path)
        self.workers = workers
        self.crash_at = crash_at
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRO_")}
        env.update(
            PRO_DATABASE=str(self.db_path),
            PRO_DEMO="1",
            PRO_SECRET_KEY=SECRET_KEY,
            PRO_BASE_URL=self.base_url,
        )
        if self.crash_at:
            env["PRO_CRASH_AT"] = self.crash_at
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
            "--graceful-timeout",
            "2",
            "wsgi:app",
        ]
        self._log = open(self.log_path, "ab")  # closed in kill()
        self._log.write(f"--- start {' '.join(command)} crash_at={self.crash_at}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: kill() reaches the workers too
        )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        """Poll GET / until it answers 200 (no fixed sleeps); fail fast if gunicorn exits."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}: {self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn not ready after {READY_TIMEOUT_S} s: {self.log()}")

    def kill(self) -> None:
        """SIGKILL the master and every worker (the process group this object started)."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_members(pgid) and time.monotonic() < deadline:  # orphaned workers
            time.sleep(0.02)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_for_log(self, text: str, timeout: float = 10.0) -> bool:
        """Poll the server log until text appears (True) or the timeout passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return True
            time.sleep(0.02)
        return False

    def log(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


@dataclass
class Reply:
    status: int
    headers: dict
    text: str

    @property
    def location(self) -> str | None:
        """The redirect target as a path (with query), whether absolute or relative."""
        raw = self.headers.get("location")
        if raw is None:
            return None
        parts = urlsplit(raw)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def hidden(self, name: str) -> str:
        found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', self.text)
        assert found, f"no hidden input {name!r} in the page (status {self.status})"
        return found.group(1)


class Browser:
    """One cookie jar against one server: no redirects followed, every reply returned."""

    def __init__(self, port: int, cookies: dict | None = None):
        self.port = port
        self.cookies: dict[str, str] = dict(cookies or {})

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method, path, data=None, *, headers=None, keep_cookies=True) -> Reply:
        body = None
        sent = {"Connection": "close", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = self.cookie_header()
        if data is not None:
            body = data if isinstance(data, bytes) else urlencode(data, doseq=True).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            if keep_cookies:
                self._store(response.msg.get_all("Set-Cookie") or [])
            headers = {k.lower(): v for k, v in response.getheaders()}
            return Reply(response.status, headers, text)
        finally:
            conn.close()

    def _store(self, set_cookies) -> None:
        for line in set_cookies:
            pair, _, attributes = line.partition(";")
            name, _, value = pair.strip().partition("=")
            low = attributes.lower()
            if "max-age=0" in low or "expires=thu, 01 jan 1970" in low:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def get(self, path, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path, data, **kw) -> Reply:
        return self.request("POST", path, data, **kw)

    # --- The participant's flow ---------------------------------------------------------------

    def open_link(self, token: str) -> Reply:
        """GET the start page, then POST its form: the session starts; returns the redirect."""
        start = self.get(f"/i/{token}")
        assert start.status == 200, start.status
        reply = self.post(f"/i/{token}", {"csrf_token": start.hidden("csrf_token")})
        assert reply.status == 302, (reply.status, reply.text[:300])
        return reply

    def save_page(self, qid: str, number: int, values: dict, *, action="next") -> Reply:
        """GET a page for its csrf token and save id, then POST the values."""
        page = self.get(f"/a/{qid}/{number}")
        assert page.status == 200, (page.status, page.location)
        form = {
            **values,
            "csrf_token": page.hidden("csrf_token"),
            "save_id": page.hidden("save_id"),
            "action": action,
        }
        return self.post(f"/a/{qid}/{number}", form)

    def review_form(self, qid: str) -> dict:
        """The review page's form fields (csrf_token, submission_id)."""
        page = self.get(f"/a/{qid}/review")
        assert page.status == 200, (page.status, page.location)
        return {
            "csrf_token": page.hidden("csrf_token"),
            "submission_id": page.hidden("submission_id"),
        }


def query(db_path, sql: str, params=()) -> list[dict]:
    """Read rows with a plain sqlite3 connection (closed at once)."""
    conn = sqlite3.connect(str(db_path), timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def audit_verify(db_path) -> subprocess.CompletedProcess:
    """Run `flask --app pro_app audit verify` over a database file, as an operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRO_")}
    env["PRO_DATABASE"] = str(db_path)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "pro_app", "audit", "verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
