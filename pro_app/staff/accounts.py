"""Staff accounts: argon2id passwords, TOTP second factor, roles and sites (no Flask)."""

from __future__ import annotations

import re
import secrets

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from ..storage import audit
from ..storage.db import one, stamp, utc_now, write

ROLES = ("admin", "coordinator", "investigator", "data_manager")
SITE_ROLES = ("coordinator", "investigator")  # scoped to one or more sites
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD, MAX_PASSWORD = 8, 128
# OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
COMMON = frozenset(FREQUENCY_LISTS["passwords"])
_DUMMY_HASH = HASHER.hash("not a real password, used to even out timing")


class AccountError(ValueError):
    """Account input that cannot be used; the message says what to fix.

    key names the problem for pages that say it in the reader's language.
    """

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(message)


PASSWORD_PROBLEMS = {
    "password_short": f"the password must have at least {MIN_PASSWORD} characters",
    "password_long": f"the password may have at most {MAX_PASSWORD} characters",
    "password_common": "the password is too common or too easy to guess; choose another",
}


def password_problem(password: str, email: str = "") -> str | None:
    """Return the key of what is wrong with a new password (length and commonness only)."""
    if len(password) < MIN_PASSWORD:
        return "password_short"
    if len(password) > MAX_PASSWORD:
        return "password_long"
    lowered = password.lower()
    if lowered in COMMON or lowered == email.lower() or lowered == email.split("@")[0].lower():
        return "password_common"
    return None


def one_time_password() -> str:
    """A random first password, to be changed at first login."""
    return secrets.token_urlsafe(12)


def by_email(db, email: str) -> dict | None:
    return one(db, "SELECT * FROM staff WHERE email = ?", [email.strip()])


def sites_of(db, staff_id: int) -> tuple[str, ...]:
    return tuple(
        r["site"]
        for r in db.query(
            "SELECT site FROM staff_sites WHERE staff_id = ? ORDER BY site", [staff_id]
        )
    )


def _check(study, email: str, role: str, sites) -> None:
    if not EMAIL.match(email or ""):
        raise AccountError(f"'{email}' is not an e-mail address")
    if role not in ROLES:
        raise AccountError(f"unknown role '{role}' (roles: {', '.join(ROLES)})")
    known = {s.id for s in study.sites}
    unknown = [s for s in sites if s not in known]
    if unknown:
        raise AccountError(
            f"unknown site(s) {', '.join(unknown)} (sites: {', '.join(sorted(known))})"
        )
    if role in SITE_ROLES and not sites:
        raise AccountError(f"a {role} works at one or more sites: give --site")
    if role not in SITE_ROLES and sites:
        raise AccountError(f"a {role} sees every site: leave out --site")


def add(
    db,
    study,
    cipher,
    *,
    email: str,
    role: str,
    sites=(),
    actor: str = "cli",
    actor_role: str = "admin",
) -> tuple[str, str]:
    """Create an account; return (one-time password, TOTP secret)."""
    email = (email or "").strip()
    _check(study, email, role, sites)
    password = one_time_password()
    secret = pyotp.random_base32()
    with write(db):
        if by_email(db, email):
            raise AccountError(f"there is already an account for {email}")
        cursor = db.execute(
            "INSERT INTO staff (email, role, password_hash, totp_secret, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (email, role, HASHER.hash(password), cipher.encrypt(secret.encode()), stamp()),
        )
        for site in sites:
            db.execute(
                "INSERT INTO staff_sites (staff_id, site) VALUES (?, ?)", (cursor.lastrowid, site)
            )
        audit.record(
            db,
            actor=actor,
            role=actor_role,
            action="staff.add",
            entity="staff",
            entity_id=email,
            new={"role": role, "sites": list(sites)},
        )
    return password, secret


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads (shown as text and as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def totp_secret(row: dict, cipher) -> str:
    return cipher.decrypt(row["totp_secret"]).decode()


def check_password(db, email: str, password: str) -> dict | None:
    """Return the active account when the password is right; None otherwise (same cost)."""
    row = by_email(db, email or "")
    try:
        HASHER.verify(row["password_hash"] if row else _DUMMY_HASH, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled_at"]:
        return None
    return row


def check_code(db, row: dict, code: str, cipher) -> bool:
    """Verify a TOTP code (one step of clock drift allowed); a code works only once."""
    code = (code or "").replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(totp_secret(row, cipher))
    current = totp.timecode(utc_now())
    for drift in (0, -1, 1):
        step = current + drift
        if secrets.compare_digest(totp.generate_otp(step), code):
            with write(db):
                fresh = one(db, "SELECT totp_last_step FROM staff WHERE id = ?", [row["id"]])
                if fresh["totp_last_step"] is not None and step <= fresh["totp_last_step"]:
                    return False  # replayed
                db.execute(
                    "UPDATE staff SET totp_last_step = ?, totp_confirmed_at ="
                    " COALESCE(totp_confirmed_at, ?) WHERE id = ?",
                    (step, stamp(), row["id"]),
                )
            return True
    return False


def set_password(db, row: dict, password: str, *, actor: str) -> None:
    """Set a new password chosen by the account holder."""
    problem = password_problem(password, row["email"])
    if problem:
        raise AccountError(PASSWORD_PROBLEMS[problem], key=problem)
    with write(db):
        db.execute(
            "UPDATE staff SET password_hash = ?, must_change_password = 0 WHERE id = ?",
            (HASHER.hash(password), row["id"]),
        )
        audit.record(
            db,
            actor=actor,
            role=row["role"],
            action="staff.password",
            entity="staff",
            entity_id=row["email"],
        )


def end_sessions(db, staff_id: int) -> None:
    """End every live session of an account (inside the caller's transaction)."""
    db.execute(
        "UPDATE staff_sessions SET ended_at = ? WHERE staff_id = ? AND ended_at IS NULL",
        (stamp(), staff_id),
    )


def disable(db, email: str, *, actor: str = "cli", actor_role: str = "admin") -> None:
    """Disable an account and end its sessions at once."""
    row = by_email(db, email)
    if row is None:
        raise AccountError(f"no account for {email}")
    with write(db):
        db.execute(
            "UPDATE staff SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
            (stamp(), row["id"]),
        )
        end_sessions(db, row["id"])
        audit.record(
            db,
            actor=actor,
            role=actor_role,
            action="staff.disable",
            entity="staff",
            entity_id=email,
        )


def reset_password(
    db, email: str, cipher, *, new_totp: bool = False, actor: str = "cli", actor_role: str = "admin"
) -> tuple[str, str | None]:
    """Give a new one-time password (and, if asked, a new TOTP secret); end sessions."""
    row = by_email(db, email)
    if row is None:
        raise AccountError(f"no account for {email}")
    password = one_time_password()
    secret = pyotp.random_base32() if new_totp else None
    with write(db):
        db.execute(
            "UPDATE staff SET password_hash = ?, must_change_password = 1,"
            " disabled_at = NULL WHERE id = ?",
            (HASHER.hash(password), row["id"]),
        )
        if secret:
            db.execute(
                "UPDATE staff SET totp_secret = ?, totp_confirmed_at = NULL,"
                " totp_last_step = NULL WHERE id = ?",
                (cipher.encrypt(secret.encode()), row["id"]),
            )
        end_sessions(db, row["id"])
        audit.record(
            db,
            actor=actor,
            role=actor_role,
            action="staff.reset_password",
            entity="staff",
            entity_id=email,
            new={"new_totp": new_totp},
        )
    return password, secret
