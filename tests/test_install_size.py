"""The main job's CPU install stays small: a fresh venv with fashion-onnx[cpu] holds at most
250 MB of site-packages, pip included (scripts/install_size.sh measures it)."""

import re
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_size.sh"


@pytest.mark.slow
def test_a_fresh_cpu_install_fits_in_250_mb() -> None:
    result = subprocess.run(["bash", str(SCRIPT), "cpu"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r"\((\d+) bytes\)", result.stdout)
    assert found, result.stdout
    assert int(found.group(1)) <= 250_000_000, result.stdout
