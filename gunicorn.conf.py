"""gunicorn settings for the ePRO app: `gunicorn -c gunicorn.conf.py wsgi:app`.

gunicorn reads this file by itself when it starts in the project folder. Command-line flags
override it; these environment variables tune it without editing the file:

    WEB_CONCURRENCY      worker processes (default: 2 x cores + 1, at most 4)
    GUNICORN_THREADS     threads per worker (default 4)
    GUNICORN_BIND        address to listen on (default 127.0.0.1:8000; the image: 0.0.0.0:8000)
    PRO_PROXY_COUNT      reverse proxies in front (the app's own setting, also read here)
    FORWARDED_ALLOW_IPS  the proxies' addresses (default 127.0.0.1,::1; only with a proxy)
    GUNICORN_ACCESSLOG   where gunicorn's access lines go (default -, standard output)
    GUNICORN_LOGLEVEL    gunicorn's own messages (default info)

The reasons are in the comments and in docs/decisions/0022-deployment.md.
"""

from __future__ import annotations

import os
import threading
import time

wsgi_app = "wsgi:app"
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
proc_name = "pro-app"

# --- Workers -----------------------------------------------------------------------------
# Few workers are enough. Every write goes through one SQLite file, and SQLite lets one
# writer in at a time (BEGIN IMMEDIATE), so more processes than cores only queue on the
# write lock. Measured on a 2-core machine with 2 workers (docs/decisions/0013): 450-620
# page saves a second, against a national-scale PROM programme's average of a few
# submissions a second. The usual 2 x cores + 1 covers reads (which SQLite's WAL runs side
# by side); the cap of 4 keeps memory bounded, since one large SPSS/Stata export can take
# 0.6-0.7 GB in the worker that builds it (README, exports). Going from 2 to 4 workers
# gained about a third in saves a second on 2 cores (docs/decisions/0022), not double.
# WEB_CONCURRENCY overrides.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 4))

# Threads let a worker go on serving while one request waits: on an fsync at commit, on the
# SQLite busy timeout behind another writer, on an SMTP server or an SMS gateway, or on a
# slow phone when the proxy streams the answer. Python runs one thread at a time per
# process, so CPU work spreads over the workers, waiting over the threads. Each thread
# keeps its own SQLite connection (pro_app/database.py). threads > 1 means the gthread
# worker, which also keeps connections alive between requests (the sync worker cannot).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)

# --- Timeouts ----------------------------------------------------------------------------
# With gthread, `timeout` is how long a worker's main loop may go silent before the master
# kills and replaces it (a hung process), not a limit on one request: exports run longer
# than this and are not cut off.
timeout = 30
# On SIGTERM (a stop) and on SIGHUP or max_requests (a replacement), a worker stops
# accepting and gets this long to finish what it is doing; then it is killed. Page saves
# take milliseconds; the margin is for an export being streamed. Keep it below what the
# supervisor waits before SIGKILL: compose's stop_grace_period (25 s) and systemd's
# TimeoutStopSec (25 s). A request cut off is safe to repeat: every 2xx is committed,
# every save and submit carries an id the server recognises (docs/decisions/0009).
graceful_timeout = 20
# The proxy keeps connections to us open for reuse. The side that closes an idle
# connection must be the proxy, or a request it sends on a connection we are closing at
# that moment fails with a 502. nginx's upstream keepalive_timeout (60 s) and Caddy's
# (set to 60 s in deploy/caddy/Caddyfile) are shorter than this. Idle kept-alive
# connections cost a gthread worker no thread, only a socket.
keepalive = 75

# --- Recycling ---------------------------------------------------------------------------
# Replace a worker after about 2,000 requests (the jitter spreads the restarts, so the
# workers never restart together). A big export's memory is freed by Python but not
# always given back to the system by the allocator; a fresh process does give it back.
# At a trial's traffic this is roughly once a day per worker. A running export job (a
# thread of the worker, docs/decisions/0015) gets time to finish: see worker_exit below.
max_requests = 2000
max_requests_jitter = 200

# --- Loading the app ---------------------------------------------------------------------
# No preload: each worker imports and builds the app itself. So SIGHUP (`systemctl reload
# pro-app`) starts workers on the code and settings on disk now, a graceful upgrade
# without a stop; and nothing opened in the master (a SQLite connection, a thread) is
# inherited across fork. The cost is each worker's start (about a second), and the memory
# that preloading would share, small with four workers at most.
preload_app = False

