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
