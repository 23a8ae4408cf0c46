"""The streamed FHIR responses Bundle: the same bytes as the whole Bundle, one entry at a time."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from fhir.resources.R4B.bundle import Bundle

from pro_app.catalog import catalog_for
from pro_app.database import get_db
from pro_app.exports import fhir
from pro_app.exports.model import Filters
from pro_app.services.exporting import prepare, write_file

from .test_export_fhir import BASE, build_dataset, export_records


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("fhir-stream") / "f.sqlite")


def streamed(records, catalog, base_url=BASE) -> tuple[str, int]:
    out = io.StringIO()
    count = fhir.write_responses_bundle(out, records, catalog, base_url)
    return out.getvalue(), count


@pytest.mark.parametrize("include_partial", [False, True])
def test_the_same_bytes_as_the_bundle_in_memory(dataset, include_partial):
    catalog, found = export_records(dataset, include_partial=include_partial)
    assert found
    text, count = streamed(found, catalog)
    assert text == fhir.dumps(fhir.responses_bundle(found, catalog, BASE))
    assert count == len(found)
    Bundle.model_validate(json.loads(text))


@pytest.mark.parametrize("size", [0, 1, 2])
def test_no_one_and_two_entries(dataset, size):
    catalog, found = export_records(dataset, include_partial=True)
    chosen = found[:size]
    text, count = streamed(chosen, catalog, base_url="")
    assert text == fhir.dumps(fhir.responses_bundle(chosen, catalog, ""))
    assert count == size and len(json.loads(text)["entry"]) == size


def test_texts_with_newlines_quotes_and_non_ascii(dataset):
    """A text answer is JSON-escaped inside its line: indenting lines cannot touch it."""
    catalog, found = export_records(dataset, include_partial=True)
    record = next(r for r in found if r.questionnaire == "background")
    tricky = 'første linje\n  andre "linje"\r\n\ttab \\ æøå 🙂'
    items = dict(record.items) | {"bg_former_treatment_other": tricky}
    changed = [dataclasses.replace(record, items=items)]
    text, _ = streamed(changed, catalog)
    assert text == fhir.dumps(fhir.responses_bundle(changed, catalog, BASE))
    answers = json.loads(text)["entry"][0]["resource"]["item"]
    assert {"valueString": tricky} in [a for i in answers for a in i.get("answer", [])]


def test_entries_are_written_while_the_records_are_read(dataset):
    """Each entry is in the stream before the next record is asked for."""
    catalog, found = export_records(dataset, include_partial=True)
    out = io.StringIO()
    seen = []

    def lazily():
        for record in found:
            seen.append(out.getvalue().count('"fullUrl"'))
            yield record

    fhir.write_responses_bundle(out, lazily(), catalog, BASE)
    assert seen == list(range(len(found)))


def test_the_service_writes_the_streamed_bundle(dataset, tmp_path):
    catalog, found = export_records(dataset, include_partial=True)
    path = tmp_path / "responses.json"
    with dataset.app_context():
        db = get_db()
        prepared = prepare(
            "fhir",
            db,
            catalog_for(dataset),
            Filters(include_partial=True),
            base_url=BASE,
        )
        count, _ = write_file(path, prepared)
    assert count == len(found)
    expected = fhir.dumps(fhir.responses_bundle(found, catalog, BASE))
    assert path.read_bytes() == expected.encode("utf-8")
