"""CDISC ODM 1.3.2 XML: the study's metadata from the definitions, and the clinical data.

Pure: no Flask, no SQL; standard library only (the XML is built as text with escaping,
so records stream straight to the output and the bytes depend only on the input).

OIDs (the contract): `SE.<timepoint>`, `F.<questionnaire>`, `IG.<questionnaire>`,
`IT.<questionnaire>.<item>`; SubjectKey = the study code. Also `S.<study>` (Study),
`MDV.<study>.<hash>` (MetaDataVersion; the hash covers the study and definition hashes),
`CL.<questionnaire>.<variable>` (CodeList), `MT.<questionnaire>.<score>` (MethodDef),
`LOC.<site>` (Location, referenced by each subject's SiteRef).

Choices the ODM 1.3.2 XSD and specification leave to us:
- Scores are ItemDefs (`IT.<questionnaire>.<score>`, Origin="Derived") after the items,
  with a Description that says they are derived and how, and a MethodDef (Computation)
  referenced by the ItemRef's MethodOID. Their values are written unrounded.
- Multiple choice: ItemData carries one Value, and an ItemOID should occur once per
  ItemGroupData, so a repeated ItemData is not used. As in the other exports
  (variables.py), the item's own ItemDef (text) holds the chosen codes joined with '|'
  (or the null reason), and one boolean ItemDef per option, `IT.<q>.<item>___<code>`,
  holds 1 (chosen) or 0 (not chosen); the option ItemData are absent when the item has
  no list of codes (missing, declined or not applicable).
- Declined and not applicable: ItemData with IsNull="Yes" and no Value (the XSD's own
  null marker), with an Annotation holding a Comment (the reason in words) and a Flag
  whose FlagValue is `declined` or `not_applicable` from the code list `CL.NULL_REASON`.
  A score that is null with a stored reason is written the same way, its reason in the
  Comment (no Flag). Missing answers and scores without a reason have no ItemData.
- Each FormData has an Annotation: a Comment with the response's uuid and version, the
  definition version and hash and the submission time, and a Flag `submitted` or
  `partial` (code list `CL.RESPONSE_STATUS`); partial responses appear only when the
  records include them.
- declined / not_applicable are not CodedValues of an item's CodeList: they never
  appear as values.
- Text cannot hold the characters XML 1.0 forbids (most C0 controls); such a character
  in a free-text answer is written as U+FFFD. Newlines, tabs and carriage returns in
  attribute values are written as character references, so they read back unchanged.

- The values of a participant × timepoint that belong to no questionnaire are a form of
  their own, `F.derived` with the group `IG.derived`, referenced (not mandatory) by every
  StudyEventDef after the questionnaires: `IT.derived.receipt_code` (text) and each
  derived value of the study, `IT.derived.<id>` (boolean, Origin="Derived", MethodDef
  `MT.derived.<id>`). Its FormData is written when the timepoint has a receipt code or a
  derived value; a null derived value is IsNull="Yes" with its reason in the Comment, as a
  null score. A questionnaire may therefore not be called `derived`.

Records must arrive in export order (study code, then protocol timepoint order, then
questionnaire order), as `source.records` yields them; a subject, timepoint or form
that comes back after another one raises ValueError.
"""

from __future__ import annotations

import hashlib
import math
import re
from decimal import Decimal
from typing import TextIO

from ...domain.answers import DECLINED, NON_ANSWERS, NOT_APPLICABLE
from ...domain.model import MultipleChoice, Text
from ..model import PARTIAL
from ..variables import Variable, assessment_variables, study_order, variables_for

NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
DERIVED = "derived"  # the form and item group of the assessment's own values
NULL_REASONS = (
    (DECLINED, "Vil ikke svare", "Declined to answer"),
    (NOT_APPLICABLE, "Ikke aktuelt", "Not applicable"),
)
RESPONSE_STATUSES = (
    ("submitted", "Sendt inn", "Submitted"),
    (PARTIAL, "Delvis besvart, ikke sendt inn", "Partial response, not submitted"),
)
ASSESSMENT_TITLE = (
    "Tidspunktet: kvitteringskode og avledede verdier",
    "The timepoint: receipt code and derived values",
)
DATA_TYPES = {
    "integer": "integer",
    "decimal": "float",
    "text": "text",
    "date": "date",
    "boolean": "boolean",
    "category": "text",
}
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ATTRIBUTE = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _clean(value) -> str:
    return _FORBIDDEN.sub("\ufffd", str(value))


