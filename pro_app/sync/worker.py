"""One pass over the outbox for every target, and the loop that repeats it.

A pass: add rows for new outbox messages, check each target that has something due
(REDCap: metadata against our dictionary), then claim, send and record messages one at a
time until nothing is due. Nothing here raises on a target's trouble: every outcome is
recorded in `sync_attempts` and shown by `sync status` and the sync page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field

from ..services.submit import crashpoint
from ..storage.db import stamp, utc_now, write
from . import queue
from .fhir import FhirTarget
from .messages import MessageError, load
from .redcap import RedcapTarget
from .transport import Refused, Retry
from .webhook import WebhookTarget

ADAPTERS = {"redcap": RedcapTarget, "fhir": FhirTarget, "webhook": WebhookTarget}
CHECK_ID = "(check)"  # sync_attempts rows about a target rather than a message
CHECK_EVERY = dt.timedelta(minutes=10)
GIVE_UP_AFTER = 3  # failures in a row: the target is struggling, leave the rest for later


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class TargetPass:
    target: str
    added: int = 0
    sent: int = 0
    retry: int = 0
    dead: int = 0
    problems: list[str] = field(default_factory=list)
    error: str = ""

    def line(self) -> str:
        text = f"{self.target}: sent {self.sent}, to retry {self.retry}, dead {self.dead}"
        if self.error:
            text += f"; {self.error}"
        if self.problems:
            text += "; refused: the target does not match our data dictionary"
        return text


class Worker:
    """Sends for a set of targets; remembers when each target was last checked."""

    def __init__(self, db, catalog, targets, base_url: str, ident: str | None = None):
        self.db = db
        self.catalog = catalog
        self.targets = targets
        self.ident = ident or worker_id()
        self.adapters = {t.name: ADAPTERS[t.type](t, catalog, base_url) for t in targets}
        self.checked: dict[str, dt.datetime] = {}
        queue.release_orphans(db, socket.gethostname())

    def _note(self, target: str, outcome: str, detail: str) -> None:
        now = stamp()
        with write(self.db):
            self.db.conn.execute(
                "INSERT INTO sync_attempts (message_id, target, worker, started_at, finished_at,"
                " outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [CHECK_ID, target, self.ident, now, now, outcome, detail],
            )

    def _due(self, name: str, now: dt.datetime) -> bool:
        found = self.db.conn.execute(
            "SELECT 1 FROM sync_deliveries WHERE target = ? AND status = 'pending'"
            " AND next_attempt_at <= ? LIMIT 1",
            [name, stamp(now)],
        ).fetchone()
        return found is not None

    def _check(self, target, result: TargetPass, now: dt.datetime) -> bool:
        last = self.checked.get(target.name)
        if last is not None and now - last < CHECK_EVERY:
            return True
        try:
            problems = self.adapters[target.name].check()
        except (Retry, Refused) as trouble:
            result.error = f"check failed: {trouble}"
            self._note(
                target.name, "retry" if isinstance(trouble, Retry) else "refused", str(trouble)
            )
            return False
        if problems:
            result.problems = problems
            self._note(
                target.name,
                "refused",
                "the target does not match our data dictionary: " + "; ".join(problems),
            )
            return False
        self.checked[target.name] = now
        return True

    def run_target(self, target, stop: threading.Event | None = None, limit: int | None = None):
        result = TargetPass(target.name)
        now = utc_now()
        result.added = queue.add_new(self.db, target.name, target.kinds, now)
        if not self._due(target.name, now) or not self._check(target, result, now):
            return result
        adapter = self.adapters[target.name]
        lease = target.timeout_seconds * 2 + 30
        handled = failures = 0
        while not (stop and stop.is_set()) and (limit is None or handled < limit):
            started = utc_now()
            claim = queue.claim(self.db, target.name, self.ident, started, lease)
            if claim is None:
                break
            handled += 1
            digest = None
            try:
                message = load(self.db, self.catalog, claim.message_id)
                digest = hashlib.sha256(
                    json.dumps(message.payload, sort_keys=True).encode()
                ).hexdigest()
                crashpoint("sync.before_send")
                detail = adapter.send(message)
                crashpoint("sync.after_send")
                outcome = "sent"
            except Retry as trouble:
                outcome, detail = "retry", str(trouble)
            except (Refused, MessageError) as trouble:
                outcome, detail = "refused", str(trouble)
            except Exception as trouble:  # noqa: BLE001 - a bug must not stop the queue
                outcome, detail = "retry", f"internal error: {type(trouble).__name__}: {trouble}"
            status = queue.finish(
                self.db,
                claim,
                config=target,
                worker=self.ident,
                started=started,
                now=utc_now(),
                outcome=outcome,
                detail=detail,
                payload_sha256=digest,
            )
            if status == "sent":
                result.sent += 1
            elif status == "dead":
                result.dead += 1
            else:
                result.retry += 1
            failures = failures + 1 if outcome == "retry" else 0
            if failures >= GIVE_UP_AFTER:
                result.error = f"stopped this pass after {failures} failures in a row: {detail}"
                break
        return result

    def run_once(self, stop: threading.Event | None = None) -> list[TargetPass]:
        """One pass over every target."""
        return [self.run_target(t, stop) for t in self.targets if not (stop and stop.is_set())]
