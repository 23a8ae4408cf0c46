"""Stored scores of submitted responses, grouped for the export page's plots.

Only the latest submitted version of each response counts, as in the exports. Which scores
can be plotted comes from the definitions (numeric score rules), never from names in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..domain.model import ITEM_RULES
from ..exports.variables import study_order

SCORES_SQL = """
SELECT p.site, a.timepoint, s.value
FROM scores s
JOIN responses r ON r.id = s.response_id
JOIN assessments a ON a.id = r.assessment_id
JOIN participants p ON p.id = a.participant_id
WHERE r.status = 'submitted'
  AND r.questionnaire = ?
  AND s.score = ?
  AND p.site IN ({sites})
  AND r.version = (SELECT MAX(r2.version) FROM responses r2
                   WHERE r2.assessment_id = r.assessment_id
                     AND r2.questionnaire = r.questionnaire
                     AND r2.status = 'submitted')
ORDER BY p.site, a.timepoint, r.id
"""


@dataclass(frozen=True)
class ScoreChoice:
    """A numeric score of a questionnaire in the study, and where the study asks for it."""

    questionnaire: str
    score: str
    questionnaire_title: object  # LocalText
    label: object  # LocalText
    timepoints: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.questionnaire}.{self.score}"


def score_choices(catalog) -> list[ScoreChoice]:
    """Every numeric score (sum, mean, percent, count) in study order of questionnaires."""
    study = catalog.study
    found = []
    for qid in study_order(study):
        definition = catalog.questionnaires[qid]
        asked = tuple(t.id for t in study.timepoints if qid in t.questionnaires)
        for rule in definition.scores:
            if isinstance(rule, ITEM_RULES):
                title = definition.short_title or definition.title
                found.append(ScoreChoice(qid, rule.id, title, rule.label, asked))
    return found


def _number(stored: str | None):
    if stored is None:
        return None
    value = json.loads(stored)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def score_values(db, questionnaire: str, score: str, sites) -> list[tuple[str, str, object]]:
    """(site, timepoint, value or None) for each latest submitted response at sites."""
    sites = tuple(sites)
    if not sites:
        return []
    sql = SCORES_SQL.format(sites=", ".join("?" for _ in sites))
    cursor = db.conn.execute(sql, [questionnaire, score, *sites])
    return [(site, timepoint, _number(value)) for site, timepoint, value in cursor]


def per_timepoint(found, timepoints) -> list[list]:
    """The values of each timepoint, in the order given."""
    groups: dict[str, list] = {t: [] for t in timepoints}
    for _site, timepoint, value in found:
        if timepoint in groups:
            groups[timepoint].append(value)
    return [groups[t] for t in timepoints]


def per_site(found, sites, timepoints) -> dict[str, list[list]]:
    """For each site, the values of each timepoint, in the orders given."""
    return {
        site: per_timepoint([row for row in found if row[0] == site], timepoints) for site in sites
    }