class _Xml:
    """Indented XML text written line by line to a stream."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.depth = 0

    def _tag(self, name: str, attributes: dict) -> str:
        parts = [name]
        for key, value in attributes.items():
            if value is not None:
                parts.append(f'{key}="{_clean(value).translate(_ATTRIBUTE)}"')
        return " ".join(parts)

    def line(self, text: str) -> None:
        self.stream.write("  " * self.depth + text + "\n")

    def open(self, name: str, **attributes) -> None:
        self.line(f"<{self._tag(name, attributes)}>")
        self.depth += 1

    def close(self, name: str) -> None:
        self.depth -= 1
        self.line(f"</{name}>")

    def empty(self, name: str, **attributes) -> None:
        self.line(f"<{self._tag(name, attributes)}/>")

    def leaf(self, name: str, text, **attributes) -> None:
        self.line(f"<{self._tag(name, attributes)}>{_clean(text).translate(_TEXT)}</{name}>")

    def translated(self, name: str, nb: str, en: str) -> None:
        """An element holding TranslatedText in Norwegian and English."""
        self.open(name)
        self.leaf("TranslatedText", nb, **{"xml:lang": "nb"})
        self.leaf("TranslatedText", en, **{"xml:lang": "en"})
        self.close(name)


def item_oid(questionnaire: str, name: str) -> str:
    return f"IT.{questionnaire}.{name}"


def metadata_oid(catalog) -> str:
    """A MetaDataVersion OID that changes when the study or a definition changes."""
    study = catalog.study
    digest = hashlib.sha256(study.content_hash.encode())
    for qid in study_order(study):
        definition = catalog.questionnaires[qid]
        digest.update(f"\n{qid} {definition.version} {definition.content_hash}".encode())
    return f"MDV.{study.id}.{digest.hexdigest()[:12]}"


def format_value(variable: Variable, value) -> str:
    """One value as ODM text: codes as they are, booleans 1/0, decimals without exponent."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{variable.questionnaire}.{variable.name}: {value} is not finite")
        return format(Decimal(repr(value)), "f")
    if isinstance(value, list | tuple):
        return "|".join(format_value(variable, v) for v in value)
    return str(value)


def _value_codes(variable: Variable) -> tuple[tuple[str, str, str], ...]:
    """The variable's CodeList entries: real codes only, each with a label in nb and en."""
    if variable.type == "boolean":
        return ()  # a boolean needs no code list (and ODM code lists cannot be boolean)
    found = []
    for code, nb, en in variable.codes:
        if code in NON_ANSWERS:
            continue
        found.append((code, nb or code, en or code))
    return tuple(found)


def _is_multiple(definition, variable: Variable) -> bool:
    return (
        variable.kind == "item"
        and variable.option is None
        and isinstance(definition.item(variable.source), MultipleChoice)
    )


def _codelist_type(codes) -> str:
    return "integer" if all(re.fullmatch(r"-?\d+", c) for c, _, _ in codes) else "text"


