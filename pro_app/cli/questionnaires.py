"""`flask questionnaires check|list`: validate and list definitions."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..domain.catalog import study_path
from ..domain.errors import DefinitionError
from ..domain.loader import definition_files, load_questionnaire_file, load_questionnaires
from ..domain.studyloader import load_study_file
from ..domain.yamlsource import YamlSyntaxError, parse_yaml
from .common import catalog_or_exit


@click.group()
def questionnaires():
    """Check and list questionnaire definitions and the study protocol."""


def _is_study(path: Path) -> bool:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")).data
    except (OSError, UnicodeDecodeError, YamlSyntaxError):
        return False
    return isinstance(data, dict) and "timepoints" in data


def _expand(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files.extend(definition_files(path))
        elif path.exists():
            files.append(path)
        else:
            raise click.BadParameter(f"{name}: no such file or folder", param_hint="PATH")
    return files


@questionnaires.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@with_appcontext
def check(paths: tuple[str, ...]):
    """Validate definitions and the study; list every problem with file, line and key.

    Without PATH, checks every definition in PRO_QUESTIONNAIRES_DIR and the study named
    by PRO_STUDY. With PATHs (files or folders), checks those; a study file among them
    is checked against the shipped definitions plus the given ones. Exit 0 when all
    are valid, 1 otherwise.
    """
    config = current_app.config
    if paths:
        files = _expand(paths)
        studies = [f for f in files if _is_study(f)]
        definitions = [f for f in files if f not in studies]
    else:
        definitions = definition_files(config["QUESTIONNAIRES_DIR"])
        studies = [study_path(config["STUDY"], config["STUDIES_DIR"])]
    problems = []
    loaded = {}
    for path in definitions:
        try:
            definition = load_questionnaire_file(path)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        loaded[definition.id] = definition
        click.echo(
            f"ok    {path}  ({definition.id} {definition.version}, "
            f"{len(definition.items)} items, {len(definition.scores)} scores, "
            f"sha256 {definition.content_hash[:12]})"
        )
    if studies:
        known = _shipped(config) if paths else {}
        known.update(loaded)
        for path in studies:
            try:
                study = load_study_file(path, known)
            except DefinitionError as exc:
                problems.extend(exc.problems)
                continue
            click.echo(f"ok    {path}  (study {study.id}, {len(study.timepoints)} timepoints)")
    for problem in problems:
        click.echo(f"error {problem}", err=True)
    if problems:
        files_with = len({p.file for p in problems})
        raise click.ClickException(f"{len(problems)} problem(s) in {files_with} file(s)")
    click.echo("All definitions are valid.")


def _shipped(config) -> dict:
    try:
        return dict(load_questionnaires(definition_files(config["QUESTIONNAIRES_DIR"])))
    except DefinitionError:
        return {}


@questionnaires.command("list")
@with_appcontext
def list_():
    """List the questionnaires this instance serves, with version and content hash."""
    catalog = catalog_or_exit()
    for definition in catalog.questionnaires.values():
        click.echo(
            f"{definition.id:<12} {definition.version:<8} {len(definition.items):>3} items  "
            f"sha256 {definition.content_hash[:16]}  {definition.title.en}"
        )
