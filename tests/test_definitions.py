"""Every shipped definition loads and keeps to the contract in ../shared/instruments.md."""

from __future__ import annotations

import pytest

from pro_app.domain.loader import load_questionnaire_file
from pro_app.domain.model import (
    BandsRule,
    CountRule,
    CutoffRule,
    MeanRule,
    PercentRule,
    Scale,
    SingleChoice,
    SumRule,
    YesNo,
)

from .conftest import QUESTIONNAIRES

SHIPPED = ["background", "fabq", "hscl25", "nrs", "nrs_weekly", "odi", "rmdq", "shc"]


def ids(prefix, count, suffix=""):
    return [f"{prefix}{n}{suffix}" for n in range(1, count + 1)]


def test_the_shipped_set():
    assert sorted(p.stem for p in QUESTIONNAIRES.glob("*.yaml")) == SHIPPED


@pytest.mark.parametrize("qid", SHIPPED)
def test_each_file_loads_with_texts_in_both_languages(qid):
    q = load_questionnaire_file(QUESTIONNAIRES / f"{qid}.yaml")
    assert q.id == qid and q.version and len(q.content_hash) == 64
    for item in q.items:
        assert item.text.nb != item.text.en, item.id
        assert item.short is not None, f"{item.id} needs a short label for the codebook"
    assert q.licence.wording_note


def codes(q, item_id):
    return sorted(q.item(item_id).codes())


def test_odi(catalog):
    q = catalog.questionnaires["odi"]
    assert [i.id for i in q.items] == ids("odi", 10)
    for item_id in ids("odi", 10):
        assert isinstance(q.item(item_id), SingleChoice) and codes(q, item_id) == [0, 1, 2, 3, 4, 5]
    assert q.item("odi8").not_applicable is not None
    odi, band = q.scores
    assert isinstance(odi, PercentRule) and odi.id == "odi" and odi.min_answered == 8
    assert isinstance(band, BandsRule) and band.source == "odi"
    assert [(b.upto, b.value) for b in band.bands] == [
        (20, "minimal"),
        (40, "moderate"),
        (60, "severe"),
        (80, "crippling"),
        (None, "bed_bound"),
    ]
    assert q.licence.agreement_required and q.licence.distributor == "Mapi Research Trust"
    assert q.recall.en.lower() == "today"


@pytest.mark.parametrize("qid", ["nrs", "nrs_weekly"])
def test_nrs(catalog, qid):
    q = catalog.questionnaires[qid]
    assert [i.id for i in q.items] == ["nrs_current", "nrs_worst", "nrs_usual"]
    for item in q.items:
        assert isinstance(item, Scale) and (item.min, item.max) == (0, 10)
    (mean,) = q.scores
    assert isinstance(mean, MeanRule) and mean.id == "lbp_mean" and mean.min_answered == 3
    assert "week" in q.recall.en if qid == "nrs_weekly" else "2 weeks" in q.recall.en


def test_hscl25(catalog):
    q = catalog.questionnaires["hscl25"]
    assert [i.id for i in q.items] == ids("hscl", 25)
    assert all(codes(q, i) == [1, 2, 3, 4] for i in ids("hscl", 25))
    rules = q.scores_by_id
    assert (rules["hscl_anxiety"].items, rules["hscl_anxiety"].min_answered) == (
        tuple(ids("hscl", 10)),
        5,
    )
    assert (rules["hscl_depression"].items, rules["hscl_depression"].min_answered) == (
        tuple(f"hscl{n}" for n in range(11, 26)),
        8,
    )
    assert (rules["hscl_total"].items, rules["hscl_total"].min_answered) == (
        tuple(ids("hscl", 25)),
        13,
    )
    case = rules["hscl_case"]
    assert isinstance(case, CutoffRule) and (case.source, case.op, case.value) == (
        "hscl_total",
        "ge",
        1.75,
    )
    (alert,) = q.alerts
    assert (alert.when.item, alert.when.op, alert.when.value) == ("hscl20", "ge", 3)
    assert "14 " in q.recall.en


