"""scripts/export_benchmark.py runs at a tiny size: a row per format, exit 0, database reused."""

from __future__ import annotations

import json
import subprocess
import sys

from pro_app.settings import ROOT

SCRIPT = ROOT / "scripts" / "export_benchmark.py"
FORMATS = ("csv-long", "fhir")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_a_row_per_format_at_a_tiny_size(tmp_path):
    database = tmp_path / "bench.sqlite"
    figures = tmp_path / "figures.json"
    args = ["--participants", "20", "--timepoints-limit", "3", "--database", str(database)]
    for fmt in FORMATS:
        args += ["--format", fmt]
    done = run(*args, "--json", str(figures))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "database built" in done.stdout
    for fmt in FORMATS:
        row = [line for line in lines if line.split()[:1] == [fmt]]
        assert len(row) == 1, done.stdout
        assert "FAILED" not in row[0] and row[0].split()[-1] == "streams"
    (size,) = json.loads(figures.read_text())["sizes"]
    assert size["contents"]["participants"] == 20
    assert [r["format"] for r in size["rows"]] == list(FORMATS)
    assert all(r["records"] > 0 and r["rows"] > 0 and r["peak_mb"] > 0 for r in size["rows"])

    again = run(*args[:6], "--format", "codebook")
    assert again.returncode == 0, again.stderr
    assert "database reused" in again.stdout


def test_help_and_a_file_it_did_not_build(tmp_path):
    assert "--timepoints-limit" in run("--help").stdout
    other = tmp_path / "other.sqlite"
    other.write_bytes(b"")
    done = run("--participants", "2", "--database", str(other), "--format", "codebook")
    assert done.returncode != 0 and "not a benchmark database" in done.stderr
    assert other.read_bytes() == b""
