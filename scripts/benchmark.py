"""Benchmark: what a phone downloads for a questionnaire page, and how fast page saves go.

How to run (from the project root, after `make install`; about 35 s with the defaults):

    .venv/bin/python scripts/benchmark.py
    .venv/bin/python scripts/benchmark.py --seconds 20 --connections 16 --json bench.json
    .venv/bin/python scripts/benchmark.py --profile 300     # also profile saves in-process

This is a script, not a test: it is kept out of CI on purpose (timings depend on the machine).

What it does, in one run:

1. Page weight. Starts the real app under gunicorn (`wsgi:app`, a temporary database prepared
   with tests/factories.py), opens an invite link like a participant, fetches questionnaire
   pages (by default /a/hscl25/1, the heaviest, and /a/nrs/1) and everything each page needs:
   the stylesheet, scripts, manifest and icon it links to, the service worker that app.js
   registers, anything the CSS pulls in with url(), and the icons the manifest lists (a phone
   fetches those to offer installing the app). Each is reported raw and gzip-compressed at
   level 6, done here because gunicorn does not compress: in production the proxy in front of
   gunicorn must (PNG images are counted raw: they do not compress). The total is checked
   against the issue's aim (30 KB) and the house budget (15 KB), with 1 KB = 1,000 bytes.

2. Save throughput. POSTs page saves (a new save_id each time, the answers alternating so every
   save writes) to the real app for --seconds over --connections concurrent connections, from a
   Python load generator (threads, http.client). Each connection has its own participant, so
   saves on one response never race each other. Reports requests/s and p50/p95/p99 latency.

3. The bare baseline. scripts/bare_app.py, a minimal Flask app that does one SQLite INSERT per
   request with the same durability settings (WAL, synchronous=FULL, BEGIN IMMEDIATE), is served
   by gunicorn with the same workers and loaded the same way in the same run. The two are
   measured in short alternating slices (--rounds, default 10: bare, app, app, bare, ...) so
   that a burst of noise on a shared machine hits both alike. The result is the ratio app/bare
   of throughput, checked against >= 0.5; the spread of the per-slice ratios is shown too.

The load generator shares the machine's cores (and disk) with gunicorn, so absolute figures
mean little; compare the ratio. Server CPU time per request (gunicorn's processes, read from
/proc) is shown as a second, steadier measure: how many bare writes one save costs. --profile N
times N saves in-process by SQL statement (for the app and the bare write) and runs cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gzip
import http.client
import io
import json
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
HOST = "127.0.0.1"
KB = 1000
AIM_BYTES = 30 * KB  # the issue: under 30 KB per page
HOUSE_BYTES = 15 * KB  # the house budget
MIN_RATIO = 0.5  # page saves at no less than half the bare app's rate
MAX_SESSIONS = 24  # the invite exchange allows 30 per client address per 10 minutes
TIMEPOINT = "baseline"
USER_AGENT = "Mozilla/5.0 (Linux; Android 14) pro-app-benchmark"
COMPRESSIBLE = (
    "text/",
    "application/javascript",
    "application/json",
    "application/manifest+json",
    "application/xml",
    "image/svg+xml",
)

# --- HTTP helpers ------------------------------------------------------------------------------


@dataclass
class Fetched:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    header_bytes: int

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Browser:
    """A one-cookie-jar client (enough for the app's session cookie)."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, form: dict | None = None) -> Fetched:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if self.cookies:
            headers["Cookie"] = self.cookie_header()
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        for line in resp.headers.get_all("Set-Cookie") or []:
            pair = line.split(";", 1)[0]
            name, _, value = pair.partition("=")
            expired = "expires=thu, 01 jan 1970" in line.lower() or "max-age=0" in line.lower()
            if expired or not value:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()
        header_bytes = len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + 2
        header_bytes += sum(len(f"{k}: {v}\r\n") for k, v in resp.headers.items())
        return Fetched(resp.status, resp.headers, data, header_bytes)

    def get(self, path: str) -> Fetched:
        return self.request("GET", path)

    def post(self, path: str, form: dict) -> Fetched:
        return self.request("POST", path, form)


class PageParser(HTMLParser):
    """Collect what a page links to and its form inputs."""

    def __init__(self):
        super().__init__()
        self.resources: list[tuple[str, str]] = []  # (url, what)
        self.inputs: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "link" and a.get("href"):
            rel = a.get("rel", "").lower()
            if any(r in rel.split() for r in ("stylesheet", "manifest", "icon", "preload")) or (
                "apple-touch-icon" in rel
            ):
                self.resources.append((a["href"], f"<link rel={rel}>"))
        elif tag == "script" and a.get("src"):
            self.resources.append((a["src"], "<script>"))
        elif tag in ("img", "source", "audio", "video") and a.get("src"):
            self.resources.append((a["src"], f"<{tag}>"))
        elif tag == "input":
            self.inputs.append(a)

    def value_of(self, name: str) -> str | None:
        return next((i.get("value") for i in self.inputs if i.get("name") == name), None)


def parse_page(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def local_path(url: str, base: str) -> str | None:
    """Resolve a reference to a path on this server (None for other sites and data: URLs)."""
    if url.startswith(("data:", "#", "mailto:", "tel:")):
        return None
    full = urllib.parse.urljoin(base, url)
    parts = urllib.parse.urlsplit(full)
    if parts.netloc and parts.netloc != urllib.parse.urlsplit(base).netloc:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- Servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Gunicorn:
    """One gunicorn master in its own process group, stopped (with its workers) on exit."""

    def __init__(
        self, name, app_spec, *, env, cwd, workers, worker_class, log_dir, extra=(), port=None
    ):
        self.name = name
        self.port = port or free_port()
        self.log_path = Path(log_dir) / f"{name}-gunicorn.log"
        self.log = open(self.log_path, "wb")  # closed in stop()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",  # not ./gunicorn.conf.py: both apps run alike, as in decision 0013
            "/dev/null",
            "-w",
            str(workers),
            "-k",
            worker_class,
            "-b",
            f"{HOST}:{self.port}",
            "--log-level",
            "warning",
            *extra,
            app_spec,
        ]
        self.proc = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and its workers
        )

    def wait_ready(self, path: str = "/", timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
                if status < 500:
                    # Every worker should have imported the app; a short pause covers the rest.
                    time.sleep(0.5)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: gunicorn not ready after {timeout:.0f} s\n{self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The master and its workers (children found through /proc)."""
        found = [self.proc.pid]
        proc = Path("/proc")
        if not proc.is_dir():
            return found
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.proc.pid:
                found.append(int(entry.name))
        return found

    def cpu_seconds(self, pids: list[int]) -> float | None:
        """User + system CPU time of the given processes, or None without /proc."""
        tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self.log.close()


# --- Preparing the real app --------------------------------------------------------------------


def prepare_database(path: Path, participants: int) -> list[str]:
    """A migrated database with participants whose baseline is open; return invite tokens."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.factories import enrol, link_token, make_app

    app = make_app(path, SECRET_KEY="bench")
    tokens = []
    for n in range(participants):
        code = f"BTB-{9000 + n:04d}"
        enrol(app, code, language="nb")
        tokens.append(link_token(app, code, TIMEPOINT))
    return tokens


def open_invite(browser: Browser, token: str) -> None:
    """Open the invite link as a participant does: the start page, then Start."""
    start = browser.get(f"/i/{token}")
    if start.status != 200:
        raise RuntimeError(f"start page answered {start.status}")
    csrf = parse_page(start.text()).value_of("csrf_token")
    done = browser.post(f"/i/{token}", {"csrf_token": csrf or ""})
    if done.status != 302:
        raise RuntimeError(f"opening the invite answered {done.status}, not 302")


# --- 1. Page weight ----------------------------------------------------------------------------


@dataclass
class Resource:
    path: str
    why: str
    content_type: str
    raw: int
    gzip: int
    sent: int
    headers: int
    cache_control: str


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6))


