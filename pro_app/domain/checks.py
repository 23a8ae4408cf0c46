"""Cross-checks of a parsed definition: ids, pages, conditions, scoring rules, bands."""

from __future__ import annotations

import difflib

from .located import Collector
from .model import (
    ITEM_RULES,
    BandsRule,
    Condition,
    CountRule,
    CutoffRule,
    Integer,
    MeanRule,
    MultipleChoice,
    PercentRule,
    Scale,
    SumRule,
)


def _did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean '{close[0]}'?" if close else "check the spelling."


def rule_range(rule, items_by_id, ranges: dict) -> tuple[float, float] | None:
    """Return the lowest and highest value a numeric score can take, or None."""
    if isinstance(rule, ITEM_RULES):
        spans = [items_by_id[i].code_range() for i in rule.items if i in items_by_id]
        if any(span is None for span in spans) or not spans:
            return None
        if isinstance(rule, SumRule):
            return (sum(s[0] for s in spans), sum(s[1] for s in spans))
        if isinstance(rule, MeanRule):
            return (min(s[0] for s in spans), max(s[1] for s in spans))
        if isinstance(rule, PercentRule):
            return (0.0, 100.0)
        if isinstance(rule, CountRule):
            return (0, len(rule.items))
    return None


def check_all(col: Collector, data: dict, items, pages, rules, alerts) -> None:
    """Run every cross-check; record problems in col."""
    raw_items = data.get("items") if isinstance(data.get("items"), list) else []
    known = [i.get("id") for i in raw_items if isinstance(i, dict) and isinstance(i.get("id"), str)]
    parsed = {item.id: (index, item) for index, item in items if item is not None}
    _check_items(col, raw_items, items)
    page_of = _check_pages(col, known, pages)
    _check_conditions(col, known, parsed, page_of)
    _check_rules(col, known, parsed, rules)
    alert_ids: set[str] = set()
    for index, alert in alerts:
        if alert is not None and alert.id in alert_ids:
            col.add(("alerts", index, "id"), f"alert {alert.id}", "duplicate alert id", "", 2)
        if alert is not None:
            alert_ids.add(alert.id)
            where = f"alert {alert.id}"
            _check_refs(col, alert.when, known, parsed, ("alerts", index, "when"), where)


def _check_items(col: Collector, raw_items: list, items) -> None:
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_items):
        ident = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(ident, str):
            if ident in seen:
                col.add(
                    ("items", index, "id"),
                    f"item {ident}",
                    f"duplicate item id '{ident}' (also item #{seen[ident] + 1})",
                    "give every item its own id.",
                    key_from=2,
                )
            else:
                seen[ident] = index
    for index, raw in enumerate(raw_items):
        options = raw.get("options") if isinstance(raw, dict) else None
        codes_seen: set = set()
        for position, option in enumerate(options if isinstance(options, list) else []):
            code = option.get("code") if isinstance(option, dict) else None
            if code is not None and code in codes_seen:
                col.add(
                    ("items", index, "options", position, "code"),
                    f"item {raw.get('id', index + 1)}",
                    f"duplicate option code {code}",
                    "give every option of an item its own code.",
                    key_from=2,
                )
            codes_seen.add(code)
    for index, item in items:
        where = f"item {item.id}" if item is not None else ""
        if isinstance(item, MultipleChoice) and (item.max_selected or 0) > len(item.options):
            col.add(
                ("items", index, "max_selected"),
                where,
                f"max_selected {item.max_selected} is more than the {len(item.options)} options",
                "",
                2,
            )
        if isinstance(item, Scale | Integer) and item.min >= item.max:
            col.add(("items", index, "max"), where, "'max' must be greater than 'min'", "", 2)


