"""scripts/gpu_check.sh runs on a CPU machine too: it skips the CUDA sections with the
reason and still writes its JSON (the CUDA run itself happens on a GPU machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_onnx.gpu import gpu_present

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(gpu_present(), reason="on a GPU machine the check runs for real")
def test_the_gpu_check_skips_cuda_cleanly_on_a_cpu_machine(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="its training section needs the [train] extra")
    out = tmp_path / "gpu.json"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "", str(out), "--quick"],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["cuda_usable"] is False
    assert report["facts"]["gpu_present"] is False
    assert report["facts"]["auto_session_providers"] == ["CPUExecutionProvider"]
    for section in ("gpu_tests", "parity"):
        assert report[section]["skipped"].startswith("CUDA is not usable here")
    rows = report["engine"]["rows"]
    assert [row["batch"] for row in rows] == [64, 1024, 16384]
    assert all(row["cpu_fp32_run"] > 0 and "cuda_fp32_run" not in row for row in rows)
    assert report["end_to_end"]["whole_process_images_per_s"]["cpu"] > 0
    assert 0 <= report["training"]["cpu"]["test_accuracy"] <= 1
    assert "finished" in report and not any(
        "error" in v for v in report.values() if isinstance(v, dict)
    )
