"""Named migrations; a migration is never edited once it has shipped (add a new one)."""

from __future__ import annotations

from sqlite_utils import Migrations

migrations = Migrations("pro_app")

# Tables that only ever grow: UPDATE and DELETE are refused by triggers.
APPEND_ONLY = ("answers", "page_saves", "scores", "alerts", "audit", "outbox")


def _guard(table: str) -> str:
    return f"""
    CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows cannot be changed'); END;
    CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only: rows cannot be deleted'); END;
    """


INITIAL = """
CREATE TABLE participants (
    id INTEGER PRIMARY KEY,
    study_code TEXT NOT NULL UNIQUE,
    site TEXT NOT NULL,
    language TEXT NOT NULL CHECK (language IN ('nb', 'en')),
    enrolled_on TEXT NOT NULL,
    day0 TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn', 'completed')),
    created_at TEXT NOT NULL
) STRICT;

-- Contact details apart from answers, each field encrypted (Fernet, PRO_CONTACT_KEY).
CREATE TABLE contacts (
    participant_id INTEGER PRIMARY KEY REFERENCES participants(id),
    email BLOB,
    phone BLOB,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE assessments (
    id INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    timepoint TEXT NOT NULL,
    target_day TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    opens_at TEXT NOT NULL,
    closes_at TEXT NOT NULL,
    late_from TEXT NOT NULL,
    can_be_late INTEGER NOT NULL,
    completed_at TEXT,
    receipt_code TEXT UNIQUE,
    UNIQUE (participant_id, timepoint)
) STRICT;

CREATE TABLE invites (
    id INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    first_used_at TEXT
) STRICT;
CREATE INDEX invites_assessment ON invites(assessment_id);

CREATE TABLE responses (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    questionnaire TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    definition_version TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'submitted', 'superseded')),
    started_at TEXT NOT NULL,
    submitted_at TEXT,
    submission_id TEXT UNIQUE,
    UNIQUE (assessment_id, questionnaire, version)
) STRICT;

-- A submitted response is never edited: only in_progress rows may change, and only forward.
CREATE TRIGGER responses_frozen BEFORE UPDATE ON responses
WHEN OLD.status != 'in_progress'
BEGIN SELECT RAISE(ABORT, 'responses: a submitted response cannot be changed'); END;
CREATE TRIGGER responses_fixed_columns BEFORE UPDATE ON responses
WHEN NEW.uuid != OLD.uuid OR NEW.assessment_id != OLD.assessment_id
    OR NEW.questionnaire != OLD.questionnaire OR NEW.version != OLD.version
BEGIN SELECT RAISE(ABORT, 'responses: identity columns cannot be changed'); END;
CREATE TRIGGER responses_no_delete BEFORE DELETE ON responses
BEGIN SELECT RAISE(ABORT, 'responses cannot be deleted'); END;

-- The answer journal: every save is a row; the current answer is the latest row per item.
CREATE TABLE answers (
    id INTEGER PRIMARY KEY,
    response_id INTEGER NOT NULL REFERENCES responses(id),
    item TEXT NOT NULL,
    value TEXT,
    save_id TEXT NOT NULL,
    client_time TEXT,
    server_time TEXT NOT NULL,
    actor TEXT NOT NULL
) STRICT;
CREATE INDEX answers_response_item ON answers(response_id, item, id);

-- One row per page save: a repeated save id is recognised and stores nothing new.
CREATE TABLE page_saves (
    save_id TEXT PRIMARY KEY,
    response_id INTEGER NOT NULL REFERENCES responses(id),
    page INTEGER NOT NULL,
    saved_at TEXT NOT NULL
) STRICT;

CREATE TABLE scores (
    id INTEGER PRIMARY KEY,
    response_id INTEGER NOT NULL REFERENCES responses(id),
    score TEXT NOT NULL,
    value TEXT,
    reason TEXT,
    definition_version TEXT NOT NULL,
    definition_hash TEXT NOT NULL,
    computed_at TEXT NOT NULL,
    UNIQUE (response_id, score)
) STRICT;

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    response_id INTEGER NOT NULL REFERENCES responses(id),
    participant_id INTEGER NOT NULL REFERENCES participants(id),
    site TEXT NOT NULL,
    alert TEXT NOT NULL,
    raised_at TEXT NOT NULL
) STRICT;

-- Hash-chained audit log (see pro_app/storage/audit.py for the canonical row).
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT,
    field TEXT,
    old_value TEXT,
    new_value TEXT,
    reason TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
) STRICT;

-- Messages for the trial database, written in the same transaction as the submit.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    response_id INTEGER REFERENCES responses(id),
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- Shared by every worker: attempts per key and window (invite and submit endpoints).
CREATE TABLE rate_limits (
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
) STRICT;
"""


@migrations(name="0001_initial")
def initial(db) -> None:
    """Create the first schema."""
    db.executescript(INITIAL + "".join(_guard(t) for t in APPEND_ONLY))


def upgrade(db) -> list[str]:
    """Apply pending migrations; return the names applied."""
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending


