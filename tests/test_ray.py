"""--engine ray on real Ray, no mocks: parity with the local engine, several nodes, a real
`ray start --head` cluster with and without token auth, object storage through a local S3
server. All traffic stays on 127.0.0.1."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytestmark = pytest.mark.slow
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray advertises and listens on 127.0.0.1
os.environ.update(LOOPBACK)  # read when ray is imported: before the import below
ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from fashion_onnx.infer import Classifier
from fashion_onnx.infer import cli as infer_cli
from fashion_onnx.infer.prepare import Preparation
from fashion_onnx.ray import data as ray_data

runner = CliRunner()
BIN = Path(sys.executable).parent
IMAGES = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


BAD = {"empty.png": b"", "text.png": b"not an image", "cut.png": None}  # cut: a truncated PNG


@pytest.fixture(scope="session")
def folder(tmp_path_factory, test_set) -> Path:
    """300 real test images as PNG, and three bad files."""
    root = tmp_path_factory.mktemp("ray-images")
    for i in range(IMAGES):
        (root / f"{i:03d}.png").write_bytes(png_bytes(test_set[0][i]))
    for name, data in BAD.items():
        (root / name).write_bytes(data if data is not None else png_bytes(test_set[0][0])[:90])
    return root


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A local S3-compatible server (moto) on 127.0.0.1; its endpoint and keys are in the
    environment before Ray starts, so Ray's workers read and write through it too."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture(scope="session")
def cluster(s3):
    """The one Ray start shared by the in-process tests: a head with no CPU and two worker
    nodes of one CPU each (two CPUs in all, like ray.init(num_cpus=2), on two nodes)."""
    from ray.cluster_utils import Cluster

    started = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    nodes = [started.add_node(num_cpus=1) for _ in range(2)]
    started.wait_for_nodes()
    ray.init(address=started.address, log_to_driver=False)
    yield started, [n.node_id for n in nodes]
    ray.shutdown()
    started.shutdown()


def local_batches(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(probabilities by path, failure reasons by path), both in the local engine's order."""
    probs, failures = {}, {}
    for batch in Classifier(device="cpu").classify_files([folder], workers=1):
        probs.update(zip(batch.paths, batch.probabilities, strict=True))
        failures.update((f.path, f.reason) for f in batch.failures)
    return probs, failures


def test_ray_and_local_engines_agree_on_every_file(cluster, folder) -> None:
    local_probs, local_failures = local_batches(folder)
    ray_probs, ray_failures = {}, {}
    batches = ray_data.classify_on_ray(
        [str(folder)], model=None, device="cpu", preparation=Preparation()
    )
    for batch in batches:
        for path, probs in zip(batch.paths, batch.probabilities, strict=True):
            assert path not in ray_probs, f"{path} came back twice"
            ray_probs[path] = probs
        ray_failures.update((f.path, f.reason) for f in batch.failures)
    assert len(ray_probs) == IMAGES and len(ray_failures) == len(BAD)
    assert {Path(k).name: v for k, v in ray_failures.items()} == {
        Path(k).name: v for k, v in local_failures.items()
    }
    # streamed back in input order: the local engine's (the filesystem's) order, row for row
    assert list(ray_probs) == [os.path.abspath(p) for p in local_probs]
    got = np.stack(list(ray_probs.values()))
    want = np.stack(list(local_probs.values()))
    assert np.abs(got - want).max() <= 1e-6
    assert (got.argmax(1) == want.argmax(1)).all()


def test_the_cli_on_ray_reports_bad_files_like_the_local_engine(cluster, folder) -> None:
    results = {}
    for engine in ("local", "ray"):
        result = runner.invoke(
            infer_cli.app, [str(folder), "--engine", engine, "--format", "jsonl"]
        )
        assert result.exit_code == 1, result.output  # three bad files
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        errors = sorted(
            line.split(": ", 1)[1]
            for line in result.stderr.splitlines()
            if line.startswith(str(folder))
        )
        results[engine] = ([(Path(r["path"]).name, r["label"]) for r in rows], errors)
    assert results["ray"] == results["local"]  # the same rows in the same (input) order
    assert len(results["ray"][0]) == IMAGES and len(results["ray"][1]) == len(BAD)
    assert "on the Ray cluster at 127.0.0.1:" in result.stderr  # the summary says where
    assert "(3 node(s), 2 CPU(s), 0 GPU(s)), CPU actors" in result.stderr


