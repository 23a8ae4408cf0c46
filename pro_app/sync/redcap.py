"""REDCap target: check the project against our data dictionary, then import records.

Before the first send the project's metadata (and, for a longitudinal project, its events
and form-event mapping) is read and every field we send is checked: it exists, on the same
form, with a compatible type, and its choices include our codes. A mismatch refuses the
whole target with one report (nothing is sent), because REDCap would otherwise reject or,
worse, quietly store values under another meaning.

A response is imported as flat JSON with overwriteBehavior=normal: the participant row on
the first event (site) and the questionnaire's form on its timepoint's event, with
`<form>_complete` = 2. Importing the same rows again changes nothing, so a resend after a
lost acknowledgement is harmless.
"""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlencode

from ..domain.answers import NON_ANSWERS
from ..exports.model import cell
from ..exports.redcap import (
    DICTIONARY_HEADER,
    RECORD_ID,
    event_name,
    records_layout,
    write_dictionary,
)
from ..exports.redcap.dictionary import COMPLETE, FIRST_FORM
from ..exports.variables import value_of
from .transport import Refused, Retry, check_status, request, short

CHOICE_TYPES = {"radio", "dropdown"}
NUMERIC = {"integer": {"integer", "number"}, "number": {"number"}}  # ours -> theirs allowed


def expected_fields(catalog) -> dict[str, dict]:
    """Our data dictionary, as {field name: {form, type, validation, codes}}."""
    text = io.StringIO()
    write_dictionary(text, catalog)
    reader = csv.reader(io.StringIO(text.getvalue()))
    header = next(reader)
    index = {name: header.index(name) for name in DICTIONARY_HEADER}
    fields = {}
    for row in reader:
        choices = row[index["Choices, Calculations, OR Slider Labels"]]
        fields[row[index["Variable / Field Name"]]] = {
            "form": row[index["Form Name"]],
            "type": row[index["Field Type"]],
            "validation": row[index["Text Validation Type OR Show Slider Number"]],
            "codes": _codes(choices),
        }
    return fields


def _codes(choices: str) -> set[str]:
    return {part.split(",", 1)[0].strip() for part in choices.split("|") if "," in part}


def compare(ours: dict, theirs: list[dict], sent: set[str]) -> list[str]:
    """Problems with the project's metadata for the fields we send (empty: compatible)."""
    held = {f.get("field_name"): f for f in theirs if isinstance(f, dict)}
    problems = []
    for name in sorted(sent):
        want = ours.get(name)
        if want is None:
            continue
        have = held.get(name)
        if have is None:
            problems.append(f"{name}: missing in the REDCap project (form {want['form']})")
            continue
        if have.get("form_name") != want["form"]:
            problems.append(
                f"{name}: on form {have.get('form_name')}, we send it on {want['form']}"
            )
        kind, their_kind = want["type"], have.get("field_type", "")
        if kind in CHOICE_TYPES | {"yesno", "checkbox"}:
            compatible = their_kind == kind or {kind, their_kind} <= CHOICE_TYPES
            if not compatible:
                problems.append(f"{name}: field type {their_kind}, expected {kind}")
            elif kind != "yesno":
                missing = want["codes"] - _codes(have.get("select_choices_or_calculations", ""))
                if missing:
                    problems.append(f"{name}: choices lack the codes {', '.join(sorted(missing))}")
        elif kind in ("text", "notes"):
            validation = have.get("text_validation_type_or_show_slider_number", "")
            if their_kind not in ("text", "notes"):
                problems.append(f"{name}: field type {their_kind}, expected {kind}")
            elif want["validation"] in NUMERIC:
                if validation not in NUMERIC[want["validation"]]:
                    problems.append(
                        f"{name}: validation '{validation or 'none'}',"
                        f" expected {want['validation']}"
                    )
            elif want["validation"] and validation not in ("", want["validation"]):
                problems.append(
                    f"{name}: validation '{validation}', expected {want['validation']} or none"
                )
    return problems


def redcap_errors(reply) -> str:
    """REDCap's error reply as readable reasons, one per problem."""
    try:
        error = json.loads(reply.body).get("error", "")
    except (ValueError, AttributeError):
        return short(reply.text())
    if not isinstance(error, str):
        return short(json.dumps(error))
    reasons = []
    for line in error.splitlines():
        parts = next(csv.reader([line]), [])
        if len(parts) == 4:
            record, field, value, why = parts
            reasons.append(f"{record} {field}='{value}': {why}")
        elif line.strip():
            reasons.append(line.strip())
    return short("; ".join(reasons), 1000)


