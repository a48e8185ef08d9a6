"""`make test` runs each test once: the ids that pass in the torch-free environment
(--record-passed) are deselected in the full one (--skip-passed, tests/conftest.py)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests/test_eval_measures.py"  # six quick tests


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_what_passed_in_one_run_is_deselected_in_the_next(tmp_path: Path) -> None:
    record = tmp_path / "passed.txt"
    first = pytest_run("-k", "ece", f"--record-passed={record}")
    assert first.returncode == 0, first.stdout
    assert record.read_text().splitlines() == [
        f"{TARGET}::test_ece_agrees_with_a_hand_computed_case",
        f"{TARGET}::test_ece_is_zero_when_confidence_is_accuracy_and_uses_15_bins_by_default",
    ]
    second = pytest_run(f"--skip-passed={record}")
    assert second.returncode == 0, second.stdout
    assert "4 passed, 2 deselected" in second.stdout


def test_a_failure_is_not_recorded_as_passed(tmp_path: Path) -> None:
    test = tmp_path / "test_fails.py"
    test.write_text("def test_fails():\n    assert False\n\ndef test_passes():\n    pass\n")
    record = tmp_path / "passed.txt"
    subprocess.run(  # a file outside tests/: the options come from conftest as a plugin
        [
            sys.executable,
            "-m",
            "pytest",
            str(test),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--record-passed",
            str(record),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert [i.rsplit("::", 1)[1] for i in record.read_text().splitlines()] == ["test_passes"]


def test_the_options_work_as_make_test_passes_them(tmp_path: Path) -> None:
    """No paths given (testpaths), the option as --name=FILE: a FILE after a space would be
    taken for a path to test before conftest.py has named the option."""
    record = tmp_path / "passed.txt"
    record.write_text(f"{TARGET}::test_ece_agrees_with_a_hand_computed_case\n")
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--co",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--skip-passed={record}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "1 deselected" in listed.stdout


def test_in_parallel_as_make_test_runs_the_ids_are_recorded_and_skipped_alike(
    tmp_path: Path,
) -> None:
    """Under pytest-xdist (tests/conftest.py schedules a file per worker) one file's
    tests run on one worker, the ids recorded are the plain ones, written once by the
    controller, and --skip-passed deselects them on every worker."""
    pytest.importorskip("xdist", reason="pytest-xdist is in [dev], the full environment")
    parallel = ("-n", "2")
    record = tmp_path / "passed.txt"
    first = pytest_run(*parallel, "-k", "ece", f"--record-passed={record}")
    assert first.returncode == 0, first.stdout
    assert sorted(record.read_text().splitlines()) == [
        f"{TARGET}::test_ece_agrees_with_a_hand_computed_case",
        f"{TARGET}::test_ece_is_zero_when_confidence_is_accuracy_and_uses_15_bins_by_default",
    ]
    second = pytest_run(*parallel, "-vv", f"--skip-passed={record}")  # -q -vv: verbose
    assert second.returncode == 0, second.stdout
    assert "4 passed" in second.stdout and "6 passed" not in second.stdout
    workers = re.findall(r"\[(gw\d+)\].* PASSED", second.stdout)
    assert len(workers) == 4 and len(set(workers)) == 1, second.stdout  # one worker: one file


def test_the_ray_files_are_one_unit_of_work_and_other_files_one_each() -> None:
    from tests.conftest import unit_of_work

    assert unit_of_work("tests/test_ray.py::test_a[x]") == "ray"
    assert unit_of_work("tests/test_serve_ray.py::test_b") == "ray"
    assert unit_of_work("tests/test_cnn.py::test_c") == "tests/test_cnn.py"
