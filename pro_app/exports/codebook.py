"""The codebook: every export variable with labels, type, unit, codes and rule; CSV and HTML.

Pure: no Flask, no SQL. The HTML page is built with html.escape (no template, no script).
Given the study, the codebook starts with the values of each participant × timepoint that
belong to no questionnaire (as in the wide file): the receipt code and the study's derived
values with their reason columns (questionnaire empty; definition_hash the study's hash).
Each questionnaire's variables follow its `<questionnaire>_source` (phone or paper).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TextIO

from ..domain.model import Questionnaire
from .csv_writers import csv_writer
from .variables import Variable, assessment_variables, source_variable, variables_for

HEADER = (
    "name",
    "questionnaire",
    "kind",
    "label_nb",
    "label_en",
    "type",
    "unit_nb",
    "unit_en",
    "codes_nb",
    "codes_en",
    "rule",
    "description_nb",
    "description_en",
    "definition_version",
    "definition_hash",
)


def codes_text(variable: Variable, language: str) -> str:
    """Codes as `0=Ikke plaget|1=Litt plaget|...` (a code without a label stands alone)."""
    column = 1 if language == "nb" else 2
    return "|".join(f"{c[0]}={c[column]}" if c[column] else c[0] for c in variable.codes)


def row(variable: Variable) -> tuple[str, ...]:
    v = variable
    return (
        v.name,
        v.questionnaire,
        v.kind,
        v.label_nb,
        v.label_en,
        v.type,
        v.unit_nb,
        v.unit_en,
        codes_text(v, "nb"),
        codes_text(v, "en"),
        v.rule,
        v.description_nb,
        v.description_en,
        v.definition_version,
        v.definition_hash,
    )


def _assessment_part(study, definitions: list) -> tuple[Variable, ...]:
    """The study-level variables, for the derived values that read one of the definitions."""
    if study is None:
        return ()
    return assessment_variables(study, [d.id for d in definitions])


def write_codebook_csv(
    stream: TextIO,
    definitions: Iterable[Questionnaire],
    *,
    delimiter: str = ",",
    bom: bool = False,
    study=None,
) -> int:
    """Write one row per variable of each definition (in the order given); return the count.

    study: also list the receipt code and the derived values (first, as in the wide file).
    """
    writer = csv_writer(stream, delimiter, bom)
    writer.writerow(HEADER)
    definitions = list(definitions)
    count = 0
    for variable in _assessment_part(study, definitions):
        writer.writerow(row(variable))
        count += 1
    for definition in definitions:
        for variable in (source_variable(definition), *variables_for(definition)):
            writer.writerow(row(variable))
            count += 1
    return count


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111}"
    "table{border-collapse:collapse;margin-bottom:2rem;width:100%}"
    "th,td{border:1px solid #bbb;padding:.3rem .5rem;vertical-align:top;text-align:left}"
    "th{border-bottom:2px solid #555}code{font-size:.95em}ul{margin:0;padding-left:1.1rem}"
)
COLUMNS = ("Variabel", "Etikett (nb)", "Label (en)", "Type", "Enhet", "Koder", "Regel")


def _codes_html(variable: Variable) -> str:
    if not variable.codes:
        return ""
    lines = "".join(
        f"<li><code>{escape(code)}</code> {escape(nb)}"
        + (f" / <span lang='en'>{escape(en)}</span>" if en and en != nb else "")
        + "</li>"
        for code, nb, en in variable.codes
    )
    return f"<ul>{lines}</ul>"


def _variable_html(v: Variable) -> str:
    unit = " / ".join(u for u in dict.fromkeys((v.unit_nb, v.unit_en)) if u)
    rule = escape(v.rule)
    if v.description_nb:
        rule += f"<br>{escape(v.description_nb)}"
    cells = (
        f"<code>{escape(v.name)}</code>",
        escape(v.label_nb),
        f"<span lang='en'>{escape(v.label_en)}</span>",
        escape(v.type),
        escape(unit),
        _codes_html(v),
        rule,
    )
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"


def _table_head() -> str:
    return (
        "<table>\n<thead><tr>"
        + "".join(f'<th scope="col">{escape(c)}</th>' for c in COLUMNS)
        + "</tr></thead>\n<tbody>\n"
    )


def write_codebook_html(
    stream: TextIO, definitions: Iterable[Questionnaire], title: str, *, study=None
) -> int:
    """Write a readable page, one table per questionnaire; return the number of variables.

    study: first a table of the receipt code and the derived values of each timepoint.
    """
    stream.write(
        '<!DOCTYPE html>\n<html lang="nb">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n"
    )
    definitions = list(definitions)
    count = 0
    part = _assessment_part(study, definitions)
    if part:
        stream.write(
            '<section id="study-values">\n<h2>Tidspunktet og avledede verdier</h2>\n'
            "<p>Kvitteringskoden og studiens avledede verdier, beregnet ved eksport fra de "
            f"lagrede skårene; protokollens innholds-hash <code>{escape(study.content_hash)}"
            "</code>. <span lang='en'>The receipt code and the study's derived values, "
            "computed at export from the stored scores.</span></p>\n" + _table_head()
        )
        for variable in part:
            stream.write(_variable_html(variable))
            count += 1
        stream.write("</tbody>\n</table>\n</section>\n")
    for d in definitions:
        stream.write(
            f'<section id="{escape(d.id)}">\n<h2>{escape(d.title.nb)} '
            f"(<code>{escape(d.id)}</code>)</h2>\n"
            f"<p>Versjon {escape(d.version)}, innholds-hash <code>{escape(d.content_hash)}"
            f"</code>. <span lang='en'>{escape(d.title.en)}</span></p>\n" + _table_head()
        )
        for variable in (source_variable(d), *variables_for(d)):
            stream.write(_variable_html(variable))
            count += 1
        stream.write("</tbody>\n</table>\n</section>\n")
    stream.write("</body>\n</html>\n")
    return count
