"""The benchmark's baseline: a bare Flask app that does one SQLite write per request.

Used by scripts/benchmark.py, which serves it with gunicorn next to the real app so that page
saves are reported as a ratio to this floor (a ratio holds on a noisy machine; absolutes do not).

It does what every durable write in the real app must do, and nothing else: it keeps one
connection per worker thread with the app's durability settings (WAL, synchronous=FULL,
foreign keys, busy timeout: see pro_app/storage/db.py), as the app does (pro_app/database.py),
and per request reads the form, runs BEGIN IMMEDIATE, one INSERT and COMMIT, and answers 204.

    BARE_DATABASE=/tmp/bare.sqlite gunicorn -w 2 --pythonpath scripts bare_app:app

The benchmark creates the table before it starts gunicorn (create_schema), so the workers do not
race to create it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading

from flask import Flask, request

BUSY_TIMEOUT_S = 10.0  # as pro_app.storage.db.BUSY_TIMEOUT_S

SCHEMA = """
CREATE TABLE IF NOT EXISTS saves (
    id INTEGER PRIMARY KEY,
    save_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    saved_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
"""


def connect(path: str) -> sqlite3.Connection:
    """Open with the same settings as pro_app.storage.db.connect."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.isolation_level = None  # we issue BEGIN IMMEDIATE / COMMIT ourselves
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    return conn


def create_schema(path: str) -> None:
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
    finally:
        conn.close()


def create_app(path: str) -> Flask:
    app = Flask(__name__)
    local = threading.local()

    @app.post("/save")
    def save():
        save_id = request.form.get("save_id", "")[:64]
        body = request.get_data(as_text=True)[:4096]
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("INSERT INTO saves (save_id, body) VALUES (?, ?)", (save_id, body))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return "", 204

    @app.get("/")
    def ready():
        return "ok"

    return app


app = create_app(os.environ.get("BARE_DATABASE", "bare.sqlite"))

if __name__ == "__main__":  # create the table: python scripts/bare_app.py PATH
    create_schema(sys.argv[1] if len(sys.argv) > 1 else "bare.sqlite")
