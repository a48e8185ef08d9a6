"""``fashion-infer -o FILE --resume``: real signals sent to a real ``fashion-infer`` process
on real images (PNGs of the FashionMNIST test set); the finished file must equal, byte for
byte, the one an uninterrupted run writes."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FORMATS = {"csv": "out.csv", "jsonl": "out.jsonl", "json": "out.json", "table": "out.txt"}
INTERRUPTED = re.compile(
    r"^interrupted: [\d,]+ of the images are saved in \S+\.partial; "
    r"run the same command with --resume to finish$"
)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fashion_onnx.infer", *args, "--device", "cpu"]


def infer(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), cwd=cwd, capture_output=True, text=True)


def write_pngs(folder: Path, images: np.ndarray, start: int, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        Image.fromarray(images[i], mode="L").save(folder / f"{i:05d}.png")


@pytest.fixture(scope="module")
def work(tmp_path_factory, test_set) -> Path:
    """root/imgs: 6,000 real test images and one empty file (a failure every run names)."""
    root = tmp_path_factory.mktemp("resume")
    write_pngs(root / "imgs", test_set[0], 0, 6000)
    (root / "imgs" / "empty.png").write_bytes(b"")
    return root


_references: dict[tuple[str, ...], str] = {}


def reference(root: Path, *args: str) -> str:
    """What an uninterrupted run writes to stdout (the golden tests pin stdout)."""
    if args not in _references:
        done = infer(root, *args, "--workers", "1")
        assert done.returncode == 1, done.stderr  # the empty file
        _references[args] = done.stdout
    return _references[args]


def rows_started(folder: Path, timeout: float = 60) -> None:
    """Wait until the run's journal holds rows beyond the header."""
    rows = folder / "rows"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rows.exists() and rows.stat().st_size > 400:
            return
        time.sleep(0.01)
    raise AssertionError(f"{rows} did not grow")


def running(pid: str) -> bool:
    """Whether process ``pid`` still runs (an orphan that exited may stay a zombie where
    PID 1 does not reap, as in some containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def journal_records(folder: Path) -> int:
    return len((folder / "journal").read_bytes().splitlines()) - 1


def interrupt(root: Path, sig: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Start a run, send ``sig`` once it has written rows, and wait for it."""
    process = subprocess.Popen(
        command(*args), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    output = args[args.index("-o") + 1]
    rows_started(root / f"{output}.partial")
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


# -- without interruptions ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_journaled_output_equals_stdout_and_leaves_no_journal(work: Path, fmt: str) -> None:
    out = f"plain-{FORMATS[fmt]}"
    done = infer(work, "imgs", "--format", fmt, "-o", out, "--workers", "1", "--top-k", "2")
    assert done.returncode == 1, done.stderr
    assert (work / out).read_text() == reference(work, "imgs", "--format", fmt, "--top-k", "2")
    assert not (work / f"{out}.partial").exists()


def test_resume_without_a_journal_is_a_normal_run(work: Path) -> None:
    done = infer(work, "imgs", "-o", "fresh.csv", "--resume", "--workers", "1")
    assert done.returncode == 1, done.stderr
    assert "6000 image(s) classified, 1 failed" in done.stderr
    assert (work / "fresh.csv").read_text() == reference(work, "imgs", "--format", "csv")


def test_resume_without_output_is_a_usage_error(work: Path) -> None:
    done = infer(work, "imgs", "--resume")
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "--resume" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


# -- signals ------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_the_journal_and_resume_finishes_the_same_file(
    work: Path, sig: int, code: int
) -> None:
    out = f"sig{code}.csv"
    args = ("imgs", "-o", out, "--model", "cnn")
    stopped = interrupt(work, sig, *args)
    assert stopped.returncode == code, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert INTERRUPTED.match(stopped.stderr.splitlines()[-1]), stopped.stderr
    saved = int(re.search(r"([\d,]+) of the images", stopped.stderr)[1].replace(",", ""))  # type: ignore[index]
    assert 0 < saved < 6000
    assert journal_records(work / f"{out}.partial") >= 1
    assert not (work / out).exists()
    finished = infer(work, *args, "--resume")
    assert finished.returncode == 1, finished.stderr
    assert "6000 image(s) classified, 1 failed" in finished.stderr  # the whole run's counts
    assert (work / out).read_text() == reference(work, "imgs", "--model", "cnn", "--format", "csv")
    assert not (work / f"{out}.partial").exists()


