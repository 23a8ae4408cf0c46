"""The BackToBasic schedule against the protocol table, windows, states and time zones."""

from __future__ import annotations

import datetime as dt

import pytest

from pro_app.domain.schedule import ScheduleError, build_schedule, local_midnight
from pro_app.settings import ROOT

UTC = dt.UTC
D = dt.date.fromisoformat


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# instruments.md, "BackToBasic schedule": timepoint -> (day, before, after, questionnaires).
PROTOCOL = {
    "baseline": (0, 7, 0, {"odi", "nrs", "rmdq", "hscl25", "fabq", "shc", "background"}),
    **{f"week{n}": (7 * n, 0, 3, {"nrs_weekly"}) for n in range(1, 15)},
    "day28": (28, 3, 7, {"odi"}),
    "day56": (56, 3, 7, {"odi", "rmdq"}),
    "day91": (91, 3, 7, {"odi"}),
    "day120": (120, 3, 7, {"odi"}),
    "day154": (154, 3, 7, {"odi", "nrs", "rmdq"}),
    "day278": (278, 3, 7, {"odi", "nrs", "rmdq"}),
}

ENROLLED = D("2026-03-02")
DAY0 = D("2026-04-02")  # the baseline window spans the switch to summer time (29 March)


@pytest.fixture(scope="module")
def rows(study):
    return {a.timepoint: a for a in build_schedule(study, ENROLLED, DAY0)}


def test_every_timepoint_of_the_protocol_and_nothing_else(rows):
    assert list(rows) == ["screening", *PROTOCOL]


@pytest.mark.parametrize("timepoint", sorted(PROTOCOL))
def test_days_windows_and_questionnaires_match_the_protocol(rows, timepoint):
    day, before, after, questionnaires = PROTOCOL[timepoint]
    row = rows[timepoint]
    assert row.target == DAY0 + dt.timedelta(days=day)
    assert row.first_day == row.target - dt.timedelta(days=before)
    assert row.last_day == row.target + dt.timedelta(days=after)
    assert set(row.questionnaires) == questionnaires


def test_screening_runs_from_enrolment_to_the_day_before_day0(rows, study):
    row = rows["screening"]
    assert set(row.questionnaires) == {"nrs", "odi"}
    assert (row.first_day, row.last_day) == (ENROLLED, D("2026-04-01"))
    assert not row.can_be_late
    # While day 0 is not set, screening stays open until 42 days after enrolment, alone.
    (only,) = build_schedule(study, ENROLLED, None)
    assert (only.timepoint, only.first_day, only.last_day) == (
        "screening",
        ENROLLED,
        D("2026-04-13"),
    )


def test_windows_are_oslo_calendar_days_across_summer_time(rows):
    baseline = rows["baseline"]
    assert baseline.first_day == D("2026-03-26")
    assert baseline.opens_at == utc("2026-03-25T23:00")  # 00:00 CET (UTC+1)
    assert baseline.closes_at == utc("2026-04-02T22:00")  # 00:00 CEST (UTC+2) on 3 April
    assert rows["screening"].opens_at == utc("2026-03-01T23:00")
    assert rows["screening"].closes_at == utc("2026-04-01T22:00")


def test_local_midnight_around_the_end_of_summer_time(study):
    zone = study.zone
    assert local_midnight(D("2026-10-25"), zone) == utc("2026-10-24T22:00")
    assert local_midnight(D("2026-10-26"), zone) == utc("2026-10-25T23:00")


def test_window_states_at_the_edges(rows):
    week1 = rows["week1"]  # target 9 April, window 9-12 April
    opens, closes = week1.opens_at, week1.closes_at
    tick = dt.timedelta(microseconds=1)
    assert week1.window_state(opens - tick) == "upcoming"
    assert week1.window_state(opens) == "open"
    assert week1.window_state(closes - tick) == "open"
    assert week1.window_state(closes) == "closed"


def test_assessment_states(rows):
    week1 = rows["week1"]
    on_target = utc("2026-04-09T10:00")
    after_target = utc("2026-04-10T10:00")
    assert week1.state(week1.opens_at - dt.timedelta(seconds=1)) == "upcoming"
    assert week1.state(on_target) == "open"
    assert week1.state(on_target, started=True) == "in_progress"
    assert week1.state(after_target) == "late"
    assert week1.state(after_target, completed=True) == "completed"
    assert week1.state(week1.closes_at) == "missed"
    assert week1.state(week1.closes_at, completed=True) == "completed"
    # Late starts at 00:00 Oslo time the day after the target day.
    assert week1.late_from == utc("2026-04-09T22:00")


def test_screening_is_never_late(rows):
    screening = rows["screening"]
    assert screening.state(utc("2026-03-31T12:00")) == "open"
    assert screening.state(screening.closes_at) == "missed"


def test_naive_times_are_refused(rows):
    with pytest.raises(ScheduleError, match="time zone"):
        rows["week1"].window_state(dt.datetime(2026, 4, 9, 12, 0))


def test_day0_must_come_after_enrolment(study):
    with pytest.raises(ScheduleError, match="must be after the enrolment date"):
        build_schedule(study, ENROLLED, ENROLLED)


def test_the_study_file_is_the_shipped_one(study):
    assert study.source == str(ROOT / "studies" / "backtobasic.yaml")
    assert study.code_is_valid("BTB-0001") and not study.code_is_valid("BTB-001")
    assert "OUS" in {s.id for s in study.sites}