# --- Behind a proxy ----------------------------------------------------------------------
# The app trusts exactly PRO_PROXY_COUNT proxies for X-Forwarded-For/-Proto/-Host/-Prefix
# (werkzeug's ProxyFix, pro_app/__init__.py). gunicorn reads X-Forwarded-Proto too, from
# the addresses in forwarded_allow_ips. Tie the two: with no proxy, trust no one (a client
# could otherwise claim https); with one, trust its address. In compose the proxy's address
# changes, so compose sets FORWARDED_ALLOW_IPS=* and publishes no port of the app: only
# Caddy, on the compose network, can reach it.
_proxies = int(os.environ.get("PRO_PROXY_COUNT") or 0)
# (An empty list, not even loopback: without a proxy nobody may set these headers.)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1") if _proxies else ""

# --- Logs --------------------------------------------------------------------------------
# To standard output and error: journald (systemd) and `docker compose logs` keep them.
# The app writes its own access line too (JSON, pro_app/logs.py); gunicorn's line also
# covers what never reaches the app (a malformed request, a worker that died). Set
# GUNICORN_ACCESSLOG to an empty value to keep only the app's.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# The path without the query string (%(U)s; never %(r)s or %(q)s): a query may hold a token
# or a filter with a study code. Invite tokens in the path become /i/[token] (pro_app/logs.py
# filters gunicorn's logger). No client address (SECURITY.md; the app's own line keeps it
# truncated), no referrer, no user agent. The request id is the one the app answered with
# (X-Request-Id: the proxy's, or the app's own), as on error pages and in the app's log.
access_log_format = '%(t)s %({x-request-id}o)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'

# --- Housekeeping ------------------------------------------------------------------------
# The workers' heartbeat files: in memory, not on a container's overlay disk (where an
# fsync elsewhere can stall the update long enough for the master to kill a healthy worker).
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"
# gunicorn 25+ opens a control socket at one fixed path per user ($HOME/.gunicorn); a
# second instance on the machine takes it over, and on a read-only system it cannot be made.
# We steer gunicorn with signals (systemd, docker), so it stays off.
control_socket_disable = True

EXPORT_THREAD_PREFIX = "export-"  # pro_app/services/export_jobs.py names its threads so


def export_grace_seconds() -> float:
    """How long a leaving worker waits for its export jobs (less than the master's timeout)."""
    return max(timeout - 5, 0)


def worker_exit(server, worker) -> None:
    """Let running export jobs finish before the worker process ends.

    Export jobs are daemon threads of the worker that took the request (docs/decisions/
    0015); without this they would die whenever a worker is replaced (max_requests, SIGHUP).
    The master kills a worker that has been silent for `timeout` seconds, so the wait stays
    below that; a job still running then is marked interrupted when its page is next read.
    """
    deadline = time.monotonic() + export_grace_seconds()
    jobs = [t for t in threading.enumerate() if t.name.startswith(EXPORT_THREAD_PREFIX)]
    if not jobs:
        return
    server.log.info("worker %s: waiting for %d export job(s) to finish", worker.pid, len(jobs))
    for job in jobs:
        job.join(max(deadline - time.monotonic(), 0))
    left = sum(job.is_alive() for job in jobs)
    if left:
        server.log.warning("worker %s: %d export job(s) interrupted", worker.pid, left)


def post_worker_init(worker) -> None:
    """Load the questionnaires and the study before the worker takes its first request.

    Building the catalog takes about a second; without this the first participant after a
    start, a reload or a recycled worker would wait for it. A failure is logged and left to
    the first request (which shows an error page), so a bad definition after a reload does
    not take the whole server down with it.
    """
    app = worker.wsgi
    config = getattr(app, "config", None)
    if not config or "STUDY" not in config:
        return  # not the ePRO app (a benchmark's bare app, say)
    try:
        from pro_app.catalog import catalog_for

        catalog_for(app)
    except Exception:
        worker.log.exception("worker %s: could not load the definitions", worker.pid)


def when_ready(server) -> None:
    """Say once at start what was chosen, so the log shows the effective settings."""
    server.log.info(
        "pro-app: %s workers x %s threads, timeout %ss, graceful %ss, keepalive %ss, "
        "proxies %s (forwarded from %s)",
        server.cfg.workers,
        server.cfg.threads,
        server.cfg.timeout,
        server.cfg.graceful_timeout,
        server.cfg.keepalive,
        _proxies,
        ",".join(server.cfg.forwarded_allow_ips) if _proxies else "nobody",
    )
