"""Load questionnaire definitions: YAML -> strict models -> immutable objects with a hash."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from types import MappingProxyType

from pydantic import TypeAdapter

from . import checks
from .errors import DefinitionError, Problem
from .located import Collector
from .model import (
    ITEM_TYPES,
    Alert,
    Item,
    Option,
    Page,
    Questionnaire,
    ScoreRule,
)
from .yamlsource import YamlSyntaxError, parse_yaml

_ITEMS = TypeAdapter(Item)
_RULE = TypeAdapter(ScoreRule)
_OPTIONS = TypeAdapter(tuple[Option, ...])
_RANGE = re.compile(r"^([a-z][a-z_]*?)(\d+)([a-z_]*)\.\.([a-z][a-z_]*?)(\d+)([a-z_]*)$")
_PLACEHOLDER = [{"code": n, "label": {"nb": "-", "en": "-"}} for n in (0, 1)]
_SECTIONS = ("option_sets", "items", "pages", "scores", "alerts")


def content_hash(data) -> str:
    """SHA-256 of the canonical JSON of normalised definition data."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def expand_ids(entries) -> tuple[list, list[str]]:
    """Expand 'x1..x10' style ranges in a list of ids; return (ids, errors)."""
    if not isinstance(entries, list):
        return entries, []
    out: list = []
    errors: list[str] = []
    for entry in entries:
        if isinstance(entry, str) and ".." in entry:
            match = _RANGE.match(entry)
            if not match or match[1] != match[4] or match[3] != match[6]:
                errors.append(
                    f"range {entry!r} is not of the form 'x1..x10' "
                    "(same prefix and suffix, numbers at the end or before a suffix)"
                )
                out.append(entry)
                continue
            first, last = int(match[2]), int(match[5])
            if last < first:
                errors.append(f"range {entry!r} runs backwards")
            out.extend(f"{match[1]}{n}{match[3]}" for n in range(first, last + 1))
        else:
            out.append(entry)
    return out, errors


def _normalise(raw: dict, col: Collector) -> dict:
    """Resolve option sets, expand id ranges and give every item a page when none are set."""
    data = copy.deepcopy(raw)
    sets = data.pop("option_sets", None) or {}
    if not isinstance(sets, dict):
        col.add(("option_sets",), "", "must be a mapping of name -> list of options")
        sets = {}
    valid_sets = {}
    for name, options in sets.items():
        value = col.validate(_OPTIONS, options, ("option_sets", name), f"option set {name}", Option)
        if value is not None:
            valid_sets[name] = options
    for index, item in enumerate(data.get("items") or []):
        if isinstance(item, dict) and isinstance(item.get("options"), str):
            name = item["options"]
            if name in valid_sets:
                item["options"] = copy.deepcopy(valid_sets[name])
            elif name in sets:
                # The set's own problems are reported once; the items using it stay quiet.
                item["options"] = copy.deepcopy(_PLACEHOLDER)
            else:
                item["options"] = copy.deepcopy(_PLACEHOLDER)
                col.add(
                    ("items", index, "options"),
                    f"item {item.get('id', index + 1)}",
                    f"unknown option set '{name}'",
                    f"define it under 'option_sets' or use one of: {', '.join(sets) or 'none'}.",
                    key_from=2,
                )
    for section, key in (("pages", "items"), ("scores", "items")):
        for index, part in enumerate(data.get(section) or []):
            if isinstance(part, dict) and key in part:
                part[key], errors = expand_ids(part[key])
                for error in errors:
                    col.add((section, index, key), f"{section[:-1]} {index + 1}", error, "", 2)
    for section in ("pages", "scores", "alerts"):
        if section in data and data[section] is None:
            del data[section]  # 'scores:' with nothing under it means none
    if data.get("pages") == []:
        col.add(
            ("pages",),
            "",
            "'pages' is empty, so no item would be shown",
            "list the pages, or leave 'pages' out to show one item per page.",
        )
    if "items" in data and not data["items"]:
        col.add(("items",), "", "'items' is empty", "list at least one item.")
    if "pages" not in data and isinstance(data.get("items"), list):
        ids = [i.get("id") for i in data["items"] if isinstance(i, dict)]
        data["pages"] = [
            {"items": [ident]} for ident in dict.fromkeys(ids) if isinstance(ident, str)
        ]
    return data


