"""Pages everyone can see: the landing page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, session, url_for
from flask_babel import get_locale

from .catalog import current_catalog

bp = Blueprint("public", __name__)


@bp.get("/")
def index():
    """Tell a visitor how to reach their questionnaires (from the link they were sent)."""
    if session.get("participant"):
        # The installed app starts here: a participant with a session goes to the overview.
        return redirect(url_for("participant.overview"))
    study = current_catalog().study
    language = str(get_locale())
    return render_template("index.html", study_title=study.title.get(language))
