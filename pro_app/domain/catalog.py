"""The definitions one instance serves: its questionnaires and its study, checked together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .errors import DefinitionError, Problem
from .loader import definition_files, load_questionnaires
from .protocol import Study
from .studyloader import apply_overrides, load_study_file


@dataclass(frozen=True)
class Catalog:
    """Questionnaires (with the study's scoring settings applied) and the study protocol."""

    questionnaires: MappingProxyType
    study: Study


def study_path(study: str, studies_dir: str | Path) -> Path:
    """Resolve a study setting: a path to a YAML file, or an id in the studies folder."""
    candidate = Path(study)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return candidate
    return Path(studies_dir) / f"{study}.yaml"


def load_catalog(questionnaires_dir: str | Path, study_file: str | Path) -> Catalog:
    """Load every definition and the study; raise DefinitionError with all problems."""
    folder = Path(questionnaires_dir)
    if not folder.is_dir():
        raise DefinitionError(
            [
                Problem(
                    str(folder),
                    None,
                    "",
                    "",
                    "the questionnaires folder does not exist",
                    "set PRO_QUESTIONNAIRES_DIR to the folder of definition files.",
                )
            ]
        )
    files = definition_files(folder)
    if not files:
        raise DefinitionError(
            [Problem(str(folder), None, "", "", "no *.yaml definitions in the folder", "")]
        )
    questionnaires = load_questionnaires(files)
    if not Path(study_file).is_file():
        raise DefinitionError(
            [
                Problem(
                    str(study_file),
                    None,
                    "",
                    "",
                    "the study file does not exist",
                    "set PRO_STUDY to a study id in studies/ or to a YAML file.",
                )
            ]
        )
    study = load_study_file(study_file, questionnaires)
    return Catalog(apply_overrides(questionnaires, study), study)
