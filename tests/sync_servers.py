"""Loopback test servers for the sync targets, with fault injection.

Three HTTP servers on 127.0.0.1 (standard library only, apart from fhir.resources for
validation), each in a daemon thread and usable as a context manager:

- `FakeRedcap`: the REDCap API calls the sync uses (metadata, project, events, form-event
  mapping, record import and export), built from the data dictionary, events and mapping
  CSVs our exporter writes, and checking every import against them as REDCap does.
- `FakeFhir`: a FHIR R4 endpoint for QuestionnaireResponse (conditional update by
  identifier, create, read, search) that validates with fhir.resources' R4B model.
- `WebhookReceiver`: checks the signature, timestamp and message id of each delivery.

Every server keeps a log of the requests it saw, what it accepted (for assertions: how many
times each thing arrived and how many distinct effects exist), and a fault queue:

    server.fail_next("status500", times=2)             # the next two requests get a 500
    server.fail_next("timeout", seconds=2, only="record:import")
    server.down(); ...; server.up()                      # refuse connections, same port

Fault kinds (see `FAULT_KINDS`):
  status500, status503, status<NNN>  reply with that status and an error body; no effect
  timeout      sleep `seconds` (default 3), then handle and reply normally; the client is
               expected to have given up, so the effect arrives late (apply=False: drop
               the connection after the sleep instead)
  slow         sleep `seconds` (default 0.5), then handle normally
  malformed    reply 200 with a body that is not what the API returns: an HTML page, no
               effect (apply=True: handle the request, then send its reply cut in half)
  drop         read the request, close the connection without a reply; no effect
  reset        read the request, abort the connection (TCP RST); no effect
  process_then_drop  handle the request (the effect is kept), close without a reply: a
               lost acknowledgement
  duplicate_ack      handle the request, send its reply twice on the wire, then close
  duplicate_delivery handle the request twice (as an at-least-once network would), reply
               once
  hold         keep the request until `release()` (or `seconds`, default 30), then handle
               it normally: to kill a client in the middle of a send

`only=` restricts a fault to requests of some labels (each server labels its requests, e.g.
"record:import" or "update"), or to those a callable accepts. A stopped server (`stop()` /
`down()`) refuses connections and cuts open ones; `start()` / `up()` listens again on the
same port with the same stored data.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import http
import http.server
import io
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"
SERVER_NAME = "sync-test-server/1"
FAULT_KINDS = frozenset(
    {
        "status500",
        "status503",
        "timeout",
        "slow",
        "malformed",
        "drop",
        "reset",
        "process_then_drop",
        "duplicate_ack",
        "duplicate_delivery",
        "hold",
    }
)
STATUS_KIND = re.compile(r"^status([1-5]\d\d)$")
DEFAULT_SECONDS = {"timeout": 3.0, "slow": 0.5, "hold": 30.0}
JSON_TYPE = "application/json; charset=utf-8"
MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Scheduled maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>The service is down for maintenance.</p>"
    b"</body></html>\n"
)


# Requests, replies, faults -------------------------------------------------------------


@dataclass
class Request:
    """One request as the server saw it (the log keeps these; read them, do not change)."""

    number: int
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    complete: bool  # False: the connection ended before the whole body arrived
    at: float
    form: dict[str, list[str]] = field(default_factory=dict)  # a form-encoded body
    label: str = ""  # what the server makes of it, e.g. "record:import"
    fault: str | None = None
    applied: int = 0  # how many times its effect was applied (duplicate_delivery: 2)
    status: int | None = None  # the status of the reply (None: no reply was sent)
    replied: bool = False  # the reply was written to the socket without an error
    done: bool = False  # the server has finished with it (replied, dropped or cut)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def value(self, name: str, default: str | None = None) -> str | None:
        """The last value of a form or query parameter."""
        values = self.form.get(name) or self.query.get(name)
        return values[-1] if values else default

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, value, **headers) -> Reply:
    return Reply(status, json.dumps(value, ensure_ascii=False).encode(), JSON_TYPE, headers)


@dataclass
class Fault:
    kind: str
    remaining: int | None  # None: every matching request until clear_faults()
    seconds: float | None = None
    body: bytes | None = None
    apply: bool | None = None
    only: object = None  # None, a label, labels, or a callable(Request) -> bool

    def matches(self, request: Request) -> bool:
        if self.only is None:
            return True
        if callable(self.only):
            return bool(self.only(request))
        if isinstance(self.only, str):
            return request.label == self.only
        return request.label in self.only


def _wire(reply: Reply, close: bool) -> bytes:
    """The reply as bytes on the wire (built by hand so that it can be sent twice)."""
    try:
        phrase = http.HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [
        f"HTTP/1.1 {reply.status} {phrase}",
        f"Server: {SERVER_NAME}",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {reply.content_type}",
        f"Content-Length: {len(reply.body)}",
    ]
    lines += [f"{name}: {value}" for name, value in reply.headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body


# The HTTP machinery ------------------------------------------------------------------


class _Run:
    """One listening period of a server: stopping it wakes sleepers and cuts connections."""

    def __init__(self):
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, owner: LoopbackServer, run: _Run):
        self.owner = owner
        self.run = run
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        self.owner._note_error(traceback.format_exc(), connection=isinstance(error, OSError))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVER_NAME
    timeout = 30

    def setup(self):
        super().setup()
        with self.server.run.lock:
            self.server.run.connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.run.lock:
                self.server.run.connections.discard(self.connection)

    def log_message(self, format, *args):  # quiet
        pass

    def _serve(self):
        self.server.owner._serve(self, self.server.run)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def read_body(self) -> tuple[bytes, bool]:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length > 0 else b""
            return data, len(data) == length
        except (OSError, ValueError):
            return b"", False

    def _read_chunked(self) -> tuple[bytes, bool]:
        parts = []
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return b"".join(parts), False
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts), True
            data = self.rfile.read(size)
            parts.append(data)
            if len(data) < size:
                return b"".join(parts), False
            self.rfile.readline(3)


class LoopbackServer:
    """An HTTP server in a thread on 127.0.0.1 with a request log and a fault queue.

    Subclasses implement `handle(request) -> Reply` (called with the server's lock held, so
    state changes are thread-safe) and may set each request's label in `label(request)`.
    """

    def __init__(self, *, port: int = 0, host: str = HOST):
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._faults: list[Fault] = []
        self._log: list[Request] = []
        self._held: list[threading.Event] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._run: _Run | None = None
        self.errors: list[str] = []  # exceptions in the fake itself: a test should see none
        self.connection_errors: list[str] = []  # clients that went away mid-reply, and such

    # Lifecycle ------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Listen (again) on the port: the first start picks a free one when port is 0."""
        with self._lock:
            if self._httpd is not None:
                return self
            run = _Run()
            httpd = _HTTPServer((self.host, self.port), self, run)
            self.port = httpd.server_address[1]
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,
            )
            self._httpd, self._thread, self._run = httpd, thread, run
        thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused), cut open connections, wake sleepers."""
        with self._lock:
            httpd, thread, run = self._httpd, self._thread, self._run
            self._httpd = self._thread = self._run = None
            if httpd is None:
                return
            run.stopping.set()
            for event in self._held:
                event.set()
        httpd.shutdown()
        httpd.server_close()
        with run.lock:
            open_connections = list(run.connections)
        for connection in open_connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        thread.join(5)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            with run.lock:
                if not run.connections:
                    break
            time.sleep(0.01)

    def down(self) -> None:
        """The target is down: connections are refused until up()."""
        self.stop()

    def up(self) -> None:
        self.start()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port> (the server root)."""
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The URL a sync target is configured with."""
        return self.url

    # Faults ---------------------------------------------------------------------------

    def fail_next(
        self,
        kind: str,
        times: int | None = 1,
        *,
        seconds: float | None = None,
        body: bytes | str | None = None,
        apply: bool | None = None,
        only=None,
    ) -> None:
        """Apply the fault `kind` to the next `times` matching requests (None: to all)."""
        if kind not in FAULT_KINDS and not STATUS_KIND.match(kind):
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for always)")
        if isinstance(body, str):
            body = body.encode()
        with self._lock:
            self._faults.append(Fault(kind, times, seconds, body, apply, only))

    def fail_always(self, kind: str, **options) -> None:
        self.fail_next(kind, None, **options)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[tuple[str, int | None]]:
        with self._lock:
            return [(f.kind, f.remaining) for f in self._faults]

    def release(self) -> int:
        """Let every held request go on; return how many were held."""
        with self._lock:
            held, self._held = self._held, []
        for event in held:
            event.set()
        return len(held)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    # Log --------------------------------------------------------------------------------

    def requests(self, label: str | None = None, method: str | None = None) -> list[Request]:
        with self._lock:
            return [
                r
                for r in self._log
                if (label is None or r.label == label) and (method is None or r.method == method)
            ]

    def wait_for(self, predicate: Callable[[LoopbackServer], bool], timeout: float = 5.0):
        """Wait until predicate(self) is true (checked on every change); return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := predicate(self)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{type(self).__name__}: condition not met in {timeout} s")
                self._changed.wait(min(left, 0.1))
            return value

    def idle(self) -> bool:
        """No request is being handled (sleeping, held or in progress)."""
        with self._lock:
            return all(r.done for r in self._log)

    def wait_idle(self, timeout: float = 5.0) -> None:
        self.wait_for(lambda s: s.idle(), timeout)

    def wait_for_requests(
        self, count: int, label: str | None = None, timeout: float = 5.0
    ) -> list[Request]:
        """Wait until at least count requests (of that label) have arrived; return them."""
        self.wait_for(lambda s: len(s.requests(label)) >= count, timeout)
        return self.requests(label)

    # Hooks for subclasses ----------------------------------------------------------------

    def label(self, request: Request) -> str:
        return f"{request.method} {request.path}"

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def error_reply(self, status: int) -> Reply:
        reply = json_reply(status, {"error": f"injected HTTP {status}"})
        if status == 503:
            reply.headers["Retry-After"] = "1"
        return reply

    # Serving ----------------------------------------------------------------------------

    def _note_error(self, text: str, connection: bool) -> None:
        with self._lock:
            (self.connection_errors if connection else self.errors).append(text)

    def _record(self, handler: _Handler, body: bytes, complete: bool) -> Request:
        parts = urlsplit(handler.path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        form = {}
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            try:
                form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
            except (UnicodeDecodeError, ValueError):
                form = {}
        with self._lock:
            request = Request(
                number=len(self._log) + 1,
                method=handler.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers=headers,
                body=body,
                complete=complete,
                at=time.time(),
                form=form,
            )
            try:
                request.label = self.label(request)
            except Exception:  # a label is only for filtering
                request.label = "?"
            self._log.append(request)
            self._changed.notify_all()
        return request

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    request.fault = fault.kind
                    return fault
        return None

    def _apply(self, request: Request) -> Reply:
        with self._lock:
            try:
                reply = self.handle(request)
            except Exception:
                text = traceback.format_exc()
                self.errors.append(text)
                reply = Reply(500, text.encode(), "text/plain; charset=utf-8")
            request.applied += 1
            self._changed.notify_all()
            return reply

    def _send(self, handler: _Handler, request: Request, reply: Reply, copies: int = 1):
        close = handler.close_connection or copies > 1
        data = _wire(reply, close)
        with self._lock:
            request.status = reply.status
        try:
            for _ in range(copies):
                handler.wfile.write(data)
            handler.wfile.flush()
            replied = True
        except OSError:
            replied = False
            close = True
        with self._lock:
            request.replied = replied
            self._changed.notify_all()
        if close:
            handler.close_connection = True

    def _drop(self, handler: _Handler, *, reset: bool = False) -> None:
        handler.close_connection = True
        if reset:
            try:
                handler.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                handler.connection.close()
            except OSError:
                pass
        with self._lock:
            self._changed.notify_all()

    def _serve(self, handler: _Handler, run: _Run) -> None:
        body, complete = handler.read_body()
        request = self._record(handler, body, complete)
        try:
            self._serve_request(handler, run, request)
        finally:
            with self._lock:
                request.done = True
                self._changed.notify_all()

    def _serve_request(self, handler: _Handler, run: _Run, request: Request) -> None:
        if not request.complete:  # the client went away in the middle of sending
            handler.close_connection = True
            return
        fault = self._take_fault(request)
        kind = fault.kind if fault else None
        if kind is None:
            self._send(handler, request, self._apply(request))
            return
        status = STATUS_KIND.match(kind)
        if status:
            self._send(handler, request, self.error_reply(int(status.group(1))))
        elif kind in ("timeout", "slow", "hold"):
            seconds = fault.seconds if fault.seconds is not None else DEFAULT_SECONDS[kind]
            if kind == "hold":
                event = threading.Event()
                with self._lock:
                    self._held.append(event)
                    self._changed.notify_all()
                event.wait(seconds)
                with self._lock:
                    if event in self._held:
                        self._held.remove(event)
            else:
                run.stopping.wait(seconds)
            if run.stopping.is_set() or fault.apply is False:
                self._drop(handler)
            else:
                self._send(handler, request, self._apply(request))
        elif kind == "malformed":
            if fault.apply:
                reply = self._apply(request)
                cut = reply.body[: len(reply.body) // 2] if fault.body is None else fault.body
                self._send(handler, request, Reply(200, cut, reply.content_type, reply.headers))
            else:
                page = MAINTENANCE_PAGE if fault.body is None else fault.body
                self._send(handler, request, Reply(200, page, "text/html; charset=utf-8"))
        elif kind in ("drop", "reset"):
            self._drop(handler, reset=kind == "reset")
        elif kind == "process_then_drop":
            self._apply(request)
            self._drop(handler)
        elif kind == "duplicate_ack":
            self._send(handler, request, self._apply(request), copies=2)
        elif kind == "duplicate_delivery":
            reply = self._apply(request)
            self._apply(request)
            self._send(handler, request, reply)
        else:  # pragma: no cover - fail_next checks the kinds
            raise AssertionError(kind)


def _csv_line(*values) -> str:
    return ",".join('"' + str(v).replace('"', '""') + '"' for v in values)


def _rows(text: str) -> tuple[list[str], list[dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    rows = [dict(zip(header, row, strict=False)) for row in reader if any(row)]
    return header, rows


def _number_text(text: str):
    """'3' -> 3, '2.5' -> 2.5, '' -> ''."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


# REDCap ----------------------------------------------------------------------------------

# The data dictionary's CSV columns and REDCap's metadata keys (REDCap's documented names).
REDCAP_COLUMNS = {
    "Variable / Field Name": "field_name",
    "Form Name": "form_name",
    "Section Header": "section_header",
    "Field Type": "field_type",
    "Field Label": "field_label",
    "Choices, Calculations, OR Slider Labels": "select_choices_or_calculations",
    "Field Note": "field_note",
    "Text Validation Type OR Show Slider Number": "text_validation_type_or_show_slider_number",
    "Text Validation Min": "text_validation_min",
    "Text Validation Max": "text_validation_max",
    "Identifier?": "identifier",
    "Branching Logic (Show field only if...)": "branching_logic",
    "Required Field?": "required_field",
    "Custom Alignment": "custom_alignment",
    "Question Number (surveys only)": "question_number",
    "Matrix Group Name": "matrix_group_name",
    "Matrix Ranking?": "matrix_ranking",
    "Field Annotation": "field_annotation",
}
REDCAP_EVENT_COLUMNS = (
    "event_name",
    "arm_num",
    "day_offset",
    "offset_min",
    "offset_max",
    "unique_event_name",
    "custom_event_label",
)
REDCAP_MAPPING_COLUMNS = ("arm_num", "unique_event_name", "form")
REDCAP_TOKEN = "0123456789ABCDEF0123456789ABCDEF"
REDCAP_VERSION = "14.5.10"
NO_PERMISSION = "You do not have permissions to use the API"
FIELD_TYPES = {
    "text",
    "notes",
    "radio",
    "dropdown",
    "checkbox",
    "yesno",
    "truefalse",
    "calc",
    "descriptive",
    "file",
    "slider",
    "sql",
}
NOT_IMPORTABLE = {"calc", "descriptive", "file", "sql"}
CHOICE_FIELDS = {"radio", "dropdown", "checkbox"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CODE = re.compile(r"^[A-Za-z0-9._-]+$")
SPECIAL_COLUMNS = (
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)


def _int_value(text: str) -> int:
    if not re.fullmatch(r"[-+]?\d+", text):
        raise ValueError("is not an integer")
    return int(text)


def _float_value(text: str) -> float:
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ValueError("is not a number")
    return float(text)


def _decimals(places: int):
    def check(text: str) -> float:
        if not re.fullmatch(rf"[-+]?\d+\.\d{{{places}}}", text):
            raise ValueError(f"is not a number with {places} decimal place(s)")
        return float(text)

    return check


def _stamp(pattern: str, form: str, what: str):
    def check(text: str) -> str:
        try:
            if not re.fullmatch(pattern, text):
                raise ValueError
            dt.datetime.strptime(text, form)
        except ValueError:
            raise ValueError(f"is not {what}") from None
        return text  # ISO text compares in time order

    return check


def _pattern(pattern: str, what: str):
    def check(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise ValueError(f"is not {what}")
        return text

    return check


_DATE = _stamp(r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d", "a date (YYYY-MM-DD)")
_DATETIME = _stamp(
    r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "%Y-%m-%d %H:%M", "a date and time (YYYY-MM-DD HH:MM)"
)
_DATETIME_S = _stamp(
    r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
    "%Y-%m-%d %H:%M:%S",
    "a date and time (YYYY-MM-DD HH:MM:SS)",
)
# Dates are imported as Y-M-D whatever their display order (dateFormat=YMD).
VALIDATIONS: dict[str, Callable[[str], object]] = {
    "integer": _int_value,
    "number": _float_value,
    "number_1dp": _decimals(1),
    "number_2dp": _decimals(2),
    "date_ymd": _DATE,
    "date_dmy": _DATE,
    "date_mdy": _DATE,
    "datetime_ymd": _DATETIME,
    "datetime_dmy": _DATETIME,
    "datetime_mdy": _DATETIME,
    "datetime_seconds_ymd": _DATETIME_S,
    "datetime_seconds_dmy": _DATETIME_S,
    "datetime_seconds_mdy": _DATETIME_S,
    "time": _stamp(r"\d{2}:\d{2}", "%H:%M", "a time (HH:MM)"),
    "email": _pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address"),
    "alpha_only": _pattern(r"[A-Za-z]+", "letters only"),
}


def parse_choices(text: str) -> dict[str, str]:
    """'1, Yes | 0, No' -> {'1': 'Yes', '0': 'No'} (raises ValueError on a bad choice)."""
    found: dict[str, str] = {}
    for part in text.split("|"):
        code, comma, label = part.partition(",")
        code = code.strip()
        if not comma or not code:
            raise ValueError(f"the choice {part.strip()!r} is not 'code, label'")
        if code in found:
            raise ValueError(f"the choice code {code!r} appears twice")
        found[code] = label.strip()
    return found


def checkbox_column(field_name: str, code: str) -> str:
    """The export/import column of one checkbox choice (REDCap's rule for odd characters)."""
    return f"{field_name}___{re.sub(r'[^a-z0-9_]', '_', code.lower())}"


def is_redcap_import(request: Request) -> bool:
    return request.label == "record:import"


class FakeRedcap(LoopbackServer):
    """The REDCap API (POST /api/) for a longitudinal project built from our exporter's CSVs.

    FakeRedcap(dictionary_csv, events_csv, mappings_csv, *, token=REDCAP_TOKEN, port=0,
               title=..., strict_range=True)
    FakeRedcap.from_catalog(catalog, **options)

    The CSVs are checked like a REDCap upload would be (ValueError listing the problems).
    Record imports are checked like REDCap checks them and refused whole on any problem.
    `strict_range`: a value outside the field's min/max is refused (REDCap itself only
    warns and imports it).
    """

    def __init__(
        self,
        dictionary_csv: str,
        events_csv: str,
        mappings_csv: str,
        *,
        token: str = REDCAP_TOKEN,
        port: int = 0,
        title: str = "Sync test project",
        strict_range: bool = True,
    ):
        super().__init__(port=port)
        self.token = token
        self.title = title
        self.strict_range = strict_range
        self._load(dictionary_csv, events_csv, mappings_csv)
        self.data: dict[tuple[str, str], dict[str, str]] = {}
        self.import_counts: Counter[tuple[str, str]] = Counter()
        self.change_counts: Counter[tuple[str, str]] = Counter()
        self.refusals: list[str] = []  # the error text of every refused call

    @classmethod
    def from_catalog(cls, catalog, **options) -> FakeRedcap:
        """A project made from the dictionary, events and mapping our exporter writes."""
        from pro_app.exports.redcap import write_dictionary, write_events, write_mappings

        texts = []
        for write, args in (
            (write_dictionary, (catalog,)),
            (write_events, (catalog.study,)),
            (write_mappings, (catalog.study, catalog.questionnaires)),
        ):
            stream = io.StringIO(newline="")
            write(stream, *args)
            texts.append(stream.getvalue())
        options.setdefault("title", catalog.study.title.nb)
        return cls(*texts, **options)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/api/"

    # The project ------------------------------------------------------------------------

    def _load(self, dictionary_csv: str, events_csv: str, mappings_csv: str) -> None:
        problems: list[str] = []
        event_header, self.events = _rows(events_csv)
        self.event_names = [e.get("unique_event_name", "") for e in self.events]
        header, rows = _rows(dictionary_csv)
        if tuple(header) != tuple(REDCAP_COLUMNS):
            problems.append(f"dictionary columns {header} are not REDCap's {list(REDCAP_COLUMNS)}")
        self.metadata = [
            {key: row.get(column, "") for column, key in REDCAP_COLUMNS.items()} for row in rows
        ]
        self.fields = {f["field_name"]: f for f in self.metadata}
        if len(self.fields) != len(self.metadata):
            names = Counter(f["field_name"] for f in self.metadata)
            problems.append(f"fields named twice: {sorted(n for n, c in names.items() if c > 1)}")
        self.record_id = self.metadata[0]["field_name"] if self.metadata else ""
        self.forms: dict[str, list[str]] = {}
        for f in self.metadata:
            self.forms.setdefault(f["form_name"], []).append(f["field_name"])
        self.choices: dict[str, dict[str, str]] = {}
        for f in self.metadata:
            problems.extend(self._field_problems(f))
        order = [f["form_name"] for f in self.metadata]
        if order != sorted(order, key=list(self.forms).index):
            problems.append("the fields of a form are not together")
        for form in self.forms:
            if not NAME.match(form):
                problems.append(f"form name {form!r}: lower-case letters, digits and _")
            if f"{form}_complete" in self.fields:
                problems.append(f"{form}_complete is a form status field, not a field name")

        if tuple(event_header) != REDCAP_EVENT_COLUMNS:
            problems.append(f"event columns {event_header} are not {list(REDCAP_EVENT_COLUMNS)}")
        if len(set(self.event_names)) != len(self.event_names):
            problems.append("unique event names repeat")
        for e in self.events:
            problems.extend(self._event_problems(e))

        header, mapping = _rows(mappings_csv)
        if tuple(header) != REDCAP_MAPPING_COLUMNS:
            problems.append(f"mapping columns {header} are not {list(REDCAP_MAPPING_COLUMNS)}")
        self.mapping = [dict(m) for m in mapping]
        self.designated: set[tuple[str, str]] = set()
        arms = {e["unique_event_name"]: e.get("arm_num") for e in self.events}
        for m in mapping:
            pair = (m.get("unique_event_name", ""), m.get("form", ""))
            if pair[0] not in arms:
                problems.append(f"mapping: unknown event {pair[0]!r}")
            elif arms[pair[0]] != m.get("arm_num"):
                problems.append(f"mapping: {pair[0]} is not in arm {m.get('arm_num')}")
            if pair[1] not in self.forms:
                problems.append(f"mapping: form {pair[1]!r} is not in the dictionary")
            if pair in self.designated:
                problems.append(f"mapping: {pair} twice")
            self.designated.add(pair)
        if problems:
            raise ValueError("REDCap project files: " + "; ".join(problems))
        self.columns = self._columns()

    def _field_problems(self, f: dict) -> list[str]:
        name, kind = f["field_name"], f["field_type"]
        problems = []
        if not NAME.match(name) or len(name) > 100:
            problems.append(f"{name!r}: field names are lower-case letters, digits and _")
        if name in SPECIAL_COLUMNS or name == "redcap_event_name":
            problems.append(f"{name}: a name REDCap reserves")
        if kind not in FIELD_TYPES:
            problems.append(f"{name}: unknown field type {kind!r}")
        choices = f["select_choices_or_calculations"]
        if kind in CHOICE_FIELDS:
            try:
                self.choices[name] = parse_choices(choices)
            except ValueError as error:
                problems.append(f"{name}: {error}")
            else:
                bad = [c for c in self.choices[name] if not CODE.match(c)]
                if bad:
                    problems.append(f"{name}: choice codes {bad} have odd characters")
        elif kind in ("yesno", "truefalse"):
            if choices:
                problems.append(f"{name}: a {kind} field has no choices of its own")
            self.choices[name] = {"1": "", "0": ""}
        validation = f["text_validation_type_or_show_slider_number"]
        low, high = f["text_validation_min"], f["text_validation_max"]
        if kind == "text" and validation:
            check = VALIDATIONS.get(validation)
            if check is None:
                problems.append(f"{name}: validation {validation!r} is unknown to the fake")
            else:
                limits = []
                for limit in (low, high):
                    try:
                        limits.append(check(limit) if limit else None)
                    except ValueError as error:
                        problems.append(f"{name}: the limit {limit!r} {error}")
                if len(limits) == 2 and None not in limits and limits[0] > limits[1]:
                    problems.append(f"{name}: min {low} is above max {high}")
        elif kind != "slider" and (validation or low or high):
            problems.append(f"{name}: validation and min/max belong to text fields")
        for key, allowed in (
            ("required_field", {"", "y"}),
            ("identifier", {"", "y"}),
            ("matrix_ranking", {"", "y"}),
            ("custom_alignment", {"", "LV", "LH", "RV", "RH"}),
        ):
            if f[key] not in allowed:
                problems.append(f"{name}: {key} {f[key]!r} is not one of {sorted(allowed)}")
        for token in re.findall(r"\[([^\]]*)\]", f["branching_logic"]):
            target, _, code = token.partition("(")
            if target in self.fields or target in self.event_names:
                if code and code.rstrip(")") not in self._choices_hint(target):
                    problems.append(f"{name}: branching logic names [{token}], not a choice")
            else:
                problems.append(f"{name}: branching logic names [{token}], not a field")
        return problems

    def _choices_hint(self, name: str) -> set[str]:
        f = self.fields.get(name, {})
        try:
            return set(parse_choices(f.get("select_choices_or_calculations", "")))
        except ValueError:
            return set()

    def _event_problems(self, e: dict) -> list[str]:
        problems = []
        unique, arm = e.get("unique_event_name", ""), e.get("arm_num", "")
        if not arm.isdigit():
            problems.append(f"event {unique}: arm_num {arm!r} is not a number")
        stem = unique.removesuffix(f"_arm_{arm}")
        slug = re.sub(r"[^a-z0-9]+", "_", e.get("event_name", "").lower()).strip("_")
        if stem == unique or not stem or not slug.startswith(stem):
            problems.append(
                f"event {e.get('event_name')!r}: REDCap would name it {slug}_arm_{arm}, "
                f"not {unique}"
            )
        for key in ("day_offset", "offset_min", "offset_max"):
            try:
                float(e.get(key, ""))
            except ValueError:
                problems.append(f"event {unique}: {key} {e.get(key)!r} is not a number")
        return problems

    def _columns(self) -> dict[str, tuple[str, str, str]]:
        """Data column -> (field, form, kind) in export order; kind field/checkbox/complete."""
        columns: dict[str, tuple[str, str, str]] = {}
        for form, names in self.forms.items():
            for name in names:
                kind = self.fields[name]["field_type"]
                if kind == "checkbox":
                    for code in self.choices.get(name, {}):
                        columns[checkbox_column(name, code)] = (name, form, f"checkbox:{code}")
                elif kind != "descriptive":
                    columns[name] = (name, form, "field")
            columns[f"{form}_complete"] = (f"{form}_complete", form, "complete")
        return columns

    # Assertions ------------------------------------------------------------------------

    def imports(self, record: str, event: str) -> int:
        """How many accepted imports carried a row for (record, event)."""
        with self._lock:
            return self.import_counts[(record, event)]

    received = imports

    def changes(self, record: str, event: str) -> int:
        """How many of those imports changed the stored data (the rest were resends)."""
        with self._lock:
            return self.change_counts[(record, event)]

    def stored(self, record: str, event: str) -> dict[str, str] | None:
        """The stored values of (record, event) (only those ever set), or None."""
        with self._lock:
            row = self.data.get((record, event))
            return None if row is None else dict(row)

    def effects(self) -> dict[tuple[str, str], dict[str, str]]:
        """Every (record, event) that holds data, with its values."""
        with self._lock:
            return {key: dict(row) for key, row in self.data.items()}

    def records(self) -> list[str]:
        with self._lock:
            return sorted({record for record, _ in self.data})

    def resends(self) -> dict[tuple[str, str], int]:
        """(record, event) -> imports beyond the first."""
        with self._lock:
            return {key: n - 1 for key, n in self.import_counts.items() if n > 1}

    # The API -----------------------------------------------------------------------------

    def label(self, request: Request) -> str:
        content = request.value("content", "")
        if content == "record":
            return f"record:{request.value('action', 'import')}"
        return content or f"{request.method} {request.path}"

    def _error(self, status: int, text: str) -> Reply:
        self.refusals.append(text)
        return json_reply(status, {"error": text})

    def handle(self, request: Request) -> Reply:
        if request.path.rstrip("/") != "/api":
            return Reply(404, b"<html><body>Not Found</body></html>", "text/html")
        if request.method != "POST":
            return self._error(405, "The API takes POST requests only")
        kind = request.header("content-type", "")
        if not kind.startswith("application/x-www-form-urlencoded"):
            return self._error(400, f"This fake takes form-encoded posts only, not {kind!r}")
        token = request.value("token", "")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._error(403, NO_PERMISSION)
        if request.value("format", "xml") != "json":
            return self._error(400, "This fake speaks JSON only: send format=json")
        if request.value("returnFormat", "json") != "json":
            return self._error(400, "This fake speaks JSON only: send returnFormat=json")
        content = request.value("content", "")
        action = request.value("action", "export" if content != "record" else "import")
        if content == "record" and action == "import":
            return self._import(request)
        if action != "export":
            return self._error(400, f"The action {action!r} is not valid here")
        exports = {
            "metadata": self._metadata,
            "project": self._project,
            "event": self._events,
            "arm": lambda r: json_reply(200, [{"arm_num": 1, "name": "Arm 1"}]),
            "formEventMapping": self._mapping,
            "instrument": self._instruments,
            "exportFieldNames": self._field_names,
            "record": self._export,
            "version": lambda r: Reply(200, REDCAP_VERSION.encode(), "text/html; charset=utf-8"),
        }
        if content not in exports:
            return self._error(
                400, f'The value of the parameter "content" ({content}) is not valid'
            )
        return exports[content](request)

    def _metadata(self, request: Request) -> Reply:
        fields = _array(request, "fields")
        forms = _array(request, "forms")
        unknown = [f for f in fields if f not in self.fields] + [
            f for f in forms if f not in self.forms
        ]
        if unknown:
            return self._error(400, f"Not fields or forms of the project: {', '.join(unknown)}")
        chosen = [
            dict(f)
            for f in self.metadata
            if (not fields or f["field_name"] in fields) and (not forms or f["form_name"] in forms)
        ]
        return json_reply(200, chosen)

    def _project(self, request: Request) -> Reply:
        return json_reply(
            200,
            {
                "project_id": 1,
                "project_title": self.title,
                "creation_time": "2024-01-01 00:00:00",
                "production_time": "",
                "in_production": 0,
                "project_language": "English",
                "purpose": 2,
                "purpose_other": "",
                "project_notes": "",
                "custom_record_label": "",
                "secondary_unique_field": "",
                "is_longitudinal": 1,
                "has_repeating_instruments_or_events": 0,
                "surveys_enabled": 0,
                "scheduling_enabled": 0,
                "record_autonumbering_enabled": 0,
                "randomization_enabled": 0,
                "ddp_enabled": 0,
                "missing_data_codes": "",
            },
        )

    def _events(self, request: Request) -> Reply:
        arms = _array(request, "arms")
        rows = []
        for number, e in enumerate(self.events, 1):
            if arms and e["arm_num"] not in arms:
                continue
            rows.append(
                {
                    "event_name": e["event_name"],
                    "arm_num": int(e["arm_num"]),
                    "unique_event_name": e["unique_event_name"],
                    "custom_event_label": e["custom_event_label"],
                    "event_id": 40 + number,
                    "day_offset": _number_text(e["day_offset"]),
                    "offset_min": _number_text(e["offset_min"]),
                    "offset_max": _number_text(e["offset_max"]),
                }
            )
        return json_reply(200, rows)

    def _mapping(self, request: Request) -> Reply:
        arms = _array(request, "arms")
        rows = [
            {
                "arm_num": int(m["arm_num"]),
                "unique_event_name": m["unique_event_name"],
                "form": m["form"],
            }
            for m in self.mapping
            if not arms or m["arm_num"] in arms
        ]
        return json_reply(200, rows)

    def _instruments(self, request: Request) -> Reply:
        rows = [
            {"instrument_name": form, "instrument_label": form.replace("_", " ").title()}
            for form in self.forms
        ]
        return json_reply(200, rows)

    def _field_names(self, request: Request) -> Reply:
        rows = []
        for column, (name, _form, kind) in self.columns.items():
            if kind == "complete":
                continue
            code = kind.partition(":")[2]
            rows.append(
                {"original_field_name": name, "choice_value": code, "export_field_name": column}
            )
        return json_reply(200, rows)

    # Import ------------------------------------------------------------------------------

    def _import(self, request: Request) -> Reply:
        options = {
            "type": ("flat", {"flat"}),
            "overwriteBehavior": ("normal", {"normal", "overwrite"}),
            "forceAutoNumber": ("false", {"false"}),
            "dateFormat": ("YMD", {"YMD"}),
            "returnContent": ("count", {"count", "ids"}),
        }
        chosen = {}
        for name, (default, allowed) in options.items():
            chosen[name] = request.value(name, default) or default
            if chosen[name] not in allowed:
                return self._error(
                    400, f"{name}={chosen[name]!r} is not supported (use {sorted(allowed)})"
                )
        try:
            rows = json.loads(request.value("data", ""))
        except ValueError:
            return self._error(400, "The data are not valid JSON")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return self._error(400, "The data must be a JSON list of records (objects)")
        if not rows:
            return self._error(400, "No records were given")
        known = {self.record_id, "redcap_event_name", *SPECIAL_COLUMNS, *self.columns}
        unknown = sorted({c for r in rows for c in r if c not in known})
        if unknown:
            return self._error(
                400,
                "These names are not data fields of the project: " + ", ".join(unknown),
            )
        problems: list[str] = []
        clean: list[tuple[str, str, dict[str, str]]] = []
        for row in rows:
            values, row_problems = self._row(row)
            problems.extend(row_problems)
            if not row_problems:
                clean.append(values)
        if problems:
            return self._error(400, "\n".join(problems))
        overwrite = chosen["overwriteBehavior"] == "overwrite"
        merged: dict[tuple[str, str], dict[str, str]] = {}
        for record, event, values in clean:
            key = (record, event)
            current = merged.setdefault(key, dict(self.data.get(key, {})))
            for column, value in values.items():
                if value != "":
                    current[column] = value
                elif overwrite:  # normal: a blank never erases what is stored
                    current.pop(column, None)
        for key, values in merged.items():
            self.import_counts[key] += 1
            if key not in self.data or self.data[key] != values:
                self.change_counts[key] += 1
            self.data[key] = values
        ids = list(dict.fromkeys(record for record, _ in merged))
        if chosen["returnContent"] == "ids":
            return json_reply(200, ids)
        return json_reply(200, {"count": len(ids)})

    def _row(self, row: dict) -> tuple[tuple[str, str, dict[str, str]], list[str]]:
        problems: list[str] = []
        text: dict[str, str] = {}
        for column, value in row.items():
            if value is None:
                value = ""
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                problems.append(
                    _csv_line(row.get(self.record_id, ""), column, value, "Not a text or a number")
                )
                continue
            text[column] = str(value).strip() if isinstance(value, str) else str(value)
        record = text.pop(self.record_id, "")
        event = text.pop("redcap_event_name", "")
        if not record:
            problems.append(_csv_line("", self.record_id, "", "The record name is missing"))
        if event not in self.event_names:
            why = "The event is missing" if not event else "The event does not exist"
            problems.append(_csv_line(record, "redcap_event_name", event, why))
        for column in SPECIAL_COLUMNS:
            if text.pop(column, ""):
                problems.append(
                    _csv_line(record, column, row[column], "Not enabled in this project")
                )
        for column, value in text.items():
            if value == "":
                continue
            name, form, kind = self.columns[column]
            if event in self.event_names and (event, form) not in self.designated:
                problems.append(
                    _csv_line(
                        record, column, value, f"The form {form} is not designated to this event"
                    )
                )
                continue
            why = self._value_problem(name, kind, value)
            if why:
                problems.append(_csv_line(record, column, value, why))
        return (record, event, text), problems

    def _value_problem(self, name: str, kind: str, value: str) -> str | None:
        if kind == "complete":
            return None if value in ("0", "1", "2") else "A form status is 0, 1 or 2"
        if kind.startswith("checkbox:"):
            return None if value in ("0", "1") else "A checkbox choice is 0 or 1"
        f = self.fields[name]
        field_type = f["field_type"]
        if field_type in NOT_IMPORTABLE:
            return f"A {field_type} field takes no imported values"
        if field_type in ("radio", "dropdown", "yesno", "truefalse"):
            if value not in self.choices.get(name, {}):
                codes = ", ".join(self.choices.get(name, {}))
                return f"Not one of the field's choice codes ({codes})"
            return None
        if field_type == "slider":
            try:
                number = _int_value(value)
            except ValueError:
                return "A slider takes a whole number from 0 to 100"
            return None if 0 <= number <= 100 else "A slider takes a whole number from 0 to 100"
        validation = f["text_validation_type_or_show_slider_number"]
        if field_type != "text" or not validation:
            return None
        check = VALIDATIONS[validation]
        try:
            parsed = check(value)
        except ValueError as error:
            return f"The value {error} (validation {validation})"
        if self.strict_range:
            low, high = f["text_validation_min"], f["text_validation_max"]
            if low and parsed < check(low):
                return f"Below the field's minimum {low}"
            if high and parsed > check(high):
                return f"Above the field's maximum {high}"
        return None

    # Export ------------------------------------------------------------------------------

    def _export(self, request: Request) -> Reply:
        if request.value("type", "flat") != "flat":
            return self._error(400, "This fake exports type=flat only")
        if request.value("rawOrLabel", "raw") != "raw":
            return self._error(400, "This fake exports raw values only")
        records = set(_array(request, "records"))
        events = _array(request, "events")
        fields = _array(request, "fields")
        forms = _array(request, "forms")
        bad = [e for e in events if e not in self.event_names]
        bad += [f for f in fields if f not in self.fields and f not in self.columns]
        bad += [f for f in forms if f not in self.forms]
        if bad:
            return self._error(400, "Not events, fields or forms of the project: " + ", ".join(bad))
        chosen = [
            column
            for column, (name, form, kind) in self.columns.items()
            if (not fields and not forms) or name in fields or column in fields or form in forms
        ]
        header = [self.record_id, "redcap_event_name"] + [c for c in chosen if c != self.record_id]
        rank = {name: n for n, name in enumerate(self.event_names)}
        keys = sorted(self.data, key=lambda k: (k[0], rank[k[1]]))
        rows = []
        for record, event in keys:
            if (records and record not in records) or (events and event not in events):
                continue
            stored = self.data[(record, event)]
            row = {}
            for column in header:
                if column == self.record_id:
                    row[column] = record
                elif column == "redcap_event_name":
                    row[column] = event
                else:
                    _name, form, kind = self.columns[column]
                    default = ""
                    if (event, form) in self.designated and kind != "field":
                        default = "0"  # checkbox choices and form status on a designated form
                    row[column] = stored.get(column, default)
            rows.append(row)
        return json_reply(200, rows)


def _array(request: Request, name: str) -> list[str]:
    """A REDCap array parameter: name[]=a&name[]=b, name[0]=a&name[1]=b, or name=a,b."""
    values: list[tuple[int, str]] = []
    source = request.form or request.query
    for key, found in source.items():
        if key == name or key == f"{name}[]":
            values.extend((-1, v) for item in found for v in item.split(","))
        else:
            match = re.fullmatch(rf"{re.escape(name)}\[(\d+)\]", key)
            if match:
                values.extend((int(match.group(1)), v) for v in found)
    return [v.strip() for _, v in sorted(values, key=lambda p: p[0]) if v.strip()]


# FHIR -----------------------------------------------------------------------------------

FHIR_TYPES = ("application/fhir+json", "application/json")
FHIR_JSON = "application/fhir+json; charset=utf-8"
QR_STATUSES = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def outcome(status: int, code: str, text: str, issues: Iterable[dict] = ()) -> Reply:
    """An OperationOutcome reply."""
    issue = list(issues) or [{"severity": "error", "code": code, "diagnostics": text}]
    body = {"resourceType": "OperationOutcome", "issue": issue}
    return Reply(status, json.dumps(body).encode(), FHIR_JSON)


def identifier_key(identifier: dict | None) -> str | None:
    """'system|value' of an Identifier (the key the FHIR fake counts by)."""
    if not isinstance(identifier, dict) or not identifier.get("value"):
        return None
    return f"{identifier.get('system', '')}|{identifier['value']}"


def _content(resource: dict) -> dict:
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}


def is_fhir_write(request: Request) -> bool:
    return request.label in ("update", "create")


class FakeFhir(LoopbackServer):
    """A FHIR R4 server for QuestionnaireResponse at /fhir (JSON only).

    FakeFhir(*, port=0, token=None, base_path="/fhir")

    PUT  /fhir/QuestionnaireResponse?identifier=<system>|<value>   conditional update
    PUT  /fhir/QuestionnaireResponse/<id>                          update (or create) by id
    POST /fhir/QuestionnaireResponse  [If-None-Exist: identifier=...] create
    GET  /fhir/QuestionnaireResponse?identifier=...                searchset Bundle
    GET  /fhir/QuestionnaireResponse/<id>[/_history/<v>]           read
    GET  /fhir/metadata                                            CapabilityStatement

    Bodies are validated with fhir.resources' R4B QuestionnaireResponse (and the status
    code); a token, when given, is required as `Authorization: Bearer <token>`.
    """

    def __init__(self, *, port: int = 0, token: str | None = None, base_path: str = "/fhir"):
        super().__init__(port=port)
        self.token = token
        self.base_path = "/" + base_path.strip("/")
        self.history: dict[str, list[dict]] = {}  # id -> versions, oldest first
        self.writes: Counter[str] = Counter()  # identifier key -> accepted writes
        self.change_counts: Counter[str] = Counter()  # identifier key -> writes that changed it
        self.refusals: list[tuple[int, str]] = []

    @property
    def endpoint(self) -> str:
        return f"{self.url}{self.base_path}"

    # Assertions ------------------------------------------------------------------------

    def received(self, identifier: str) -> int:
        """Accepted writes (PUT/POST) for the identifier key 'system|value'."""
        with self._lock:
            return self.writes[identifier]

    puts = received

    def changes(self, identifier: str) -> int:
        with self._lock:
            return self.change_counts[identifier]

    def matching(self, identifier: str) -> list[dict]:
        """The current resources with that identifier key (more than one: a duplicate)."""
        with self._lock:
            return [
                json.loads(json.dumps(h[-1]))
                for h in self.history.values()
                if identifier_key(h[-1].get("identifier")) == identifier
            ]

    def resource(self, identifier: str) -> dict | None:
        found = self.matching(identifier)
        if len(found) > 1:
            raise AssertionError(f"{len(found)} resources have the identifier {identifier}")
        return found[0] if found else None

    def version(self, identifier: str) -> int | None:
        found = self.resource(identifier)
        return None if found is None else int(found["meta"]["versionId"])

    def resources(self) -> list[dict]:
        with self._lock:
            return [json.loads(json.dumps(h[-1])) for h in self.history.values()]

    def effects(self) -> dict[str, dict]:
        """identifier key -> resource (raises if an identifier has two resources)."""
        with self._lock:
            keys = [identifier_key(h[-1].get("identifier")) for h in self.history.values()]
        return {key: self.resource(key) for key in keys if key}

    def seed(self, resource: dict) -> str:
        """Store a resource as is (no checks): to set up duplicates; return its id."""
        with self._lock:
            return self._store(None, json.loads(json.dumps(resource)), count=False)[0]["id"]

    # The API -----------------------------------------------------------------------------

    def label(self, request: Request) -> str:
        rest = request.path.removeprefix(self.base_path).strip("/").split("/")
        if rest == ["metadata"]:
            return "metadata"
        if rest[0] == "QuestionnaireResponse":
            by_id = len(rest) > 1
            return {
                "PUT": "update",
                "POST": "create",
                "GET": "read" if by_id else "search",
            }.get(request.method, request.method)
        return f"{request.method} {request.path}"

    def error_reply(self, status: int) -> Reply:
        reply = outcome(status, "transient", f"injected HTTP {status}")
        if status == 503:
            reply.headers["Retry-After"] = "1"
        return reply

    def _refuse(self, status: int, code: str, text: str, issues=()) -> Reply:
        self.refusals.append((status, text))
        return outcome(status, code, text, issues)

    def handle(self, request: Request) -> Reply:
        if not request.path.startswith(self.base_path + "/") and request.path != self.base_path:
            return self._refuse(404, "not-found", f"No FHIR endpoint at {request.path}")
        if self.token is not None:
            given = request.header("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                reply = self._refuse(401, "login", "A valid bearer token is required")
                reply.headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
                return reply
        accept = request.header("accept", "")
        if accept and not any(t in accept for t in (*FHIR_TYPES, "*/*", "application/*")):
            return self._refuse(406, "not-supported", f"This server returns JSON, not {accept}")
        rest = request.path.removeprefix(self.base_path).strip("/").split("/")
        if rest == ["metadata"] and request.method == "GET":
            return self._capabilities()
        if not rest or rest[0] != "QuestionnaireResponse":
            return self._refuse(404, "not-supported", f"Unknown resource type {rest[0]!r}")
        if request.method == "GET":
            return self._search(request) if len(rest) == 1 else self._read(rest[1:])
        if request.method in ("PUT", "POST") and len(rest) <= 2:
            if request.method == "POST" and len(rest) == 2:
                return self._refuse(405, "not-supported", "POST goes to the type, not an id")
            return self._write(request, rest[1] if len(rest) == 2 else None)
        return self._refuse(405, "not-supported", f"{request.method} {request.path}")

    def _capabilities(self) -> Reply:
        statement = {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2024-01-01",
            "kind": "instance",
            "software": {"name": SERVER_NAME},
            "implementation": {"description": "Loopback FHIR test server", "url": self.endpoint},
            "fhirVersion": "4.0.1",
            "format": ["json"],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": "QuestionnaireResponse",
                            "interaction": [
                                {"code": "read"},
                                {"code": "vread"},
                                {"code": "update"},
                                {"code": "create"},
                                {"code": "search-type"},
                            ],
                            "versioning": "versioned",
                            "updateCreate": True,
                            "conditionalCreate": True,
                            "conditionalUpdate": True,
                            "searchParam": [{"name": "identifier", "type": "token"}],
                        }
                    ],
                }
            ],
        }
        return Reply(200, json.dumps(statement).encode(), FHIR_JSON)

    def _criteria(self, values: dict[str, list[str]]):
        """(system or None, value) from ?identifier=..., None if absent; ValueError if odd."""
        extra = sorted(set(values) - {"identifier", "_format"})
        if extra:
            raise ValueError(f"unsupported search parameters {extra}")
        found = values.get("identifier", [])
        if not found:
            return None
        if len(found) > 1:
            raise ValueError("one identifier parameter only")
        system, bar, value = found[0].partition("|")
        if not bar:
            return None, system
        if not value:
            raise ValueError("identifier=<system>|<value> needs a value")
        return system, value

    def _matches(self, criteria) -> list[str]:
        system, value = criteria
        ids = []
        for rid, versions in self.history.items():
            identifier = versions[-1].get("identifier") or {}
            if identifier.get("value") == value and (
                system is None or identifier.get("system", "") == system
            ):
                ids.append(rid)
        return ids

    def _search(self, request: Request) -> Reply:
        try:
            criteria = self._criteria(request.query)
        except ValueError as error:
            return self._refuse(400, "not-supported", str(error))
        ids = list(self.history) if criteria is None else self._matches(criteria)
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(ids),
            "link": [{"relation": "self", "url": self.url + request.path}],
            "entry": [
                {
                    "fullUrl": f"{self.endpoint}/QuestionnaireResponse/{rid}",
                    "resource": self.history[rid][-1],
                    "search": {"mode": "match"},
                }
                for rid in ids
            ],
        }
        return Reply(200, json.dumps(bundle).encode(), FHIR_JSON)

    def _read(self, rest: list[str]) -> Reply:
        rid = rest[0]
        versions = self.history.get(rid)
        if versions is None:
            return self._refuse(404, "not-found", f"QuestionnaireResponse/{rid} is not known")
        found = versions[-1]
        if len(rest) == 3 and rest[1] == "_history":
            found = next((v for v in versions if v["meta"]["versionId"] == rest[2]), None)
            if found is None:
                return self._refuse(404, "not-found", f"no version {rest[2]} of {rid}")
        elif len(rest) != 1:
            return self._refuse(400, "not-supported", "/".join(rest))
        return self._resource_reply(200, found)

    def _resource_reply(self, status: int, resource: dict, request: Request | None = None):
        version = resource["meta"]["versionId"]
        where = f"{self.endpoint}/QuestionnaireResponse/{resource['id']}/_history/{version}"
        headers = {"ETag": f'W/"{version}"', "Location": where, "Last-Modified": formatdate()}
        prefer = request.header("prefer", "") if request else ""
        if "return=minimal" in prefer:
            return Reply(status, b"", FHIR_JSON, headers)
        return Reply(status, json.dumps(resource).encode(), FHIR_JSON, headers)

    def _validate(self, request: Request) -> tuple[dict | None, Reply | None]:
        kind = (request.header("content-type") or "").split(";")[0].strip().lower()
        if kind not in FHIR_TYPES:
            return None, self._refuse(415, "not-supported", f"Content-Type {kind!r} is not JSON")
        try:
            data = json.loads(request.body)
        except ValueError as error:
            return None, self._refuse(400, "structure", f"The body is not JSON: {error}")
        if not isinstance(data, dict) or data.get("resourceType") != "QuestionnaireResponse":
            got = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            return None, self._refuse(
                400, "invalid", f"Expected a QuestionnaireResponse, got {got!r}"
            )
        from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
        from pydantic import ValidationError

        issues = []
        try:
            QuestionnaireResponse.model_validate(data)
        except ValidationError as error:
            for problem in error.errors()[:20]:
                where = ".".join(str(p) for p in problem["loc"] if p != "root")
                issues.append(
                    {
                        "severity": "error",
                        "code": "structure",
                        "diagnostics": f"{where}: {problem['msg']}",
                        "expression": [f"QuestionnaireResponse.{where}".rstrip(".")],
                    }
                )
        if data.get("status") is not None and data.get("status") not in QR_STATUSES:
            issues.append(
                {
                    "severity": "error",
                    "code": "code-invalid",
                    "diagnostics": f"status: {data['status']!r} is not in {sorted(QR_STATUSES)}",
                    "expression": ["QuestionnaireResponse.status"],
                }
            )
        if issues:
            text = "; ".join(i["diagnostics"] for i in issues)
            return None, self._refuse(400, "invalid", text, issues)
        return data, None

    def _write(self, request: Request, path_id: str | None) -> Reply:
        data, refused = self._validate(request)
        if refused is not None:
            return refused
        body_id = data.get("id")
        if body_id is not None and not FHIR_ID.match(str(body_id)):
            return self._refuse(400, "invalid", f"{body_id!r} is not a FHIR id")
        try:
            if request.method == "POST":
                condition = request.header("if-none-exist")
                criteria = self._criteria(parse_qs(condition)) if condition else None
            else:
                criteria = self._criteria(request.query)
        except ValueError as error:
            return self._refuse(400, "not-supported", str(error))
        if path_id is not None:  # update by id
            if criteria is not None:
                return self._refuse(400, "not-supported", "an id and a condition together")
            if body_id != path_id:
                return self._refuse(400, "invalid", f"the body's id {body_id!r} is not {path_id}")
            stored, created = self._store(path_id, data)
            return self._resource_reply(201 if created else 200, stored, request)
        if request.method == "PUT" and criteria is None:
            return self._refuse(400, "not-supported", "PUT to the type needs ?identifier=")
        if criteria is not None:
            own = data.get("identifier") or {}
            system, value = criteria
            if own.get("value") != value or (system is not None and own.get("system") != system):
                return self._refuse(
                    400, "invalid", "the resource's identifier does not match the condition"
                )
            matches = self._matches(criteria)
            if len(matches) > 1:
                return self._refuse(
                    412, "duplicate", f"{len(matches)} resources match the identifier"
                )
            if matches and request.method == "POST":  # conditional create: already there
                return self._resource_reply(200, self.history[matches[0]][-1], request)
            if matches:
                if body_id is not None and body_id != matches[0]:
                    return self._refuse(
                        400, "invalid", f"the body's id {body_id} is not the match {matches[0]}"
                    )
                stored, _ = self._store(matches[0], data)
                return self._resource_reply(200, stored, request)
        if request.method == "POST":
            body_id = None  # the server names what is created
        if body_id is not None and body_id in self.history:
            return self._refuse(409, "conflict", f"{body_id} is another resource's id")
        stored, _ = self._store(body_id, data)
        return self._resource_reply(201, stored, request)

    def _store(self, rid: str | None, data: dict, count: bool = True) -> tuple[dict, bool]:
        rid = rid or uuid.uuid4().hex
        versions = self.history.setdefault(rid, [])
        created = not versions
        key = identifier_key(data.get("identifier"))
        if key and count:
            self.writes[key] += 1
            if created or _content(versions[-1]) != _content(data):
                self.change_counts[key] += 1
        meta = dict(data.get("meta") or {})
        meta["versionId"] = str(len(versions) + 1)
        meta["lastUpdated"] = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        stored = {"resourceType": "QuestionnaireResponse", "id": rid, "meta": meta}
        stored.update({k: v for k, v in data.items() if k not in ("resourceType", "id", "meta")})
        versions.append(stored)
        return json.loads(json.dumps(stored)), created