def test_fabq(catalog):
    q = catalog.questionnaires["fabq"]
    assert [i.id for i in q.items] == ids("fabq", 16)
    assert all(codes(q, i) == list(range(7)) for i in ids("fabq", 16))
    rules = q.scores_by_id
    assert rules["fabq_pa"].items == ("fabq2", "fabq3", "fabq4", "fabq5")
    assert set(rules["fabq_w"].items) == {f"fabq{n}" for n in (6, 7, 9, 10, 11, 12, 15)}
    for rule in rules.values():
        assert isinstance(rule, SumRule) and not rule.prorate and rule.max_missing in (0, None)
        assert rule.min_answered is None
    assert all(q.item(f"fabq{n}").not_applicable for n in range(6, 17))


SHC_SUBSCALES = {
    "shc_msk": [4, 5, 6, 7, 8, 9, 10, 14],
    "shc_pn": [11, 24, 25, 26, 27, 28, 29],
    "shc_gi": [15, 16, 17, 18, 19, 20, 21],
    "shc_allergy": [3, 12, 13, 22, 23],
    "shc_flu": [1, 2],
}


def test_shc(catalog):
    q = catalog.questionnaires["shc"]
    severity = [i.id for i in q.items if not i.id.endswith("_days")]
    days = [i.id for i in q.items if i.id.endswith("_days")]
    assert severity == ids("shc", 29) and sorted(days) == sorted(ids("shc", 29, "_days"))
    assert all(codes(q, i) == [0, 1, 2, 3] for i in severity)
    for n in range(1, 30):
        item = q.item(f"shc{n}_days")
        assert (item.min, item.max) == (0, 30)
        assert (item.show_if.item, item.show_if.op, item.show_if.value) == (f"shc{n}", "gt", 0)
    rules = q.scores_by_id
    for name, numbers in SHC_SUBSCALES.items():
        assert sorted(rules[name].items) == sorted(f"shc{n}" for n in numbers), name
    assert sorted(rules["shc_total"].items) == sorted(ids("shc", 29))
    count = rules["shc_count"]
    assert isinstance(count, CountRule) and (count.where.op, count.where.value) == ("gt", 0)
    for rule in rules.values():
        assert rule.max_missing in (0, None) and rule.min_answered is None
        assert not getattr(rule, "prorate", False)


def test_rmdq(catalog):
    q = catalog.questionnaires["rmdq"]
    assert [i.id for i in q.items] == ids("rmdq", 24)
    assert all(isinstance(q.item(i), YesNo) for i in ids("rmdq", 24))
    (rule,) = q.scores
    assert isinstance(rule, CountRule) and rule.id == "rmdq"
    assert (rule.where.op, rule.where.value, rule.max_missing, rule.prorate) == ("eq", 1, 2, True)


def test_background_is_not_scored(catalog):
    q = catalog.questionnaires["background"]
    assert q.scores == ()
    assert {i.type for i in q.items} >= {
        "single_choice",
        "multiple_choice",
        "yes_no",
        "integer",
        "text",
        "date",
    }


def test_the_documented_complete_example_loads_and_scores():
    from pro_app.domain.loader import load_questionnaire_text
    from pro_app.domain.scoring import score
    from pro_app.settings import ROOT

    text = (ROOT / "docs" / "definition-format.md").read_text(encoding="utf-8")
    block = text.split("## Complete example", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    example = load_questionnaire_text(block, "example.yaml")
    types = {item.type for item in example.items}
    assert types == {
        "single_choice",
        "multiple_choice",
        "scale",
        "yes_no",
        "integer",
        "text",
        "date",
    }
    methods = {rule.method for rule in example.scores}
    assert methods == {"sum", "mean", "percent_of_max", "count", "bands", "cutoff"}
    assert example.alerts
    assert score(example, {}).scores
