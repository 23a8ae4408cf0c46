"""Load a study protocol and check it against the questionnaire definitions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from .errors import DefinitionError, Problem
from .loader import content_hash
from .located import Collector
from .model import ITEM_RULES, CountRule, Questionnaire, SumRule
from .protocol import Study
from .yamlsource import YamlSyntaxError, parse_yaml


def load_study_text(text: str, questionnaires: Mapping, file: str = "<text>") -> Study:
    """Parse and check a study; raise DefinitionError listing every problem."""
    try:
        source = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise DefinitionError([Problem(file, exc.line, "", "", str(exc))]) from exc
    col = Collector(file, source)
    if not isinstance(source.data, dict):
        col.add((), "", "a study must be a YAML mapping (id, title, sites, timepoints, ...)")
        raise DefinitionError(col.problems)
    data = {k: v for k, v in source.data.items() if k not in ("content_hash", "source")}
    for key in set(source.data) - set(data):
        col.add((key,), "", f"'{key}' is set by the loader", f"remove '{key}'.")
    study = col.validate(Study, data, (), "", Study)
    if study is not None:
        _check(col, study, questionnaires)
    if col.problems:
        raise DefinitionError(col.problems)
    return study.model_copy(update={"content_hash": content_hash(data), "source": file})


def load_study_file(path: str | Path, questionnaires: Mapping) -> Study:
    """Load a study file (its file name without .yaml must equal its id)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(str(path), None, "", "", f"cannot read: {exc}")]) from exc
    study = load_study_text(text, questionnaires, str(path))
    if study.id != path.stem:
        raise DefinitionError(
            [
                Problem(
                    str(path),
                    None,
                    "",
                    "id",
                    f"the id '{study.id}' differs from the file name '{path.name}'",
                    f"rename the file to '{study.id}.yaml'.",
                )
            ]
        )
    return study


def _check(col: Collector, study: Study, questionnaires: Mapping) -> None:
    known = sorted(questionnaires)
    seen_sites: set[str] = set()
    for index, site in enumerate(study.sites):
        if site.id in seen_sites:
            col.add(("sites", index, "id"), f"site {site.id}", "duplicate site id", "", 2)
        seen_sites.add(site.id)
    seen: dict[str, int] = {}
    for index, tp in enumerate(study.timepoints):
        where = f"timepoint {tp.id}"
        if tp.id in seen:
            col.add(("timepoints", index, "id"), where, f"duplicate timepoint id '{tp.id}'", "", 2)
        seen[tp.id] = index
        if tp.ends_before_day0 and tp.anchor != "enrolment":
            col.add(
                ("timepoints", index, "ends_before_day0"),
                where,
                "only a timepoint anchored on the enrolment date can end before day 0",
                "set 'anchor: enrolment' or remove 'ends_before_day0'.",
                2,
            )
        for position, qid in enumerate(tp.questionnaires):
            if qid in tp.questionnaires[:position]:
                col.add(
                    ("timepoints", index, "questionnaires", position),
                    where,
                    f"questionnaire '{qid}' is listed twice",
                    "",
                    2,
                )
            elif qid not in questionnaires:
                col.add(
                    ("timepoints", index, "questionnaires", position),
                    where,
                    f"unknown questionnaire '{qid}'",
                    f"known: {', '.join(known)}.",
                    2,
                )
    for index, rule in enumerate(study.derived):
        _check_derived(col, index, rule, study, questionnaires, seen)
    _check_overrides(col, study, questionnaires)


def _check_derived(col, index, rule, study, questionnaires, timepoints) -> None:
    where = f"derived {rule.id}"
    if rule.timepoint not in timepoints:
        col.add(
            ("derived", index, "timepoint"), where, f"unknown timepoint '{rule.timepoint}'", "", 2
        )
        return
    asked = study.timepoint(rule.timepoint).questionnaires
    for position, cond in enumerate(rule.conditions):
        path = ("derived", index, "conditions", position, "score")
        qid, sid = cond.score.split(".")
        definition = questionnaires.get(qid)
        if definition is None:
            col.add(path, where, f"unknown questionnaire '{qid}'", "", 2)
        elif sid not in definition.scores_by_id:
            col.add(
                path,
                where,
                f"'{qid}' has no score '{sid}'",
                f"its scores: {', '.join(definition.scores_by_id) or 'none'}.",
                2,
            )
        elif not isinstance(definition.scores_by_id[sid], ITEM_RULES):
            col.add(path, where, f"'{cond.score}' is not a number", "", 2)
        elif qid not in asked:
            col.add(path, where, f"'{qid}' is not asked at timepoint '{rule.timepoint}'", "", 2)


def _check_overrides(col, study: Study, questionnaires: Mapping) -> None:
    for qid, rules in study.scoring.items():
        definition = questionnaires.get(qid)
        if definition is None:
            col.add(("scoring", qid), "", f"unknown questionnaire '{qid}'", "", 1)
            continue
        for sid, override in rules.items():
            rule = definition.scores_by_id.get(sid)
            if not isinstance(rule, ITEM_RULES):
                col.add(
                    ("scoring", qid, sid), "", f"'{qid}' has no item-based score '{sid}'", "", 1
                )
            elif override.prorate is not None and not isinstance(rule, SumRule | CountRule):
                col.add(
                    ("scoring", qid, sid, "prorate"),
                    "",
                    "only sum and count scores can be prorated",
                    "",
                    1,
                )
            elif override.min_answered is not None and override.min_answered > len(rule.items):
                col.add(
                    ("scoring", qid, sid, "min_answered"),
                    "",
                    f"min_answered {override.min_answered} is more than the "
                    f"{len(rule.items)} items of '{sid}'",
                    "",
                    1,
                )
            elif override.max_missing is not None and override.max_missing >= len(rule.items):
                col.add(
                    ("scoring", qid, sid, "max_missing"),
                    "",
                    f"max_missing {override.max_missing} allows all {len(rule.items)} "
                    f"items of '{sid}' to be missing",
                    "",
                    1,
                )


def apply_overrides(questionnaires: Mapping, study: Study) -> MappingProxyType:
    """Return the definitions with the study's scoring settings applied (and new hashes)."""
    result: dict[str, Questionnaire] = dict(questionnaires)
    for qid, rules in study.scoring.items():
        definition = result[qid]
        changed = []
        for rule in definition.scores:
            override = rules.get(rule.id)
            if override is not None:
                update = override.model_dump(exclude_none=True)
                rule = rule.model_copy(update=update)
            changed.append(rule)
        overrides = {sid: o.model_dump(exclude_none=True) for sid, o in rules.items()}
        mixed = content_hash({"definition": definition.content_hash, "study": overrides})
        result[qid] = definition.model_copy(
            update={"scores": tuple(changed), "content_hash": mixed}
        )
    return MappingProxyType(result)