def test_both_engines_write_the_paths_as_given_line_for_line(cluster, folder, monkeypatch) -> None:
    """A folder given as a relative path: the rows name its files relative too, through
    Ray as locally, so the two outputs are equal line for line (stderr names the bad files
    the same way)."""
    monkeypatch.chdir(folder.parent)
    outputs = {}
    for engine in ("local", "ray"):
        result = runner.invoke(
            infer_cli.app, [folder.name, "--engine", engine, "--format", "csv", "--top-k", "3"]
        )
        assert result.exit_code == 1, result.output  # three bad files
        bad = sorted(line for line in result.stderr.splitlines() if line.startswith(folder.name))
        outputs[engine] = (result.stdout.splitlines(), bad)
    lines, bad = outputs["local"]
    assert lines[1].startswith(f"{folder.name}/") and len(lines) == 1 + IMAGES
    assert len(bad) == len(BAD)
    assert outputs["ray"][0] == lines
    assert outputs["ray"][1] == bad


def test_predictions_come_from_actors_on_both_nodes(cluster) -> None:
    _, node_ids = cluster
    images = np.random.default_rng(0).integers(0, 256, (800, 28, 28), dtype=np.uint8)
    ds = ray.data.from_items([{"bytes": png_bytes(x)} for x in images])
    ds = ray_data.add_predictions(
        ds,
        column="bytes",
        device="cpu",
        actors=2,
        min_actors=2,
        batch_size=50,
        node_column="node",
    )
    rows = ds.take_all()
    assert len(rows) == 800 and all(r["error"] == "" for r in rows)
    assert {r["node"] for r in rows} == set(node_ids)
    want = Classifier(device="cpu").predict(images).probabilities
    got = np.stack([r["probabilities"] for r in rows])
    assert np.abs(got - want).max() <= 1e-6  # the rows are in input order


def test_a_crashed_actor_is_replaced_and_no_row_is_lost(cluster, tmp_path) -> None:
    marker = tmp_path / "crashed"

    class CrashOnce(ray_data.RayPredictor):  # local: Ray ships it by value
        def __call__(self, batch):
            if not marker.exists():
                marker.touch()
                os._exit(1)  # the actor process dies in the middle of a batch
            return super().__call__(batch)

    images = np.random.default_rng(1).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    ds = ray.data.from_items([{"bytes": png_bytes(x), "i": i} for i, x in enumerate(images)])
    rows = ray_data.add_predictions(
        ds, column="bytes", device="cpu", batch_size=50, actor=CrashOnce
    ).take_all()
    assert marker.exists(), "an actor did crash"
    rows.sort(key=lambda r: r["i"])  # a retried batch may come back later
    assert [r["i"] for r in rows] == list(range(300)), "every row exactly once"
    want = Classifier(device="cpu").predict(images).probabilities
    assert np.abs(np.stack([r["probabilities"] for r in rows]) - want).max() <= 1e-6


def test_the_readme_ray_data_block_runs_as_written(cluster, s3, test_set) -> None:
    """The README's Ray Data block, unchanged, against a local S3 holding its bucket."""
    import boto3
    import pyarrow.parquet as pq
    from pyarrow import fs

    from tests.readme_snippets import block_with

    client = boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket="bucket")
    for i in range(12):
        client.put_object(Bucket="bucket", Key=f"shots/{i:02d}.png", Body=png_bytes(test_set[0][i]))
    exec(block_with("python", "add_predictions"), {})
    s3fs = fs.S3FileSystem(
        endpoint_override=s3["AWS_ENDPOINT_URL"].removeprefix("http://"),
        scheme="http",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
    )
    table = pq.read_table("bucket/predictions", filesystem=s3fs).to_pydict()
    by_path = dict(zip(table["path"], table["label"], strict=True))
    want = Classifier(device="cpu").predict(test_set[0][:12]).labels.tolist()
    assert [by_path[f"bucket/shots/{i:02d}.png"] for i in range(12)] == want
    assert "bytes" not in table and not any(table["error"])  # no error on any row


