"""Smoke test: every benchmark script still runs end to end (small inputs, no timing asserts)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_quick_runs_every_section(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the benchmarks train and export: the [train] extra")
    readme_before = (ROOT / "README.md").read_text()
    subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True
    for section in ("cores", "training", "engine", "end_to_end", "cold_start", "streaming", "ray"):
        assert section in results, section
    assert results["cold_start"]["heavy_modules_imported"] is False
    assert [row["batch"] for row in results["engine"]["rows"]] == [1, 64, 1024]
    assert "QUICK smoke run" in (tmp_path / "results.md").read_text()
    assert (ROOT / "README.md").read_text() == readme_before, "a quick run leaves the README alone"


def test_a_partial_run_replaces_its_sections_and_names_their_machine(tmp_path: Path) -> None:
    from bench.__main__ import merged_into_earlier
    from bench.report import _elsewhere, machine_of

    machine = {"cpu": "Some CPU", "cpus_usable": 2, "python": "3.11", "versions": {}}
    earlier = tmp_path / "results.json"
    earlier.write_text(
        json.dumps(
            {
                "machine": machine,
                "quick": False,
                "training": {"t": 1},
                "ray": {"r": 1},
                "measured": {"training": "2026-01-01", "ray": "2026-01-01"},
            }
        )
    )
    partial = {
        "machine": machine,
        "quick": False,
        "ray": {"r": 2},
        "measured": {"ray": "2026-02-02"},
    }
    merged = merged_into_earlier(partial, earlier)
    assert merged["training"] == {"t": 1} and merged["ray"] == {"r": 2}
    assert merged["measured"] == {"training": "2026-01-01", "ray": "2026-02-02"}
    other = {"cpu": "Other CPU", "cpus_usable": 2, "python": "3.11", "versions": {}}
    elsewhere = merged_into_earlier({**partial, "machine": other}, earlier)
    assert elsewhere["machine"] == machine  # the full run's
    assert machine_of(elsewhere, "ray") == other and machine_of(elsewhere, "training") == machine
    note = _elsewhere(elsewhere, ("training", "ray"))
    assert note == " Sections measured on another machine: ray: Other CPU, 2 CPUs, on 2026-02-02."
    assert _elsewhere(merged, ("training", "ray")) == ""
    assert merged_into_earlier(partial, tmp_path / "absent.json") == partial