STAFF = """
CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'investigator', 'data_manager')),
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    totp_secret BLOB,
    totp_confirmed_at TEXT,
    totp_last_step INTEGER,
    disabled_at TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE staff_sites (
    staff_id INTEGER NOT NULL REFERENCES staff(id),
    site TEXT NOT NULL,
    PRIMARY KEY (staff_id, site)
) STRICT;

-- Server-side staff sessions: logout and disabling an account end them at once.
CREATE TABLE staff_sessions (
    id TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff(id),
    created_at TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    second_factor INTEGER NOT NULL DEFAULT 0,
    ended_at TEXT
) STRICT;

-- Failed logins per account and per (hashed) address, shared by every worker.
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_key ON login_failures(key, at);
"""


@migrations(name="0002_staff")
def staff(db) -> None:
    """Staff accounts, their sites, server-side sessions and failed logins."""
    db.executescript(STAFF)


DELIVERIES = """
-- Every invite and reminder sent (or tried): channel, step, outcome. A reminder step is
-- sent at most once per assessment and channel.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    assessment_id INTEGER NOT NULL REFERENCES assessments(id),
    kind TEXT NOT NULL CHECK (kind IN ('invite', 'reminder')),
    step INTEGER NOT NULL DEFAULT 0,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    status TEXT NOT NULL CHECK (status IN ('sent', 'failed')),
    error TEXT,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX deliveries_reminder_once ON deliveries(assessment_id, kind, step, channel)
    WHERE kind = 'reminder' AND status = 'sent';
"""


@migrations(name="0003_deliveries")
def deliveries(db) -> None:
    """Invite and reminder deliveries."""
    db.executescript(DELIVERIES)


ALERT_ACKS = """
-- A safety alert is acknowledged once, with a note; the acknowledgement never changes.
CREATE TABLE alert_acks (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL UNIQUE REFERENCES alerts(id),
    staff TEXT NOT NULL,
    note TEXT NOT NULL,
    at TEXT NOT NULL
) STRICT;
"""


@migrations(name="0004_alert_acks")
def alert_acks(db) -> None:
    """Acknowledgements of safety alerts."""
    db.executescript(ALERT_ACKS + _guard("alert_acks"))


API_TOKENS = """
-- API tokens: made by an admin for a role (and sites, for site roles); shown once, only the
-- SHA-256 of the token kept; revoked, never deleted; last use recorded.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'investigator', 'data_manager')),
    sites TEXT NOT NULL DEFAULT '[]',
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    revoked_by TEXT,
    last_used_at TEXT
) STRICT;
CREATE TRIGGER api_tokens_no_delete BEFORE DELETE ON api_tokens
BEGIN SELECT RAISE(ABORT, 'api_tokens cannot be deleted: revoke them'); END;
"""


@migrations(name="0005_api_tokens")
def api_tokens(db) -> None:
    """Tokens for the JSON API."""
    db.executescript(API_TOKENS)


SYNC = """
-- Where each outbox message stands at each sync target. The worker adds the rows; a lease
-- (owner, until) keeps two workers from sending the same message at the same time.
CREATE TABLE sync_deliveries (
    message_id TEXT NOT NULL REFERENCES outbox(message_id),
    target TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    last_error TEXT,
    acknowledged_at TEXT,
    ack TEXT,
    payload_sha256 TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (message_id, target)
) STRICT;
CREATE INDEX sync_deliveries_due ON sync_deliveries(target, status, next_attempt_at);

-- Every attempt, kept: what happened and how long it took.
CREATE TABLE sync_attempts (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    target TEXT NOT NULL,
    worker TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'retry', 'dead', 'refused')),
    detail TEXT
) STRICT;
CREATE INDEX sync_attempts_message ON sync_attempts(message_id, target, id);
"""


@migrations(name="0006_sync")
def sync(db) -> None:
    """Delivery state of outbox messages per sync target, and every attempt."""
    db.executescript(SYNC + _guard("sync_attempts"))


EXPORT_JOBS = """
-- Exports run as jobs beside the requests: the page shows how far each has come. The file
-- lives in the exports folder beside the database, named after the job's random id.
CREATE TABLE export_jobs (
    id TEXT PRIMARY KEY,
    staff_id INTEGER NOT NULL REFERENCES staff(id),
    format TEXT NOT NULL,
    filters TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    file_name TEXT,
    sha256 TEXT,
    rows INTEGER,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    updated_at TEXT NOT NULL,
    finished_at TEXT
) STRICT;
CREATE INDEX export_jobs_staff ON export_jobs(staff_id, created_at);
"""


@migrations(name="0007_export_jobs")
def export_jobs(db) -> None:
    """Export jobs and their progress."""
    db.executescript(EXPORT_JOBS)


# Later parts keep their migrations in modules of their own; the order of these imports is
# the order in which the migrations run.
from . import (  # noqa: E402, I001 - after `migrations` exists, in this order
    migrations_rescoring,  # noqa: F401
    migrations_study,  # noqa: F401
    migrations_paper,  # noqa: F401
    migrations_review,  # noqa: F401
)
