"""Contact details, kept apart from answers and encrypted field by field (Fernet)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from .db import stamp


class ContactKeyError(RuntimeError):
    """No usable key for contact details."""


def new_key() -> str:
    """Return a new random Fernet key (for PRO_CONTACT_KEY)."""
    return Fernet.generate_key().decode("ascii")


def cipher_for(config) -> Fernet:
    """Return the cipher from PRO_CONTACT_KEY; the demo derives one from its secret key."""
    key = config.get("CONTACT_KEY") or ""
    if not key and (config.get("DEMO") or config.get("TESTING")):
        digest = hashlib.sha256(("contacts:" + config["SECRET_KEY"]).encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode("ascii")
    if not key:
        raise ContactKeyError(
            "PRO_CONTACT_KEY is not set: contact details cannot be stored. Make a key with "
            "'flask --app pro_app contacts new-key' and set PRO_CONTACT_KEY."
        )
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, TypeError) as exc:
        raise ContactKeyError(
            "PRO_CONTACT_KEY is not a valid key (32 url-safe base64-encoded bytes)"
        ) from exc


def save(db, participant_id: int, cipher: Fernet, *, email: str | None, phone: str | None):
    """Store (or replace) a participant's contact details, encrypted (inside a transaction)."""
    db.execute(
        "INSERT INTO contacts (participant_id, email, phone, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (participant_id) DO UPDATE SET email = excluded.email, "
        "phone = excluded.phone, updated_at = excluded.updated_at",
        (
            participant_id,
            cipher.encrypt(email.encode()) if email else None,
            cipher.encrypt(phone.encode()) if phone else None,
            stamp(),
        ),
    )


def load(db, participant_id: int, cipher: Fernet) -> dict:
    """Return {'email': ..., 'phone': ...} in clear text (None where not given)."""
    row = next(
        iter(
            db.query("SELECT email, phone FROM contacts WHERE participant_id = ?", [participant_id])
        ),
        None,
    )
    result = {"email": None, "phone": None}
    for field in result:
        if row and row[field]:
            try:
                result[field] = cipher.decrypt(row[field]).decode()
            except InvalidToken as exc:
                raise ContactKeyError(
                    "contact details cannot be read with this PRO_CONTACT_KEY"
                ) from exc
    return result