@pytest.mark.slow
# CSV (a header), JSON (separators and a footer) and the table (a header, padded
# columns); JSONL's rows are CSV's case without the header: left to the other tests here,
# which cover every format (the kills take 20-30 s a format, CI time counted)
@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_sigkill_at_random_moments_then_resume_gives_the_same_bytes(work: Path, fmt: str) -> None:
    out = f"kill-{FORMATS[fmt]}"
    for copy in ("again", "more"):  # 18,000 files: a run long enough to kill thrice
        if not (work / copy).exists():
            (work / copy).mkdir()
            for png in (work / "imgs").iterdir():
                os.link(png, work / copy / png.name)
    inputs = ("imgs", "again", "more")
    args = (*inputs, "--format", fmt, "-o", out, "--model", "cnn", "--top-k", "3")
    expected = reference(work, *inputs, "--format", fmt, "--model", "cnn", "--top-k", "3")
    chance = random.Random(f"kill-{fmt}")
    folder = work / f"{out}.partial"
    saved = []  # records in the journal after each kill
    while len(saved) < 3:
        process = subprocess.Popen(
            command(*args, *(["--resume"] if saved else [])),
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rows_started(folder)
        time.sleep(chance.uniform(1.1, 1.8))  # a random moment, past the first sync (1 s)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        process.kill()
        process.wait()
        # The workers and the directory walker see their parent's pipes close, and end.
        deadline = time.monotonic() + 10
        while any(running(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [c for c in children if running(c)]
        for c in survivors:
            os.kill(int(c), signal.SIGKILL)
        assert not survivors, "children outlived their SIGKILLed parent"
        if (work / out).exists():  # this round finished before its kill
            break
        saved.append(journal_records(folder))
    assert len(saved) >= 2, "the runs finished before the kills: give them more files"
    assert saved[-1] >= 1 and saved == sorted(saved), saved  # kept, and growing
    if not (work / out).exists():
        finished = infer(work, *args, "--resume")
        assert finished.returncode == 1, finished.stderr
        assert "18000 image(s) classified, 3 failed" in finished.stderr
    assert (work / out).read_text() == expected
    assert not folder.exists()


# -- damaged and refused journals ---------------------------------------------------------


def test_a_torn_last_record_is_dropped_on_resume(work: Path) -> None:
    out = "torn.jsonl"
    args = ("imgs", "-o", out, "--workers", "1")
    assert interrupt(work, signal.SIGINT, *args).returncode == 130
    folder = work / f"{out}.partial"
    journal = folder / "journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 2
    # a power cut in the middle of a record; rows written after the last record
    journal.write_bytes(b"".join(lines) + lines[-1][: len(lines[-1]) // 2])
    with (folder / "rows").open("ab") as rows:
        rows.write(b'{"path": "half a ro')
    finished = infer(work, *args, "--resume")
    assert finished.returncode == 1, finished.stderr
    assert (work / out).read_text() == reference(work, "imgs", "--format", "jsonl")


def test_check_refuses_as_open_does_and_writes_nothing(work: Path) -> None:
    """What --engine ray asks before it connects: open's refusals, with the journal left
    as it is (a torn tail too: only open cuts it off)."""
    from fashion_onnx.infer.journal import Journal, JournalRefused

    out = work / "checked.csv"
    args = ("imgs", "-o", out.name, "--workers", "1")
    assert interrupt(work, signal.SIGINT, *args).returncode == 130
    journal = work / f"{out.name}.partial" / "journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0].rsplit(b" ", 1)[0])
    same = {k: v for k, v in header.items() if k != "version"}
    journal.write_bytes(b"".join(lines) + lines[-1][: len(lines[-1]) // 2])
    torn = journal.read_bytes()
    Journal.check(str(out), same, resume=True)  # would resume: no refusal
    with pytest.raises(JournalRefused, match="--resume to finish it"):
        Journal.check(str(out), same, resume=False)
    with pytest.raises(JournalRefused, match="--top-k was 1, now 2"):
        Journal.check(str(out), {**same, "--top-k": 2}, resume=True)
    assert journal.read_bytes() == torn
    Journal.check(str(work / "new.csv"), same, resume=False)  # no journal: nothing to refuse
    assert not (work / "new.csv.partial").exists()


def test_a_damaged_record_and_all_after_it_are_redone(work: Path) -> None:
    out = "crc.csv"
    args = ("imgs", "-o", out, "--workers", "1")
    assert interrupt(work, signal.SIGINT, *args).returncode == 130
    journal = work / f"{out}.partial" / "journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 2
    lines[1] = lines[1].replace(b"512,", b"513,", 1)  # its CRC no longer matches
    journal.write_bytes(b"".join(lines))
    finished = infer(work, *args, "--resume")
    assert finished.returncode == 1, finished.stderr
    assert (work / out).read_text() == reference(work, "imgs", "--format", "csv")


def test_changed_options_or_model_are_refused_and_the_journal_kept(work: Path) -> None:
    out = "changed.csv"
    args = ("imgs", "-o", out, "--workers", "1")
    assert interrupt(work, signal.SIGINT, *args).returncode == 130
    journal = (work / f"{out}.partial" / "journal").read_bytes()
    for more, said in [
        (["--top-k", "2"], "--top-k was 1, now 2"),
        (["--model", "cnn"], "the model differs"),
        (["--fit", "full"], "--fit was 'trim', now 'full'"),
        (["--min-confidence", "0.5"], "--min-confidence was None, now 0.5"),
    ]:
        refused = infer(work, *args, *more, "--resume")
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith("error: --resume: ") and said in refused.stderr
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert (work / f"{out}.partial" / "journal").read_bytes() == journal
    finished = infer(work, *args, "--resume")
    assert (work / out).read_text() == reference(work, "imgs", "--format", "csv")
    assert finished.returncode == 1


def test_a_leftover_journal_without_resume_is_refused(work: Path) -> None:
    out = "leftover.csv"
    args = ("imgs", "-o", out, "--workers", "1")
    assert interrupt(work, signal.SIGINT, *args).returncode == 130
    before = (work / f"{out}.partial" / "rows").read_bytes()
    refused = infer(work, *args)
    assert refused.returncode == 2
    line = refused.stderr
    assert line.count("\n") == 1 and line.startswith("error: "), line
    assert "--resume" in line and f"delete {out}.partial" in line
    assert (work / f"{out}.partial" / "rows").read_bytes() == before  # nothing discarded


# -- inputs that change between runs ------------------------------------------------------


@pytest.fixture
def two_folders(tmp_path: Path, test_set) -> Path:
    """first/ (2,000 images, done first) and second/ (600), given in that order."""
    write_pngs(tmp_path / "first", test_set[0], 0, 2000)
    write_pngs(tmp_path / "second", test_set[0], 2000, 600)
    return tmp_path


def test_files_added_after_the_finished_part_are_classified_with_the_rest(
    two_folders: Path, test_set
) -> None:
    args = ("first", "second", "-o", "out.csv", "--workers", "1", "--model", "cnn")
    assert interrupt(two_folders, signal.SIGINT, *args).returncode == 130
    rows = (two_folders / "out.csv.partial" / "rows").read_text()
    assert "second/" not in rows  # the interrupt came in first/
    write_pngs(two_folders / "second", test_set[0], 5000, 3)  # new files, in the rest
    finished = infer(two_folders, *args, "--resume")
    assert finished.returncode == 0, finished.stderr
    whole = infer(two_folders, "first", "second", "--format", "csv", "--model", "cnn")
    assert (two_folders / "out.csv").read_text() == whole.stdout
    assert "2603 image(s) classified" in finished.stderr


def test_a_file_removed_from_the_finished_part_is_refused(two_folders: Path) -> None:
    args = ("first", "second", "-o", "out.csv", "--workers", "1", "--model", "cnn")
    assert interrupt(two_folders, signal.SIGINT, *args).returncode == 130
    rows = (two_folders / "out.csv.partial" / "rows").read_text().splitlines()
    (two_folders / rows[1].split(",")[0]).unlink()  # the first file classified
    refused = infer(two_folders, *args, "--resume")
    assert refused.returncode == 2, refused.stderr
    assert "the inputs changed in the part already done" in refused.stderr
    assert refused.stderr.count("\n") == 1


# -- a full disk ------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 600 KiB tmpfs (root only): the output's disk, too small for the output."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_resume_finishes_once_there_is_room(
    work: Path, small_disk: Path
) -> None:
    out = str(small_disk / "full.csv")
    args = ("imgs", "-o", out, "--workers", "1", "--top-k", "10", "--model", "cnn")
    assert interrupt(work, signal.SIGINT, *args).returncode == 130  # some chunks saved
    records = journal_records(Path(out + ".partial"))
    assert records >= 1
    full = infer(work, *args, "--resume")  # fills the disk
    assert full.returncode == 2, full.stderr
    last = full.stderr.splitlines()[-1]
    assert last.startswith("error: writing ") and "No space left on device" in last, last
    assert "--resume" in last and "Traceback" not in full.stderr
    assert journal_records(Path(out + ".partial")) >= records  # consistent, nothing lost
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    finished = infer(work, *args, "--resume")
    assert finished.returncode == 1, finished.stderr
    expected = reference(work, "imgs", "--format", "csv", "--top-k", "10", "--model", "cnn")
    assert Path(out).read_text() == expected
    assert len(expected) > 600 * 1024  # it could not have fitted
    assert not Path(out + ".partial").exists()
