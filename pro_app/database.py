"""The database connection: one per worker thread, kept across requests."""

from __future__ import annotations

import os
import threading

from flask import Flask, current_app, g

from .storage.db import connect

# Opening a connection costs a PRAGMA round and, on close, a WAL checkpoint: about a
# quarter of a page save. So each thread keeps its own connection (sqlite3 connections must
# not be shared between threads at once), per app and per process (gunicorn forks).


def get_db():
    """Return this thread's connection to the app's database."""
    if "db" in g:
        return g.db
    local = current_app.extensions.setdefault("pro_db", threading.local())
    key = (os.getpid(), current_app.config["DATABASE"])
    db = getattr(local, "db", None)
    if db is None or getattr(local, "key", None) != key:
        db = connect(current_app.config["DATABASE"])
        local.db, local.key = db, key
    g.db = db
    return db


def end_request(_error=None) -> None:
    """Leave no transaction open at the end of a request (a failed one is rolled back)."""
    db = g.pop("db", None)
    if db is not None and db.conn.in_transaction:
        db.conn.execute("ROLLBACK")


def init_app(app: Flask) -> None:
    app.teardown_appcontext(end_request)