class RedcapTarget:
    def __init__(self, config, catalog, base_url: str):
        self.config = config
        self.catalog = catalog
        self.layout = records_layout(catalog)
        self.first_event = event_name(catalog.study.timepoints[0].id)

    def _call(self, what: str, **fields) -> object:
        form = {"token": self.config.credential(), "format": "json", "returnFormat": "json"}
        form.update(fields)
        reply = request(
            "POST",
            self.config.url,
            body=urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            timeout=self.config.timeout_seconds,
        )
        if 400 <= reply.status < 500 and reply.status not in (408, 429):
            raise Refused(f"REDCap {what}: HTTP {reply.status}: {redcap_errors(reply)}")
        check_status(reply, f"REDCap {what}")
        try:
            return json.loads(reply.body)
        except ValueError:
            raise Retry(
                f"REDCap {what}: the reply is not JSON: {short(reply.text(), 120)}"
            ) from None

    def sent_fields(self) -> set[str]:
        names = {RECORD_ID, "site"}
        for variables in self.layout.variables.values():
            names.update(v.name for v in variables)
        return names

    def check(self) -> list[str]:
        """Compare the project with our dictionary; return the problems (empty: fine)."""
        metadata = self._call("metadata export", content="metadata")
        if not isinstance(metadata, list):
            raise Retry("REDCap metadata export: expected a list of fields")
        ours = expected_fields(self.catalog)
        # Checkbox fields are sent as <field>___<code>; the dictionary has the field itself.
        sent = {name.split("___")[0] for name in self.sent_fields()}
        problems = compare(ours, metadata, sent)
        first = next((f.get("field_name") for f in metadata if isinstance(f, dict)), None)
        if first != RECORD_ID:
            problems.insert(0, f"the record id field is '{first}', expected '{RECORD_ID}'")
        project = self._call("project export", content="project")
        if isinstance(project, dict) and str(project.get("is_longitudinal", "0")) == "1":
            problems.extend(self._check_events())
        else:
            problems.append("the project is not longitudinal; enable events (one per timepoint)")
        return problems

    def _check_events(self) -> list[str]:
        events = self._call("event export", content="event")
        mapping = self._call("form-event mapping export", content="formEventMapping")
        have = {e.get("unique_event_name") for e in events if isinstance(e, dict)}
        pairs = {
            (m.get("unique_event_name"), m.get("form")) for m in mapping if isinstance(m, dict)
        }
        problems = []
        study = self.catalog.study
        for timepoint in study.timepoints:
            name = event_name(timepoint.id)
            if name not in have:
                problems.append(f"event {name} is missing")
                continue
            for qid in timepoint.questionnaires:
                form = self.layout.form_of[qid]
                if (name, form) not in pairs:
                    problems.append(f"form {form} is not designated to event {name}")
        if (self.first_event, FIRST_FORM) not in pairs and self.first_event in have:
            problems.append(f"form {FIRST_FORM} is not designated to event {self.first_event}")
        return problems

    def rows(self, message) -> list[dict]:
        """The flat records imported for one response."""
        record = message.record
        form = self.layout.form_of[record.questionnaire]
        participant = {
            RECORD_ID: record.study_code,
            "redcap_event_name": self.first_event,
            "site": record.site,
            f"{FIRST_FORM}_complete": COMPLETE["submitted"],
        }
        answers = {RECORD_ID: record.study_code, "redcap_event_name": event_name(record.timepoint)}
        for variable in self.layout.variables[record.questionnaire]:
            value = value_of(variable, record)
            if isinstance(value, str) and value in NON_ANSWERS and variable.kind == "item":
                value = None  # declined / not applicable: REDCap leaves the field empty
            answers[variable.name] = cell(value)
        answers[f"{form}_complete"] = COMPLETE[record.status]
        if answers["redcap_event_name"] == self.first_event:
            return [participant | answers]
        return [participant, answers]

    def send(self, message) -> str:
        rows = self.rows(message)
        answer = self._call(
            "record import",
            content="record",
            action="import",
            type="flat",
            overwriteBehavior="normal",
            forceAutoNumber="false",
            returnContent="count",
            data=json.dumps(rows, ensure_ascii=False),
        )
        if not isinstance(answer, dict) or "count" not in answer:
            raise Retry(f"REDCap record import: unexpected reply {short(json.dumps(answer), 120)}")
        return f"imported {answer['count']} record(s)"

    def read_back(self, message) -> dict | None:
        """The project's row for this response's record and event, or None."""
        record = message.record
        event = event_name(record.timepoint)
        found = self._call(
            "record export",
            content="record",
            action="export",
            type="flat",
            **{"records[0]": record.study_code, "events[0]": event},
        )
        for row in found if isinstance(found, list) else []:
            if row.get("redcap_event_name") == event:
                return row
        return None

    def differences(self, message, held: dict) -> list[str]:
        ours = self.rows(message)[-1]
        return sorted(
            name
            for name, value in ours.items()
            if name != "redcap_event_name" and value != "" and str(held.get(name, "")) != value
        )
