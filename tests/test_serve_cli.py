"""``fashion-serve`` as a user runs it, up to where it would serve: the conventions of the
other commands (one ``error:`` line and exit status 2 for usage errors, ``--version``), a
missing [serve] extra and an address it cannot listen on said in one line, before any
banner (#32). Real subprocesses; none of these tests needs a client library."""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys

import pytest

import fashion_onnx

# Runs fashion-serve's console entry point (main) under its own name, with some top-level
# modules made unimportable, as if their extra were not installed.
RUNNER = """
import sys
blocked = set(sys.argv[1].split(",")) - {""}
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
sys.argv = ["fashion-serve", *sys.argv[2:]]
from fashion_onnx.serve.cli import main
main()
"""

needs_uvicorn = pytest.mark.skipif(
    importlib.util.find_spec("uvicorn") is None, reason="the [serve] extra is not installed"
)


def run_serve(*args: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, ",".join(blocked), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The only line on stderr, which must be an ``error:`` line; exit status 2."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("missing", ["uvicorn", "httptools"])
def test_without_the_serve_extra_one_line_names_the_install_before_any_banner(
    missing: str,
) -> None:
    result = run_serve("--port", "0", blocked=(missing,))
    line = one_error_line(result)  # no banner, no traceback
    assert "fashion-serve needs the [serve] extra" in line
    assert f"'{missing}'" in line
    assert "pip install '.[serve,cpu]'" in line  # from a clone
    assert "pip install 'fashion-onnx[serve,cpu]'" in line  # the published package


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["--port", "70000"], "Invalid value for '--port'"),
        (["--device", "tpu"], "'tpu' is not one of auto"),
        (["--max-body", "1"], "Invalid value for --max-body: must be at least 1KB"),
        (["--model", "nopath"], "'nopath' is not NAME=PATH"),
        (["--log-level", "loud"], "'loud' is not one of debug"),
    ],
)
def test_usage_errors_are_one_error_line_with_status_2(args: list[str], expected: str) -> None:
    line = one_error_line(run_serve(*args))
    assert expected in line, line
    assert line.endswith("(see fashion-serve --help)"), line


def test_version() -> None:
    result = run_serve("--version")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"fashion-onnx {fashion_onnx.__version__}\n"


def test_help_names_version_and_goes_to_stdout() -> None:
    result = run_serve("--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("Usage: fashion-serve [OPTIONS]")
    assert "--version" in result.stdout


@needs_uvicorn
def test_a_port_in_use_is_one_error_line_without_banner() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--port", str(port))
    line = one_error_line(result)  # not the banner, not uvicorn's ERROR line
    assert f"127.0.0.1:{port}" in line
    assert "in use" in line


@needs_uvicorn
def test_an_address_not_this_machines_is_one_error_line_without_warning() -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it
    line = one_error_line(run_serve("--host", "192.0.2.1", "--port", "0"))
    assert re.search(r"192\.0\.2\.1:0: 192\.0\.2\.1 is not an address of this machine", line)
