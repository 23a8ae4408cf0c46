"""The instance's definitions, loaded once per app from the configured folders."""

from __future__ import annotations

from flask import Flask, current_app

from .domain.catalog import Catalog, load_catalog, study_path


def catalog_for(app: Flask) -> Catalog:
    """Load (once) and return the questionnaires and study this app serves."""
    cached = app.extensions.get("pro_catalog")
    if cached is None:
        path = study_path(app.config["STUDY"], app.config["STUDIES_DIR"])
        cached = load_catalog(app.config["QUESTIONNAIRES_DIR"], path)
        app.extensions["pro_catalog"] = cached
    return cached


def current_catalog() -> Catalog:
    """Return the catalog of the current app."""
    return catalog_for(current_app)
