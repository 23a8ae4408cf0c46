"""`flask api-token create|list|revoke`: tokens for the JSON API (/api/v1)."""

from __future__ import annotations

import sqlite3

import click
from flask.cli import with_appcontext

from ..database import get_db
from ..services import api_tokens
from ..staff.accounts import ROLES
from .common import catalog_or_exit

NO_TABLE = "cannot read the API tokens ({}); run 'flask --app pro_app db upgrade'"


@click.group("api-token")
def api_token_group():
    """Tokens for the JSON API: create (shown once), list, revoke.

    A client sends its token as 'Authorization: Bearer <token>'. Only the token's SHA-256
    is stored; every create and revoke is in the audit log.
    """


@api_token_group.command("create")
@click.option("--name", required=True, help="What uses the token, e.g. 'statistics server'.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(ROLES),
    help="What the token may do: data_manager (responses and exports, every site), admin, "
    "or coordinator/investigator (participants and assessments of their sites).",
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="SITE",
    help="Site id (repeat for several); coordinator and investigator tokens only.",
)
@click.option("--by", "by", required=True, metavar="EMAIL", help="The admin making the token.")
@click.option(
    "--expires-days",
    type=int,
    default=None,
    metavar="N",
    help="The token stops working after N days (default: when revoked).",
)
@with_appcontext
def create(name, role, sites, by, expires_days):
    """Make a token and print it ONCE (only its SHA-256 is kept)."""
    study = catalog_or_exit().study
    try:
        row, token = api_tokens.create(
            get_db(),
            study,
            name=name,
            role=role,
            sites=sites,
            created_by=by,
            expires_days=expires_days,
        )
    except api_tokens.TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(NO_TABLE.format(exc)) from exc
    where = f" at {', '.join(row['sites'])}" if row["sites"] else ""
    until = f", expires {_when(row['expires_at'])} UTC" if row["expires_at"] else ""
    # Only the token goes to standard output, so a script can take it: TOKEN=$(flask ...).
    click.echo(f"API token {row['id']} '{row['name']}' for {row['role']}{where}{until}:", err=True)
    click.echo(token)
    click.echo(
        "This is the only time the token is shown: put it in the client's secret store now."
        " Send it as 'Authorization: Bearer <token>'.",
        err=True,
    )


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


@api_token_group.command("list")
@with_appcontext
def list_command():
    """List every token: id, name, role, sites, prefix, created, last used, revoked."""
    try:
        found = api_tokens.list_tokens(get_db())
    except sqlite3.OperationalError as exc:
        raise click.ClickException(NO_TABLE.format(exc)) from exc
    if not found:
        click.echo("No API tokens.")
        return
    header = ("id", "name", "role", "sites", "prefix", "created", "last used", "revoked")
    table = [header] + [
        (
            str(r["id"]),
            r["name"],
            r["role"],
            ",".join(r["sites"]) or "all",
            r["prefix"] + "…",
            f"{_when(r['created_at'])} by {r['created_by']}",
            _when(r["last_used_at"]),
            f"{_when(r['revoked_at'])} by {r['revoked_by']}"
            if r["revoked_at"]
            else (f"no (expires {_when(r['expires_at'])})" if r["expires_at"] else "no"),
        )
        for r in found
    ]
    widths = [max(len(row[n]) for row in table) for n in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
    click.echo("Times are UTC.")


@api_token_group.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@click.option("--by", "by", required=True, metavar="EMAIL", help="The admin revoking it.")
@with_appcontext
def revoke(token_id, by):
    """Revoke token ID (see 'list'): it stops working at once and is kept for the record."""
    try:
        row = api_tokens.revoke(get_db(), token_id, by=by)
    except api_tokens.TokenError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(NO_TABLE.format(exc)) from exc
    click.echo(f"Revoked API token {row['id']} '{row['name']}'.")
