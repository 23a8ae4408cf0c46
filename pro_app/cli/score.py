"""`flask score FILE`: score answers given as JSON, as the server would."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..domain.answers import validate_answers
from ..domain.derived import derive
from ..domain.errors import AnswerError
from ..domain.scoring import score as score_one
from .common import catalog_or_exit


def _read(file) -> dict:
    text = file.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"the input is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    if not isinstance(data, dict):
        raise click.ClickException(
            'the input must be a JSON object: {"<questionnaire id>": {"<item id>": <code>}}'
        )
    return data


def build_result(catalog, data: dict) -> dict:
    """Validate and score {questionnaire: {item: value}}; raise AnswerError on bad input."""
    known = catalog.questionnaires
    errors = []
    sheets = {}
    for qid, answers in data.items():
        definition = known.get(qid)
        if definition is None:
            errors.append(f"unknown questionnaire id '{qid}' (known: {', '.join(known)})")
            continue
        try:
            clean = validate_answers(definition, answers)
        except AnswerError as exc:
            errors.extend(exc.messages)
            continue
        sheets[qid] = score_one(definition, clean)
    if errors:
        raise AnswerError(errors)
    names = [sid for sheet in sheets.values() for sid in sheet.scores]
    scores, notes, alerts, used = {}, {}, [], {}
    for qid, sheet in sheets.items():
        for sid, result in sheet.scores.items():
            # A score name used by two questionnaires in the input (a weekly and a
            # fortnightly version of one scale, say) is written as "<questionnaire>.<score>".
            key = sid if names.count(sid) == 1 else f"{qid}.{sid}"
            scores[key] = result.value
            if result.value is None:
                notes[key] = result.reason
        alerts.extend(f"{qid}.{alert}" for alert in sheet.alerts)
        used[qid] = {"version": sheet.version, "content_hash": sheet.content_hash}
    for did, result in derive(catalog.study, sheets).items():
        scores[did] = result.value
        if result.value is None:
            notes[did] = result.reason
    return {"scores": scores, "notes": notes, "alerts": alerts, "definitions": used}


@click.command("score")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--indent",
    type=click.IntRange(0, 8),
    default=2,
    show_default=True,
    help="Indent of the JSON output (0 for one line).",
)
@with_appcontext
def score(file, indent: int):
    """Score answers in FILE (JSON; '-' reads standard input) and print the scores as JSON.

    FILE holds {"<questionnaire id>": {"<item id>": <code>, ...}, ...}. A value is a code,
    "declined", "not_applicable" or null; multiple-choice answers are lists of codes.
    The output is {"scores": {...}, "notes": {<score>: <why it is null>}, "alerts": [...],
    "definitions": {<questionnaire>: {version, content_hash}}}, with the study's derived
    values when their questionnaires are in the input. Values are
    unrounded. Exit 1 on unknown ids or codes that are not among an item's options.
    """
    catalog = catalog_or_exit()
    data = _read(file)
    try:
        result = build_result(catalog, data)
    except AnswerError as exc:
        for message in exc.messages:
            click.echo(f"error {message}", err=True)
        raise click.ClickException(f"{len(exc.messages)} problem(s) in the answers") from exc
    click.echo(json.dumps(result, indent=indent or None, ensure_ascii=False))
