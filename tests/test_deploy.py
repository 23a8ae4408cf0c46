"""Deployment: gunicorn.conf.py under real signals, the image and compose files, the proxies'
examples, systemd units, and the service worker's release version.

The gunicorn tests (marked slow) start the server the way the image does: through
deploy/docker-entrypoint.sh (which upgrades the database, then execs gunicorn), with
gunicorn.conf.py, production settings (no demo) and a socket bound here on port 0.
"""

from __future__ import annotations

import configparser
import contextlib
import http.client
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet

from pro_app.pwa import SHELL_FILES

from .factories import make_app

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ENTRYPOINT = ROOT / "deploy" / "docker-entrypoint.sh"
APP_BODY_LIMIT = 256 * 1024  # the app's MAX_CONTENT_LENGTH (checked below against the app)
READY_S = 90


TUNING = ("PRO_PROXY_COUNT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GUNICORN_THREADS")


def load_gunicorn_config(**given):
    """gunicorn.conf.py as a module, read with these (and no other) tuning variables."""
    env = {name: None for name in TUNING} | given
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: v for k, v in env.items() if v is not None})
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
    try:
        spec = importlib.util.spec_from_file_location(
            "gunicorn_conf_under_test", ROOT / "gunicorn.conf.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


CONFIG = load_gunicorn_config()


def production_env(folder: Path, **extra) -> dict:
    """The environment of a real deployment (no demo), over a database file in `folder`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PRO_", "GUNICORN_", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"))
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PRO_DATABASE=str(folder / "pro.sqlite"),
        PRO_SECRET_KEY=secrets.token_urlsafe(48),
        PRO_BASE_URL="https://pro.example.org",
        PRO_CONTACT_KEY=Fernet.generate_key().decode(),
        PRO_BACKUP_DIR=str(folder / "backups"),
        TMPDIR=str(folder / "tmp"),
        WEB_CONCURRENCY="2",
    )
    env.update(extra)
    return env


class Server:
    """gunicorn started through the image's entrypoint, in its own process group."""

    def __init__(self, folder: Path, *, app: str = "wsgi:app", extra_args=(), **env):
        self.folder = folder
        self.log_path = folder / "gunicorn.log"
        self.env = production_env(folder, **env)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.set_inheritable(True)
        self.port = listener.getsockname()[1]
        command = [
            "sh",
            str(ENTRYPOINT),
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"fd://{listener.fileno()}",
            *extra_args,
            app,
        ]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                pass_fds=(listener.fileno(),),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        listener.close()
        try:
            self.wait_until_serving()
        except BaseException:
            self.kill()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, headers=None, timeout: float = 10) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, dict(reply.getheaders()), reply.read()
        finally:
            conn.close()

    def wait_until_serving(self, seconds: float = READY_S) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/", timeout=2)[0] == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer in {seconds} s:\n{self.log()}")

    def workers(self) -> set[int]:
        """The master's child processes (gunicorn's workers), from /proc."""
        found: set[int] = set()
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (task / "children").read_text().split())
        return found

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def serving(folder: Path, **kwargs):
    server = Server(folder, **kwargs)
    try:
        yield server
    finally:
        server.kill()


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One production-configured server, no proxy in front (PRO_PROXY_COUNT unset)."""
    with serving(tmp_path_factory.mktemp("deploy")) as running:
        yield running


# --- gunicorn.conf.py ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_entrypoint_upgrades_the_database_and_gunicorn_serves_with_the_config(server):
    status, headers, body = server.get("/")
    assert status == 200 and b"<html" in body
    log = server.log()
    assert "Using worker: gthread" in log
    assert f"pro-app: 2 workers x {CONFIG.threads} threads" in log
    assert "proxies 0 (forwarded from nobody)" in log
    assert (server.folder / "pro.sqlite").exists()
    # exec: the process we started is gunicorn's master itself, not a shell waiting for it.
    assert "gunicorn" in Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().decode()
    assert len(server.workers()) == 2


@pytest.mark.slow
def test_access_log_has_neither_query_string_nor_token_and_has_the_request_id(server):
    token = secrets.token_urlsafe(32)
    server.get("/?token=query-secret-1", headers={"X-Request-Id": "deploy-test-0001"})
    server.get(f"/i/{token}?next=query-secret-2", headers={"X-Request-Id": "deploy-test-0002"})

    def access_lines():
        found = [line for line in server.log().splitlines() if "deploy-test-000" in line]
        plain = [line for line in found if not line.startswith("{")]
        # Both requests' gunicorn lines (the app's JSON lines may come first).
        return found if sum("deploy-test-000" in line for line in plain) >= 2 else []

    lines = wait_for(access_lines, 10, "the access lines")
    log = server.log()
    assert "query-secret" not in log
    assert token not in log
    gunicorn_lines = [line for line in lines if not line.startswith("{")]
    assert any('deploy-test-0001 "GET /" 200' in line for line in gunicorn_lines), lines
    assert any('deploy-test-0002 "GET /i/[token]"' in line for line in gunicorn_lines), lines
    assert all("127.0.0.1" not in line for line in gunicorn_lines), "no client address"


@pytest.mark.slow
def test_the_images_healthcheck_and_composes_readiness_check_pass_against_gunicorn(server):
    checks = [dockerfile_healthcheck(), compose_file()["services"]["app"]["healthcheck"]["test"]]
    assert "/healthz" in " ".join(checks[0]) and "/readyz" in " ".join(checks[1])
    for check in checks:
        assert check[:2] == ["CMD", "python"]
        command = [
            sys.executable,
            *[a.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}") for a in check[2:]],
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
    # ... and they fail when nothing answers.
    command = [sys.executable, *[a.replace("127.0.0.1:8000", "127.0.0.1:9") for a in checks[0][2:]]]
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0


@pytest.mark.slow
def test_forwarded_headers_are_ignored_without_a_proxy(server):
    _, headers, _ = server.get("/", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in headers  # the app did not believe it is on https


@pytest.mark.slow
def test_forwarded_headers_are_trusted_from_the_configured_proxy(tmp_path):
    with serving(tmp_path, PRO_PROXY_COUNT="1", FORWARDED_ALLOW_IPS="127.0.0.1") as proxied:
        _, headers, _ = proxied.get("/", headers={"X-Forwarded-Proto": "https"})
        assert headers.get("Strict-Transport-Security", "").startswith("max-age=")
        _, plain, _ = proxied.get("/")
        assert "Strict-Transport-Security" not in plain
        assert "proxies 1 (forwarded from 127.0.0.1)" in proxied.log()


@pytest.mark.slow
def test_sighup_replaces_every_worker_without_refusing_a_request(tmp_path):
    with serving(tmp_path) as running:
        before = running.workers()
        assert len(before) == 2
        results: list[object] = []
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    results.append(running.get("/healthz", timeout=10)[0])
                except Exception as exc:  # noqa: BLE001 - any failure is what we look for
                    results.append(repr(exc))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: len(results) > 20, 20, "requests before the reload")
            os.kill(running.proc.pid, signal.SIGHUP)
            wait_for(
                lambda: len(now := running.workers()) == 2 and not (now & before),
                60,
                "two new workers and none of the old ones",
            )
            served = len(results)
            wait_for(lambda: len(results) > served + 20, 20, "requests after the reload")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        failures = [r for r in results if r != 200]
        assert not failures, f"{len(failures)} of {len(results)} failed: {failures[:5]}"
        assert "Hang up" in running.log()
        assert running.proc.poll() is None


@pytest.mark.slow
def test_sigterm_answers_the_request_in_flight_and_stops_within_graceful_timeout(tmp_path):
    running = Server(tmp_path)
    try:
        in_flight = socket.create_connection(("127.0.0.1", running.port), timeout=30)
        stalled = socket.create_connection(("127.0.0.1", running.port), timeout=30)
        in_flight.sendall(b"GET /healthz HTTP/1.1\r\nHost: pro.example.org\r\n")
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: pro.example.org\r\n")
        time.sleep(0.5)
        started = time.monotonic()
        os.kill(running.proc.pid, signal.SIGTERM)
        time.sleep(1)
        in_flight.sendall(b"\r\n")  # the rest of a request that had begun before the stop
        answer = in_flight.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        # The stalled client never finishes: the workers give up on it after graceful_timeout.
        code = running.proc.wait(timeout=CONFIG.graceful_timeout + 15)
        elapsed = time.monotonic() - started
        in_flight.close()
        stalled.close()
        assert code == 0, running.log()
        assert elapsed <= CONFIG.graceful_timeout + 3, f"stopped after {elapsed:.1f} s"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", running.port), timeout=2)
    finally:
        running.kill()


def test_config_trusts_forwarded_headers_only_with_a_proxy():
    assert CONFIG.forwarded_allow_ips == ""
    assert load_gunicorn_config(PRO_PROXY_COUNT="1").forwarded_allow_ips == "127.0.0.1,::1"
    compose = load_gunicorn_config(PRO_PROXY_COUNT="1", FORWARDED_ALLOW_IPS="*")
    assert compose.forwarded_allow_ips == "*"
    assert (
        load_gunicorn_config(PRO_PROXY_COUNT="0", FORWARDED_ALLOW_IPS="*").forwarded_allow_ips == ""
    )


def test_config_workers_default_is_small_and_can_be_set():
    cores = os.cpu_count() or 1
    assert CONFIG.workers == min(2 * cores + 1, 4)
    assert load_gunicorn_config(WEB_CONCURRENCY="7").workers == 7
    assert CONFIG.worker_class == "gthread" and CONFIG.threads >= 2
    assert CONFIG.preload_app is False
    assert CONFIG.max_requests > 0 and 0 < CONFIG.max_requests_jitter < CONFIG.max_requests
    assert CONFIG.graceful_timeout < CONFIG.timeout
    for atom in ("%(r)s", "%(q)s", "%(h)s", "%(f)s", "%(a)s"):
        assert atom not in CONFIG.access_log_format


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, message, *args):
        self.lines.append(message % args)

    warning = exception = info


class _Worker:
    pid = 4242

    def __init__(self):
        self.log = _Log()


def test_a_leaving_worker_waits_for_its_export_jobs(monkeypatch):
    config = load_gunicorn_config()
    monkeypatch.setattr(config, "timeout", 7)  # a grace of 2 s
    server = type("Server", (), {"log": _Log()})()
    release = threading.Event()
    short = threading.Thread(target=time.sleep, args=(0.5,), name="export-short")
    long = threading.Thread(target=release.wait, args=(30,), name="export-long")
    other = threading.Thread(target=release.wait, args=(30,), name="something-else")
    for thread in (short, long, other):
        thread.start()
    try:
        started = time.monotonic()
        config.worker_exit(server, _Worker())
        waited = time.monotonic() - started
        assert not short.is_alive()
        assert long.is_alive()
        assert 1.5 <= waited <= 4, waited
        assert server.log.lines == [
            "worker 4242: waiting for 2 export job(s) to finish",
            "worker 4242: 1 export job(s) interrupted",
        ]
    finally:
        release.set()
        for thread in (short, long, other):
            thread.join()


def test_a_worker_without_export_jobs_leaves_at_once():
    server = type("Server", (), {"log": _Log()})()
    started = time.monotonic()
    CONFIG.worker_exit(server, _Worker())
    assert time.monotonic() - started < 0.5
    assert server.log.lines == []


def test_post_worker_init_loads_the_definitions_and_ignores_other_apps(tmp_path):
    app = make_app(tmp_path / "pro.sqlite")
    worker = type("Worker", (), {"wsgi": app, "pid": 1, "log": logging.getLogger("test")})()
    assert "pro_catalog" not in app.extensions
    CONFIG.post_worker_init(worker)
    assert "pro_catalog" in app.extensions
    CONFIG.post_worker_init(type("Worker", (), {"wsgi": object(), "pid": 1})())


# --- Dockerfile, entrypoint, .dockerignore, compose.yaml ---------------------------------


def dockerfile_stages() -> list[dict]:
    """The Dockerfile as stages: {'from': image line, 'instructions': [(KEYWORD, args)]}."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # join continued lines
    stages: list[dict] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append({"from": args.strip(), "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, args.strip()))
    return stages


def dockerfile_healthcheck() -> list[str]:
    final = dockerfile_stages()[-1]
    [args] = [a for k, a in final["instructions"] if k == "HEALTHCHECK"]
    return ["CMD", *json.loads(args[args.index("CMD") + 3 :].strip())]


def compose_file() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_dockerfile_final_stage_is_slim_unprivileged_and_has_no_build_tools():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a final stage"
    final = stages[-1]
    assert "AS" not in final["from"].upper().split()
    assert re.search(r"python:3\.11-slim|\$\{PYTHON_IMAGE\}", final["from"])
    args = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", args, re.M)
    instructions = final["instructions"]
    [user] = [a for k, a in instructions if k == "USER"]
    assert user.split(":")[0] not in ("root", "0", "")
    final_text = " ".join(a for _, a in instructions).lower()
    for tool in ("gcc", "g++", "build-essential", "make ", "clang", "-dev "):
        assert tool not in final_text, f"{tool!r} in the final stage"
    # Only run-time libraries and fonts may be installed in the final stage (WeasyPrint).
    for _kind, text in instructions:
        if "apt-get install" in text:
            wanted = text.split("apt-get install", 1)[1].split("&&")[0].split()
            packages = [w for w in wanted if not w.startswith("-") and w != "\\"]
            assert packages and all(
                w.startswith(("lib", "fonts-")) and not w.endswith("-dev") for w in packages
            ), packages
    assert ("VOLUME", "/data") in instructions
    env = " ".join(a for k, a in instructions if k == "ENV")
    assert "PRO_DATABASE=/data/pro.sqlite" in env and "PRO_BACKUP_DIR=/data/backups" in env
    assert "/healthz" in " ".join(dockerfile_healthcheck())
    [entrypoint] = [json.loads(a) for k, a in instructions if k == "ENTRYPOINT"]
    [command] = [json.loads(a) for k, a in instructions if k == "CMD"]
    assert entrypoint == ["/app/deploy/docker-entrypoint.sh"]
    assert command[0] == "gunicorn" and "/app/gunicorn.conf.py" in command
    builder = " ".join(a for s in stages[:-1] for _, a in s["instructions"])
    assert "-c constraints.txt" in builder
    assert "pybabel compile" in builder


def test_entrypoint_upgrades_then_execs_the_command():
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/bin/sh")
    assert os.access(ENTRYPOINT, os.X_OK), "chmod +x deploy/docker-entrypoint.sh"
    commands = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "flask --app pro_app db upgrade" in commands
    assert commands[-1] == 'exec "$@"'


def test_dockerignore_keeps_local_state_and_tests_out():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".git", ".venv", "instance", "tests", "**/*.sqlite", "**/*.env"):
        assert entry in ignored, entry
    assert "!deploy/docker-entrypoint.sh" in ignored


def test_compose_runs_app_caddy_and_sync_from_one_image_and_volume():
    compose = compose_file()
    services = compose["services"]
    app, caddy, sync = services["app"], services["caddy"], services["sync"]
    assert "ports" not in app, "only Caddy is reachable from outside"
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert caddy["depends_on"]["app"]["condition"] == "service_healthy"
    assert app["environment"]["PRO_PROXY_COUNT"] == "1"
    assert app["env_file"] == sync["env_file"] == "deploy/pro.env"
    assert app["volumes"] == sync["volumes"] == ["data:/data"]
    assert app["image"] == sync["image"]
    assert sync["command"] == ["flask", "--app", "pro_app", "sync", "worker"]
    assert sync["healthcheck"] == {"disable": True}
    assert int(app["stop_grace_period"].rstrip("s")) > CONFIG.graceful_timeout
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    ignored = (ROOT / "deploy" / ".gitignore").read_text().split()
    assert "*.env" in ignored and (ROOT / "deploy" / "env.example").exists()


def test_env_example_has_no_comment_after_a_value():
    """systemd's EnvironmentFile would take such a comment as part of the value."""
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert re.fullmatch(r"[A-Z_]+", name), line
            assert "#" not in value, line


# --- Proxies and systemd -----------------------------------------------------------------


def test_proxies_refuse_the_same_body_size_as_the_app(tmp_path):
    app = make_app(tmp_path / "pro.sqlite")
    assert app.config["MAX_CONTENT_LENGTH"] == APP_BODY_LIMIT
    nginx = (ROOT / "deploy" / "nginx" / "pro-app.conf").read_text()
    [size] = re.findall(r"client_max_body_size\s+(\d+)k;", nginx)
    assert int(size) * 1024 == APP_BODY_LIMIT
    caddy = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    [size] = re.findall(r"max_size\s+(\d+)KiB", caddy)
    assert int(size) * 1024 == APP_BODY_LIMIT


def test_proxies_close_idle_connections_before_gunicorn_and_send_a_request_id():
    nginx = (ROOT / "deploy" / "nginx" / "pro-app.conf").read_text()
    caddy = (ROOT / "deploy" / "caddy" / "Caddyfile").read_text()
    nginx_idle = re.findall(r"keepalive_timeout\s+(\d+)s?;", nginx) or ["60"]  # nginx default
    [caddy_idle] = re.findall(r"keepalive\s+(\d+)s", caddy)
    assert int(nginx_idle[0]) < CONFIG.keepalive and int(caddy_idle) < CONFIG.keepalive
    assert "proxy_set_header X-Request-Id $request_id;" in nginx
    assert "header_up X-Request-Id" in caddy
    log_format = re.search(r"log_format pro_app (.*?);", nginx, re.S).group(1)
    assert "$request " not in log_format and "$request_uri" not in log_format
    assert "$args" not in log_format and "$remote_addr" not in log_format


def systemd_unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "deploy" / "systemd" / name)
    return unit


