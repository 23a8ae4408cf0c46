"""API tokens: made by an admin for a role (and sites), shown once, kept as a SHA-256 (no Flask).

A token is `pro_` and 32 random bytes (256 bits, `secrets.token_urlsafe(32)`). With that much
entropy a slow password hash buys nothing: nobody can guess or brute-force a token from its
SHA-256, and a fast hash lets each request find its token by an indexed lookup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets

from ..staff.accounts import ROLES, SITE_ROLES
from ..storage import audit
from ..storage.db import one, parse_stamp, rows, stamp, utc_now, write

PREFIX = "pro_"
SHOWN = 8  # characters kept for listing (the prefix and four of the random part)
MAX_TOKEN = 100  # longer input is not a token: refuse it before hashing
MAX_NAME = 100
MAX_DAYS = 3650
TOUCH_EVERY = dt.timedelta(minutes=1)  # last_used_at is written at most this often
LISTED = (
    "id, name, role, sites, prefix, created_by, created_at, expires_at, revoked_at,"
    " revoked_by, last_used_at"
)


class TokenError(ValueError):
    """Token input that cannot be used; the message says what to fix."""


def digest(token: str) -> str:
    """The stored form of a token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _row(row: dict | None) -> dict | None:
    """A stored row with its sites as a tuple (stored as a JSON list)."""
    if row is None:
        return None
    return {**row, "sites": tuple(json.loads(row["sites"] or "[]"))}


def _admin(db, email: str) -> dict:
    """The active admin account that acts; anything else is refused."""
    account = one(db, "SELECT * FROM staff WHERE email = ?", [(email or "").strip()])
    if account is None:
        raise TokenError(f"no staff account for '{email}'")
    if account["disabled_at"]:
        raise TokenError(f"the account {account['email']} is disabled")
    if account["role"] != "admin":
        raise TokenError(f"only an admin may manage API tokens; {account['email']} is not")
    return account


def _check(study, name: str, role: str, sites, expires_days) -> None:
    if not name or len(name) > MAX_NAME:
        raise TokenError(f"give the token a name of 1 to {MAX_NAME} characters (what uses it)")
    if role not in ROLES:
        raise TokenError(f"unknown role '{role}' (roles: {', '.join(ROLES)})")
    known = [s.id for s in study.sites]
    unknown = [s for s in sites if s not in known]
    if unknown:
        raise TokenError(f"unknown site(s) {', '.join(unknown)} (sites: {', '.join(known)})")
    if role in SITE_ROLES and not sites:
        raise TokenError(f"a {role} token is for one or more sites: give --site")
    if role not in SITE_ROLES and sites:
        raise TokenError(f"a {role} token sees every site: leave out --site")
    if expires_days is not None and not 1 <= expires_days <= MAX_DAYS:
        raise TokenError(f"--expires-days must be between 1 and {MAX_DAYS}")


def create(
    db,
    study,
    *,
    name: str,
    role: str,
    sites=(),
    created_by: str,
    expires_days: int | None = None,
) -> tuple[dict, str]:
    """Make a token; return (its stored row, the token). The token is never stored or shown
    again."""
    name = (name or "").strip()
    sites = tuple(dict.fromkeys(sites))
    _check(study, name, role, sites, expires_days)
    token = PREFIX + secrets.token_urlsafe(32)
    now = utc_now()
    expires = stamp(now + dt.timedelta(days=expires_days)) if expires_days else None
    with write(db):
        admin = _admin(db, created_by)
        cursor = db.conn.execute(
            "INSERT INTO api_tokens (name, role, sites, token_hash, prefix, created_by,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                role,
                json.dumps(list(sites)),
                digest(token),
                token[:SHOWN],
                admin["email"],
                stamp(now),
                expires,
            ),
        )
        audit.record(
            db,
            actor=admin["email"],
            role="admin",
            action="api_token.create",
            entity="api_token",
            entity_id=cursor.lastrowid,
            new={
                "name": name,
                "role": role,
                "sites": list(sites),
                "prefix": token[:SHOWN],
                "expires_at": expires,
            },
        )
        row = one(db, f"SELECT {LISTED} FROM api_tokens WHERE id = ?", [cursor.lastrowid])
    return _row(row), token


def list_tokens(db) -> list[dict]:
    """Every token ever made, newest first (never the token or its hash)."""
    return [_row(r) for r in rows(db, f"SELECT {LISTED} FROM api_tokens ORDER BY id DESC")]


def revoke(db, token_id: int, *, by: str) -> dict:
    """Revoke a token at once (it is kept, never deleted); return its row."""
    with write(db):
        admin = _admin(db, by)
        row = one(db, f"SELECT {LISTED} FROM api_tokens WHERE id = ?", [token_id])
        if row is None:
            raise TokenError(f"no API token with id {token_id} (see 'api-token list')")
        if row["revoked_at"]:
            raise TokenError(f"API token {token_id} was already revoked at {row['revoked_at']}")
        now = stamp()
        db.conn.execute(
            "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?",
            (now, admin["email"], token_id),
        )
        audit.record(
            db,
            actor=admin["email"],
            role="admin",
            action="api_token.revoke",
            entity="api_token",
            entity_id=token_id,
            field="revoked_at",
            new=now,
        )
        row = one(db, f"SELECT {LISTED} FROM api_tokens WHERE id = ?", [token_id])
    return _row(row)


def authenticate(db, token: str | None, now: dt.datetime | None = None) -> dict | None:
    """Return the live token's row (without its hash), or None: unknown, revoked or expired.

    The lookup is by the token's SHA-256, so how long it takes says nothing about the token.
    The last use is written at most once a minute, not on every request.
    """
    if not token or not token.startswith(PREFIX) or len(token) > MAX_TOKEN:
        return None
    hashed = digest(token)
    row = one(db, "SELECT * FROM api_tokens WHERE token_hash = ?", [hashed])
    if row is None or not secrets.compare_digest(row["token_hash"], hashed):
        return None
    now = now or utc_now()
    if row["revoked_at"] or (row["expires_at"] and parse_stamp(row["expires_at"]) <= now):
        return None
    last = row["last_used_at"]
    if last is None or parse_stamp(last) <= now - TOUCH_EVERY:
        with write(db):
            db.conn.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ?"
                " AND (last_used_at IS NULL OR last_used_at <= ?)",
                (stamp(now), row["id"], stamp(now - TOUCH_EVERY)),
            )
        row["last_used_at"] = stamp(now)
    del row["token_hash"]
    return _row(row)
