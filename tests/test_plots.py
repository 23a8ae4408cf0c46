"""The SVG plots: pure functions of numbers, and the export page that shows them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from pro_app.catalog import catalog_for
from pro_app.exports import plots
from pro_app.services import summaries

from .factories import answer, complete, enrol, make_app
from .test_staff import PASSWORD, account, sign_in

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == name]


def texts(root: ET.Element) -> list[str]:
    return [e.text for e in root.iter(f"{SVG}text")]


def test_summary_quartiles_median_and_count():
    summary = plots.summarise([5, None, 1, 3, 2, 4, float("nan")])
    assert summary == plots.Summary(n=5, low=1, q1=2, median=3, q3=4, high=5)
    assert plots.summarise([7]) == plots.Summary(1, 7, 7, 7, 7, 7)
    assert plots.summarise([None, None]) is None and plots.summarise([]) is None
    assert plots.mean([1, None, 2]) == 1.5 and plots.mean([None]) is None
    assert plots.numbers([True, 1, 2.5, None]) == [1.0, 2.5]  # a yes/no is not a number


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (3.3, 6.3, [3, 4, 5, 6, 7]),
        (1.2, 3.9, [1, 2, 3, 4]),
        (0.12, 0.31, [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]),
        (5, 5, [4, 4.5, 5, 5.5, 6]),
        (-2, 2, [-2, -1, 0, 1, 2]),
        (17 / 3, 5.666666666666667 + 1e-15, [4.5, 5, 5.5, 6, 6.5, 7]),
    ],
)
def test_ticks_are_round_and_cover_the_values(low, high, expected):
    assert plots.ticks(low, high) == expected


def test_distribution_has_one_row_per_timepoint():
    groups = [[1, 2, 3, 4, 5, 6], [2.5], [], [None, 4, None]]
    labels = ["baseline", "day28", "day56", "day91"]
    root = parse(plots.distribution_svg("d", "Title", "Desc", labels, groups, no_data="ingen"))
    rows = by_class(root, "plot-row")
    assert len(rows) == 4
    assert [r.find(f"{SVG}text").text for r in rows] == labels
    first, single, empty, with_nulls = rows
    assert len(first.findall(f"{SVG}rect")) == 1  # five or more: a box
    assert len(single.findall(f"{SVG}circle")) == 1  # one value: a dot
    assert [t.text for t in empty.iter(f"{SVG}text")] == ["day56", "ingen"]
    assert len(with_nulls.findall(f"{SVG}circle")) == 1  # the nulls are left out
    assert "n = 6" in texts(first) and "n = 1" in texts(with_nulls)


def test_no_data_at_all_is_said_in_words():
    root = parse(plots.distribution_svg("d", "T", "D", ["a", "b"], [[], [None]], no_data="—"))
    assert texts(root) == ["—"]
    root = parse(plots.lines_svg("l", "T", "D", ["a"], [("OUS", [None])], no_data="nothing"))
    assert texts(root) == ["nothing"]
    assert texts(parse(plots.lines_svg("l", "T", "D", ["a"], [], no_data="x"))) == ["x"]


def test_lines_have_one_series_and_legend_entry_per_site():
    labels = ["screening", "baseline", "day28", "day56"]
    series = [("OUS", [10, 20, None, 30]), ("HUS", [12, None, None, None]), ("STO", [5, 6, 7, 8])]
    root = parse(plots.lines_svg("m", "Mean", "Lines", labels, series))
    lines = by_class(root, "plot-series")
    assert len(lines) == 3 and len(by_class(root, "plot-legend")) == 3
    ous, hus, sto = lines
    assert len(ous.find(f"{SVG}polyline").get("points").split()) == 3  # the gap is stepped over
    assert hus.find(f"{SVG}polyline") is None and len(list(hus)) == 1  # one point: a marker
    markers = {ous[1].tag, hus[0].tag, sto[1].tag}
    assert markers == {f"{SVG}circle", f"{SVG}rect", f"{SVG}polygon"}  # not colour alone
    assert [e.text for e in by_class(root, "plot-label")] == labels
    # Every turned label fits inside the picture on its left.
    assert all(
        float(e.get("x")) > 0.6 * plots.FONT * len(e.text) * 0.7
        for e in by_class(root, "plot-label")
    )


def test_lines_refuse_a_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="one value per label"):
        plots.lines_svg("x", "T", "D", ["a", "b"], [("OUS", [1])])
    with pytest.raises(ValueError, match="one group"):
        plots.distribution_svg("x", "T", "D", ["a", "b"], [[1]])


def test_text_is_escaped():
    nasty = "<script>alert(\"x\")</script> & 'q'"
    svg = plots.lines_svg(
        'id"x', nasty, nasty, [nasty], [(nasty, [1])], fmt=lambda v: f"<{v}>"
    ) + plots.distribution_svg("d", nasty, nasty, [nasty], [[1, 2]], fmt=lambda v: f"<{v}>")
    assert "<script>" not in svg
    for part in re.findall(r"<svg.*?</svg>", svg):
        root = parse(part)
        assert nasty in texts(root) or root.find(f"{SVG}title").text == nasty
        assert root.find(f"{SVG}desc").text == nasty


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "p.sqlite", WTF_CSRF_ENABLED=False)
    with app.app_context():
        q = catalog_for(app).questionnaires
    for number, (site, codes) in enumerate(
        [("OUS", (2, 1, 3, 2, 1)), ("OUS", (0, 0, 1, 0, 0)), ("HUS", (4, 3, 4, 5, 3))], 1
    ):
        code = f"BTB-000{number}"
        enrol(app, code, site=site)
        odi = {f"odi{n}": codes[n % 5] for n in range(1, 11)}
        answer(app, code, "screening", "odi", complete(q["odi"], odi))
        answer(
            app, code, "screening", "nrs", {"nrs_current": number, "nrs_worst": 9, "nrs_usual": 5}
        )
    answer(app, "BTB-0001", "baseline", "odi", {"odi1": 5}, done=False)  # in progress: left out
    return app


@pytest.fixture
def manager(app):
    _, secret = account(app, "dm@example.org", "data_manager")
    return sign_in(app, "dm@example.org", PASSWORD, secret)


def test_score_values_are_submitted_latest_and_site_scoped(app):
    from pro_app.database import get_db

    with app.app_context():
        db = get_db()
        both = summaries.score_values(db, "odi", "odi", ("OUS", "HUS"))
        assert sorted((s, t) for s, t, _v in both) == [
            ("HUS", "screening"),
            ("OUS", "screening"),
            ("OUS", "screening"),
        ]
        assert all(isinstance(v, int | float) for _s, _t, v in both)
        assert [s for s, _t, _v in summaries.score_values(db, "odi", "odi", ("HUS",))] == ["HUS"]
        assert summaries.score_values(db, "odi", "odi", ()) == []
        choices = summaries.score_choices(catalog_for(app))
    keys = [c.key for c in choices]
    assert "odi.odi" in keys and "odi.odi_band" not in keys  # bands are not numbers
    assert "hscl25.hscl_case" not in keys


def test_export_page_shows_plots_of_the_chosen_questionnaire_and_score(manager):
    page = manager.get("/staff/exports?questionnaire=odi&score=odi.odi").get_data(as_text=True)
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(svgs) == 2  # the questionnaire has one numeric score; one line plot
    spread, mean = (parse(svg) for svg in svgs)
    assert len(by_class(spread, "plot-row")) == 8  # every timepoint that asks for it
    assert "n = 3" in texts(spread)
    assert len(by_class(mean, "plot-series")) == 2  # OUS and HUS have answers; STO none
    assert '<option value="odi.odi" selected>' in page
    assert '<option value="odi" selected>' in page
    assert "Fordeling per måletidspunkt" in page and "<details>" in page
    assert re.search(r"<th scope=\"row\">screening</th><td>3</td>", page)


def test_export_page_picks_a_default_and_ignores_unknown_choices(manager):
    page = manager.get("/staff/exports?questionnaire=nope&score=x.y").get_data(as_text=True)
    assert page.count('role="img"') >= 2
    first = re.search(r'<select class="input" id="plot-questionnaire".*?selected', page, re.S)
    assert first is not None
