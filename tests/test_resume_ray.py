"""``--resume`` on ``--engine ray``: the driver of a real ``fashion-infer`` process (its own
local Ray, on 127.0.0.1) is killed midway, and the resumed job finishes the same output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="the [ray] extra is not installed")
IMAGES = 3000


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fashion_onnx.infer", *args, "--engine", "ray", "--workers", "2"]


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory) -> dict[str, str]:
    """A HOME of its own (Ray keeps its token there), no inherited address, loopback only."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    for key in ("RAY_ADDRESS", "AWS_ENDPOINT_URL"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def images(tmp_path_factory, test_set) -> Path:
    root = tmp_path_factory.mktemp("ray-resume")
    folder = root / "imgs"
    folder.mkdir()
    for i in range(IMAGES):
        Image.fromarray(test_set[0][i], mode="L").save(folder / f"{i:05d}.png")
    (folder / "empty.png").write_bytes(b"")
    return root


def run(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def unreachable() -> tuple[str, str]:
    """--ray-address of a port nothing listens on: a refusal that names -o, not the
    cluster, was decided before connecting."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "--ray-address", f"127.0.0.1:{s.getsockname()[1]}"


def wait_for(predicate, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_the_driver_killed_then_resumed_writes_the_same_csv(images: Path, ray_env) -> None:
    for copy in ("again", "more"):  # 9,000 files: long enough to kill midway
        (images / copy).mkdir()
        for png in (images / "imgs").iterdir():
            os.link(png, images / copy / png.name)
    inputs = ("imgs", "again", "more")
    expected = run(images, ray_env, *inputs, "--format", "csv", "--model", "cnn")
    assert expected.returncode == 1, expected.stderr
    args = (*inputs, "-o", "out.csv", "--model", "cnn")
    process = subprocess.Popen(
        command(*args),
        cwd=images,
        env=ray_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = images / "out.csv.partial" / "journal"
    wait_for(
        lambda: (
            (images / "out.csv").exists()
            or (journal.exists() and len(journal.read_bytes().splitlines()) >= 2)
        )
    )
    assert not (images / "out.csv").exists(), "the run ended before the kill: give it more"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (images / "out.csv").exists()
    journal_before = journal.read_bytes()
    refused = run(images, ray_env, *args, *unreachable())
    assert refused.returncode == 2 and "--resume" in refused.stderr, refused.stderr
    assert journal.read_bytes() == journal_before, "a refusal writes nothing"
    finished = run(images, ray_env, *args, "--resume")
    assert finished.returncode == 1, finished.stderr
    assert (images / "out.csv").read_text() == expected.stdout
    assert f"{3 * IMAGES} image(s) classified, 3 failed" in finished.stderr


def test_a_parquet_job_killed_then_resumed_has_every_path_once(images: Path, ray_env) -> None:
    import pyarrow.parquet as pq

    out = images / "parquet-out"
    args = ("imgs", "--format", "parquet", "-o", str(out), "--model", "cnn")
    process = subprocess.Popen(
        command(*args),
        cwd=images,
        env=ray_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: out.is_dir() and any(out.glob("part-*.parquet")))
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 0 < len(before) < 3, "3,001 files make 3 parts: the kill came midway"
    # Refused before connecting to Ray: with an address nothing answers on, the refusal
    # names the destination, not the cluster.
    refused = run(images, ray_env, *args, *unreachable())
    assert refused.returncode == 2 and "--resume" in refused.stderr, refused.stderr
    other = run(images, ray_env, *args[:-1], "mlp", "--resume", *unreachable())
    assert other.returncode == 2 and "the model differs" in other.stderr, other.stderr
    finished = run(images, ray_env, *args, "--resume")
    assert finished.returncode == 1, finished.stderr
    assert f"{IMAGES} image(s) classified, 1 failed" in finished.stderr
    assert {
        p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet") if p.name in before
    } == before, "the finished parts were not written again"
    table = pq.read_table(out)
    paths = table.column("path").to_pylist()
    every = {f"imgs/{i:05d}.png" for i in range(IMAGES)} | {"imgs/empty.png"}
    assert sorted(paths) == sorted(every)  # each path once, as given
    assert table.column("error").to_pylist().count("") == IMAGES
    assert not any(p.name.startswith(("_", ".")) for p in out.iterdir()), "no marker, no temps"
    again = run(images, ray_env, *args, *unreachable())
    assert again.returncode == 2 and "already holds Parquet files" in again.stderr
