"""REDCap: the data dictionary, events, form-event mappings, and import records."""

from .dictionary import (
    DICTIONARY_HEADER,
    EVENTS_HEADER,
    MAPPING_HEADER,
    RECORD_ID,
    branching,
    branching_not_expressed,
    event_name,
    field_name_problems,
    forms,
    forms_of,
    write_dictionary,
)
from .events import mappings, write_events, write_mappings
from .records import records_layout, write_records

__all__ = [
    "DICTIONARY_HEADER",
    "EVENTS_HEADER",
    "MAPPING_HEADER",
    "RECORD_ID",
    "branching",
    "branching_not_expressed",
    "event_name",
    "field_name_problems",
    "forms",
    "forms_of",
    "mappings",
    "records_layout",
    "write_dictionary",
    "write_events",
    "write_mappings",
    "write_records",
]
