"""FHIR R4 JSON: Questionnaires from the definitions, QuestionnaireResponses from records."""

from .questionnaires import (
    conditions_not_expressed,
    dumps,
    enable_when,
    fhir_id,
    questionnaire,
    questionnaire_url,
    questionnaires_bundle,
)
from .responses import (
    questionnaire_response,
    response_entry,
    responses_bundle,
    write_responses_bundle,
)

__all__ = [
    "conditions_not_expressed",
    "dumps",
    "enable_when",
    "fhir_id",
    "questionnaire",
    "questionnaire_response",
    "questionnaire_url",
    "questionnaires_bundle",
    "response_entry",
    "responses_bundle",
    "write_responses_bundle",
]