def _where(section: str, index: int, part) -> str:
    ident = part.get("id") if isinstance(part, dict) else None
    noun = {"items": "item", "pages": "page", "scores": "score", "alerts": "alert"}[section]
    if section == "pages" and not ident:
        return f"page {index + 1}"
    return f"{noun} {ident}" if ident else f"{noun} #{index + 1}"


def _validate_list(col: Collector, data: dict, section: str, adapter) -> list:
    raw_list = data.get(section)
    if raw_list is None:
        return []
    if not isinstance(raw_list, list):
        col.add((section,), "", f"'{section}' must be a list")
        return []
    parsed = []
    for index, part in enumerate(raw_list):
        where = _where(section, index, part)
        model = _model_for(section, part)
        value = col.validate(adapter, part, (section, index), where, model)
        parsed.append((index, value))
    return parsed


def _model_for(section: str, part):
    if not isinstance(part, dict):
        return None
    if section == "items":
        return ITEM_TYPES.get(part.get("type"))
    if section == "scores":
        for cls in ScoreRule.__origin__.__args__:
            if cls.model_fields["method"].annotation.__args__[0] == part.get("method"):
                return cls
        return None
    return {"pages": Page, "alerts": Alert}.get(section)


def load_questionnaire_text(text: str, file: str = "<text>") -> Questionnaire:
    """Parse and check one definition; raise DefinitionError listing every problem."""
    try:
        source = parse_yaml(text)
    except YamlSyntaxError as exc:
        raise DefinitionError(
            [Problem(file, exc.line, "", "", str(exc), "correct the YAML syntax.")]
        ) from exc
    col = Collector(file, source)
    raw = source.data
    if not isinstance(raw, dict):
        col.add((), "", "a definition must be a YAML mapping (id, version, title, items, ...)")
        raise DefinitionError(col.problems)
    data = _normalise(raw, col)
    header = {k: v for k, v in data.items() if k not in _SECTIONS}
    _validate_header(col, header)
    items = _validate_list(col, data, "items", _ITEMS)
    pages = _validate_list(col, data, "pages", TypeAdapter(Page))
    rules = _validate_list(col, data, "scores", _RULE)
    alerts = _validate_list(col, data, "alerts", TypeAdapter(Alert))
    if "items" not in data:
        col.add((), "", "required key 'items' is missing", "add the list of items.")
    checks.check_all(col, data, items, pages, rules, alerts)
    if col.problems:
        raise DefinitionError(col.problems)
    definition = Questionnaire.model_validate(data)
    return definition.model_copy(update={"content_hash": content_hash(data), "source": file})


def _validate_header(col: Collector, header: dict) -> None:
    """Check top-level keys against the full model, so unknown keys are named."""
    for key in ("content_hash", "source"):
        if key in header:
            col.add((key,), "", f"'{key}' is set by the loader", f"remove '{key}'.")
    stub = {k: v for k, v in header.items() if k not in ("content_hash", "source")}
    stub.setdefault("items", [{"id": "x", "type": "text", "text": {"nb": "x", "en": "x"}}])
    col.validate(Questionnaire, stub, (), "", Questionnaire)


def load_questionnaire_file(path: str | Path) -> Questionnaire:
    """Load one definition file; the file name (without .yaml) must equal its id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError([Problem(str(path), None, "", "", f"cannot read: {exc}")]) from exc
    definition = load_questionnaire_text(text, str(path))
    if definition.id != path.stem:
        raise DefinitionError(
            [
                Problem(
                    str(path),
                    None,
                    "",
                    "id",
                    f"the id '{definition.id}' differs from the file name '{path.name}'",
                    f"rename the file to '{definition.id}.yaml' or change the id.",
                )
            ]
        )
    return definition


def definition_files(directory: str | Path) -> list[Path]:
    """Return the definition files of a directory, sorted."""
    return sorted(Path(directory).glob("*.yaml"))


def load_questionnaires(paths) -> MappingProxyType:
    """Load many files; raise one DefinitionError with the problems of all of them."""
    found: dict[str, Questionnaire] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            definition = load_questionnaire_file(path)
        except DefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if definition.id in found:
            problems.append(
                Problem(
                    str(path),
                    None,
                    "",
                    "id",
                    f"the id '{definition.id}' is also used by {found[definition.id].source}",
                    "give each questionnaire its own id.",
                )
            )
            continue
        found[definition.id] = definition
    if problems:
        raise DefinitionError(problems)
    return MappingProxyType(dict(sorted(found.items())))
