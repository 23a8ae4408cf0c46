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
