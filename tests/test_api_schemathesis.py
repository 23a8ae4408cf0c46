"""Schemathesis against the API's OpenAPI document, in process (WSGI), with every check.

Positive and negative cases from the examples, coverage and fuzzing phases; every built-in
check (no server error, status codes, content types, headers and response schemas
conformance, positive data accepted, negative data rejected, unsupported methods, auth
enforced). The data: participants at three sites with submitted and partial responses.

The schema is loaded at import, because pytest makes one test per operation while it
collects, before any fixture runs; `schemathesis.pytest.from_fixture` would load it from the
running app, but it does not work with pytest 9 (it sets a node attribute pytest no longer
has). So the document is built the way the app builds it, and calls go to the module's app
through a small WSGI forwarder; test_api.py checks the served document is this one.
"""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from pro_app.api.openapi import document
from pro_app.domain.catalog import load_catalog
from pro_app.settings import ROOT

from .test_api import make_token, seed_app

MAX_EXAMPLES = 25  # per operation and phase; the whole run takes about 30 s on 2 cores


class ModuleApp:
    """A WSGI app that forwards to the app the module fixture made."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


APP = ModuleApp()
CATALOG = load_catalog(ROOT / "questionnaires", ROOT / "studies" / "backtobasic.yaml")
CONFIG = SchemathesisConfig.from_dict(
    {"generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"}}
)
schema = schemathesis.openapi.from_dict(document(CATALOG), config=CONFIG)
schema.app = APP


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    """A data manager's token (every operation allowed) on the module's seeded app."""
    APP.app = seed_app(tmp_path_factory.mktemp("schemathesis") / "api.sqlite")
    yield make_token(APP.app, "data_manager")
    APP.app = None


def _only_what_a_schema_can_promise(case) -> None:
    """Keep a valid case valid where the rules cannot be written in OpenAPI.

    A cursor is valid only when the server made it (test_api.py checks that any other is a
    400), and an export's 'from' must not be after its 'to' (a 400 that says so).
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or not case.query:
        return
    case.query.pop("cursor", None)
    start, end = case.query.get("from"), case.query.get("to")
    if isinstance(start, str) and isinstance(end, str) and start > end:
        case.query["from"], case.query["to"] = end, start


@pytest.mark.slow
@schema.parametrize()
def test_api_matches_its_document(case, token):
    _only_what_a_schema_can_promise(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"})
