"""Evaluate display and alert conditions through one small table of operators."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from types import MappingProxyType

from .answers import DECLINED, is_given, number
from .model import Condition

_NUMERIC = MappingProxyType(
    {
        "eq": operator.eq,
        "ne": operator.ne,
        "gt": operator.gt,
        "ge": operator.ge,
        "lt": operator.lt,
        "le": operator.le,
        "in": lambda a, b: a in b,
        "not_in": lambda a, b: a not in b,
    }
)
_LIST = MappingProxyType(
    {
        "eq": lambda chosen, b: b in chosen,
        "ne": lambda chosen, b: b not in chosen,
        "in": lambda chosen, b: bool(set(chosen) & set(b)),
        "not_in": lambda chosen, b: not set(chosen) & set(b),
    }
)


def compare(op: str, answer, value) -> bool:
    """Compare one answer with a value; no real answer never meets a comparison."""
    if op == "declined":
        return answer == DECLINED
    if op == "answered":
        return is_given(answer) and answer != []
    if isinstance(answer, list):
        test = _LIST.get(op)
        return bool(answer) and test is not None and test(answer, value)
    code = number(answer)
    if code is None:
        return False
    return _NUMERIC[op](code, value)


def holds(condition: Condition, answers: Mapping) -> bool:
    """True when the condition holds for these answers."""
    if condition.all is not None:
        return all(holds(part, answers) for part in condition.all)
    if condition.any is not None:
        return any(holds(part, answers) for part in condition.any)
    return compare(condition.op, answers.get(condition.item), condition.value)
