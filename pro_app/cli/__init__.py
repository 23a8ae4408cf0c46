"""Flask CLI commands (`flask --app pro_app ...`)."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    """Add every command group to the app's CLI."""
    from . import purge  # noqa: F401 - adds 'contacts purge' to the contacts group
    from .api import api_token_group
    from .backup import backup_group, restore
    from .data import audit_group, contacts_group, db_group, invite, participants_group
    from .demo import demo
    from .doctor import doctor
    from .export import export_command
    from .questionnaires import questionnaires
    from .reminders import reminders_group
    from .rescore import rescore
    from .schedule import schedule
    from .score import score
    from .staff import staff_group
    from .study import study_group
    from .sync import sync_group

    app.cli.add_command(questionnaires)
    app.cli.add_command(score)
    app.cli.add_command(schedule)
    commands = (
        db_group,
        participants_group,
        invite,
        audit_group,
        contacts_group,
        demo,
        staff_group,
        reminders_group,
        export_command,
        api_token_group,
        sync_group,
        study_group,
        rescore,
        backup_group,
        restore,
        doctor,
    )
    for command in commands:
        app.cli.add_command(command)
