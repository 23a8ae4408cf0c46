"""Turn pydantic validation errors into located, fixable problems."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass, field

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import Problem
from .model import LocalText
from .yamlsource import YamlSource

INTERNAL = {"content_hash", "source"}
LANGUAGE_NAMES = {"nb": "Norwegian Bokmål", "en": "English"}


def format_path(path: tuple) -> str:
    """Render ('options', 2, 'code') as 'options[2].code'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


def _models_in(annotation) -> list[type[BaseModel]]:
    """Return the model classes an annotation may hold (through Optional, tuple, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def model_at(root: type[BaseModel] | None, path: tuple) -> type[BaseModel] | None:
    """Follow path through model fields; return the model class found there, if any."""
    current = root
    for part in path:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        info = current.model_fields.get(part)
        if info is None:
            return None
        models = _models_in(info.annotation)
        current = models[0] if len(models) == 1 else None
    return current


def data_path(data, loc: tuple) -> tuple:
    """Map a pydantic error location onto the raw data, skipping union tags."""
    path: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict | list):
            # A key that is missing (or a tag that is no key): it is still the place to name.
            if not isinstance(part, int) and not _looks_like_tag(part):
                path.append(part)
            node = None
    return tuple(path)


def _looks_like_tag(part) -> bool:
    return isinstance(part, str) and ("[" in part or "(" in part or "-" in part)


@dataclass
class Collector:
    """Collects problems for one file, with lines from its YAML source."""

    file: str
    source: YamlSource
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: tuple, where: str, message: str, fix: str = "", key_from: int = 0):
        """Record a problem at a data path; key is shown relative to key_from."""
        self.problems.append(
            Problem(
                file=self.file,
                line=self.source.line_of(path),
                where=where,
                key=format_path(tuple(path[key_from:])),
                message=message,
                fix=fix,
            )
        )

    def validate(self, adapter, data, prefix: tuple, where: str, model: type | None):
        """Validate data with a TypeAdapter or model; record problems; return value or None."""
        try:
            if isinstance(adapter, TypeAdapter):
                return adapter.validate_python(data)
            return adapter.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                self._add_error(error, data, prefix, where, model)
            return None

    def _add_error(self, error: dict, data, prefix: tuple, where: str, model) -> None:
        loc = tuple(error["loc"])
        tag = getattr(model, "TAG", None)
        if tag and loc and isinstance(data, dict) and loc[0] == data.get(tag):
            loc = loc[1:]  # the union tag pydantic puts first (may equal a field name: text)
        rel = data_path(data, loc)
        path = prefix + rel
        kind = error["type"]
        message, fix = _explain(kind, error, rel, model)
        self.add(path, where, message, fix, key_from=len(prefix))


def _explain(kind: str, error: dict, rel: tuple, model) -> tuple[str, str]:
    key = rel[-1] if rel else ""
    parent = model_at(model, rel[:-1]) if model else None
    if kind == "extra_forbidden":
        allowed = sorted(set(parent.model_fields) - INTERNAL) if parent else []
        if parent is not None and "option_sets" in getattr(parent, "EXTRA_KEYS", ()):
            allowed = sorted([*allowed, "option_sets"])
        if parent is LocalText:
            return (
                f"unknown language '{key}'",
                "texts are written under 'nb' (Norwegian Bokmål) and 'en' (English); if "
                "this is part of a text with a comma or colon, put the whole text in quotes.",
            )
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        listed = f"Allowed keys here: {', '.join(allowed)}." if allowed else ""
        return f"unknown key '{key}'", f"{hint}{listed}".strip() or "remove the key."
    if kind == "missing":
        if parent is LocalText and key in LANGUAGE_NAMES:
            return (
                f"missing translation '{key}'",
                f"add the {LANGUAGE_NAMES[key]} text under '{key}'.",
            )
        return f"required key '{key}' is missing", f"add '{key}'."
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return (
            f"unknown {str(ctx.get('discriminator', 'type')).strip(chr(39))} {ctx.get('tag')!r}",
            f"use one of {ctx.get('expected_tags')}.",
        )
    if kind == "union_tag_not_found":
        name = str(error.get("ctx", {}).get("discriminator", "type")).strip("'")
        return f"'{name}' is missing", f"add '{name}' to say what kind of entry this is."
    if kind == "string_pattern_mismatch":
        if "A-Z" in str(error.get("ctx", {}).get("pattern", "")):
            return (
                f"{error.get('input')!r} is not a valid site id",
                "site ids are 2-8 upper-case letters and digits, starting with a letter (OUS).",
            )
        return (
            f"{error.get('input')!r} is not a valid id",
            "ids are lower case letters, digits and _ and start with a letter (at most 32).",
        )
    message = error.get("msg", kind)
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return f"{message} (got {error.get('input')!r})", ""
