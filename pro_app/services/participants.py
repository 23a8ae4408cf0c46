"""Enrolment: a participant, their contact details apart, and their assessments."""

from __future__ import annotations

import datetime as dt
import re

from ..domain.schedule import ScheduleError, build_schedule
from ..storage import audit, contacts
from ..storage.db import one, stamp, write

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")  # E.164, after normalise_phone


# English texts of the problems; pages say them in the reader's language by key
# (pro_app/staff/messages.py), commands print these.
ENGLISH = {
    "code_pattern": "study code '{code}' does not match the pattern {pattern}",
    "unknown_site": "unknown site '{site}' (sites: {sites})",
    "language": "language must be nb or en, not '{language}'",
    "email": "'{email}' is not an e-mail address",
    "phone": "'{phone}' is not a mobile number: write 8 digits (Norway) or + and the country code",
    "day0_order": "day 0 ({day0}) must be after the enrolment date ({enrolled})",
    "contact_key": "contact details need a contact key (PRO_CONTACT_KEY)",
    "already_enrolled": "study code '{code}' is already enrolled",
    "day0_set": "day 0 is already set ({day0}); correcting it needs a reason",
    "withdraw_reason": "give the reason for the withdrawal",
    "already_withdrawn": "{code} is already withdrawn",
    "day0_reason": "give the reason for changing day 0",
    "day0_frozen": "day 0 can no longer change: {timepoint} already has answers",
}


class EnrolmentError(ValueError):
    """Enrolment input that cannot be used; each problem is a key and its values."""

    def __init__(self, *problems: tuple[str, dict]):
        self.problems = problems
        super().__init__("; ".join(ENGLISH[key].format(**values) for key, values in problems))


def _order_error(enrolled, day0) -> EnrolmentError:
    return EnrolmentError(("day0_order", {"day0": str(day0), "enrolled": str(enrolled)}))


def normalise_phone(phone: str | None) -> str | None:
    """Write a mobile number in international form: 912 34 567 -> +4791234567."""
    if not phone:
        return None
    digits = phone.replace(" ", "").replace("-", "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if len(digits) == 8 and digits.isdigit():
        digits = "+47" + digits  # a Norwegian number without its country code
    return digits


def check_input(study, *, code: str, site: str, language: str, email, phone) -> None:
    """Raise EnrolmentError naming what is wrong with the enrolment input."""
    problems = []
    if not study.code_is_valid(code):
        problems.append(("code_pattern", {"code": code, "pattern": study.code_pattern}))
    sites = [s.id for s in study.sites]
    if site not in sites:
        problems.append(("unknown_site", {"site": site, "sites": ", ".join(sites)}))
    if language not in ("nb", "en"):
        problems.append(("language", {"language": language}))
    if email and not EMAIL.match(email):
        problems.append(("email", {"email": email}))
    if phone and not PHONE.match(phone):
        problems.append(("phone", {"phone": phone}))
    if problems:
        raise EnrolmentError(*problems)


def add(
    db,
    study,
    *,
    code: str,
    site: str,
    enrolled: dt.date,
    day0: dt.date | None = None,
    language: str = "nb",
    email: str | None = None,
    phone: str | None = None,
    cipher=None,
    actor: str = "cli",
    role: str = "admin",
) -> dict:
    """Enrol a participant and create the assessments the schedule allows; return the row."""
    phone = normalise_phone(phone)
    email = email.strip() if email else None
    check_input(study, code=code, site=site, language=language, email=email, phone=phone)
    try:
        schedule = build_schedule(study, enrolled, day0)
    except ScheduleError as exc:
        raise _order_error(enrolled, day0) from exc
    if (email or phone) and cipher is None:
        raise EnrolmentError(("contact_key", {}))
    with write(db):
        if one(db, "SELECT id FROM participants WHERE study_code = ?", [code]):
            raise EnrolmentError(("already_enrolled", {"code": code}))
        cursor = db.execute(
            "INSERT INTO participants (study_code, site, language, enrolled_on, day0, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                code,
                site,
                language,
                enrolled.isoformat(),
                day0.isoformat() if day0 else None,
                stamp(),
            ),
        )
        participant_id = cursor.lastrowid
        audit.record(
            db,
            actor=actor,
            role=role,
            action="participant.enrol",
            entity="participant",
            entity_id=code,
            new={
                "site": site,
                "language": language,
                "enrolled_on": str(enrolled),
                "day0": str(day0) if day0 else None,
            },
        )
        if email or phone:
            contacts.save(db, participant_id, cipher, email=email, phone=phone)
            audit.record(
                db,
                actor=actor,
                role=role,
                action="contacts.set",
                entity="participant",
                entity_id=code,
                new={"email": bool(email), "phone": bool(phone)},
            )
        _create_assessments(db, participant_id, code, schedule, actor, role)
    return one(db, "SELECT * FROM participants WHERE id = ?", [participant_id])


