"""ePRO app for clinical trials: the application factory."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from . import startup
from .settings import ROOT, defaults


def create_app(test_config: dict | None = None) -> Flask:
    """Create the app: code defaults, then instance config or test config, then PRO_* env."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(defaults())
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    app.config.from_prefixed_env("PRO")
    # The second factor is on by default outside the demo (an admin may turn it off).
    if app.config.get("STAFF_TOTP") is None:
        app.config["STAFF_TOTP"] = not app.config.get("DEMO")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(ROOT / "translations")
    database = Path(app.config["DATABASE"])
    if not database.is_absolute():
        app.config["DATABASE"] = str(Path(app.instance_path).parent / database)
    # Serving outside the demo and the tests refuses an unsafe configuration (startup.py);
    # other commands still start, so that they can be used to fix it (`flask doctor`).
    startup.check_start(app)

    from . import (
        api,
        database,
        errors,
        health,
        i18n,
        logs,
        participant,
        pwa,
        security,
        staff,
        study_state,
        views,
    )
    from .cli import register_commands

    database.init_app(app)
    errors.init_app(app)
    logs.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    study_state.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(participant.bp)
    app.register_blueprint(pwa.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    register_commands(app)
    _asset_urls(app)
    proxies = int(app.config.get("PROXY_COUNT") or 0)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Trust exactly this many proxies for the client address, scheme, host and prefix.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_prefix=proxies
        )
    return app


def _asset_urls(app: Flask) -> None:
    """Static URLs carry a hash of their file, so they can be cached for a year."""
    import hashlib

    from flask import url_for

    versions: dict[str, str] = {}

    def asset(filename: str) -> str:
        if filename not in versions:
            data = (Path(app.static_folder) / filename).read_bytes()
            versions[filename] = hashlib.sha256(data).hexdigest()[:10]
        return url_for("static", filename=filename, v=versions[filename])

    app.jinja_env.globals["asset"] = asset
    if app.config.get("SEND_FILE_MAX_AGE_DEFAULT") is None:  # Flask's default is None
        app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 24 * 3600
