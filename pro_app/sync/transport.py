"""HTTP for the targets (standard library), and what a delivery attempt can come to.

Every failure is one of two kinds: `Retry` (the target may take it later: connection
refused or dropped, timeout, 5xx, 429, a reply we cannot read) and `Refused` (the target
read it and said no: 4xx; resending the same thing will not help).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from dataclasses import dataclass, field

MAX_REPLY = 8 * 1024 * 1024
USER_AGENT = "pro-app-sync/1"


class Retry(Exception):
    """Try again later; the message says why."""


class Refused(Exception):
    """The target refused the message; the message says why."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect may drop the body or the token
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def request(method: str, url: str, *, body: bytes | None, headers: dict, timeout: float) -> Reply:
    """Send one request; return the reply of any status, or raise Retry on transport trouble."""
    prepared = urllib.request.Request(url, data=body, method=method)
    for name, value in {"User-Agent": USER_AGENT, **headers}.items():
        prepared.add_header(name, value)
    try:
        with _OPENER.open(prepared, timeout=timeout) as answer:
            return Reply(answer.status, dict(answer.headers.items()), answer.read(MAX_REPLY))
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers.items()), error.read(MAX_REPLY))
    except TimeoutError as error:
        raise Retry(f"no reply within {timeout:g} s ({error})") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise Retry(f"no reply within {timeout:g} s") from None
        raise Retry(f"cannot connect: {reason}") from None
    except (http.client.HTTPException, ConnectionError, OSError) as error:
        raise Retry(f"the connection failed: {type(error).__name__}: {error}") from None


def short(text: str, limit: int = 300) -> str:
    """One line of at most limit characters, for error reasons."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def check_status(reply: Reply, what: str) -> None:
    """Raise Retry for 5xx/429/408 and redirects, Refused for other 4xx; pass 2xx."""
    if 200 <= reply.status < 300:
        return
    detail = short(reply.text())
    if reply.status in (408, 425, 429) or reply.status >= 500:
        raise Retry(f"{what}: HTTP {reply.status} {detail}".rstrip())
    if 300 <= reply.status < 400:
        where = reply.headers.get("Location", "?")
        raise Retry(f"{what}: HTTP {reply.status} redirect to {where}; fix the target URL")
    raise Refused(f"{what}: HTTP {reply.status} {detail}".rstrip())
