"""Migrations for the paper part (registered on the shared list in schema.py, in file order)."""

from __future__ import annotations

from .schema import _guard, migrations  # noqa: F401 - used by the migrations added here