def measure(browser: Browser, path: str, why: str) -> tuple[Resource, Fetched]:
    got = browser.get(path)
    if got.status != 200:
        raise RuntimeError(f"GET {path} answered {got.status}")
    packed = gzip_size(got.body)
    compressible = got.content_type.startswith(COMPRESSIBLE)
    sent = min(packed, len(got.body)) if compressible else len(got.body)
    cache = got.headers.get("Cache-Control") or ""
    res = Resource(
        path, why, got.content_type, len(got.body), packed, sent, got.header_bytes, cache
    )
    return res, got


def revalidated(cache_control: str) -> bool:
    """True when a browser must ask the server again before it reuses the file."""
    directives = [d.strip().lower() for d in cache_control.split(",") if d.strip()]
    if "no-cache" in directives or "no-store" in directives:
        return True
    ages = [d.split("=", 1)[1] for d in directives if d.startswith("max-age=")]
    return not ages or not ages[0].isdigit() or int(ages[0]) == 0


def page_weight(browser: Browser, page: str) -> dict:
    """The page and everything it needs, raw and compressed."""
    base = f"{browser.origin}{page}"
    html_res, html = measure(browser, page, "the page (HTML)")
    rows = [html_res]
    seen = {page}
    queue = [(u, w) for u, w in parse_page(html.text()).resources]
    while queue:
        url, why = queue.pop(0)
        path = local_path(url, base)
        if path is None or path in seen:
            continue
        seen.add(path)
        res, got = measure(browser, path, why)
        rows.append(res)
        text = got.text() if res.content_type.startswith(COMPRESSIBLE) else ""
        here = f"{browser.origin}{path}"
        if "manifest" in res.content_type or path.endswith((".webmanifest", "manifest.json")):
            for icon in json.loads(text).get("icons", []):
                queue.append((urllib.parse.urljoin(here, icon["src"]), "icon in the manifest"))
        elif res.content_type == "text/css":
            for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", text):
                queue.append((urllib.parse.urljoin(here, ref), "url() in the CSS"))
        elif "javascript" in res.content_type:
            for ref in re.findall(r"serviceWorker\.register\(\s*['\"]([^'\"]+)['\"]", text):
                queue.append((urllib.parse.urljoin(here, ref), "service worker (app.js)"))
    total_raw = sum(r.raw for r in rows)
    total_sent = sum(r.sent for r in rows)
    return {
        "page": page,
        "resources": [r.__dict__ for r in rows],
        "total_raw": total_raw,
        "total_compressed": total_sent,
        "response_headers": sum(r.headers for r in rows),
        "next_page_compressed": html_res.sent,
        "revalidated_each_page": [r.path for r in rows[1:] if revalidated(r.cache_control)],
        "aim_bytes": AIM_BYTES,
        "house_bytes": HOUSE_BYTES,
        "pass_aim": total_sent < AIM_BYTES,
        "pass_house": total_sent <= HOUSE_BYTES,
    }


