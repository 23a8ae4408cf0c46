"""Investigators' signatures as CSV: who signed which timepoint, what it meant, the SHA-256
of the signed content, and whether the signature still covers what is stored now."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from .csv_writers import csv_writer

SIGNATURE_COLUMNS = (
    "study_code",
    "site",
    "timepoint",
    "signed_at",
    "signer_email",
    "signer_name",
    "signer_role",
    "meaning",
    "second_factor",
    "content_sha256",
    "hash_matches_content",
    "covers_current",
    "versions_signed",
)


def write_signatures(
    stream: TextIO, rows: Iterable[dict], *, delimiter: str = ",", bom: bool = False
) -> int:
    """One row per signature, in the order given; return the number of rows."""
    writer = csv_writer(stream, delimiter, bom)
    writer.writerow(SIGNATURE_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(
            [
                "1" if row[c] is True else "0" if row[c] is False else row[c]
                for c in SIGNATURE_COLUMNS
            ]
        )
        count += 1
    return count