def _check_pages(col: Collector, known: list, pages) -> dict[str, int]:
    page_of: dict[str, int] = {}
    order = {ident: n for n, ident in enumerate(known)}
    last_position = -1
    for index, page in pages:
        if page is None:
            continue
        for position, ident in enumerate(page.items):
            path = ("pages", index, "items", position)
            where = f"page {index + 1}"
            if ident not in order:
                col.add(path, where, f"unknown item '{ident}'", _did_you_mean(ident, known), 2)
                continue
            if ident in page_of:
                col.add(
                    path,
                    where,
                    f"item '{ident}' is already on page {page_of[ident] + 1}",
                    "put each item on one page only.",
                    2,
                )
                continue
            if order[ident] < last_position:
                col.add(
                    path,
                    where,
                    f"item '{ident}' is out of order",
                    "list items on pages in the same order as under 'items'.",
                    2,
                )
            last_position = max(last_position, order[ident])
            page_of[ident] = index
    if any(page is not None for _, page in pages) or not pages:
        for ident in known:
            if ident not in page_of and pages:
                col.add(
                    ("pages",),
                    f"item {ident}",
                    f"item '{ident}' is on no page",
                    "add it to the 'items' of a page.",
                )
    return page_of


def _check_conditions(col: Collector, known: list, parsed: dict, page_of: dict) -> None:
    for ident, (index, item) in parsed.items():
        if item.show_if is None:
            continue
        path = ("items", index, "show_if")
        where = f"item {ident}"
        _check_refs(col, item.show_if, known, parsed, path, where)
        for ref in item.show_if.item_ids():
            if ref in page_of and ident in page_of and page_of[ref] >= page_of[ident]:
                relation = "the same page" if page_of[ref] == page_of[ident] else "a later page"
                col.add(
                    path,
                    where,
                    f"the display condition refers to '{ref}', which is on {relation}",
                    "a condition may refer only to items on earlier pages: move "
                    f"'{ref}' to an earlier page or '{ident}' to a later one.",
                    2,
                )


def _check_refs(col, condition: Condition, known, parsed, path, where) -> None:
    if condition.all is not None or condition.any is not None:
        for part in condition.all or condition.any:
            _check_refs(col, part, known, parsed, path, where)
        return
    ref = condition.item
    if ref not in known:
        col.add(
            path, where, f"the condition names unknown item '{ref}'", _did_you_mean(ref, known), 2
        )
    elif ref in parsed and condition.op not in ("answered", "declined"):
        problem = value_problem(parsed[ref][1], condition.op, condition.value)
        if problem:
            col.add(path, where, f"the condition on '{ref}' {problem}", "", 2)


_TESTS = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
}


def value_problem(item, op: str, value) -> str | None:
    """Say why comparing item's answers with value by op is wrong or can never hold."""
    if not item.numeric and not isinstance(item, MultipleChoice):
        return "compares an item that has no codes (use 'answered' or 'declined')"
    if isinstance(item, MultipleChoice) and op not in ("eq", "ne", "in", "not_in"):
        return f"uses '{op}' on a multiple-choice item (use eq, ne, in or not_in)"
    if op in ("in", "not_in"):
        values = value if isinstance(value, tuple) else (value,)
    elif isinstance(value, tuple):
        return f"gives a list to '{op}' (use 'in' or 'not_in' for a list)"
    else:
        values = (value,)
    codes = item.codes()
    low, high = item.code_range() or (min(codes), max(codes))
    if op in ("eq", "ne", "in", "not_in"):
        wrong = [v for v in values if (v not in codes if codes else not low <= v <= high)]
        if wrong:
            allowed = f"codes {list(codes)}" if codes else f"range {low}-{high}"
            return f"uses {wrong}, which is not among the item's {allowed}"
        return None
    candidates = codes or (low, high)
    if not any(_TESTS[op](c, value) for c in candidates):
        return f"can never hold: '{op} {value}' with answers {low}-{high}"
    return None


def _check_rules(col: Collector, known: list, parsed: dict, rules) -> None:
    items_by_id = {ident: item for ident, (_, item) in parsed.items()}
    seen: dict[str, object] = {}
    ranges: dict[str, tuple | None] = {}
    for index, rule in rules:
        if rule is None:
            continue
        where = f"score {rule.id}"
        base = ("scores", index)
        if rule.id in seen:
            col.add(
                base + ("id",),
                where,
                f"duplicate score id '{rule.id}'",
                "give every score its own id.",
                2,
            )
        if rule.id in known:
            col.add(
                base + ("id",),
                where,
                f"score id '{rule.id}' is also an item id",
                "scores and items share one set of names in exports: rename the score.",
                2,
            )
        if isinstance(rule, ITEM_RULES):
            _check_item_rule(col, rule, index, known, items_by_id)
        else:
            _check_derived_rule(col, rule, index, seen, ranges)
        seen[rule.id] = rule
        ranges[rule.id] = rule_range(rule, items_by_id, ranges)