# --- 2 and 3. Load -----------------------------------------------------------------------------


@dataclass
class Target:
    """What the load generator sends to one server."""

    name: str
    server: Gunicorn
    path: str
    expect: int
    bodies: list  # per connection: (headers, [body prefix per alternation])
    samples: list = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    error_kinds: dict = field(default_factory=dict)
    measured: float = 0.0
    opened: int = 0
    sent: int = 0
    server_cpu: float | None = 0.0
    client_cpu: float = 0.0
    rounds: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)  # per connection, kept across slices


def run_phase(target: Target, connections: int, warmup: float, seconds: float, tag: str) -> None:
    """Load one server from `connections` threads; count only what falls inside the window."""
    lock = threading.Lock()
    start = time.perf_counter() + 0.05
    measure_from = start + warmup
    measure_to = measure_from + seconds
    results = []

    def worker(index: int) -> None:
        headers, prefixes = target.bodies[index % len(target.bodies)]
        lat, ok, errors, opened, sent, kinds = [], 0, 0, 0, 0, {}
        conn = None
        n = target.counters.get(index, 0)  # so the answers keep alternating across slices
        while time.perf_counter() < start:
            time.sleep(0.001)
        while True:
            t0 = time.perf_counter()
            if t0 >= measure_to:
                break
            n += 1
            body = prefixes[n % len(prefixes)] + f"{tag}c{index}n{n}".encode()
            counted = t0 >= measure_from
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, target.server.port, timeout=30)
                    opened += 1
                conn.request("POST", target.path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                t1 = time.perf_counter()
                sent += 1  # like opened, counted over the whole slice (keep-alive reuse)
                if resp.will_close:
                    conn.close()
                    conn = None
                if not counted or t1 > measure_to:
                    continue
                if resp.status == target.expect:
                    ok += 1
                    lat.append(t1 - t0)
                else:
                    errors += 1
                    kinds[f"HTTP {resp.status}"] = kinds.get(f"HTTP {resp.status}", 0) + 1
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if counted:
                    errors += 1
                    name = type(exc).__name__
                    kinds[name] = kinds.get(name, 0) + 1
                time.sleep(0.01)
        if conn is not None:
            conn.close()
        target.counters[index] = n
        with lock:
            results.append((lat, ok, errors, opened, sent, kinds))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    pids = target.server.pids()
    time.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu0, client0 = target.server.cpu_seconds(pids), time.process_time()
    time.sleep(max(0.0, measure_to - time.perf_counter()))
    cpu1, client1 = target.server.cpu_seconds(pids), time.process_time()
    for t in threads:
        t.join(timeout=60)
    ok = sum(r[1] for r in results)
    target.rounds.append({"seconds": seconds, "requests": ok, "rps": ok / seconds})
    for lat, ok_, errors, opened, sent, kinds in results:
        target.samples.extend(lat)
        target.ok += ok_
        target.errors += errors
        target.opened += opened
        target.sent += sent
        for k, v in kinds.items():
            target.error_kinds[k] = target.error_kinds.get(k, 0) + v
    target.measured += seconds
    if cpu0 is None or cpu1 is None or target.server_cpu is None:
        target.server_cpu = None
    else:
        target.server_cpu += cpu1 - cpu0
    target.client_cpu += client1 - client0


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summary(target: Target) -> dict:
    values = sorted(target.samples)
    ms = 1000.0
    cpu = target.server_cpu
    cpu_ms = cpu * ms / target.ok if cpu is not None and target.ok else None
    return {
        "requests": target.ok,
        "errors": target.errors,
        "error_kinds": target.error_kinds,
        "seconds": target.measured,
        "rps": target.ok / target.measured if target.measured else 0.0,
        "p50_ms": (percentile(values, 50) or 0) * ms,
        "p95_ms": (percentile(values, 95) or 0) * ms,
        "p99_ms": (percentile(values, 99) or 0) * ms,
        "max_ms": (values[-1] if values else 0) * ms,
        "connections_opened": target.opened,
        "requests_per_connection": target.sent / target.opened if target.opened else None,
        "server_cpu_ms_per_request": cpu_ms,
        "load_generator_cpu_share": target.client_cpu / target.measured if target.measured else 0,
        "rounds": target.rounds,
    }


def save_bodies(browser: Browser, page: str, participants: list[Browser]) -> list:
    """Per participant: headers with its cookie, and two bodies that alternate every answer."""
    bodies = []
    for who in participants:
        got = who.get(page)
        if got.status != 200:
            raise RuntimeError(f"GET {page} answered {got.status}")
        parsed = parse_page(got.text())
        choices: dict[str, list[str]] = {}
        for i in parsed.inputs:
            if i.get("type") in ("radio", "checkbox") and i.get("name"):
                choices.setdefault(i["name"], []).append(i.get("value", ""))
        choices = {k: v for k, v in choices.items() if len(v) >= 2}
        if not choices:
            raise RuntimeError(f"{page} has no choice questions to alternate; pick another page")
        csrf = parsed.value_of("csrf_token") or ""
        prefixes = []
        for turn in range(2):
            form = [(name, values[turn]) for name, values in choices.items()]
            form += [("csrf_token", csrf), ("client_time", ""), ("action", "next")]
            prefixes.append((urllib.parse.urlencode(form) + "&save_id=").encode())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": who.cookie_header(),
            "Origin": who.origin,
            "User-Agent": USER_AGENT,
        }
        bodies.append((headers, prefixes))
    return bodies