class _Metadata:
    """What the MetaDataVersion defines, in the order ODM wants its elements."""

    def __init__(self, catalog):
        self.study = catalog.study
        self.forms = study_order(self.study)
        if DERIVED in self.forms:
            raise ValueError(f"a questionnaire may not be called '{DERIVED}' in ODM (F.{DERIVED})")
        # The receipt code and derived values; ODM says why a value is null in its ItemData.
        self.assessment = tuple(
            v for v in assessment_variables(self.study) if v.kind in ("assessment", "derived")
        )
        self.definitions = {q: catalog.questionnaires[q] for q in self.forms}
        self.variables = {q: variables_for(d) for q, d in self.definitions.items()}
        self.codes = {}
        for qid, variables in self.variables.items():
            for v in variables:
                codes = () if _is_multiple(self.definitions[qid], v) else _value_codes(v)
                if codes:
                    self.codes[(qid, v.name)] = codes

    def write(self, xml: _Xml, oid: str) -> None:
        study = self.study
        xml.open("MetaDataVersion", OID=oid, Name=f"{study.id} ePRO definitions")
        xml.open("Protocol")
        xml.translated("Description", study.title.nb, study.title.en)
        for number, timepoint in enumerate(study.timepoints, 1):
            xml.empty(
                "StudyEventRef",
                StudyEventOID=f"SE.{timepoint.id}",
                OrderNumber=number,
                Mandatory="Yes",
            )
        xml.close("Protocol")
        for timepoint in study.timepoints:
            xml.open(
                "StudyEventDef",
                OID=f"SE.{timepoint.id}",
                Name=timepoint.id,
                Repeating="No",
                Type="Scheduled",
            )
            xml.translated("Description", timepoint.label.nb, timepoint.label.en)
            for number, qid in enumerate(timepoint.questionnaires, 1):
                xml.empty("FormRef", FormOID=f"F.{qid}", OrderNumber=number, Mandatory="Yes")
            xml.empty(
                "FormRef",
                FormOID=f"F.{DERIVED}",
                OrderNumber=len(timepoint.questionnaires) + 1,
                Mandatory="No",
            )
            xml.close("StudyEventDef")
        for qid, definition in self.definitions.items():
            xml.open("FormDef", OID=f"F.{qid}", Name=qid, Repeating="No")
            xml.translated("Description", definition.title.nb, definition.title.en)
            xml.empty("ItemGroupRef", ItemGroupOID=f"IG.{qid}", OrderNumber=1, Mandatory="Yes")
            xml.close("FormDef")
        xml.open("FormDef", OID=f"F.{DERIVED}", Name=DERIVED, Repeating="No")
        xml.translated("Description", *ASSESSMENT_TITLE)
        xml.empty("ItemGroupRef", ItemGroupOID=f"IG.{DERIVED}", OrderNumber=1, Mandatory="Yes")
        xml.close("FormDef")
        for qid, definition in self.definitions.items():
            xml.open("ItemGroupDef", OID=f"IG.{qid}", Name=qid, Repeating="No")
            xml.translated("Description", definition.title.nb, definition.title.en)
            for number, v in enumerate(self.variables[qid], 1):
                xml.empty(
                    "ItemRef",
                    ItemOID=item_oid(qid, v.name),
                    OrderNumber=number,
                    Mandatory=self._mandatory(definition, v),
                    MethodOID=f"MT.{qid}.{v.name}" if v.kind == "score" else None,
                )
            xml.close("ItemGroupDef")
        xml.open("ItemGroupDef", OID=f"IG.{DERIVED}", Name=DERIVED, Repeating="No")
        xml.translated("Description", *ASSESSMENT_TITLE)
        for number, v in enumerate(self.assessment, 1):
            xml.empty(
                "ItemRef",
                ItemOID=item_oid(DERIVED, v.name),
                OrderNumber=number,
                Mandatory="No",
                MethodOID=f"MT.{DERIVED}.{v.name}" if v.kind == "derived" else None,
            )
        xml.close("ItemGroupDef")
        for qid, definition in self.definitions.items():
            for v in self.variables[qid]:
                self._item_def(xml, definition, v)
        for v in self.assessment:
            self._assessment_item_def(xml, v)
        for (qid, name), codes in self.codes.items():
            xml.open("CodeList", OID=f"CL.{qid}.{name}", Name=name, DataType=_codelist_type(codes))
            self._items(xml, codes)
            xml.close("CodeList")
        for oid, codes in (
            ("CL.NULL_REASON", NULL_REASONS),
            ("CL.RESPONSE_STATUS", RESPONSE_STATUSES),
        ):
            xml.open("CodeList", OID=oid, Name=oid[3:].lower(), DataType="text")
            self._items(xml, codes)
            xml.close("CodeList")
        for qid in self.forms:
            for v in self.variables[qid]:
                if v.kind == "score":
                    xml.open("MethodDef", OID=f"MT.{qid}.{v.name}", Name=v.name, Type="Computation")
                    xml.translated("Description", v.rule, v.rule)
                    xml.close("MethodDef")
        for v in self.assessment:
            if v.kind == "derived":
                xml.open("MethodDef", OID=f"MT.{DERIVED}.{v.name}", Name=v.name, Type="Computation")
                xml.translated("Description", v.rule, v.rule)
                xml.close("MethodDef")
        xml.close("MetaDataVersion")

    @staticmethod
    def _assessment_item_def(xml: _Xml, v: Variable) -> None:
        derived = v.kind == "derived"
        xml.open(
            "ItemDef",
            OID=item_oid(DERIVED, v.name),
            Name=v.name,
            DataType=DATA_TYPES[v.type],
            Origin="Derived" if derived else None,
        )
        if derived:
            detail_nb = f" {v.description_nb}" if v.description_nb else ""
            detail_en = f" {v.description_en}" if v.description_en else ""
            xml.translated(
                "Description",
                f"{v.label_nb}. Avledet verdi for studien, beregnet: {v.rule}.{detail_nb}",
                f"{v.label_en}. Derived study value, computed: {v.rule}.{detail_en}",
            )
        else:
            xml.translated(
                "Description",
                f"{v.label_nb}: gis når alle skjemaene på tidspunktet er sendt inn.",
                f"{v.label_en}: given when every questionnaire of the timepoint is submitted.",
            )
        xml.close("ItemDef")

    @staticmethod
    def _items(xml: _Xml, codes) -> None:
        for number, (code, nb, en) in enumerate(codes, 1):
            xml.open("CodeListItem", CodedValue=code, OrderNumber=number)
            xml.translated("Decode", nb, en)
            xml.close("CodeListItem")

    @staticmethod
    def _mandatory(definition, v: Variable) -> str:
        if v.kind == "score" or v.option is not None:
            return "No"
        item = definition.item(v.source)
        return "No" if item.skippable or item.show_if is not None else "Yes"

    def _item_def(self, xml: _Xml, definition, v: Variable) -> None:
        qid = definition.id
        multiple = _is_multiple(definition, v)
        item = definition.item(v.source) if v.kind == "item" else None
        xml.open(
            "ItemDef",
            OID=item_oid(qid, v.name),
            Name=v.name,
            DataType=DATA_TYPES[v.type],
            Length=item.max_length if isinstance(item, Text) else None,
            Origin="Derived" if v.kind == "score" else None,
        )
        if v.kind == "score":
            detail_nb = f" {v.description_nb}" if v.description_nb else ""
            detail_en = f" {v.description_en}" if v.description_en else ""
            xml.translated(
                "Description",
                f"{v.label_nb}. Avledet verdi (skåre), beregnet: {v.rule}.{detail_nb}",
                f"{v.label_en}. Derived value (score), computed: {v.rule}.{detail_en}",
            )
        elif multiple:
            xml.translated(
                "Description",
                f"{v.label_nb}. Kodene til valgte alternativer, skilt med '|'; "
                f"ett ja/nei-element per alternativ følger ({v.name}___<kode>).",
                f"{v.label_en}. The codes of the chosen options joined with '|'; "
                f"one boolean item per option follows ({v.name}___<code>).",
            )
        else:
            xml.translated("Description", v.label_nb, v.label_en)
        if item is not None:
            if v.option is None:
                xml.translated("Question", item.text.nb, item.text.en)
            else:
                label = next(o.label for o in item.options if o.code == v.option)
                xml.translated(
                    "Question",
                    f"{item.text.nb}: {label.nb} (1 = valgt, 0 = ikke valgt)",
                    f"{item.text.en}: {label.en} (1 = selected, 0 = not selected)",
                )
        if (qid, v.name) in self.codes:
            xml.empty("CodeListRef", CodeListOID=f"CL.{qid}.{v.name}")
        xml.close("ItemDef")
