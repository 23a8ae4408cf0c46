"""How the review, history and change request pages say things: answers, scores, sources,
statuses and problems, in the reader's language."""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import gettext as _

from ..catalog import current_catalog
from ..domain.answers import DECLINED, NOT_APPLICABLE
from ..domain.model import BandsRule, CutoffRule, MultipleChoice, SingleChoice, YesNo
from ..storage.db import parse_stamp


def _l(text: str) -> str:
    """Mark a text for the catalogue (pybabel extracts _l); translated when said."""
    return text


TEXTS = {
    "value_missing": _l("Give the new value."),
    "value": _l("%(value)s is not an answer this question allows. Allowed: %(allowed)s."),
    "item": _l("This question is not shown with the current answers, so it cannot be corrected."),
    "same": _l("The new value is the same as the current answer."),
    "reason": _l("Give the reason for the correction."),
    "source": _l("Give the source of the new value, for example «participant phoned on 3 March»."),
    "note": _l("Give the reason for rejecting or withdrawing the request."),
    "reason_long": _l("The text may have at most %(max)s characters."),
    "source_long": _l("The text may have at most %(max)s characters."),
    "note_long": _l("The text may have at most %(max)s characters."),
    "decided": _l("This request is already decided (%(status)s)."),
    "same_person": _l(
        "You made this request. Another investigator or coordinator at the site must approve it."
    ),
    "password": _l("Type your password to approve the correction."),
    "stale": _l(
        "The response has changed since the request was made (it is now version %(version)s)."
        " Reject this request and make a new one."
    ),
    "definition": _l(
        "The questionnaire's definition has changed since these answers were given"
        " (%(stored)s, now %(current)s). Ask the data manager before correcting them."
    ),
    "name": _l("Write your full name as it is to appear on the signature."),
    "name_long": _l("The name may have at most 200 characters."),
    "meaning": _l("Choose what the signature means."),
    "nothing": _l("Nothing is submitted at this timepoint yet, so there is nothing to sign."),
    "wrong_password": _l("The password is wrong."),
    "wrong_code": _l("The code is wrong or already used. Type the next code the app shows."),
    "blocked": _l("Too many failed attempts. Wait 15 minutes and try again."),
}


class FormProblem(ValueError):
    """A problem with the form itself (the password or the code), said by its key."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(key)


def say(error: Exception) -> str:
    """The problems of a CorrectionError, SignError or FormProblem in the reader's language."""
    problems = getattr(error, "problems", None) or [(getattr(error, "key", ""), {})]
    said = []
    for key, values in problems:
        if key not in TEXTS:
            said.append(str(error))
            continue
        values = dict(values)
        if "allowed" in values:
            values["allowed"] = allowed_words(values["allowed"])
        if "status" in values:
            values["status"] = status_words()[values["status"]]
        said.append(_(TEXTS[key], **values))
    return " ".join(said)


def allowed_words(allowed: dict) -> str:
    parts = []
    if allowed["codes"]:
        codes = list(allowed["codes"])
        run = codes == list(range(min(codes), max(codes) + 1)) and len(codes) > 2
        parts.append(f"{min(codes)}–{max(codes)}" if run else ", ".join(map(str, codes)))
    if allowed["range"]:
        parts.append(f"{allowed['range'][0]}–{allowed['range'][1]}")
    if allowed["text"]:
        parts.append(_("text of up to %(max)s characters", max=allowed["text"]))
    if allowed["date"]:
        parts.append(_("a date as YYYY-MM-DD"))
    if allowed["declined"]:
        parts.append(DECLINED)
    if allowed["not_applicable"]:
        parts.append(NOT_APPLICABLE)
    return ", ".join(parts)


def status_words() -> dict:
    return {
        "requested": _("awaiting approval"),
        "approved": _("approved"),
        "rejected": _("rejected"),
        "withdrawn": _("withdrawn by the requester"),
    }


def source_words(source: str) -> str:
    return {"phone": _("participant's phone"), "paper": _("paper form")}.get(source, source)


def _language() -> str:
    return str(get_locale())


def answer_words(item, value) -> str:
    """An answer for staff: the code and its label, or what it stands for."""
    language = _language()
    if value is None:
        return _("no answer")
    if value == DECLINED:
        return _("declined (chose not to answer)")
    if value == NOT_APPLICABLE:
        return _("not applicable")
    if isinstance(item, SingleChoice | MultipleChoice):
        labels = {o.code: o.label.get(language) for o in item.options}
        codes = value if isinstance(value, list) else [value]
        return "; ".join(f"{c} – {labels.get(c, '?')}" for c in codes)
    if isinstance(item, YesNo):
        return f"{value} – {(item.yes if value == 1 else item.no).get(language)}"
    unit = getattr(item, "unit", None)
    return f"{value} {unit.get(language)}" if unit is not None else str(value)


def score_words(definition, name: str, value) -> str:
    """A stored score for staff: rounded as the definition says, bands by their label."""
    if value is None:
        return _("not computed")
    rule = next((r for r in definition.scores if r.id == name), None) if definition else None
    if isinstance(rule, BandsRule):
        band = next((b for b in rule.bands if b.value == value), None)
        return band.label.get(_language()) if band else str(value)
    if isinstance(value, bool) or isinstance(rule, CutoffRule):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        decimals = getattr(rule, "decimals", 2)
        return f"{value:.{decimals}f}"
    return str(value)


def local_time(text: str | None) -> str:
    """A stored UTC time as the study's local time, to the minute."""
    if not text:
        return "–"
    moment = parse_stamp(text).astimezone(current_catalog().study.zone)
    return moment.strftime("%Y-%m-%d %H:%M")


def meaning_words(meaning: str) -> str:
    return {"reviewed": _("Reviewed: I have reviewed these responses")}.get(meaning, meaning)


def questionnaire_title(qid: str) -> str:
    definition = current_catalog().questionnaires.get(qid)
    if definition is None:
        return qid
    return (definition.short_title or definition.title).get(_language())


def score_label(definition, name: str) -> str:
    rule = next((r for r in definition.scores if r.id == name), None) if definition else None
    return f"{rule.label.get(_language())} ({name})" if rule else name
