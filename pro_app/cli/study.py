"""`flask study lock|unlock|status|archive`: close a study and write its final archive."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import uuid
from importlib import metadata
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import study_state
from ..domain.catalog import load_catalog
from ..domain.errors import DefinitionError
from ..exports.model import Filters
from ..services.exporting import (
    FORMATS,
    SUFFIXES,
    Prepared,
    latest_time,
    prepare,
    redcap_companions,
    write_file,
)
from ..staff.accounts import by_email
from ..storage import audit
from ..storage.db import stamp, utc_now, write
from ..storage.schema import migrations
from .common import catalog_or_exit, upgraded_db

# Where each export format goes in the archive; a format not named here goes to data/.
FOLDERS = {
    "codebook": "codebook",
    "codebook-html": "codebook",
    "fhir-questionnaires": "codebook",
    "redcap-dictionary": "codebook",
    "audit-csv": "audit",
    "audit-json": "audit",
}
MANIFEST, SUMS = "MANIFEST.json", "SHA256SUMS"


@click.group("study")
def study_group():
    """Close a study: lock it (read-only), write the final archive, or see its state."""


@study_group.command("lock")
@click.option("--by", "by", required=True, metavar="EMAIL", help="The admin locking the study.")
@click.option("--reason", required=True, help="Why, e.g. 'follow-up ended; database lock'.")
@with_appcontext
def lock(by, reason):
    """Lock the study: nothing can be changed any more (no answers, invites, enrolments or
    changes); exports, the audit log and the sync still work. Audited."""
    _change(study_state.LOCKED, by, reason)
    click.echo(
        "Next: let the sync deliver what is left ('flask --app pro_app sync run', then"
        " 'sync reconcile'), then write the archive ('flask --app pro_app study archive -o DIR')."
    )


@study_group.command("unlock")
@click.option("--by", "by", required=True, metavar="EMAIL", help="The admin unlocking it.")
@click.option("--reason", required=True, help="Why the study must change again.")
@with_appcontext
def unlock(by, reason):
    """Open a locked study again (an admin, with a reason; audited)."""
    _change(study_state.OPEN, by, reason)


def _change(state: str, by: str, reason: str) -> None:
    try:
        row = study_state.change(upgraded_db(), state, by=by, reason=reason)
    except study_state.StateError as exc:
        raise click.ClickException(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise click.ClickException(
            f"cannot change the study's state ({exc}); run 'flask --app pro_app db upgrade'"
        ) from exc
    click.echo(f"The study is {row['state']} (since {row['at']}, by {row['actor']}).")


@study_group.command("status")
@with_appcontext
def status():
    """Print whether the study is open or locked, and every lock and unlock."""
    db = upgraded_db()
    rows = study_state.history(db)
    now = rows[-1] if rows else None
    if now is None or now["state"] == study_state.OPEN:
        click.echo("The study is open.")
    else:
        click.echo(f"The study is locked since {now['at']} by {now['actor']}: {now['reason']}")
    for row in rows:
        click.echo(f"  {row['at']}  {row['state']:<6}  {row['actor']}  {row['reason']}")


# --- The archive -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(root: Path, path: Path, **extra) -> dict:
    return {
        "path": path.relative_to(root).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
        **extra,
    }


def _write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_file(path, Prepared(lambda out: out.write(text), False))


def _exports(root: Path, db, catalog, include_partial: bool) -> list[dict]:
    """Every export format over the whole study, in its folder (named as the export page
    names its files)."""
    entries = []
    filters = Filters(include_partial=include_partial)
    for fmt in FORMATS:
        folder = root / FOLDERS.get(fmt, "data")
        folder.mkdir(exist_ok=True)
        path = folder / f"{catalog.study.id}-{fmt}{SUFFIXES[fmt]}"
        prepared = prepare(fmt, db, catalog, filters, base_url=current_app.config["BASE_URL"])
        rows, _sha = write_file(path, prepared)
        entries.append(_entry(root, path, format=fmt, rows=rows))
        if fmt == "redcap-dictionary":
            for companion, count, _digest in redcap_companions(path, catalog):
                entries.append(_entry(root, companion, format=fmt, rows=count))
    return entries


def _definitions(root: Path, db, catalog) -> list[dict]:
    """Copy each definition file as loaded; check that the copies load to the same hashes."""
    folder = root / "definitions"
    (folder / "questionnaires").mkdir(parents=True)
    (folder / "study").mkdir()
    entries, listed = [], []
    for definition in catalog.questionnaires.values():
        copy = folder / "questionnaires" / Path(definition.source).name
        shutil.copyfile(definition.source, copy)
        entry = _entry(root, copy, format="questionnaire")
        entries.append(entry)
        listed.append(
            {
                "id": definition.id,
                "version": definition.version,
                "content_hash": definition.content_hash,
                "file": entry["path"],
                "sha256": entry["sha256"],
                "in_responses": _stored_hashes(db, definition.id),
            }
        )
    study = catalog.study
    copy = folder / "study" / Path(study.source).name
    shutil.copyfile(study.source, copy)
    study_entry = _entry(root, copy, format="study")
    entries.append(study_entry)
    try:
        again = load_catalog(folder / "questionnaires", copy)
    except DefinitionError as exc:
        raise click.ClickException(f"the copied definitions do not load: {exc}") from exc
    changed = [
        q
        for q, d in catalog.questionnaires.items()
        if again.questionnaires[q].content_hash != d.content_hash
    ]
    if again.study.content_hash != study.content_hash:
        changed.append(study.id)
    if changed:
        raise click.ClickException(
            f"the definition files on disk differ from the definitions loaded at start"
            f" ({', '.join(changed)}): a file changed while the archive was being written."
            " Check it with 'flask --app pro_app questionnaires check', then run the archive"
            " again."
        )
    for entry in listed:
        other = [h for h in entry["in_responses"] if h["content_hash"] != entry["content_hash"]]
        for found in other:
            click.echo(
                f"warning: {found['responses']} response(s) of {entry['id']} were scored with"
                f" version {found['version']} ({found['content_hash'][:12]}...), not with the"
                f" file in this archive ({entry['content_hash'][:12]}...)",
                err=True,
            )
    document = {
        "study": {
            "id": study.id,
            "content_hash": study.content_hash,
            "file": study_entry["path"],
            "sha256": study_entry["sha256"],
        },
        "questionnaires": sorted(listed, key=lambda q: q["id"]),
    }
    path = folder / "definitions.json"
    _write_json(path, document)
    entries.append(_entry(root, path, format="definitions"))
    return entries


def _stored_hashes(db, qid: str) -> list[dict]:
    """The definition versions and hashes that stored responses of qid refer to."""
    return [
        {"version": r[0], "content_hash": r[1], "responses": r[2]}
        for r in db.conn.execute(
            "SELECT definition_version, definition_hash, COUNT(*) FROM responses"
            " WHERE questionnaire = ? GROUP BY 1, 2 ORDER BY 1, 2",
            [qid],
        )
    ]


def _target(output: str) -> Path:
    target = Path(output)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise click.ClickException(
            f"{target} exists and is not an empty folder: name a new folder for the archive"
        )
    if not target.parent.is_dir():
        raise click.ClickException(f"the folder {target.parent} does not exist: create it first")
    return target


def _app_version() -> str:
    try:
        return metadata.version("pro-app")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_archive(root: Path, db, catalog, *, include_partial: bool, state) -> dict:
    """Write every file of the archive into root (one read snapshot); return the manifest."""
    db.conn.execute("BEGIN")  # every file reads the same snapshot of the database
    try:
        head = db.conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        count, problems = audit.verify(db)
        files = _exports(root, db, catalog, include_partial)
        files += _definitions(root, db, catalog)
        manifest = {
            "study": catalog.study.id,
            "created_at": stamp(utc_now()),
            "data_as_of": latest_time(db),
            "include_partial": include_partial,
            "study_state": dict(state) if state else {"state": study_state.OPEN},
            "audit_chain": {
                "rows": count,
                "intact": not problems,
                "problems": [str(p) for p in problems],
                "head_id": head[0] if head else None,
                "head_hash": head[1] if head else None,
            },
            "app_version": _app_version(),
            "schema_migrations": [m.name for m in migrations.applied(db)],
            "files": sorted(files, key=lambda f: f["path"]),
        }
    finally:
        db.conn.execute("ROLLBACK")  # nothing was written: end the read snapshot
    _write_json(root / MANIFEST, manifest)
    listed = manifest["files"] + [_entry(root, root / MANIFEST)]
    sums = "".join(f"{f['sha256']}  {f['path']}\n" for f in sorted(listed, key=lambda f: f["path"]))
    write_file(root / SUMS, Prepared(lambda out: out.write(sums), False))
    return manifest


@study_group.command("archive")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="A new (or empty) folder for the archive.",
)
@click.option(
    "--include-partial",
    is_flag=True,
    help="Data files also hold responses never sent in (marked partial, without scores).",
)
@click.option("--by", "by", metavar="EMAIL", help="The admin or data manager (for the audit log).")
@with_appcontext
def archive(output, include_partial, by):
    """Write the study's final archive to a new folder.

    Every export format (data/, codebook/, audit/ with the audit chain's verdict), a copy
    of every definition file with definitions.json (ids, versions, content hashes, SHA-256),
    MANIFEST.json (each file's size and SHA-256, the study, the newest response time, the
    app version, the schema migrations) and SHA256SUMS (check with 'sha256sum -c
    SHA256SUMS'). The same data gives the same files; only the manifest's created_at, and
    the audit files (which hold earlier archives' audit rows), differ. Lock the study first.
    """
    target = _target(output)
    catalog = catalog_or_exit()
    db = upgraded_db()
    actor, role = "cli", "admin"
    if by:
        staff = by_email(db, by)
        if staff is None or staff["role"] not in ("admin", "data_manager") or staff["disabled_at"]:
            raise click.ClickException(f"{by} is not an active admin or data manager account")
        actor, role = staff["email"], staff["role"]
    state = study_state.current(db)
    if state is None or state["state"] != study_state.LOCKED:
        click.echo(
            "warning: the study is not locked, so answers may still change after this archive."
            " Lock it first: 'flask --app pro_app study lock --by EMAIL --reason TEXT'.",
            err=True,
        )
    partial = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        manifest = build_archive(partial, db, catalog, include_partial=include_partial, state=state)
        if target.exists():
            target.rmdir()  # empty (checked above)
        partial.rename(target)
    except (ValueError, OSError, sqlite3.OperationalError) as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise click.ClickException(f"no archive was written: {exc}") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    sums_sha = _sha256(target / SUMS)
    with write(db):
        audit.record(
            db,
            actor=actor,
            role=role,
            action="study.archive",
            entity="archive",
            entity_id=target.name,
            new={
                "files": len(manifest["files"]) + 1,
                "manifest_sha256": _sha256(target / MANIFEST),
                "sha256sums_sha256": sums_sha,
                "data_as_of": manifest["data_as_of"],
                "locked": manifest["study_state"]["state"] == study_state.LOCKED,
            },
        )
    click.echo(f"Wrote {len(manifest['files']) + 2} files to {target}")
    click.echo(f"SHA256SUMS SHA-256 {sums_sha}")
    chain = manifest["audit_chain"]
    if not chain["intact"]:
        for problem in chain["problems"]:
            click.echo(f"error {problem}", err=True)
        raise click.ClickException(
            "the audit chain is broken (the archive was written; see the audit folder)"
        )
    click.echo(f"Audit chain intact: {chain['rows']} rows.")
    click.echo(f"Check it with: cd {target} && sha256sum -c {SUMS}")
