"""Problems from the services, said in the reader's language on staff pages."""

from __future__ import annotations

from flask_babel import gettext


def _l(text: str) -> str:
    """Mark a text for the catalogue (pybabel extracts _l); translated when said."""
    return text


TEXTS = {
    "code_pattern": _l("The study code %(code)s does not match the pattern %(pattern)s."),
    "unknown_site": _l("Unknown site %(site)s (sites: %(sites)s)."),
    "language": _l("Choose Norwegian (bokmål) or English."),
    "email": _l("%(email)s is not an e-mail address."),
    "phone": _l("%(phone)s is not a mobile number: write 8 digits, or + and the country code."),
    "day0_order": _l("Day 0 (%(day0)s) must be after the enrolment date (%(enrolled)s)."),
    "contact_key": _l("Contact details cannot be stored: the contact key is not set up."),
    "already_enrolled": _l("The study code %(code)s is already enrolled."),
    "day0_set": _l("Day 0 is already set (%(day0)s): give a reason to correct it."),
    "withdraw_reason": _l("Give the reason for the withdrawal."),
    "already_withdrawn": _l("%(code)s is already withdrawn from the study."),
    "day0_reason": _l("Give the reason for changing day 0."),
    "day0_frozen": _l("Day 0 can no longer change: %(timepoint)s already has answers."),
    "password_short": _l("The password must have at least 8 characters."),
    "password_long": _l("The password may have at most 128 characters."),
    "password_common": _l("The password is too common or too easy to guess. Choose another."),
}


def say(error: Exception) -> str:
    """The error in the reader's language, where its problems have keys."""
    problems = getattr(error, "problems", None)
    if problems:
        return " ".join(gettext(TEXTS[key], **values) for key, values in problems)
    key = getattr(error, "key", None)
    if key in TEXTS:
        return gettext(TEXTS[key])
    return str(error)
