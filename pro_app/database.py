"""The request's database connection (one per request, on g, closed on teardown)."""

from __future__ import annotations

from flask import Flask, current_app, g

from .storage.db import connect


def get_db():
    """Return this request's connection, opening it on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_error=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
