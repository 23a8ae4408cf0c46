"""`flask staff add|disable|reset-password`: staff accounts from the command line."""

from __future__ import annotations

import click
import segno
from flask import current_app
from flask.cli import with_appcontext

from ..staff import accounts
from ..storage.contacts import ContactKeyError, cipher_for
from ..storage.schema import upgrade
from .common import catalog_or_exit, upgraded_db


@click.group("staff")
def staff_group():
    """Staff accounts: add, disable, reset a password."""


def _show_second_factor(email: str, secret: str) -> None:
    issuer = f"ePRO {catalog_or_exit().study.id}"
    uri = accounts.provisioning_uri(secret, email, issuer)
    click.echo(f"TOTP provisioning URI (scan or type into an authenticator app): {uri}")
    segno.make(uri, error="m").terminal(compact=True)


@staff_group.command("add")
@click.argument("email")
@click.option(
    "--role",
    required=True,
    type=click.Choice(accounts.ROLES),
    help="admin, coordinator, investigator or data_manager.",
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    help="Site id (repeat for several); coordinators and investigators only.",
)
@with_appcontext
def add(email, role, sites):
    """Create a staff account; print a one-time password and the TOTP provisioning URI.

    The password must be changed at first sign-in. Give both to the person in person or by
    two different channels.
    """
    study = catalog_or_exit().study
    db = upgraded_db()
    upgrade(db)
    try:
        password, secret = accounts.add(
            db, study, cipher_for(current_app.config), email=email, role=role, sites=sites
        )
    except (accounts.AccountError, ContactKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    where = f" at {', '.join(sites)}" if sites else ""
    click.echo(f"Added {email} as {role}{where}.")
    click.echo(f"One-time password: {password}")
    _show_second_factor(email, secret)


@staff_group.command("disable")
@click.argument("email")
@with_appcontext
def disable(email):
    """Disable an account; its sessions end at once."""
    try:
        accounts.disable(upgraded_db(), email)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Disabled {email}.")


@staff_group.command("reset-password")
@click.argument("email")
@click.option("--new-totp", is_flag=True, help="Also make a new TOTP secret (a lost phone).")
@with_appcontext
def reset_password(email, new_totp):
    """Give a new one-time password (and re-enable the account); sessions end at once."""
    try:
        password, secret = accounts.reset_password(
            upgraded_db(), email, cipher_for(current_app.config), new_totp=new_totp
        )
    except (accounts.AccountError, ContactKeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"One-time password for {email}: {password}")
    if secret:
        _show_second_factor(email, secret)
