"""Pages everyone can see: the landing page."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import get_locale

from .catalog import current_catalog

bp = Blueprint("public", __name__)


@bp.get("/")
def index():
    """Tell a visitor how to reach their questionnaires (from the link they were sent)."""
    study = current_catalog().study
    language = str(get_locale())
    return render_template("index.html", study_title=study.title.get(language))