def test_s3_inputs_and_a_parquet_dataset_written_back(cluster, s3, test_set, folder) -> None:
    import boto3
    import pyarrow.parquet as pq
    from pyarrow import fs

    client = boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket="shots")
    for i in range(40):
        client.put_object(Bucket="shots", Key=f"in/{i:02d}.png", Body=png_bytes(test_set[0][i]))
    client.put_object(Bucket="shots", Key="in/bad.png", Body=b"garbage")
    result = runner.invoke(
        infer_cli.app, ["s3://shots/in/", "--engine", "ray", "--format", "jsonl"]
    )
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # in input order: the order the bucket lists its keys in
    assert [r["path"] for r in rows] == [f"s3://shots/in/{i:02d}.png" for i in range(40)]
    want = Classifier(device="cpu").predict(test_set[0][:40]).labels
    assert [r["label"] for r in rows] == want.tolist()
    assert "s3://shots/in/bad.png: not an image Pillow can read" in result.stderr

    written = runner.invoke(
        infer_cli.app,
        ["s3://shots/in/", "--engine", "ray", "--format", "parquet", "-o", "s3://shots/out"],
    )
    assert written.exit_code == 1, written.output
    assert "40 image(s) classified, 1 failed" in written.stderr
    s3fs = fs.S3FileSystem(
        endpoint_override=s3["AWS_ENDPOINT_URL"].removeprefix("http://"),
        scheme="http",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
    )
    table = pq.read_table("shots/out", filesystem=s3fs)
    assert table.num_rows == 41
    assert {"path", "label", "class", "confidence", "probabilities", "error"} <= set(
        table.column_names
    )


