"""Choosing the execution provider: never a silent fallback, no CUDA probe without a GPU,
and one line that names the fix when the runtime is missing or wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from fashion_onnx.errors import DeviceError
from fashion_onnx.gpu import gpu_present
from fashion_onnx.infer import Classifier, runtime
from fashion_onnx.infer import cli as infer_cli

runner = CliRunner()
MISSING_CUDNN = "libcudnn.so.9: cannot open shared object file: No such file or directory"


@pytest.fixture
def gpu_without_cudnn(monkeypatch) -> None:
    """A machine with a GPU and onnxruntime-gpu, whose CUDA provider cannot load cuDNN."""

    def provider_load(path: str) -> None:
        raise OSError(MISSING_CUDNN)

    monkeypatch.setattr(runtime, "gpu_present", lambda: True)
    monkeypatch.setattr(runtime, "installed_runtimes", lambda: ["onnxruntime-gpu"])
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [runtime.CUDA, runtime.CPU])
    monkeypatch.setattr(runtime.ctypes, "CDLL", provider_load)


@pytest.fixture
def folder(tmp_path: Path, test_set) -> Path:
    for i in range(3):
        Image.fromarray(test_set[0][i], mode="L").save(tmp_path / f"{i}.png")
    return tmp_path


def test_auto_with_a_gpu_that_cannot_run_warns_once_with_the_reason(gpu_without_cudnn) -> None:
    with pytest.warns(UserWarning) as caught:
        classifier = Classifier(device="auto")
    (warning,) = [str(w.message) for w in caught]
    assert warning == (
        "a GPU is present but CUDA is not usable, so running on the CPU: "
        f"{MISSING_CUDNN}. Fix: pip install 'fashion-onnx[gpu]'"
    )
    assert classifier.provider == "CPUExecutionProvider"


def test_the_cli_prints_that_warning_as_one_line_and_succeeds(gpu_without_cudnn, folder) -> None:
    result = runner.invoke(infer_cli.app, [str(folder), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: a GPU is present but CUDA is not usable, so running on the CPU: "
        f"{MISSING_CUDNN}. Fix: pip install 'fashion-onnx[gpu]'"
    ]
    assert "3 image(s) classified, 0 failed, on CPUExecutionProvider" in result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_device_cuda_that_fails_exits_2_with_the_same_reason(gpu_without_cudnn, folder) -> None:
    result = runner.invoke(infer_cli.app, [str(folder), "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: CUDA is not usable here: {MISSING_CUDNN}. Fix: pip install 'fashion-onnx[gpu]'"
    )


def test_both_runtimes_installed_is_named_with_the_repair(gpu_without_cudnn, monkeypatch) -> None:
    monkeypatch.setattr(runtime, "installed_runtimes", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.raises(DeviceError) as info:
        Classifier(device="cuda")
    assert "both onnxruntime and onnxruntime-gpu are installed" in str(info.value)
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install" in str(info.value)


def test_device_cuda_without_a_gpu_says_so(monkeypatch) -> None:
    monkeypatch.setattr(runtime, "gpu_present", lambda: False)
    with pytest.raises(DeviceError, match="no NVIDIA GPU device found"):
        Classifier(device="cuda")


def _probe(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_auto_without_a_gpu_never_probes_cuda_even_where_the_runtime_has_it(monkeypatch) -> None:
    """A machine with onnxruntime-gpu (its CUDA provider listed) but no GPU device: auto
    must take the CPU quietly, before any step that loads CUDA (preloading its DLLs,
    opening the provider library, a session offered the CUDA provider)."""
    touched: list[str] = []
    real_session = runtime.ort.InferenceSession

    def session(model, options=None, providers=None, **kwargs):
        touched.extend(f"session with {p}" for p in providers or [] if p != runtime.CPU)
        return real_session(model, options, providers=providers, **kwargs)

    monkeypatch.setattr(runtime, "gpu_present", lambda: False)
    monkeypatch.setattr(runtime, "installed_runtimes", lambda: ["onnxruntime-gpu"])
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [runtime.CUDA, runtime.CPU])
    monkeypatch.setattr(
        runtime.ort, "preload_dlls", lambda: touched.append("preload_dlls"), raising=False
    )
    monkeypatch.setattr(runtime.ctypes, "CDLL", lambda path: touched.append(f"CDLL {path}"))
    monkeypatch.setattr(runtime.ort, "InferenceSession", session)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no warning: nothing failed, nothing to say
        classifier = Classifier(device="auto")
    assert classifier.provider == runtime.CPU
    assert touched == []


PROBE_AUTO = (
    "import json, warnings\n"
    "warnings.simplefilter('error')\n"
    "from fashion_onnx.infer import Classifier\n"
    "c = Classifier(device='auto')\n"
    "maps = open('/proc/self/maps').read()\n"
    "libs = [n for n in ('libcuda', 'libcudart', 'libcublas', 'libcudnn', 'providers_cuda')"
    " if n in maps]\n"
    "print(json.dumps({'provider': c.provider, 'cuda_libraries': libs}))"
)


@pytest.mark.skipif(gpu_present(), reason="this machine has a GPU")
def test_auto_on_a_cpu_machine_takes_the_cpu_without_a_word() -> None:
    """Unpatched, in a fresh process: no GPU found, no warning (a misdetected GPU would
    send auto to CUDA and warn here, whichever onnxruntime is installed)."""
    assert _probe(PROBE_AUTO)["provider"] == "CPUExecutionProvider"


@pytest.mark.skipif(gpu_present(), reason="this machine has a GPU")
@pytest.mark.skipif(
    runtime.CUDA not in runtime.ort.get_available_providers(),
    reason="only onnxruntime's CPU build is installed: no CUDA library could load anyway "
    "(test_auto_without_a_gpu_never_probes_cuda... fakes a CUDA-capable one)",
)
def test_a_cpu_machine_with_onnxruntime_gpu_loads_no_cuda_library() -> None:
    """The real thing, where onnxruntime-gpu is installed on a machine without a GPU."""
    found = _probe(PROBE_AUTO)
    assert found == {"provider": "CPUExecutionProvider", "cuda_libraries": []}


def test_without_onnxruntime_the_cli_names_the_install_command(tmp_path: Path) -> None:
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if it were not installed\n"
        "from fashion_onnx.infer.cli import main\n"
        f"sys.argv = ['fashion-infer', {str(tmp_path)!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: fashion-onnx needs ONNX Runtime and none is installed: run "
        "pip install 'fashion-onnx[cpu]' (or pip install 'fashion-onnx[gpu]' on a machine "
        "with an NVIDIA GPU)"
    )
