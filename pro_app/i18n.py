"""Languages: Norwegian Bokmål by default, English second; chosen by link, kept in session."""

from __future__ import annotations

from flask import Flask, g, request, session
from flask_babel import Babel, get_locale

LANGUAGES = ("nb", "en")
LANGUAGE_NAMES = {"nb": "Norsk (bokmål)", "en": "English"}

babel = Babel()


def select_locale() -> str:
    """Return the language from ?lang= (only known ones), else the session, else nb."""
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    kept = session.get("lang")
    if kept in LANGUAGES:
        return kept
    hint = g.get("language_hint")
    return hint if hint in LANGUAGES else "nb"


def init_app(app: Flask) -> None:
    """Bind Babel to the app with the locale selector and Europe/Oslo time."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "nb")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Oslo")
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals.update(LANGUAGE_NAMES=LANGUAGE_NAMES, get_locale=get_locale)
