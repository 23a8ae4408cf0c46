"""The audit trail as CSV or JSON, with the result of walking its hash chain (pure)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TextIO

from ..storage.audit import FIELDS

COLUMNS = ("id", *FIELDS, "prev_hash", "hash")  # every column of the audit table


def write_audit_csv(stream: TextIO, rows: Iterable[dict]) -> int:
    """One line per audit row, oldest first, every column including both hashes."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        count += 1
    return count


def write_audit_json(stream: TextIO, rows: Iterable[dict], verification: dict) -> int:
    """{"verification": {...}, "rows": [...]}, written row by row (no whole list in memory)."""
    stream.write('{"verification": ')
    stream.write(json.dumps(verification, sort_keys=True, ensure_ascii=False))
    stream.write(', "rows": [')
    count = 0
    for row in rows:
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps({c: row[c] for c in COLUMNS}, sort_keys=True, ensure_ascii=False))
        count += 1
    stream.write("\n]}\n")
    return count