def _check_item_rule(col, rule, index, known, items_by_id) -> None:
    where = f"score {rule.id}"
    listed: set[str] = set()
    for position, ident in enumerate(rule.items):
        path = ("scores", index, "items", position)
        if ident in listed:
            col.add(path, where, f"item '{ident}' is listed twice", "list each item once.", 2)
        listed.add(ident)
        if ident not in known:
            col.add(
                path,
                where,
                f"the rule names unknown item '{ident}'",
                _did_you_mean(ident, known),
                2,
            )
        elif ident in items_by_id and not items_by_id[ident].numeric:
            kind = items_by_id[ident].type
            col.add(
                path,
                where,
                f"item '{ident}' is a {kind} item and has no numeric value",
                "score only single_choice, scale, yes_no and integer items.",
                2,
            )
    if isinstance(rule, CountRule):
        usable = [items_by_id[i] for i in rule.items if i in items_by_id]
        problems = {value_problem(item, rule.where.op, rule.where.value) for item in usable}
        if usable and None not in problems:
            col.add(("scores", index, "where"), where, f"'where' {sorted(problems)[0]}", "", 2)
    count = len(rule.items)
    if rule.min_answered is not None and rule.min_answered > count:
        col.add(
            ("scores", index, "min_answered"),
            where,
            f"min_answered {rule.min_answered} is more than the {count} items",
            "",
            2,
        )
    if rule.max_missing is not None and rule.max_missing >= count:
        col.add(
            ("scores", index, "max_missing"),
            where,
            f"max_missing {rule.max_missing} allows all {count} items to be missing",
            f"use a number below {count}.",
            2,
        )


def _check_derived_rule(col, rule, index, seen: dict, ranges: dict) -> None:
    where = f"score {rule.id}"
    path = ("scores", index, "source")
    if rule.source not in seen:
        col.add(
            path,
            where,
            f"source score '{rule.source}' is not defined before this score",
            f"list the source score earlier under 'scores' ({_did_you_mean(rule.source, seen)})",
            2,
        )
        return
    if isinstance(seen[rule.source], BandsRule | CutoffRule):
        col.add(
            path,
            where,
            f"source score '{rule.source}' is not a number",
            "use a sum, mean, percent_of_max or count score as source.",
            2,
        )
        return
    span = ranges.get(rule.source)
    if isinstance(rule, BandsRule):
        _check_bands(col, rule, index, span)
    elif span is not None and not span[0] <= rule.value <= span[1]:
        col.add(
            ("scores", index, "value"),
            where,
            f"the cut-off {rule.value:g} is outside the range of '{rule.source}' "
            f"({span[0]:g}-{span[1]:g})",
            "",
            2,
        )


def _check_bands(col, rule: BandsRule, index: int, span) -> None:
    where = f"score {rule.id}"
    previous = None
    values: set[str] = set()
    for position, band in enumerate(rule.bands):
        path = ("scores", index, "bands", position)
        last = position == len(rule.bands) - 1
        if band.value in values:
            col.add(path, where, f"band value '{band.value}' is used twice", "", 2)
        values.add(band.value)
        if band.upto is None and not last:
            col.add(
                path,
                where,
                "only the last band may leave out 'upto'",
                "give this band an upper limit ('upto').",
                2,
            )
        if band.upto is not None and previous is not None and band.upto <= previous:
            col.add(
                path,
                where,
                f"'upto' {band.upto} is not above the band before ({previous})",
                "list bands from low to high.",
                2,
            )
        if band.upto is not None:
            previous = band.upto
    top = rule.bands[-1].upto
    if top is not None and span is not None and top < span[1]:
        col.add(
            ("scores", index, "bands"),
            where,
            f"the bands stop at {top:g} but '{rule.source}' can reach {span[1]:g}",
            "raise the last band's 'upto' or leave it out to cover the rest.",
            2,
        )
