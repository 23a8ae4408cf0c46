"""Set the creation time in SPSS and Stata file headers from the data, not the clock.

pyreadstat stamps the current time and offers no way to set it; these functions overwrite
the stamp in place, after checking it is where the format puts it.
"""

from __future__ import annotations

import datetime as dt
import re

FALLBACK_STAMP = dt.datetime(1970, 1, 1)  # no response in the file: a fixed stamp
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def file_stamp(moment: str | None, zone) -> dt.datetime:
    if moment is None:
        return FALLBACK_STAMP
    utc = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return utc.astimezone(zone).replace(tzinfo=None)


SAV_STAMP_AT = 92  # after $FL2, product name, layout, case size, compression, weight, N, bias
SAV_STAMP = re.compile(rb"\d\d [A-Z][a-z]{2} \d\d\d\d:\d\d:\d\d")
DTA_STAMP = re.compile(rb"<timestamp>\x11\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d</timestamp>")


def set_sav_stamp(path, stamp: dt.datetime) -> None:
    """Overwrite the header's creation date (dd Mon yy) and time (hh:mm:ss)."""
    text = (
        f"{stamp.day:02d} {MONTHS[stamp.month - 1]} {stamp.year % 100:02d}"
        f"{stamp.hour:02d}:{stamp.minute:02d}:{stamp.second:02d}"
    ).encode("ascii")
    with open(path, "r+b") as handle:
        head = handle.read(SAV_STAMP_AT + len(text))
        if not head.startswith(b"$FL2") or not SAV_STAMP.fullmatch(head[SAV_STAMP_AT:]):
            raise ValueError("unexpected .sav header: cannot set its creation time")
        handle.seek(SAV_STAMP_AT)
        handle.write(text)


def set_dta_stamp(path, stamp: dt.datetime) -> None:
    """Overwrite the header's <timestamp> (dd Mon yyyy hh:mm)."""
    text = (
        f"{stamp.day:02d} {MONTHS[stamp.month - 1]} {stamp.year:04d} "
        f"{stamp.hour:02d}:{stamp.minute:02d}"
    ).encode("ascii")
    with open(path, "r+b") as handle:
        head = handle.read(2048)  # the header, with a file label of at most 320 bytes
        found = DTA_STAMP.search(head)
        if not head.startswith(b"<stata_dta><header>") or found is None:
            raise ValueError("unexpected .dta header: cannot set its time stamp")
        handle.seek(found.start() + len(b"<timestamp>\x11"))
        handle.write(text)
