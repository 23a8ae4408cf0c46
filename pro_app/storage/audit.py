"""The audit log: append-only rows, each chained to the one before by SHA-256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .db import stamp

GENESIS = "0" * 64
FIELDS = (
    "at",
    "actor",
    "role",
    "action",
    "entity",
    "entity_id",
    "field",
    "old_value",
    "new_value",
    "reason",
)


def canonical(row: dict) -> str:
    """The canonical text of an audit row: sorted keys, compact, UTF-8, times ending in Z."""
    return json.dumps(
        {k: row.get(k) for k in FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def chain_hash(prev_hash: str, row: dict) -> str:
    """SHA-256 of the previous hash (hex) followed by the canonical row."""
    return hashlib.sha256((prev_hash + canonical(row)).encode("utf-8")).hexdigest()


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record(
    db,
    *,
    actor: str,
    role: str,
    action: str,
    entity: str,
    entity_id=None,
    field: str | None = None,
    old=None,
    new=None,
    reason: str | None = None,
    at: str | None = None,
) -> str:
    """Append one audit row inside the caller's write transaction; return its hash."""
    if not db.conn.in_transaction:
        raise RuntimeError("audit rows are written inside a write transaction (BEGIN IMMEDIATE)")
    prev = getattr(db, "audit_head", None)
    if prev is None:  # no other writer can come between: the transaction is IMMEDIATE
        head = db.conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = head[0] if head else GENESIS
    row = {
        "at": at or stamp(),
        "actor": actor,
        "role": role,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "field": field,
        "old_value": _text(old),
        "new_value": _text(new),
        "reason": reason,
    }
    digest = chain_hash(prev, row)
    db.conn.execute(
        "INSERT INTO audit (at, actor, role, action, entity, entity_id, field, old_value,"
        " new_value, reason, prev_hash, hash) VALUES (:at, :actor, :role, :action, :entity,"
        " :entity_id, :field, :old_value, :new_value, :reason, :prev, :hash)",
        {**row, "prev": prev, "hash": digest},
    )
    db.audit_head = digest
    return digest


@dataclass(frozen=True)
class ChainProblem:
    row_id: int
    message: str

    def __str__(self) -> str:
        return f"audit row {self.row_id}: {self.message}"


def verify(db) -> tuple[int, list[ChainProblem]]:
    """Walk the chain from the first row; return (rows checked, problems found)."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    count = 0
    for row in db.query("SELECT * FROM audit ORDER BY id"):
        count += 1
        if row["prev_hash"] != prev:
            problems.append(
                ChainProblem(
                    row["id"], "does not follow the row before it (a row was removed or inserted)"
                )
            )
        expected = chain_hash(row["prev_hash"], row)
        if expected != row["hash"]:
            problems.append(
                ChainProblem(row["id"], "its content does not match its hash (the row was changed)")
            )
        prev = row["hash"]
    return count, problems
