"""scripts/export_benchmark.py at a tiny size: a row per format, exit 0, its database reused."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from pro_app.settings import ROOT

SCRIPT = ROOT / "scripts" / "export_benchmark.py"
FORMATS = ("csv-long", "fhir")
SEED = 7


@pytest.fixture(scope="module")
def bench():
    """The script as a module, for the database checks (no second process needed)."""
    spec = importlib.util.spec_from_file_location("export_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_a_row_per_format_at_a_tiny_size(tmp_path, bench, catalog):
    database = tmp_path / "bench.sqlite"
    figures = tmp_path / "figures.json"
    args = ["--participants", "20", "--timepoints-limit", "3", "--seed", str(SEED)]
    args += ["--database", str(database), "--json", str(figures)]
    for fmt in FORMATS:
        args += ["--format", fmt]
    done = run(*args)
    assert done.returncode == 0, done.stderr
    assert "database built" in done.stdout
    lines = done.stdout.splitlines()
    for fmt in FORMATS:
        row = [line for line in lines if line.split()[:1] == [fmt]]
        assert len(row) == 1, done.stdout
        assert "FAILED" not in row[0] and row[0].split()[-1] == "streams"
    (size,) = json.loads(figures.read_text())["sizes"]
    assert size["contents"]["participants"] == 20
    assert [r["format"] for r in size["rows"]] == list(FORMATS)
    assert all(r["records"] > 0 and r["rows"] > 0 and r["peak_mb"] > 0 for r in size["rows"])

    timepoints = [t.id for t in catalog.study.timepoints][:3]
    assert bench.ensure_database(database, catalog, 20, timepoints, SEED) == "reused"


def test_help_and_a_file_it_did_not_build(tmp_path, bench, catalog):
    assert "--timepoints-limit" in run("--help").stdout
    other = tmp_path / "other.sqlite"
    other.write_bytes(b"")
    with pytest.raises(SystemExit, match="not a benchmark database"):
        bench.ensure_database(other, catalog, 2, ["screening"], SEED)
    assert other.read_bytes() == b""
