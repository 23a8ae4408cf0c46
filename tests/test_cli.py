"""The commands as a user runs them: questionnaires check, score, schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pro_app import create_app
from pro_app.settings import ROOT

from .test_loader import GOOD
from .vectors import VECTORS

FLASK = [sys.executable, "-m", "flask", "--app", "pro_app"]


def run_flask(*args: str, stdin: str | None = None, env: dict | None = None):
    """Run `flask --app pro_app ...` in a real process, as a user would."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRO_")}
    environment.update(env or {})
    return subprocess.run(
        [*FLASK, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=60,
    )


# --- questionnaires check -------------------------------------------------------------------


def test_check_passes_on_the_shipped_definitions(runner):
    result = runner.invoke(args=["questionnaires", "check"])
    assert result.exit_code == 0, result.output
    for qid in ("odi", "nrs", "nrs_weekly", "hscl25", "fabq", "shc", "rmdq", "background"):
        assert f"questionnaires/{qid}.yaml" in result.output
    assert "study backtobasic, 22 timepoints" in result.output
    assert "All definitions are valid." in result.output


def test_check_lists_every_problem_with_location_and_exits_non_zero(tmp_path):
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "toy.yaml").write_text(
        GOOD.replace("{nb: To, en: Two}", "{nb: To}").replace("{id: t3,", "{id: t3, colour: red,"),
        encoding="utf-8",
    )
    (folder / "other.yaml").write_text(GOOD, encoding="utf-8")  # id 'toy' != file name
    result = run_flask("questionnaires", "check", env={"PRO_QUESTIONNAIRES_DIR": str(folder)})
    assert result.returncode == 1
    assert (
        f"{folder}/toy.yaml:13: item t2: key 'text.en': missing translation 'en'" in result.stderr
    )
    assert "key 'colour': unknown key 'colour'" in result.stderr
    assert "differs from the file name 'other.yaml'" in result.stderr
    assert "Error: " in result.stderr and "problem(s) in" in result.stderr


def test_check_given_paths(tmp_path):
    good = tmp_path / "toy.yaml"
    good.write_text(GOOD, encoding="utf-8")
    app = create_app({"TESTING": True})
    result = app.test_cli_runner().invoke(args=["questionnaires", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "ok    " in result.output and "toy 1" in result.output


def test_check_a_study_against_the_definitions(tmp_path):
    study = (ROOT / "studies" / "backtobasic.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "backtobasic.yaml"
    broken.write_text(
        study.replace("questionnaires: [nrs, odi]", "questionnaires: [nrs, odx]"), encoding="utf-8"
    )
    app = create_app({"TESTING": True})
    result = app.test_cli_runner().invoke(args=["questionnaires", "check", str(broken)])
    assert result.exit_code == 1
    assert "timepoint screening: key 'questionnaires[1]': unknown questionnaire 'odx'" in (
        result.output
    )


def test_check_missing_path_is_a_usage_error(runner):
    result = runner.invoke(args=["questionnaires", "check", "nowhere.yaml"])
    assert result.exit_code == 2
    assert "nowhere.yaml: no such file or folder" in result.output


def test_list(runner):
    result = runner.invoke(args=["questionnaires", "list"])
    assert result.exit_code == 0
    assert "hscl25" in result.output and "sha256" in result.output


# --- score ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_public_vectors_through_flask_score(name):
    answers, expected = VECTORS[name]
    result = run_flask("score", "-", stdin=json.dumps(answers))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key, want in expected.items():
        assert out["scores"][key] == want, key
    assert set(out["definitions"]) == set(answers)


def test_score_reads_a_file_and_explains_nulls(runner, tmp_path):
    path = tmp_path / "answers.json"
    odi = {f"odi{n}": 1 for n in range(1, 8)}
    odi.update({"odi8": "not_applicable", "odi9": "declined", "odi10": None})
    path.write_text(json.dumps({"odi": odi, "nrs": {"nrs_current": 7}}), encoding="utf-8")
    result = runner.invoke(args=["score", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["scores"]["odi"] is None and out["scores"]["odi_band"] is None
    assert out["notes"]["odi"] == (
        "7 of 10 items answered (1 declined, 1 not applicable, 1 unanswered); at least 8 needed"
    )
    assert out["notes"]["lbp_mean"].startswith("1 of 3 items answered")
    assert out["scores"]["eligible_pro"] is None
    assert out["notes"]["eligible_pro"] == "nrs.lbp_mean and odi.odi missing"


def test_score_raises_the_safety_alert(runner):
    answers = {"hscl25": {f"hscl{n}": 1 for n in range(1, 26)} | {"hscl20": 3}}
    out = json.loads(runner.invoke(args=["score", "-"], input=json.dumps(answers)).output)
    assert out["alerts"] == ["hscl25.hscl20_thoughts"]


def test_same_score_name_in_two_questionnaires_is_qualified(runner):
    three = {"nrs_current": 3, "nrs_worst": 6, "nrs_usual": 3}
    result = runner.invoke(
        args=["score", "-"], input=json.dumps({"nrs": three, "nrs_weekly": three})
    )
    out = json.loads(result.output)
    assert out["scores"]["nrs.lbp_mean"] == 4.0 and out["scores"]["nrs_weekly.lbp_mean"] == 4.0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"odq": {}}, "unknown questionnaire id 'odq'"),
        ({"odi": {"odi11": 1}}, "odi: unknown item id 'odi11'"),
        ({"odi": {"odi1": 6}}, "odi.odi1: 6 is not one of its codes (0-5)"),
        ({"hscl25": {"hscl1": 0}}, "hscl25.hscl1: 0 is not one of its codes (1-4)"),
        ({"odi": {"odi1": "2"}}, "odi.odi1: '2' is not a code"),
        ({"odi": {"odi1": True}}, "odi.odi1: True is not a code"),
        ({"odi": [1, 2]}, "odi: answers must be an object"),
        ({"rmdq": {"rmdq1": 2}}, "rmdq.rmdq1: 2 is not one of its codes (0, 1)"),
        ({"shc": {"shc1_days": 31}}, "shc.shc1_days: 31 is outside 0-30"),
    ],
)
def test_score_refuses_bad_answers(runner, payload, message):
    result = runner.invoke(args=["score", "-"], input=json.dumps(payload))
    assert result.exit_code == 1
    assert message in result.output


def test_score_refuses_text_that_is_not_json(runner):
    result = runner.invoke(args=["score", "-"], input='{"odi": {"odi1": 1,}}')
    assert result.exit_code == 1
    assert "not valid JSON (line 1, column 20" in result.output
    result = runner.invoke(args=["score", "-"], input="[1, 2]")
    assert "must be a JSON object" in result.output


def test_score_reports_broken_definitions(tmp_path):
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "toy.yaml").write_text(GOOD.replace("{nb: To, en: Two}", "{nb: To}"), "utf-8")
    result = run_flask("score", "-", stdin="{}", env={"PRO_QUESTIONNAIRES_DIR": str(folder)})
    assert result.returncode == 1
    assert "missing translation 'en'" in result.stderr
    assert "questionnaires check" in result.stderr