@pytest.mark.parametrize(
    "name",
    [
        "pro-app.service",
        "pro-app-sync.service",
        "pro-app-reminders.service",
    ],
)
def test_systemd_units_are_hardened(name):
    service = systemd_unit(name)["Service"]
    assert service["User"] == "pro"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/pro"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""


def test_systemd_web_unit_reloads_with_hup_and_outwaits_graceful_timeout():
    service = systemd_unit("pro-app.service")["Service"]
    assert "gunicorn --config /srv/pro/gunicorn.conf.py" in service["ExecStart"]
    assert service["ExecStartPre"].endswith("flask --app pro_app db upgrade")
    assert "HUP" in service["ExecReload"]  # the last of the ExecReload lines
    assert int(service["TimeoutStopSec"]) > CONFIG.graceful_timeout
    assert systemd_unit("pro-app-sync.service")["Service"]["ExecStart"].endswith("sync worker")


# --- The service worker's release --------------------------------------------------------


def test_sw_carries_the_release_and_is_checked_on_every_use(tmp_path):
    app = make_app(tmp_path / "pro.sqlite")
    client = app.test_client()
    reply = client.get("/sw.js")
    assert reply.status_code == 200
    assert reply.mimetype == "text/javascript"
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.headers["Service-Worker-Allowed"] == "/"
    release = sw_release(reply.get_data(as_text=True))
    assert re.fullmatch(r"[0-9a-f]{16}", release["version"])
    with app.test_request_context():
        asset = app.jinja_env.globals["asset"]
        assert release["shell"] == [asset(name) for name in SHELL_FILES] + ["/offline"]
    again = client.get("/sw.js", headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status_code == 304


def test_static_files_from_the_app_are_kept_for_a_year(tmp_path):
    app = make_app(tmp_path / "pro.sqlite")
    client = app.test_client()
    with app.test_request_context():
        urls = [app.jinja_env.globals["asset"](name) for name in SHELL_FILES]
    for url in urls:
        with client.get(url) as got:
            assert got.status_code == 200, url
            assert "max-age=31536000" in got.headers["Cache-Control"], (url, got.headers)


def sw_release(body: str) -> dict:
    first, _, rest = body.partition("\n")
    assert first.startswith("self.RELEASE = ") and first.endswith(";")
    assert "var RELEASE = self.RELEASE" in rest
    return json.loads(first[len("self.RELEASE = ") : -1])


def test_sw_version_changes_when_a_shell_file_changes(tmp_path):
    static = tmp_path / "static"
    shutil.copytree(ROOT / "pro_app" / "static", static)

    def release() -> dict:
        app = make_app(tmp_path / "pro.sqlite")
        app.static_folder = str(static)
        return sw_release(app.test_client().get("/sw.js").get_data(as_text=True))

    first = release()
    assert release() == first, "the same files give the same version"
    with open(static / "app.css", "a") as css:
        css.write("\n/* the next release */\n")
    second = release()
    assert second["version"] != first["version"]
    assert second["shell"][0] != first["shell"][0]  # app.css has a new URL
    assert second["shell"][1:] == first["shell"][1:]  # the others have not changed
    with open(static / "sw.js", "a") as worker:
        worker.write("\n// a change to the worker itself\n")
    assert release()["version"] != second["version"]


def test_every_file_base_html_links_is_in_the_shell():
    base = (ROOT / "pro_app" / "templates" / "base.html").read_text()
    linked = set(re.findall(r"asset\(\s*['\"]([^'\"]+)['\"]\s*\)", base))
    assert linked and linked <= set(SHELL_FILES)


def test_manifest_icons_have_hashed_urls(tmp_path):
    app = make_app(tmp_path / "pro.sqlite")
    client = app.test_client()
    icons = client.get("/manifest.webmanifest").get_json()["icons"]
    for icon in icons:
        assert re.search(r"\?v=[0-9a-f]{10}$", icon["src"]), icon
        with client.get(icon["src"]) as got:
            assert got.status_code == 200 and got.mimetype == icon["type"]


# --- A new release in a real browser -----------------------------------------------------

RELEASE_WSGI = """
import os

from pro_app import create_app
from pro_app.startup import refuse_unsafe

app = refuse_unsafe(create_app())
app.static_folder = os.environ["DEPLOY_TEST_STATIC"]
"""


@pytest.fixture
def chromium(browser):
    """The session's Debian chromium (tests/conftest.py): one Playwright per process."""
    return browser


CACHES = "() => caches.keys()"
CACHED_URLS = """async (name) => {
  if (!(await caches.has(name))) { return null; }
  const cache = await caches.open(name);
  return (await cache.keys()).map((r) => new URL(r.url).pathname + new URL(r.url).search);
}"""


UPDATE_UNTIL_ONLY = """async (name) => {
  const keys = await caches.keys();
  if (keys.length === 1 && keys[0] === name) { return true; }
  const registration = await navigator.serviceWorker.getRegistration();
  if (!registration.installing && !registration.waiting) {
    try { await registration.update(); } catch (error) { /* the next poll tries again */ }
  }
  return false;
}"""


@pytest.mark.slow
def test_a_new_release_replaces_the_shell_and_offline_page(tmp_path, chromium):
    from .browser.conftest import PHONE

    static = tmp_path / "static"
    shutil.copytree(ROOT / "pro_app" / "static", static)
    (tmp_path / "release_wsgi.py").write_text(RELEASE_WSGI)
    with serving(
        tmp_path,
        app="release_wsgi:app",
        extra_args=("--pythonpath", str(tmp_path)),
        DEPLOY_TEST_STATIC=str(static),
    ) as running:
        first = sw_release(running.get("/sw.js")[2].decode())
        context = chromium.new_context(**PHONE)
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            page.goto(f"{running.url}/")
            page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            assert page.evaluate(CACHES) == [f"pro-app-shell-{first['version']}"]
            assert sorted(
                page.evaluate(CACHED_URLS, f"pro-app-shell-{first['version']}")
            ) == sorted(first["shell"])

            # The next release: a changed stylesheet, loaded by a graceful reload (SIGHUP).
            with open(static / "app.css", "a") as css:
                css.write("\n/* the next release */\n")
            os.kill(running.proc.pid, signal.SIGHUP)
            second = wait_for(
                lambda: (
                    (r := sw_release(running.get("/sw.js")[2].decode()))["version"]
                    != first["version"]
                    and r
                ),
                60,
                "the new release to be served",
            )
            # The browser looks for a new /sw.js on navigations; here we ask it to, until the
            # new worker has installed beside the old one and deleted the old release's cache.
            # (Right after the HUP, a kept-alive connection may still reach an old worker and
            # get the old script once: the next check gets the new one.)
            new_cache = f"pro-app-shell-{second['version']}"
            wait_for(lambda: page.evaluate(UPDATE_UNTIL_ONLY, new_cache), 60, "only the new cache")
            assert sorted(page.evaluate(CACHED_URLS, new_cache)) == sorted(second["shell"])

            context.set_offline(True)
            try:
                page.goto(f"{running.url}/a/odi/1")
                assert page.locator("h1").inner_text() == "Du er uten nett"
                stylesheet = page.locator("link[rel=stylesheet]").get_attribute("href")
                assert stylesheet == second["shell"][0]
                assert page.evaluate("() => document.styleSheets[0].cssRules.length") > 0
                # Posts are never answered from the cache: offline, they fail.
                posted = page.evaluate(
                    "() => fetch('/', {method: 'POST'}).then(() => 'answered', () => 'failed')"
                )
                assert posted == "failed"
            finally:
                context.set_offline(False)
        finally:
            context.close()
