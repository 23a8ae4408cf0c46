"""Read YAML safely and remember the line of every key and list entry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; carries the line of the problem."""

    def __init__(self, message: str, line: int | None):
        self.line = line
        super().__init__(message)


@dataclass
class YamlSource:
    """Parsed YAML data plus a map from data path to 1-based line number."""

    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, path: tuple) -> int | None:
        """Return the line of the deepest known prefix of path."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def _walk(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, child in enumerate(node.value):
            lines[path + (index,)] = child.start_mark.line + 1
            _walk(child, path + (index,), lines)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans that refuses a key written twice in one mapping."""


# YAML 1.1 reads yes/no/on/off as booleans, so an English label "No" would become False.
# Only true/false are booleans here.
_BOOL = "tag:yaml.org,2002:bool"
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.1 also reads 21:00 as the base-60 number 1260 and 012 as octal 10. Numbers here
# follow YAML 1.2's core schema; anything else stays text (a time like 21:00 included).
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in _UniqueKeyLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_UniqueKeyLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)


_UniqueKeyLoader.add_constructor(_INT, _construct_int)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise YamlSyntaxError(
                f"key '{key}' appears twice in one mapping (first on line {seen[key]}); "
                "remove or rename one of them",
                key_node.start_mark.line + 1,
            )
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str) -> YamlSource:
    """Parse YAML text into data and a line map; raise YamlSyntaxError when invalid."""
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(f"not valid YAML: {exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"not valid YAML: {exc}", None) from exc
    lines: dict[tuple, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return YamlSource(data=data, lines=lines)