def check_saves(db_path: Path, expected_min: int) -> dict:
    """Read back what the app stored (proves the saves wrote, not just answered 302)."""
    conn = sqlite3.connect(str(db_path), timeout=10)
    try:
        saves = conn.execute("SELECT COUNT(*) FROM page_saves").fetchone()[0]
        answers = conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        audit = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    finally:
        conn.close()
    ok = saves >= expected_min
    return {"page_saves": saves, "answers": answers, "audit_rows": audit, "ok": ok}


# --- Profile (optional) ------------------------------------------------------------------------


class TimedConnection(sqlite3.Connection):
    """A connection that adds up the time spent in each statement (for --profile)."""

    stats: dict[str, list] = {}
    LOCK = "(write lock held: BEGIN IMMEDIATE to the end of COMMIT)"

    def _count(self, key: str, began: float) -> None:
        entry = TimedConnection.stats.setdefault(key, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - began

    def execute(self, sql, parameters=(), /):
        began = time.perf_counter()
        key = " ".join(sql.split())[:88]
        if key.upper().startswith("BEGIN IMMEDIATE"):
            self._locked_at = began
        try:
            return super().execute(sql, parameters)
        finally:
            self._count(key, began)
            if key.upper() in ("COMMIT", "ROLLBACK") and getattr(self, "_locked_at", None):
                self._count(self.LOCK, self._locked_at)
                self._locked_at = None

    def close(self):
        began = time.perf_counter()
        try:
            return super().close()
        finally:
            self._count("(connection close: a checkpoint when it is the last one)", began)


def timed_sql(name: str, run_requests, count: int) -> str:
    """Run the requests with every SQLite call timed; return the breakdown by statement."""
    from unittest import mock

    real_connect = sqlite3.connect

    def timed_connect(*args, **kwargs):
        kwargs.setdefault("factory", TimedConnection)
        return real_connect(*args, **kwargs)

    TimedConnection.stats = {}
    with mock.patch("sqlite3.connect", timed_connect):
        began = time.perf_counter()
        run_requests("t")
        wall = time.perf_counter() - began
    lock = TimedConnection.stats.pop(TimedConnection.LOCK, [0, 0.0])
    sql = sorted(TimedConnection.stats.items(), key=lambda kv: -kv[1][1])
    sql_total = sum(v[1] for _, v in sql)
    lines = [
        f"  {name}: {wall / count * 1000:.2f} ms a request, of which"
        f" {sql_total / count * 1000:.2f} ms in SQLite calls ({sql_total / wall:.0%};"
        " the rest is Python)",
        f"  write lock held {lock[1] / count * 1000:.2f} ms a request (writers queue for it)",
        f"  {'ms/req':>8} {'calls/req':>10}  statement",
    ]
    for key, (calls, seconds) in sql[:12]:
        lines.append(f"  {seconds / count * 1000:>8.3f} {calls / count:>10.1f}  {key}")
    return "\n".join(lines) + "\n\n"


def bare_requests(workdir: Path, form: dict, count: int):
    """The bare app's request, for timing in-process like the app's save."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import bare_app

    path = str(workdir / "profile-bare.sqlite")
    bare_app.create_schema(path)
    client = bare_app.create_app(path).test_client()

    def run(tag: str) -> None:
        for n in range(count):
            r = client.post("/save", data={**form, "save_id": f"{tag}{n}", "action": "next"})
            if r.status_code != 204:
                raise RuntimeError(f"bare request answered {r.status_code}")

    return run


def profile_saves(workdir: Path, page: str, count: int) -> str:
    """Time `count` page saves in-process (Flask test client), by SQL statement, then profile."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.factories import enrol, link_token, make_app

    app = make_app(workdir / "profile.sqlite", SECRET_KEY="bench", TESTING=False)
    enrol(app, "BTB-9999", language="nb")
    token = link_token(app, "BTB-9999", TIMEPOINT)
    client = app.test_client()
    csrf = parse_page(client.get(f"/i/{token}").get_data(as_text=True)).value_of("csrf_token")
    client.post(f"/i/{token}", data={"csrf_token": csrf})
    parsed = parse_page(client.get(page).get_data(as_text=True))
    cookie = client.get_cookie("session").value
    choices: dict[str, list[str]] = {}
    for i in parsed.inputs:
        if i.get("type") in ("radio", "checkbox") and i.get("name"):
            choices.setdefault(i["name"], []).append(i.get("value", ""))
    csrf = parsed.value_of("csrf_token")
    forms = [
        {**{k: v[turn] for k, v in choices.items() if len(v) >= 2}, "csrf_token": csrf}
        for turn in range(2)
    ]

    def saves(tag: str) -> None:
        for n in range(count):
            # The page's own cookie each time, as in the load run: a real browser follows the
            # redirect, which shows (and so drops) the "Saved" message kept in the session.
            client.set_cookie("session", cookie)
            data = {**forms[n % 2], "save_id": f"{tag}{n}", "action": "next"}
            r = client.post(page, data=data)
            if r.status_code != 302:
                raise RuntimeError(f"profiled save answered {r.status_code}")

    out = io.StringIO()
    out.write(f"{count} requests each, in-process, one connection at a time:\n")
    out.write(timed_sql("app save", saves, count))
    out.write(timed_sql("bare INSERT", bare_requests(workdir, forms[0], count), count))

    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.runcall(saves, "p")
    wall = time.perf_counter() - began
    out.write(f"\nThe same under cProfile: {wall / count * 1000:.2f} ms a save\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(28)
    stats.sort_stats("tottime").print_stats(12)
    return out.getvalue()


# --- Output ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_weight(w: dict) -> None:
    print(f"\nPage weight: {w['page']} (first visit: the page and everything it needs)")
    print(f"  {'resource':<26} {'type':<26} {'raw B':>8} {'gzip-6 B':>9} {'sent B':>8}  why")
    for r in w["resources"]:
        note = "" if r["content_type"].startswith(COMPRESSIBLE) else " (sent raw)"
        print(
            f"  {r['path']:<26} {r['content_type']:<26} {r['raw']:>8,} {r['gzip']:>9,}"
            f" {r['sent']:>8,}  {r['why']}{note}"
        )
    print(f"  {'total':<26} {'':<26} {w['total_raw']:>8,} {'':>9} {w['total_compressed']:>8,}")
    heaviest = max(w["resources"], key=lambda r: r["sent"])
    share = heaviest["sent"] / w["total_compressed"] * 100
    print(f"  heaviest: {heaviest['path']} ({share:.0f} % of the compressed total)")
    print(
        f"  aim < {AIM_BYTES / KB:.0f} KB: {verdict(w['pass_aim'])}"
        f"   house budget <= {HOUSE_BYTES / KB:.0f} KB: {verdict(w['pass_house'])}"
        f"   ({w['total_compressed'] / KB:.1f} KB compressed, {w['total_raw'] / KB:.1f} KB raw)"
    )
    print(
        f"  next page (assets cached): {w['next_page_compressed']:,} B compressed HTML;"
        f" response headers on the first visit: {w['response_headers']:,} B (not in the total)"
    )
    again = w["revalidated_each_page"]
    if again:
        print(
            f"  {len(again)} of {len(w['resources']) - 1} assets have no max-age (no-cache or"
            " none): a browser asks again (a 304 round trip each) on every page"
        )
    for r in w["resources"]:
        if not r["content_type"].startswith(COMPRESSIBLE) and r["gzip"] < 0.7 * r["raw"]:
            print(
                f"  {r['path']} gzips to {r['gzip'] / r['raw']:.0%} of its size: the file is"
                " poorly compressed itself (recompress it, e.g. with oxipng or zopflipng)"
            )


def print_load(app: dict, bare: dict, ratio, cpu_ratio, pairs: list[float], args) -> None:
    print(
        f"\nPage saves: {args.seconds:g} s per server in {args.rounds} alternating round(s),"
        f" {args.connections} connections, gunicorn -w {args.workers} -k {args.worker_class}"
    )
    head = (
        f"  {'server':<34} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'errors':>7} {'CPU ms/req':>11}"
    )
    print(head)
    for name, s in ((f"app  POST {args.save_page}", app), ("bare POST /save (1 INSERT)", bare)):
        cpu = s["server_cpu_ms_per_request"]
        cpu_text = f"{cpu:.2f}" if cpu is not None else "n/a"
        print(
            f"  {name:<34} {s['rps']:>8.0f} {s['p50_ms']:>8.1f} {s['p95_ms']:>8.1f}"
            f" {s['p99_ms']:>8.1f} {s['errors']:>7} {cpu_text:>11}"
        )
    for name, s in (("app", app), ("bare", bare)):
        per_round = ", ".join(f"{r['rps']:.0f}" for r in s["rounds"])
        reuse = s["requests_per_connection"]
        if reuse is None:
            reuse_text = "n/a"
        elif reuse < 1.1:
            reuse_text = "1 (the server closes each connection: no keep-alive)"
        else:
            reuse_text = f"{reuse:.1f}"
        kinds = f"; errors: {s['error_kinds']}" if s["error_kinds"] else ""
        print(
            f"  {name}: req/s per round {per_round}; requests per connection {reuse_text};"
            f" load generator CPU {s['load_generator_cpu_share'] * 100:.0f} % of one core{kinds}"
        )
    print(
        f"  throughput ratio app/bare = {ratio:.2f} (aim >= {MIN_RATIO}): "
        f"{verdict(ratio >= MIN_RATIO)}"
    )
    if pairs:
        median = statistics.median(pairs)
        print(
            f"  ratio per round: median {median:.2f}, range {pairs[0]:.2f} to {pairs[-1]:.2f}"
            + (
                "  (the rounds disagree about the aim: the machine is noisy; rerun, or use"
                " more --seconds)"
                if pairs[0] < MIN_RATIO <= pairs[-1]
                else ""
            )
        )
    if cpu_ratio is not None:
        print(
            f"  server CPU per request app/bare = {cpu_ratio:.2f}x"
            " (steadier than req/s when the disk is shared: a save costs this many bare writes)"
        )


# --- Main --------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python scripts/benchmark.py",
        description=(
            "Print the bytes a phone downloads for a questionnaire page (gzip level 6, as a "
            "compressing proxy would send them) and the rate and latency of page saves against "
            "gunicorn, next to a bare Flask app doing one SQLite write per request, measured in "
            "the same run. Aims: under 30 KB a page (house budget 15 KB) and page saves at no "
            "less than half the bare app's rate."
        ),
        epilog="Compare the ratio, not the absolutes: the load generator shares the cores.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="alternating rounds (bare, app, app, bare, ...); --seconds is split over them, so"
        " short slices let both servers see the same noise",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="unmeasured seconds before a server's first measured slice (later slices: 0.1 s)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument(
        "--worker-class", default="sync", help="gunicorn worker class (both servers)"
    )
    parser.add_argument(
        "--pages",
        default="/a/hscl25/1,/a/nrs/1",
        help="comma-separated questionnaire pages to weigh",
    )
    parser.add_argument(
        "--save-page",
        default="/a/hscl25/1",
        help="the page whose saves are loaded (choice questions only)",
    )
    parser.add_argument(
        "--skip-load", action="store_true", help="only weigh the pages (a few seconds)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile N saves in-process with cProfile and print where the time goes",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when an aim is not met"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.connections < 1 or args.rounds < 1 or args.workers < 1:
        parser.error("--seconds, --connections, --rounds and --workers must be positive")
    return args


def environment(args) -> dict:
    try:
        from importlib.metadata import version

        gunicorn_version = version("gunicorn")
    except Exception:  # only for the report
        gunicorn_version = "?"
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "load_average_1m_before": load,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "gunicorn": gunicorn_version,
        "workers": args.workers,
        "worker_class": args.worker_class,
        "connections": args.connections,
        "seconds": args.seconds,
        "rounds": args.rounds,
    }


def run(args) -> dict:
    env = environment(args)
    print(
        f"ePRO benchmark {env['when']}: {env['cpus']} CPUs, load {env['load_average_1m_before']},"
        f" Python {env['python']}, SQLite {env['sqlite']}, gunicorn {env['gunicorn']}"
    )
    print(
        "gunicorn does not compress: 'gzip-6' is computed here (gzip level 6), as a"
        " compressing proxy in front of it would send text; PNGs are counted raw."
    )
    results: dict = {"environment": env}
    workdir = Path(tempfile.mkdtemp(prefix="pro-bench-"))
    servers: list[Gunicorn] = []
    try:
        app_db = workdir / "app.sqlite"
        sessions = 1 if args.skip_load else min(args.connections, MAX_SESSIONS)
        tokens = prepare_database(app_db, sessions)
        common = {"workers": args.workers, "worker_class": args.worker_class, "log_dir": workdir}
        port = free_port()
        app_server = Gunicorn(
            "app",
            "wsgi:app",
            env={
                "PRO_DATABASE": str(app_db),
                "PRO_DEMO": "1",
                "PRO_SECRET_KEY": "bench",
                "PRO_BASE_URL": f"http://{HOST}:{port}",
            },
            cwd=ROOT,
            port=port,
            **common,
        )
        servers.append(app_server)
        app_server.wait_ready("/")

        browsers = [Browser(app_server.port) for _ in tokens]
        for browser, token in zip(browsers, tokens, strict=True):
            open_invite(browser, token)

        results["page_weight"] = []
        for page in [p.strip() for p in args.pages.split(",") if p.strip()]:
            weight = page_weight(browsers[0], page)
            results["page_weight"].append(weight)
            print_weight(weight)

        if not args.skip_load:
            if args.connections > len(browsers):
                print(
                    f"\nnote: {args.connections} connections share {len(browsers)} participants:"
                    " some saves on one response race and may store no change"
                )
            bare_db = workdir / "bare.sqlite"
            if str(SCRIPTS) not in sys.path:
                sys.path.insert(0, str(SCRIPTS))
            import bare_app

            bare_app.create_schema(str(bare_db))
            bare_server = Gunicorn(
                "bare",
                "bare_app:app",
                env={"BARE_DATABASE": str(bare_db)},
                cwd=ROOT,
                extra=("--pythonpath", str(SCRIPTS)),
                **common,
            )
            servers.append(bare_server)
            bare_server.wait_ready("/")

            app_target = Target(
                "app",
                app_server,
                args.save_page,
                302,
                save_bodies(browsers[0], args.save_page, browsers),
            )
            bare_headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": USER_AGENT,
            }
            # The same form fields as the app's save, so both parse a body of the same size.
            bare_bodies = [(bare_headers, prefixes) for _, prefixes in app_target.bodies]
            bare_target = Target("bare", bare_server, "/save", 204, bare_bodies)

            per_phase = args.seconds / args.rounds
            for r in range(args.rounds):
                order = (bare_target, app_target) if r % 2 == 0 else (app_target, bare_target)
                for target in order:
                    warmup = args.warmup if r < 2 else 0.1
                    run_phase(target, args.connections, warmup, per_phase, f"r{r}")

            app_s, bare_s = summary(app_target), summary(bare_target)
            ratio = app_s["rps"] / bare_s["rps"] if bare_s["rps"] else 0.0
            pairs = sorted(
                a["rps"] / b["rps"]
                for a, b in zip(app_s["rounds"], bare_s["rounds"], strict=True)
                if b["rps"]
            )
            cpu_ratio = None
            if app_s["server_cpu_ms_per_request"] and bare_s["server_cpu_ms_per_request"]:
                cpu_ratio = app_s["server_cpu_ms_per_request"] / bare_s["server_cpu_ms_per_request"]
            stored = check_saves(app_db, app_s["requests"])
            results["saves"] = {
                "app": app_s,
                "bare": bare_s,
                "ratio": ratio,
                "min_ratio": MIN_RATIO,
                "pass_ratio": ratio >= MIN_RATIO,
                "round_ratios": pairs,
                "server_cpu_ratio": cpu_ratio,
                "stored": stored,
            }
            print_load(app_s, bare_s, ratio, cpu_ratio, pairs, args)
            print(
                f"  stored by the app: {stored['page_saves']:,} page saves,"
                f" {stored['answers']:,} answer rows"
                f" ({stored['answers'] / max(1, stored['page_saves']):.2f} a save),"
                f" {stored['audit_rows']:,} audit rows"
                + ("" if stored["ok"] else "  (FEWER SAVES STORED THAN ANSWERED 302)")
            )

        if args.profile:
            print(f"\nProfile of {args.profile} saves of {args.save_page} (in-process, cProfile):")
            text = profile_saves(workdir, args.save_page, args.profile)
            results["profile"] = text
            print(text)
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)  # unwind through run()'s finally: servers and files go


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        results = run(args)
    except RuntimeError as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        return 2
    weights_ok = all(w["pass_aim"] for w in results.get("page_weight", []))
    saves_ok = results.get("saves", {}).get("pass_ratio", True)
    results["pass"] = bool(weights_ok and saves_ok)
    print(f"\nOverall: {verdict(results['pass'])} (page weight < 30 KB, saves >= 0.5 x bare)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 1 if args.strict and not results["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
