"""Query parameters, read strictly: an unknown name or a bad value is a 400 that says why."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re

from .errors import bad_request

DEFAULT_LIMIT, MAX_LIMIT = 100, 500
MAX_CURSOR = 512
CURSOR = re.compile(r"[A-Za-z0-9_-]+")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# RFC 3339 date-time (what OpenAPI's format: date-time means); the offset is required.
INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# No data is older or newer than these: dates outside them mean "no bound" and are clamped,
# so an extreme date cannot overflow when it is turned into a UTC time.
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
BAD_CURSOR = (
    "The cursor is not one this list gave out; pass next_cursor exactly as it came, with"
    " the same path, or start again without a cursor."
)


class Query:
    """The request's query parameters, checked against the names an endpoint knows."""

    def __init__(self, args, known: tuple[str, ...]):
        unknown = [name for name in args if name not in known]
        if unknown:
            raise bad_request(
                f"Unknown parameter '{unknown[0]}' (parameters here: {', '.join(known) or 'none'})."
            )
        self.args = args

    def one(self, name: str) -> str | None:
        """A parameter given at most once."""
        values = self.args.getlist(name)
        if len(values) > 1:
            raise bad_request(f"Give '{name}' once, not {len(values)} times.")
        return values[0] if values else None

    def choices(self, name: str, known, label: str | None = None) -> tuple[str, ...]:
        """A repeatable parameter whose values must be among known (listed when not)."""
        known = list(known)
        found = []
        for value in self.args.getlist(name):
            if value not in known:
                raise bad_request(f"Unknown {label or name} '{value}' (known: {', '.join(known)}).")
            if value not in found:
                found.append(value)
        return tuple(found)

    def choice(self, name: str, known) -> str | None:
        """A parameter given at most once, whose value must be among known."""
        value = self.one(name)
        if value is not None and value not in known:
            raise bad_request(f"Unknown {name} '{value}' (known: {', '.join(known)}).")
        return value

    def limit(self) -> int:
        text = self.one("limit")
        if text is None:
            return DEFAULT_LIMIT
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            raise bad_request(f"'limit' must be a whole number from 1 to {MAX_LIMIT}.")
        return int(text)

    def flag(self, name: str) -> bool:
        text = self.one(name)
        if text is None:
            return False
        if text not in ("true", "false"):
            raise bad_request(f"'{name}' must be true or false, not '{text}'.")
        return text == "true"

    def day(self, name: str) -> dt.date | None:
        """A calendar day, YYYY-MM-DD (clamped to 1900..2999: no data lies outside)."""
        text = self.one(name)
        if text is None:
            return None
        try:
            if not DAY.fullmatch(text):
                raise ValueError(text)
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise bad_request(
                f"'{name}' must be a date written YYYY-MM-DD, such as 2027-01-31."
            ) from None
        return min(max(day, EARLIEST), LATEST)

    def instant(self, name: str) -> str | None:
        """An RFC 3339 time with its offset, returned as a stored UTC stamp."""
        text = self.one(name)
        if text is None:
            return None
        problem = bad_request(
            f"'{name}' must be a time with its offset, such as 2027-01-31T08:00:00Z or"
            " 2027-01-31T09:00:00+01:00."
        )
        match = INSTANT.fullmatch(text)
        if not match:
            raise problem
        year, month, day, hour, minute, second, fraction, offset = match.groups()
        try:
            zone = dt.UTC
            if offset not in ("Z", "z"):
                sign = 1 if offset[0] == "+" else -1
                hours, minutes = int(offset[1:3]), int(offset[4:6])
                zone = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
            moment = dt.datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                min(int(second), 59),  # a leap second counts as the second before it
                int((fraction or ".0")[1:7].ljust(6, "0")),
                tzinfo=zone,
            )
        except ValueError:
            raise problem from None
        try:
            moment = moment.astimezone(dt.UTC)
        except OverflowError:  # within a day of year 1 or 9999
            moment = dt.datetime.combine(
                EARLIEST if int(year) < 5000 else LATEST, dt.time(), dt.UTC
            )
        moment = min(
            max(moment, dt.datetime.combine(EARLIEST, dt.time(), dt.UTC)),
            dt.datetime.combine(LATEST, dt.time(), dt.UTC),
        )
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_cursor(kind: str, key: list[str]) -> str:
    """An opaque cursor: base64url of the list's name and the last key served."""
    raw = json.dumps({"on": kind, "after": key}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(text: str | None, kind: str, size: int) -> list[str] | None:
    """The key a cursor holds (a list of size strings), or a 400 when it is not a cursor."""
    if text is None:
        return None
    if len(text) > MAX_CURSOR or not CURSOR.fullmatch(text):
        raise bad_request(BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        found = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise bad_request(BAD_CURSOR) from None
    if not isinstance(found, dict):
        raise bad_request(BAD_CURSOR)
    key = found.get("after")
    if (
        found.get("on") != kind
        or not isinstance(key, list)
        or len(key) != size
        or not all(isinstance(part, str) for part in key)
    ):
        raise bad_request(BAD_CURSOR)
    return key


def page(items: list, limit: int, kind: str, key) -> dict:
    """{"data": up to limit items, "next_cursor": a cursor after the last one, or null}.

    items: up to limit + 1 items in key order; one more than limit means there is more.
    key: the item's key, as a list of strings.
    """
    more = len(items) > limit
    shown = items[:limit]
    return {
        "data": shown,
        "next_cursor": encode_cursor(kind, key(shown[-1])) if more else None,
    }


def marks(values) -> str:
    """SQL placeholders for values."""
    return ", ".join("?" for _ in values)


def rank(column: str, ids) -> tuple[str, list]:
    """A SQL expression giving ids' position (protocol order) for column, and its params."""
    cases = " ".join("WHEN ? THEN ?" for _ in ids)
    return f"CASE {column} {cases} END", [x for n, value in enumerate(ids) for x in (value, n)]
