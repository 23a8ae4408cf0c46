"""Helpers shared by the commands."""

from __future__ import annotations

import click
from flask import current_app

from ..catalog import catalog_for
from ..domain.catalog import Catalog
from ..domain.errors import DefinitionError


def catalog_or_exit() -> Catalog:
    """Return the app's catalog, or stop with every definition problem listed."""
    try:
        return catalog_for(current_app)
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(f"error {problem}", err=True)
        raise click.ClickException(
            "the definitions have problems; run 'flask --app pro_app questionnaires check'"
        ) from exc


def upgraded_db():
    """The app's database, refusing with what to do when its schema is not current.

    Commands that read or write the data call this instead of get_db(), so a forgotten
    `db upgrade` gives one clear line instead of 'no such table'.
    """
    from ..database import get_db
    from ..storage.schema import migrations

    db = get_db()
    pending = [m.name for m in migrations.pending(db)]
    if pending:
        raise click.ClickException(
            f"the database {current_app.config['DATABASE']} is not up to date "
            f"({len(pending)} migration(s) pending: {', '.join(pending)}); "
            "run 'flask --app pro_app db upgrade' (after a backup)"
        )
    return db
