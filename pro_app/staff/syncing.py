"""The sync page for data managers: per target, what waits, what is dead, and why."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ..database import get_db
from ..sync import queue
from ..sync.config import TargetConfigError, parse_targets
from .access import staff_route
from .blueprint import bp

SYNC_ROLES = ("admin", "data_manager")


def _targets():
    """The configured targets and the configuration's problem (one of them is empty)."""
    try:
        return parse_targets(current_app.config.get("SYNC_TARGETS")), None
    except TargetConfigError as exc:
        return (), str(exc)


@bp.route("/sync")
@staff_route(*SYNC_ROLES)
def sync_status():
    """Pending and dead counts, oldest pending, last success and error, per target."""
    targets, problem = _targets()
    db = get_db()
    return render_template(
        "staff/sync.html",
        summary=queue.summary(db, targets),
        dead=queue.dead_messages(db) if targets else [],
        problem=problem,
    )


@bp.route("/sync/retry", methods=["POST"])
@staff_route(*SYNC_ROLES)
def sync_retry():
    """Queue dead messages again: all of a target's, or one (audited)."""
    targets, _problem = _targets()
    names = {t.name for t in targets}
    target = request.form.get("target", "")
    message_id = request.form.get("message_id") or None
    if target not in names:
        flash(_("Choose a target."))
        return redirect(url_for("staff.sync_status"))
    count = queue.retry_dead(
        get_db(),
        target=target,
        message_id=message_id,
        actor=g.staff["email"],
        role=g.staff["role"],
    )
    flash(_("%(count)d message(s) will be sent again.", count=count))
    return redirect(url_for("staff.sync_status"))
