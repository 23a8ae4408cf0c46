"""Every setting, declared once with its default and a help line (PRO_<NAME> overrides)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str


SETTINGS = (
    Setting("DATABASE", "instance/pro.sqlite", "Path of the SQLite database file."),
    Setting(
        "SECRET_KEY",
        "dev-only-not-secret",
        "Key that signs sessions and CSRF tokens; set a long random value in production.",
    ),
    Setting("BASE_URL", "http://127.0.0.1:5000", "Public address of the app, used in links."),
    Setting("DEMO", False, "Run as a demo (set only by the README's run command)."),
    Setting(
        "STUDY",
        "backtobasic",
        "The study this instance serves: an id in STUDIES_DIR or a YAML path.",
    ),
    Setting(
        "QUESTIONNAIRES_DIR", str(ROOT / "questionnaires"), "Folder of questionnaire definitions."
    ),
    Setting("STUDIES_DIR", str(ROOT / "studies"), "Folder of study protocols."),
    Setting("SMTP_HOST", "", "SMTP server for e-mail invitations (empty: e-mail is off)."),
    Setting("SMTP_PORT", 587, "SMTP port."),
    Setting("SMTP_STARTTLS", True, "Use STARTTLS on the SMTP connection."),
    Setting("SMTP_USER", "", "SMTP user name (empty: no login)."),
    Setting("SMTP_PASSWORD", "", "SMTP password."),
    Setting("MAIL_FROM", "", "Sender address of e-mails, e.g. studie@sykehus.no."),
    Setting("SMS_BACKEND", "console", "console (prints, for development) or http (a gateway)."),
    Setting("SMS_URL", "", "The SMS gateway's URL (SMS_BACKEND=http): JSON POST {to, message}."),
    Setting("SMS_TOKEN", "", "Bearer token for the SMS gateway."),
    Setting(
        "STAFF_TOTP",
        None,
        "Require a TOTP code at staff sign-in (default: on, except in the demo).",
    ),
    Setting(
        "SYNC_TARGETS",
        "",
        "JSON list of sync targets (REDCap, FHIR, webhook) that receive every submitted "
        "response; see the README, 'Sync'.",
    ),
    Setting(
        "LOG_FORMAT",
        None,
        "How the app writes log lines to standard error: json (one object per line; the "
        "default) or text (the demo's default).",
    ),
    Setting(
        "PROXY_COUNT",
        0,
        "How many reverse proxies stand in front of the app (their X-Forwarded-* headers "
        "are trusted); 0 when clients connect directly.",
    ),
    Setting(
        "BACKUP_DIR",
        "instance/backups",
        "Folder where `flask backup` writes encrypted snapshots and their manifests.",
    ),
    Setting(
        "BACKUP_RECIPIENT",
        "",
        "Public key (age, 'age1...') that backups are encrypted to; the private key is "
        "kept off this server.",
    ),
    Setting(
        "CONTACT_KEY",
        "",
        "Fernet key that encrypts contact details (make one with "
        "`flask --app pro_app contacts new-key`); the demo derives one from SECRET_KEY.",
    ),
)


def defaults() -> dict:
    """Return {name: default} for every setting."""
    return {s.name: s.default for s in SETTINGS}
