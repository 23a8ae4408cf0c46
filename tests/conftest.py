"""Shared fixtures: an app over a temporary database per test; shipped definitions once."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from pro_app import create_app
from pro_app.domain.catalog import load_catalog
from pro_app.domain.loader import load_questionnaire_text
from pro_app.settings import ROOT

hypothesis_settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=150, print_blob=True
)
hypothesis_settings.register_profile("dev", deadline=None, max_examples=100)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

QUESTIONNAIRES = ROOT / "questionnaires"
STUDY = ROOT / "studies" / "backtobasic.yaml"


@pytest.fixture(scope="session")
def catalog():
    """The shipped questionnaires and the BackToBasic study (read-only)."""
    return load_catalog(QUESTIONNAIRES, STUDY)


@pytest.fixture(scope="session")
def study(catalog):
    return catalog.study


@pytest.fixture
def app(tmp_path: Path):
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "test.sqlite")})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def definition(yaml_text: str, file: str = "test.yaml"):
    """Load a definition written inline in a test (dedented)."""
    return load_questionnaire_text(textwrap.dedent(yaml_text), file)


@pytest.fixture(scope="session")
def browser():
    """One headless Debian chromium for the whole session, shared by every test that uses a
    browser (Playwright's sync API allows one at a time) (skip without it; fail when CI is set)."""
    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    reason = None
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - depends on the machine
            reason = f"Python Playwright is not installed: {exc}"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