def _create_assessments(db, participant_id, code, schedule, actor, role) -> None:
    existing = {
        r["timepoint"]
        for r in db.query(
            "SELECT timepoint FROM assessments WHERE participant_id = ?", [participant_id]
        )
    }
    for a in schedule:
        if a.timepoint in existing:
            continue
        db.execute(
            "INSERT INTO assessments (participant_id, timepoint, target_day, first_day, last_day,"
            " opens_at, closes_at, late_from, can_be_late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                participant_id,
                a.timepoint,
                a.target.isoformat(),
                a.first_day.isoformat(),
                a.last_day.isoformat(),
                stamp(a.opens_at),
                stamp(a.closes_at),
                stamp(a.late_from),
                int(a.can_be_late),
            ),
        )
        audit.record(
            db,
            actor=actor,
            role=role,
            action="assessment.schedule",
            entity="assessment",
            entity_id=f"{code}/{a.timepoint}",
            new={"first_day": str(a.first_day), "last_day": str(a.last_day)},
        )


def by_code(db, code: str) -> dict | None:
    """Return the participant with this study code, or None."""
    return one(db, "SELECT * FROM participants WHERE study_code = ?", [code])


def set_day0(
    db, study, participant: dict, day0: dt.date, *, actor: str = "cli", role: str = "admin"
) -> None:
    """Set day 0 (first time) and create the assessments anchored on it."""
    if participant["day0"]:
        raise EnrolmentError(("day0_set", {"day0": participant["day0"]}))
    enrolled = dt.date.fromisoformat(participant["enrolled_on"])
    try:
        schedule = build_schedule(study, enrolled, day0)
    except ScheduleError as exc:
        raise _order_error(enrolled, day0) from exc
    with write(db):
        _apply_day0(db, participant, schedule, day0, reason=None, actor=actor, role=role)


def withdraw(db, participant: dict, *, reason: str, actor: str, role: str) -> None:
    """Withdraw a participant: links revoked and reminders stopped at once; data kept."""
    reason = (reason or "").strip()
    if not reason:
        raise EnrolmentError(("withdraw_reason", {}))
    if participant["status"] == "withdrawn":
        raise EnrolmentError(("already_withdrawn", {"code": participant["study_code"]}))
    with write(db):
        db.execute(
            "UPDATE participants SET status = 'withdrawn' WHERE id = ?", (participant["id"],)
        )
        revoked = db.execute(
            "UPDATE invites SET revoked_at = ? WHERE revoked_at IS NULL AND assessment_id IN"
            " (SELECT id FROM assessments WHERE participant_id = ?)",
            (stamp(), participant["id"]),
        ).rowcount
        audit.record(
            db,
            actor=actor,
            role=role,
            action="participant.withdraw",
            entity="participant",
            entity_id=participant["study_code"],
            field="status",
            old=participant["status"],
            new="withdrawn",
            reason=reason,
        )
        if revoked:
            audit.record(
                db,
                actor=actor,
                role=role,
                action="invite.revoke",
                entity="participant",
                entity_id=participant["study_code"],
                new={"revoked": revoked},
                reason="withdrawal",
            )


def correct_day0(
    db, study, participant: dict, day0: dt.date, *, reason: str, actor: str, role: str
) -> None:
    """Move day 0, with a reason, while no timepoint anchored on it has answers."""
    reason = (reason or "").strip()
    if not reason:
        raise EnrolmentError(("day0_reason", {}))
    enrolled = dt.date.fromisoformat(participant["enrolled_on"])
    try:
        schedule = build_schedule(study, enrolled, day0)
    except ScheduleError as exc:
        raise _order_error(enrolled, day0) from exc
    anchored = [t.id for t in study.timepoints if t.anchor == "day0"]
    with write(db):
        answered = one(
            db,
            "SELECT a.timepoint FROM responses r JOIN assessments a ON a.id = r.assessment_id"
            f" WHERE a.participant_id = ? AND a.timepoint IN ({','.join('?' * len(anchored))})"
            " LIMIT 1",
            [participant["id"], *anchored],
        )
        if answered:
            raise EnrolmentError(("day0_frozen", {"timepoint": answered["timepoint"]}))
        _apply_day0(db, participant, schedule, day0, reason=reason, actor=actor, role=role)


def _apply_day0(db, participant, schedule, day0, *, reason, actor, role) -> None:
    """Inside a transaction: move every window to the schedule, set day 0, audit, fill in."""
    for a in schedule:
        db.execute(
            "UPDATE assessments SET target_day = ?, first_day = ?, last_day = ?, opens_at = ?,"
            " closes_at = ?, late_from = ? WHERE participant_id = ? AND timepoint = ?",
            (
                a.target.isoformat(),
                a.first_day.isoformat(),
                a.last_day.isoformat(),
                stamp(a.opens_at),
                stamp(a.closes_at),
                stamp(a.late_from),
                participant["id"],
                a.timepoint,
            ),
        )
    db.execute(
        "UPDATE participants SET day0 = ? WHERE id = ?", (day0.isoformat(), participant["id"])
    )
    audit.record(
        db,
        actor=actor,
        role=role,
        action="participant.day0",
        entity="participant",
        entity_id=participant["study_code"],
        field="day0",
        old=participant["day0"],
        new=day0.isoformat(),
        reason=reason,
    )
    _create_assessments(db, participant["id"], participant["study_code"], schedule, actor, role)
