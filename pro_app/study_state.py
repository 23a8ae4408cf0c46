"""The study's state (open, locked): filled in by the study-closing part."""

from __future__ import annotations


def init_app(app) -> None:
    """Register the lock check on every request (nothing yet)."""