def test_s3_inputs_to_a_local_csv_file_in_one_go(cluster, s3, test_set, tmp_path) -> None:
    """URI inputs with -o FILE (no --resume): the rows written in one go, atomically; this
    was refused after connecting ("--resume takes local paths...") before the job moved to
    the library (#31)."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket="onego")
    for i in range(12):
        client.put_object(Bucket="onego", Key=f"in/{i:02d}.png", Body=png_bytes(test_set[0][i]))
    out = tmp_path / "rows.csv"
    result = runner.invoke(infer_cli.app, ["s3://onego/in/", "--engine", "ray", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "path,label,class,confidence"
    want = Classifier(device="cpu").predict(test_set[0][:12]).labels.tolist()
    assert [line.split(",")[0] for line in lines[1:]] == [
        f"s3://onego/in/{i:02d}.png" for i in range(12)
    ]
    assert [int(line.split(",")[1]) for line in lines[1:]] == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]  # no journal, no temp


def test_a_parquet_dataset_in_a_local_directory(cluster, folder, tmp_path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "predictions"
    result = runner.invoke(
        infer_cli.app, [str(folder), "--engine", "ray", "--format", "parquet", "-o", str(out)]
    )
    assert result.exit_code == 1, result.output
    table = pq.read_table(out)
    errors = [e for e in table.column("error").to_pylist() if e]
    assert table.num_rows == IMAGES + len(BAD) and len(errors) == len(BAD)
    assert "300 image(s) classified, 3 failed" in result.stderr


# -- Ray clusters in other processes -------------------------------------------------


UNSET = ""  # an env value that means: remove the variable


def child_env(env: dict[str, str]) -> dict[str, str]:
    merged = {**os.environ, **env}
    return {k: v for k, v in merged.items() if v != UNSET}


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120):
    started = time.perf_counter()
    result = subprocess.run(
        [str(BIN / "fashion-infer"), *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result, time.perf_counter() - started


@pytest.fixture
def isolated_home(tmp_path) -> dict[str, str]:
    """A HOME of its own (Ray keeps its token in ~/.ray) and no inherited Ray address."""
    env = {**LOOPBACK, "HOME": str(tmp_path / "home")}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "AWS_ENDPOINT_URL"):
        env[key] = UNSET
    (tmp_path / "home").mkdir()
    return env


def test_without_a_cluster_it_starts_a_local_ray_and_stdout_holds_only_rows(
    folder, isolated_home
) -> None:
    before = set(Path(tempfile.gettempdir()).glob("fashion-infer-ray-*.log"))
    result, _ = run_cli(
        [str(folder), "--engine", "ray", "--format", "csv", "--no-progress"], isolated_home
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "path,label,class,confidence" and len(lines) == 1 + IMAGES
    assert "on a local Ray (1 node(s)" in result.stderr
    # Ray's connect-time log is kept only when connecting fails: none left behind here.
    assert set(Path(tempfile.gettempdir()).glob("fashion-infer-ray-*.log")) == before


def test_an_unreachable_cluster_fails_fast_with_one_line(isolated_home, folder) -> None:
    port = free_port()  # nothing listens there
    result, seconds = run_cli(
        [str(folder), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"], isolated_home
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        f"error: cannot reach the Ray cluster at 127.0.0.1:{port}"
    )
    assert len(result.stderr.strip().splitlines()) == 1 and seconds < 60


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_resume_on_uris_is_refused_before_connecting(isolated_home, tmp_path, fmt) -> None:
    port = free_port()  # nothing listens there: the refusal comes first
    out = tmp_path / ("out" if fmt == "parquet" else "out.csv")
    result, _ = run_cli(
        [
            "s3://shots/in/",
            "--engine",
            "ray",
            "--format",
            fmt,
            "-o",
            str(out),
            "--resume",
            "--ray-address",
            f"127.0.0.1:{port}",
        ],
        isolated_home,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --resume takes local paths on --engine ray, not URIs"
    assert not out.exists() and not Path(f"{out}.partial").exists()


@pytest.fixture
def head(isolated_home, tmp_path):
    """`ray start --head --block` in a subprocess, token authentication on, on a free port;
    stopped by its own PID afterwards."""
    env = child_env(isolated_home)
    subprocess.run(
        [str(BIN / "ray"), "get-auth-token", "--generate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    temp = Path(f"/tmp/fo-ray-{os.getpid()}-{port}")  # short: Ray's socket paths are limited
    process = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        env={**env, "RAY_AUTH_MODE": "token"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    time.sleep(3)  # the GCS answers before the raylet is ready
    yield f"127.0.0.1:{port}", isolated_home
    process.send_signal(signal.SIGTERM)  # the head drains and stops what it started
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left in its process group
        except ProcessLookupError:
            pass
        process.wait()


def test_a_token_cluster_needs_ray_auth_mode_and_works_with_it(head, folder) -> None:
    address, env = head
    env = {**env, "RAY_ADDRESS": address}
    refused, seconds = run_cli([str(folder), "--engine", "ray"], {**env, "RAY_AUTH_MODE": UNSET})
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: the Ray cluster at {address} requires token authentication: set "
        "RAY_AUTH_MODE=token (the token is read from ~/.ray/auth_token, RAY_AUTH_TOKEN or "
        "RAY_AUTH_TOKEN_PATH)"
    ]
    assert seconds < 60
    accepted, _ = run_cli(
        [str(folder), "--engine", "ray", "--format", "jsonl"], {**env, "RAY_AUTH_MODE": "token"}
    )
    assert accepted.returncode == 1, accepted.stderr  # the three bad files
    rows = [json.loads(line) for line in accepted.stdout.splitlines()]
    local, _ = local_batches(folder)
    want = [(Path(p).name, int(v.argmax())) for p, v in local.items()]
    assert [(Path(r["path"]).name, r["label"]) for r in rows] == want  # in input order
    assert f"on the Ray cluster at {address} (1 node(s), 2 CPU(s)" in accepted.stderr


def test_a_fixed_batch_model_runs_in_the_ray_actors(cluster, folder, tmp_path) -> None:
    """A model whose batch axis is fixed at 1 classifies on Ray as on this machine."""
    from tests.test_contract import fixed_batch_model

    model = fixed_batch_model(tmp_path)
    rows = {}
    for engine in ("ray", "local"):
        result = runner.invoke(
            infer_cli.app,
            [str(folder), "--engine", engine, "--model", str(model), "--format", "csv"],
        )
        assert result.exit_code == 1, result.output  # the folder holds bad files
        rows[engine] = sorted(result.stdout.splitlines())
    assert rows["ray"] == rows["local"]
