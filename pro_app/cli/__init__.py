"""Flask CLI commands (`flask --app pro_app ...`)."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    """Add every command group to the app's CLI."""
    from .questionnaires import questionnaires
    from .schedule import schedule
    from .score import score

    app.cli.add_command(questionnaires)
    app.cli.add_command(score)
    app.cli.add_command(schedule)
