"""Shared fixtures. Tests are offline; real FashionMNIST comes from the data dir or
Debian's ``dataset-fashion-mnist`` package (``make test`` and ``.ci/run`` install it).

The torch-free fixtures read the IDX files with numpy, so the inference tests run in
the base install; fixtures that need torch skip the tests that use them when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fashion_onnx.errors import DataNotFoundError
from fashion_onnx.fashion_mnist import load_split

# -- every test once: `make test` runs the torch-free environment first, then the full one
# on what did not pass there (what needs torch, Ray or a browser, and the slow tests).


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fashion-onnx")
    group.addoption(
        "--record-passed", metavar="FILE", help="write the ids of the tests that pass to FILE"
    )
    group.addoption(
        "--skip-passed",
        metavar="FILE",
        help="deselect the tests FILE lists (passed in another environment, --record-passed)",
    )


class PassedRecorder:
    """Collects the ids of the tests that passed (a failure in any phase keeps one out)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.passed: list[str] = []
        self.failed: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.add(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed.append(report.nodeid)

    def pytest_sessionfinish(self) -> None:
        self.path.write_text("".join(f"{i}\n" for i in self.passed if i not in self.failed))


def pytest_configure(config: pytest.Config) -> None:
    record = config.getoption("--record-passed")
    # under pytest-xdist the controller sees every report; a worker only its own share
    if record and not hasattr(config, "workerinput"):
        config.pluginmanager.register(PassedRecorder(Path(record)), "record-passed")


# -- in parallel (`make test`: pytest-xdist): a test file is one unit of work, run by one
# worker, so that its session fixtures (a trained CNN: minutes) are made once. The files
# that start Ray clusters are one unit: one cluster at a time on a small machine. The
# longest units go first (seconds measured on an AMD EPYC, 2 CPUs), so that no long one
# starts last and runs alone. (xdist's own --dist loadgroup does not group under pytest 9:
# it appends the group to ``item._nodeid``, which ``nodeid`` no longer returns.)
RAY_FILES = ("test_ray.py", "test_resume_ray.py", "test_serve_ray.py")
LONGEST_FIRST = ("ray", "test_bench.py", "test_cnn.py", "test_resume.py", "test_export.py")


def unit_of_work(nodeid: str) -> str:
    """The test file of ``nodeid``, or "ray" for the files that start Ray clusters."""
    path = nodeid.split("::", 1)[0]
    return "ray" if path.rsplit("/", 1)[-1] in RAY_FILES else path


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's: the torch-free environment has none
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

    config.option.loadscopereorder = False  # the collection's order: LONGEST_FIRST
    return ByFile(config, log)


@pytest.hookimpl(tryfirst=True)  # deselect before any plugin sees the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = config.getoption("--skip-passed")
    if skip:
        passed = set(Path(skip).read_text().splitlines())
        deselected = [item for item in items if item.nodeid in passed]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item.nodeid not in passed]
    if hasattr(config, "workerinput"):  # every worker collects alike: the same order
        rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(unit_of_work(item.nodeid).split("/")[-1], len(rank)))


@pytest.fixture(scope="session")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 real test images (uint8, (N, 28, 28)) and labels, read without torch."""
    try:
        return load_split("test")
    except DataNotFoundError as exc:
        pytest.fail(f"real FashionMNIST is needed: {exc}")


@pytest.fixture(scope="session")
def fashion_data():
    """Both real splits as torch tensors, loaded once per test session (no download)."""
    pytest.importorskip("torch", reason="the [train] extra is not installed")
    from fashion_onnx.train.data import load_fashion_mnist

    return load_fashion_mnist(download=False)


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, fashion_data):
    """A .pth from one real epoch of the default recipe (about 85% accurate)."""
    from fashion_onnx.train.config import TrainConfig
    from fashion_onnx.train.loop import train
    from fashion_onnx.train.run import save_checkpoint

    result = train(fashion_data, TrainConfig(max_steps=118))
    path = tmp_path_factory.mktemp("trained") / "model.pth"
    save_checkpoint(result, path, fashion_data.source)
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory, trained_checkpoint):
    """The trained checkpoint exported (and verified) once, with int8 and fp16 copies."""
    from fashion_onnx.export import export_onnx

    out = tmp_path_factory.mktemp("exported") / "model.onnx"
    return export_onnx(trained_checkpoint, out, precisions=("int8", "fp16"))


@pytest.fixture(scope="session")
def cnn_checkpoint(tmp_path_factory, fashion_data):
    """A .pth from a short real run of the CNN recipe (150 steps of 128 images: 82% on
    this AMD EPYC, in 74 s; 300 steps took twice as long for what the tests check)."""
    from fashion_onnx.train.config import recipe
    from fashion_onnx.train.loop import train
    from fashion_onnx.train.run import save_checkpoint

    result = train(fashion_data, recipe("cnn", max_steps=150))
    path = tmp_path_factory.mktemp("cnn") / "cnn.pth"
    save_checkpoint(result, path, fashion_data.source)
    return path


@pytest.fixture(scope="session")
def cnn_exported(tmp_path_factory, cnn_checkpoint):
    """That CNN exported and verified once, with its int8 and fp16 copies."""
    from fashion_onnx.export import export_onnx

    out = tmp_path_factory.mktemp("cnn-exported") / "cnn.onnx"
    return export_onnx(cnn_checkpoint, out, precisions=("int8", "fp16"))
