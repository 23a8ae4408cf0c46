"""`flask rescore`: score stored responses again under the current definition, audited."""

from __future__ import annotations

import sqlite3

import click
from flask.cli import with_appcontext

from ..services import rescoring
from ..study_state import StudyLocked, ensure_open
from .common import catalog_or_exit, upgraded_db


def shown(value) -> str:
    """A score value for people: unrounded numbers shortened, nothing said as such."""
    if value is rescoring.ABSENT:
        return "(no such score)"
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _report(outcome: rescoring.Outcome, examples: int) -> None:
    plan = outcome.plan
    click.echo(
        f"{plan.questionnaire}: definition version {plan.definition_version}"
        f" (hash {plan.definition_hash[:12]})"
    )
    other = len(plan.responses) - plan.current
    click.echo(
        f"  {len(plan.responses)} submitted response(s) (latest versions): {other} scored"
        f" under another definition, {plan.current} under this one"
    )
    if plan.earlier_runs:
        last = plan.earlier_runs[-1]
        click.echo(
            f"  Earlier re-scoring runs of {plan.questionnaire}: {len(plan.earlier_runs)}"
            f" (the latest is run {last['id']}, {last['started_at'][:16].replace('T', ' ')} UTC,"
            f" version {last['definition_version']})"
        )
    verb = "would change" if outcome.run_id is None else "changed"
    click.echo(
        f"  {plan.changed_responses} response(s) and {len(plan.changes)} score value(s) {verb}"
        " from the scores stored at submit" + (":" if plan.changes and examples else ".")
    )
    changes = plan.changes[:examples]
    if changes:
        width = (
            max(len(c.study_code) for c in changes),
            max(len(c.timepoint) for c in changes),
            max(len(c.score) for c in changes),
        )
        for c in changes:
            click.echo(
                f"    {c.study_code:<{width[0]}}  {c.timepoint:<{width[1]}}  {c.score:<{width[2]}}"
                f"  {shown(c.old)} → {shown(c.new)}"
            )
        if len(plan.changes) > len(changes):
            click.echo(f"    ... and {len(plan.changes) - len(changes)} more")


@click.command("rescore")
@click.option(
    "--questionnaire", required=True, metavar="ID", help="The questionnaire to score again."
)
@click.option(
    "--reason",
    required=True,
    help="Why (kept with the run and in the audit log), e.g. 'version 1.1 corrects the rule'.",
)
@click.option(
    "--by", "by", required=True, metavar="EMAIL", help="The admin or data manager doing it."
)
@click.option("--dry-run", is_flag=True, help="Show what would change; store nothing.")
@click.option(
    "--force",
    is_flag=True,
    help="Store a run even when every response was scored under this definition already.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many changed score values to show.",
)
@with_appcontext
def rescore(questionnaire, reason, by, dry_run, force, examples):
    """Score the submitted responses of a questionnaire again with its current definition.

    Every score of each response's latest submitted version is computed again, as at
    submit, with the definition in PRO_QUESTIONNAIRES_DIR now, and stored as a new scoring
    run beside the original scores, which never change (exports and the API keep showing
    those). One audit row per run holds the counts and the reason. Refused when every
    response was already scored under this definition (unless --force), and while the
    study is locked. Run it with --dry-run first.
    """
    catalog = catalog_or_exit()
    try:
        if not dry_run:
            ensure_open(upgraded_db())  # a locked study changes no more (a dry run only reads)
        outcome = rescoring.rescore(
            upgraded_db(),
            catalog.questionnaires,
            questionnaire=questionnaire,
            reason=reason,
            by=by,
            dry_run=dry_run,
            force=force,
        )
    except (rescoring.RescoreError, StudyLocked) as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(
            f"cannot read or write the scoring runs ({exc}); run 'flask --app pro_app db upgrade'"
        ) from exc
    _report(outcome, examples)
    if outcome.run_id is None:
        click.echo("Dry run: nothing was stored.")
    else:
        click.echo(
            f"Stored scoring run {outcome.run_id}: {len(outcome.plan.responses)} response(s)"
            " scored again. The original scores are unchanged; the run is in the audit log."
        )
