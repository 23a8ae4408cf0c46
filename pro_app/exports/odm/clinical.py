"""ODM ClinicalData: subjects, study events, forms and item values, with null reasons."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from ...domain.answers import NON_ANSWERS
from ..model import AssessmentValues, ExportRecord
from ..variables import Variable, value_of
from .metadata import (
    DERIVED,
    NAMESPACE,
    NULL_REASONS,
    _Metadata,
    _Xml,
    format_value,
    item_oid,
    metadata_oid,
)


def _null(xml: _Xml, oid: str, comment: str, flag: str | None) -> None:
    xml.open("ItemData", ItemOID=oid, IsNull="Yes")
    xml.open("Annotation", SeqNum=1)
    xml.leaf("Comment", comment)
    if flag is not None:
        xml.open("Flag")
        xml.leaf("FlagValue", flag, CodeListOID="CL.NULL_REASON")
        xml.close("Flag")
    xml.close("Annotation")
    xml.close("ItemData")


def _form_data(xml: _Xml, record: ExportRecord, variables: tuple[Variable, ...]) -> None:
    qid = record.questionnaire
    xml.open("FormData", FormOID=f"F.{qid}")
    xml.open("Annotation", SeqNum=1)
    xml.leaf(
        "Comment",
        f"response {record.response_uuid} version {record.response_version}; "
        f"definition {qid} {record.definition_version} {record.definition_hash}; "
        f"started {record.started_at}; submitted {record.submitted_at or '-'}",
    )
    xml.open("Flag")
    xml.leaf("FlagValue", record.status, CodeListOID="CL.RESPONSE_STATUS")
    xml.close("Flag")
    xml.close("Annotation")
    xml.open("ItemGroupData", ItemGroupOID=f"IG.{qid}")
    labels = {code: en for code, _, en in NULL_REASONS}
    for v in variables:
        oid = item_oid(qid, v.name)
        if v.kind == "score":
            score = record.scores.get(v.source)
            if score is None:
                continue
            if score.value is None:
                if score.reason:
                    _null(xml, oid, score.reason, None)
                continue
            xml.empty("ItemData", ItemOID=oid, Value=format_value(v, score.value))
            continue
        value = value_of(v, record)
        if value is None or value == []:
            continue
        if v.option is None and value in NON_ANSWERS:
            _null(xml, oid, labels[value], value)
            continue
        xml.empty("ItemData", ItemOID=oid, Value=format_value(v, value))
    xml.close("ItemGroupData")
    xml.close("FormData")


def _assessment_data(xml: _Xml, values: AssessmentValues | None, variables) -> None:
    """The timepoint's own form (receipt code, derived values), when it has any of them."""
    if values is None or (values.receipt_code is None and not values.derived):
        return
    xml.open("FormData", FormOID=f"F.{DERIVED}")
    xml.open("ItemGroupData", ItemGroupOID=f"IG.{DERIVED}")
    for v in variables:
        oid = item_oid(DERIVED, v.name)
        if v.kind == "assessment":
            if values.receipt_code is not None:
                xml.empty("ItemData", ItemOID=oid, Value=values.receipt_code)
            continue
        result = values.derived.get(v.source)
        if result is None:
            continue
        if result.value is None:
            if result.reason:
                _null(xml, oid, result.reason, None)
            continue
        xml.empty("ItemData", ItemOID=oid, Value=format_value(v, result.value))
    xml.close("ItemGroupData")
    xml.close("FormData")


def write_odm(
    stream: TextIO,
    catalog,
    records: Iterable[ExportRecord],
    *,
    created: str,
    file_oid: str | None = None,
) -> int:
    """Write an ODM 1.3.2 Snapshot of the records; return the number of records (each a
    questionnaire's FormData; a timepoint's own F.derived form is not counted).

    created: the CreationDateTime (ISO 8601); pass the latest submission time, not the
    clock, so the same data gives the same bytes. file_oid defaults to one made of the
    study id and created. The stream is text; write it as UTF-8 (the declaration says so).
    """
    study = catalog.study
    metadata = _Metadata(catalog)
    mdv = metadata_oid(catalog)
    xml = _Xml(stream)
    xml.line('<?xml version="1.0" encoding="UTF-8"?>')
    xml.open(
        "ODM",
        xmlns=NAMESPACE,
        FileType="Snapshot",
        FileOID=file_oid or f"ODM.{study.id}.{created}",
        CreationDateTime=created,
        ODMVersion="1.3.2",
        Originator="pro_app",
    )
    xml.open("Study", OID=f"S.{study.id}")
    xml.open("GlobalVariables")
    xml.leaf("StudyName", study.id)
    xml.leaf("StudyDescription", f"{study.title.en} / {study.title.nb}")
    xml.leaf("ProtocolName", study.registration or study.id)
    xml.close("GlobalVariables")
    metadata.write(xml, mdv)
    xml.close("Study")
    xml.open("AdminData", StudyOID=f"S.{study.id}")
    for site in study.sites:
        xml.open("Location", OID=f"LOC.{site.id}", Name=site.name, LocationType="Site")
        xml.empty(
            "MetaDataVersionRef",
            StudyOID=f"S.{study.id}",
            MetaDataVersionOID=mdv,
            EffectiveDate=created[:10],
        )
        xml.close("Location")
    xml.close("AdminData")
    xml.open("ClinicalData", StudyOID=f"S.{study.id}", MetaDataVersionOID=mdv)
    count = 0
    done_subjects: set[str] = set()
    subject = timepoint = None
    done_events: set[str] = set()
    done_forms: set[str] = set()
    values = None  # the current timepoint's receipt code and derived values

    def close_event():
        _assessment_data(xml, values, metadata.assessment)
        xml.close("StudyEventData")

    for record in records:
        if record.questionnaire not in metadata.variables:
            raise ValueError(f"questionnaire '{record.questionnaire}' is not in the study")
        if record.study_code != subject:
            if subject is not None:
                close_event()
                xml.close("SubjectData")
                done_subjects.add(subject)
            if record.study_code in done_subjects:
                raise ValueError(f"records are not in export order ({record.study_code})")
            subject, timepoint = record.study_code, None
            done_events = set()
            xml.open("SubjectData", SubjectKey=subject)
            xml.empty("SiteRef", LocationOID=f"LOC.{record.site}")
        if record.timepoint != timepoint:
            if timepoint is not None:
                close_event()
                done_events.add(timepoint)
            if record.timepoint in done_events:
                raise ValueError(f"records are not in export order ({subject} {record.timepoint})")
            timepoint = record.timepoint
            values = record.assessment
            done_forms = set()
            xml.open("StudyEventData", StudyEventOID=f"SE.{timepoint}")
        if record.questionnaire in done_forms:
            raise ValueError(f"two responses to {record.questionnaire} at {subject} {timepoint}")
        done_forms.add(record.questionnaire)
        _form_data(xml, record, metadata.variables[record.questionnaire])
        count += 1
    if subject is not None:
        close_event()
        xml.close("SubjectData")
    xml.close("ClinicalData")
    xml.close("ODM")
    return count