# --- schedule -------------------------------------------------------------------------------


def test_schedule_table(runner):
    result = runner.invoke(
        args=[
            "schedule",
            "--enrolled",
            "2026-03-02",
            "--day0",
            "2026-04-02",
            "--now",
            "2026-04-10T12:00",
        ]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "Study backtobasic (Europe/Oslo); enrolled 2026-03-02; day 0 2026-04-02"
    )
    row = {line.split()[0]: line for line in lines[2:] if line.split()}
    assert row["screening"].split()[2:5] == ["2026-03-02", "2026-03-02", "2026-04-01"]
    assert row["screening"].rstrip().endswith("closed")
    assert row["baseline"].split()[1:5] == ["+0", "2026-04-02", "2026-03-26", "2026-04-02"]
    assert row["week1"].rstrip().endswith("open, past target day")
    assert row["week2"].rstrip().endswith("upcoming")
    assert "day154" in row and "odi, nrs, rmdq" in row["day154"]
    assert "Visits: 1st infusion 2026-04-02, 2nd infusion 2026-04-16" in result.output


def test_schedule_json_and_without_day0(runner):
    result = runner.invoke(
        args=["schedule", "--enrolled", "2026-03-02", "--now", "2026-03-02T00:00", "--json"]
    )
    rows = json.loads(result.output)
    assert [r["timepoint"] for r in rows] == ["screening"]
    assert rows[0]["state"] == "open"
    assert rows[0]["opens_at"] == "2026-03-01T23:00:00Z"
    assert rows[0]["last_day"] == "2026-04-13"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--enrolled", "2026-03-02", "--day0", "2026-03-01"], 1, "must be after the enrolment"),
        (["--enrolled", "2026-02-30"], 2, "Invalid value for '--enrolled'"),
        (["--enrolled", "2026-03-02", "--now", "soon"], 2, "is not a date-time"),
        ([], 2, "Missing option '--enrolled'"),
    ],
)
def test_schedule_bad_arguments(runner, args, code, message):
    result = runner.invoke(args=["schedule", *args])
    assert result.exit_code == code
    assert message in result.output


def test_every_command_has_help():
    result = run_flask("--help")
    for command in ("questionnaires", "score", "schedule"):
        assert command in result.stdout
    for command in (["questionnaires", "check"], ["score"], ["schedule"]):
        result = run_flask(*command, "--help")
        assert result.returncode == 0 and "Usage:" in result.stdout
        assert len(result.stdout.splitlines()) > 5, command


def test_readme_mentions_every_command():
    readme = Path(ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("questionnaires check", "score", "schedule --enrolled"):
        assert command in readme


def test_data_commands_on_a_database_that_was_not_upgraded_say_what_to_do(tmp_path):
    from pro_app import create_app

    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "new.sqlite")})
    runner = app.test_cli_runner()
    for args in (["export", "--format", "csv-long", "-o", "-"], ["reminders", "send"]):
        out = runner.invoke(args=args)
        assert out.exit_code != 0, args
        assert "is not up to date" in out.output and "db upgrade" in out.output, out.output
