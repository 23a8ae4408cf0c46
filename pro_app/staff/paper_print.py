"""Paper forms to print: a participant's timepoint (HTML and PDF) and blank forms per
timepoint and site, in the participant's language, from the same definitions as the phone."""

from __future__ import annotations

from pathlib import Path

from flask import Response, abort, current_app, g, render_template, request
from flask import url_for as url
from flask_babel import force_locale, gettext
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..i18n import LANGUAGES
from ..paper.pdf import PdfUnavailable, render_pdf
from ..paper.sheets import sheets
from .access import staff_route, visible_sites
from .blueprint import bp
from .paper import PRINT, _found

# --- Printing ------------------------------------------------------------------------------


def _print_page(*, code, site, timepoint, language, for_pdf, back_url="", pdf_url="") -> str:
    """The print page of a timepoint's questionnaires, rendered in the given language."""
    with force_locale(language):
        return render_template(
            "paper/form.html",
            sheets=sheets(current_catalog().questionnaires, timepoint, language, gettext),
            code=code,
            site=site,
            language=language,
            timepoint_label=timepoint.label.get(language),
            for_pdf=for_pdf,
            back_url=back_url,
            pdf_url=pdf_url,
        )


def _pdf(html: str, name: str) -> Response:
    try:
        data = render_pdf(html, str(Path(current_app.static_folder) / "print.css"))
    except PdfUnavailable as exc:
        abort(503, str(exc))
    reply = Response(data, mimetype="application/pdf")
    reply.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    reply.headers["Cache-Control"] = "no-store"
    return reply


@bp.get("/participants/<code>/<timepoint>/paper")
@staff_route(*PRINT)
def paper_print(code: str, timepoint: str):
    """The timepoint's forms for printing, with the study code, in the participant's language."""
    study, person, _assessment_row = _found(code, timepoint)
    return _print_page(
        code=code,
        site=person["site"],
        timepoint=study.timepoint(timepoint),
        language=person["language"],
        for_pdf=False,
        back_url=url("staff.participant", code=code),
        pdf_url=url("staff.paper_pdf", code=code, timepoint=timepoint),
    )


@bp.get("/participants/<code>/<timepoint>/paper.pdf")
@staff_route(*PRINT)
def paper_pdf(code: str, timepoint: str):
    """The same forms as a PDF (A4)."""
    study, person, _assessment_row = _found(code, timepoint)
    tp = study.timepoint(timepoint)
    page = _print_page(
        code=code, site=person["site"], timepoint=tp, language=person["language"], for_pdf=True
    )
    return _pdf(page, f"{code}-{timepoint}.pdf")


def _blank_choice():
    """(timepoint, site, language) asked for blank forms, or None when one is missing."""
    study = current_catalog().study
    timepoint, site = request.args.get("timepoint", ""), request.args.get("site", "")
    language = request.args.get("language", "nb")
    known = [t.id for t in study.timepoints]
    if timepoint in known and site in visible_sites(g.staff, study) and language in LANGUAGES:
        return study.timepoint(timepoint), site, language
    return None


@bp.get("/paper/blank")
@staff_route(*PRINT)
def paper_blank():
    """Blank forms of a timepoint for a site, printed in advance (the study code left blank)."""
    chosen = _blank_choice()
    if chosen is None:
        study = current_catalog().study
        asked = bool(request.args)
        error = _("Choose a timepoint, one of your sites and a language.") if asked else None
        return render_template(
            "staff/paper_blank.html",
            timepoints=study.timepoints,
            sites=visible_sites(g.staff, study),
            args=request.args,
            error=error,
        ), (400 if asked else 200)
    timepoint, site, language = chosen
    return _print_page(
        code=None,
        site=site,
        timepoint=timepoint,
        language=language,
        for_pdf=False,
        back_url=url("staff.paper_blank"),
        pdf_url=url("staff.paper_blank_pdf", timepoint=timepoint.id, site=site, language=language),
    )


@bp.get("/paper/blank.pdf")
@staff_route(*PRINT)
def paper_blank_pdf():
    """Blank forms as a PDF."""
    chosen = _blank_choice()
    if chosen is None:
        abort(400)
    timepoint, site, language = chosen
    page = _print_page(code=None, site=site, timepoint=timepoint, language=language, for_pdf=True)
    return _pdf(page, f"{timepoint.id}-{site}-{language}-blank.pdf")