# Webhook ---------------------------------------------------------------------------------


def webhook_signature(secret: str | bytes, timestamp: str | int, body: bytes) -> str:
    """'sha256=<hex>' of HMAC-SHA256(secret, '<timestamp>.<body>')."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_headers(
    secret: str | bytes, body: bytes, message_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of a correctly signed delivery (for tests that play the sender)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-Timestamp": stamp,
        "X-Signature": webhook_signature(secret, stamp, body),
        "X-Message-Id": message_id,
    }


@dataclass(frozen=True)
class Delivery:
    message_id: str
    timestamp: int
    body: bytes
    payload: object
    duplicate: bool


class WebhookReceiver(LoopbackServer):
    """POST <path> with a signed JSON body; answers 200 {"received": "<message id>"}.

    WebhookReceiver(secret, *, path="/hook", port=0, tolerance=300, clock=time.time)

    401 {"error": ...}: no or a wrong signature, a timestamp more than `tolerance` seconds
    off, no X-Message-Id. 400: the body is not JSON. A message id seen before is answered
    200 as well and counted as a duplicate.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        path: str = "/hook",
        port: int = 0,
        tolerance: float = 300,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(port=port)
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.path = "/" + path.lstrip("/")
        self.tolerance = tolerance
        self.clock = clock
        self.deliveries: list[Delivery] = []
        self.rejections: list[tuple[int, str]] = []

    @property
    def endpoint(self) -> str:
        return f"{self.url}{self.path}"

    # Assertions ------------------------------------------------------------------------

    def received(self, message_id: str) -> int:
        with self._lock:
            return sum(d.message_id == message_id for d in self.deliveries)

    def messages(self) -> dict[str, object]:
        """message id -> the payload of its first delivery, in arrival order."""
        with self._lock:
            found: dict[str, object] = {}
            for d in self.deliveries:
                found.setdefault(d.message_id, d.payload)
            return found

    effects = messages

    def duplicates(self) -> int:
        """Deliveries of a message id seen before."""
        with self._lock:
            return sum(d.duplicate for d in self.deliveries)

    def duplicate_ids(self) -> list[str]:
        with self._lock:
            return sorted({d.message_id for d in self.deliveries if d.duplicate})

    def conflicts(self) -> list[str]:
        """Message ids delivered more than once with different bodies (should never be)."""
        with self._lock:
            bodies: dict[str, set[bytes]] = {}
            for d in self.deliveries:
                bodies.setdefault(d.message_id, set()).add(d.body)
            return sorted(m for m, b in bodies.items() if len(b) > 1)

    # The API -----------------------------------------------------------------------------

    def label(self, request: Request) -> str:
        return "deliver" if request.path == self.path else f"{request.method} {request.path}"

    def _reject(self, status: int, text: str) -> Reply:
        self.rejections.append((status, text))
        return json_reply(status, {"error": text})

    def handle(self, request: Request) -> Reply:
        if request.path != self.path:
            return self._reject(404, f"nothing at {request.path}")
        if request.method != "POST":
            return self._reject(405, "POST only")
        message_id = (request.header("x-message-id") or "").strip()
        stamp = (request.header("x-timestamp") or "").strip()
        signature = (request.header("x-signature") or "").strip()
        if not message_id:
            return self._reject(401, "X-Message-Id is missing")
        if not stamp.isdigit():
            return self._reject(401, "X-Timestamp is missing or not Unix seconds")
        if abs(self.clock() - int(stamp)) > self.tolerance:
            return self._reject(401, f"X-Timestamp is more than {self.tolerance:g} s off")
        scheme, _, given = signature.partition("=")
        expected = webhook_signature(self.secret, stamp, request.body).partition("=")[2]
        if scheme != "sha256" or not hmac.compare_digest(given.lower(), expected):
            return self._reject(401, "X-Signature does not match the body")
        try:
            payload = json.loads(request.body)
        except ValueError:
            return self._reject(400, "the body is not JSON")
        seen = any(d.message_id == message_id for d in self.deliveries)
        self.deliveries.append(Delivery(message_id, int(stamp), request.body, payload, seen))
        return json_reply(200, {"received": message_id})
