"""Labels for SPSS and Stata files, cut to the formats' limits without breaking a character."""

from __future__ import annotations

from ..domain.answers import DECLINED
from .variables import DECLINED_LABEL

LANGUAGES = ("nb", "en")
NOT_APPLICABLE_LABEL = ("Ikke aktuelt", "Not applicable")
ELLIPSIS = "…"


def cut_chars(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def cut_bytes(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return text.encode()[:room].decode(errors="ignore") + ELLIPSIS


def variable_label(column, language: str) -> str:
    return column.label_nb if language == "nb" else column.label_en


def missing_label(word: str, language: str) -> str:
    pair = DECLINED_LABEL if word == DECLINED else NOT_APPLICABLE_LABEL
    return pair[LANGUAGES.index(language)]


def code_labels(column, language: str, numeric: bool) -> dict:
    labels = {}
    for code, nb, en in column.codes:
        text = nb if language == "nb" else en
        if not text:
            continue  # a scale's unlabelled middle codes
        if not numeric:
            labels[code] = text
            continue
        try:
            labels[float(code)] = text
        except ValueError:
            continue
    return labels
