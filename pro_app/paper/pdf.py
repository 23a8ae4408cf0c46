"""The PDF of a print page, made with WeasyPrint (Pango from Debian does the text layout).

Nothing is fetched while rendering: the print styles are passed in, and any URL in the page
(there are none) would be refused, so a definition's text cannot make the server load
anything.
"""

from __future__ import annotations


class PdfUnavailable(RuntimeError):
    """WeasyPrint (or the Pango library it needs) is not installed on this machine."""


def _refuse(url: str, *args, **kwargs):
    raise ValueError(f"the paper PDF loads nothing from outside ({url[:40]})")


def render_pdf(html: str, stylesheet: str) -> bytes:
    """Return the PDF of html (A4, from the @page rules) with the stylesheet file applied."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: the Pango library is missing
        raise PdfUnavailable(
            "PDF needs WeasyPrint (pip install weasyprint) and Pango "
            "(apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
        ) from exc
    styles = weasyprint.CSS(filename=stylesheet, url_fetcher=_refuse)
    return weasyprint.HTML(string=html, url_fetcher=_refuse).write_pdf(stylesheets=[styles])
