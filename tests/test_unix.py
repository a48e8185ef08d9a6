"""fashion-infer behaves like a Unix tool (#32): rows on stdout even with a terminal on
stderr, a closed pipe ends it quietly, -o writes into what is at the path (a symlink's
target, a FIFO, a device) and holds a lock while it writes, workers die with their parent,
any file name works, the same folder may be given twice."""

from __future__ import annotations

import array
import fcntl
import os
import pty
import signal
import stat
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

INFER = [sys.executable, "-m", "fashion_onnx.infer"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, test_set) -> Path:
    """40 real test images as PNG files."""
    root = tmp_path_factory.mktemp("unix") / "images"
    root.mkdir()
    for i in range(40):
        Image.fromarray(test_set[0][i], mode="L").save(root / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def big(tmp_path_factory, test_set) -> Path:
    """20,000 PNG files (links to 20): with the CNN, a run of several seconds, to interrupt
    or to outlive a reader."""
    root = tmp_path_factory.mktemp("big")
    for i in range(20):
        Image.fromarray(test_set[0][i], mode="L").save(root / f"s{i}.png")
    images = root / "images"
    images.mkdir()
    for i in range(20_000):
        os.link(root / f"s{i % 20}.png", images / f"{i:05d}.png")
    return images


def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INFER, *args], capture_output=True, text=True, **kwargs)


def test_rows_reach_stdout_when_stderr_is_a_terminal(folder: Path) -> None:
    """The progress bar shows on the terminal; the rows still go to the pipe (rich used to
    catch them and draw them above the bar)."""
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [*INFER, str(folder), "--format", "csv"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0
    assert len(done.stdout.decode().splitlines()) == 41  # the header and 40 rows


def test_a_closed_pipe_ends_the_run_quietly(big: Path) -> None:
    """``fashion-infer BIG | head -3``: no traceback, no message, SIGPIPE's status."""
    process = subprocess.Popen(
        [*INFER, str(big), "--format", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    first = [process.stdout.readline() for _ in range(3)]
    process.stdout.close()  # the reader leaves, as head does
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141, err
    assert first[0].startswith(b"path,label")
    assert err == "", err


def _pipe_is_full(fd: int, writer: int, timeout: float = 120) -> None:
    """Wait until the process ``writer`` is blocked writing into the pipe whose reading
    end is ``fd``, with at least 32 KB unread: the kernel says where it sleeps
    (/proc/PID/wchan: ``pipe_write``, ``anon_pipe_write`` on Linux 6.x). How much a full
    pipe holds depends on how the writes fell into its pages (59-64 KB seen), so the count
    alone cannot tell; where the kernel does not say, 56 KB unread, unchanged for 0.5 s."""
    deadline = time.monotonic() + timeout
    unread = array.array("i", [0])
    before, since = -1, time.monotonic()
    while True:
        fcntl.ioctl(fd, termios.FIONREAD, unread)
        try:
            wchan = Path(f"/proc/{writer}/wchan").read_text()
        except OSError:
            wchan = ""
        if unread[0] >= 32_768:
            if wchan.endswith("pipe_write"):
                return
            if wchan in ("", "0") and unread[0] >= 56_000 and time.monotonic() - since > 0.5:
                return
        if unread[0] != before:
            before, since = unread[0], time.monotonic()
        assert time.monotonic() < deadline, f"the pipe holds {unread[0]} bytes ({wchan})"
        time.sleep(0.05)


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_ctrl_c_on_stdout_says_what_was_written(big: Path, attempt: int) -> None:
    """Ctrl-C while the rows' writes wait on a full pipe: the run stops at a chunk boundary,
    and what it says it wrote reached the reader, every row of it. Python's own buffered
    writer lost the tail of a write that the signal cut short where the tail fitted in its
    buffer (1,290 rows came of the 1,536 it said, in 8 runs of 10): three tries."""
    process = subprocess.Popen(
        [*INFER, str(big), "--format", "csv", "--model", "cnn"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    _pipe_is_full(process.stdout.fileno(), process.pid)
    process.stdout.readline()
    process.stdout.readline()  # 8 KB read: the writer takes it and waits on the pipe again
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out = process.stdout.read()  # through the reader's buffer (communicate would skip it)
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    rows = 1 + len(out.splitlines())  # the row read, and what came after
    assert process.returncode == 130, err
    assert "no partial output" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted: the rows of the first ") and "stdout" in line, err
    assert "part of the next" not in line
    written = int(line.split("first ")[1].split(" ")[0].replace(",", ""))
    assert written == rows, err[-3000:]  # what it says was written was written, and no more
    assert out.endswith(b"\n")  # no row cut short


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """8,000 files that are not images, with long names: a line of about 200 bytes each
    on stderr, 1.6 MB in all, many times what a pipe holds."""
    root = tmp_path_factory.mktemp("bad")
    (root / "seed").write_bytes(b"not an image\n")
    for i in range(8_000):
        os.link(root / "seed", root / f"{i:05d}-{'x' * 160}.png")
    (root / "seed").unlink()
    return root


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_ctrl_c_on_stderr_keeps_every_failure_line(bad: Path, attempt: int) -> None:
    """Ctrl-C while the failure lines wait on a full stderr pipe: every input it says it
    went through has its line, whole. Python's buffered stderr lost the tail of a write
    the signal cut short, as its stdout did (test above): three tries."""
    process = subprocess.Popen(
        [*INFER, str(bad), "--format", "csv"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    _pipe_is_full(process.stderr.fileno(), process.pid)
    process.stderr.readline()  # 8 KB read: the writer takes it and waits on the pipe again
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    lines = err.splitlines()
    assert process.returncode == 130, lines[-3:]
    last = lines[-1]
    assert last.startswith("interrupted: the rows of the first "), last
    done = int(last.split("first ")[1].split(" ")[0].replace(",", ""))
    failures = lines[:-1]
    whole = [
        f"{bad}{os.sep}" in line and line.endswith(": not an image Pillow can read")
        for line in failures
    ]
    assert all(whole), failures[whole.index(False)]  # none cut short
    assert 1 + len(failures) == done, (len(failures), done)  # the line read, and the rest


def test_two_runs_on_the_same_output_the_second_is_refused_at_once(
    big: Path, tmp_path: Path
) -> None:
    out = tmp_path / "same.csv"
    first = subprocess.Popen(
        [*INFER, str(big), "-o", str(out), "--model", "cnn"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = Path(str(out) + ".partial") / "lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text()):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    for extra in ([], ["--resume"]):
        second = run(str(big), "-o", str(out), "--model", "cnn", *extra, timeout=60)
        assert second.returncode == 2
        (line,) = second.stderr.strip().splitlines()
        assert line.startswith(f"error: {out} is being written by another run (pid {first.pid}")
    assert first.wait(timeout=300) == 0, first.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 20_001 and len(set(lines)) == 20_001  # whole, nothing doubled
    assert not lock.parent.exists()


def test_o_through_a_symlink_writes_its_target(folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "data" / "rows.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    done = run(str(folder), "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link stays
    assert target.read_text().startswith("path,label,class,confidence\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["rows.csv"]


def test_o_into_a_fifo_streams_to_its_reader(folder: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    done = run(str(folder), "-o", str(fifo), "--format", "jsonl", timeout=120)
    reader.join(timeout=60)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still a FIFO
    assert len(got[0].splitlines()) == 40
    refused = run(str(folder), "-o", str(fifo), "--resume")
    assert refused.returncode == 2 and "--resume needs -o to be a regular file" in refused.stderr


def test_o_into_a_character_device_writes_there(folder: Path, tmp_path: Path) -> None:
    """A null device of the test's own (the code before renamed its rows onto the device:
    on /dev/null itself, that broke the machine)."""
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("making a device node needs root")
    done = run(str(folder), "-o", str(null), "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert done.stdout == "" and list(tmp_path.iterdir()) == [null]


def test_a_full_device_is_one_error_line_as_o_and_as_stdout(folder: Path, tmp_path: Path) -> None:
    """-o onto /dev/full (a device of the test's own: the code before replaced the node
    with a file), and stdout redirected there: one error line, exit 2, no traceback."""
    full = tmp_path / "full"
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # what /dev/full is
    except PermissionError:
        pytest.skip("making a device node needs root")
    done = run(str(folder), "-o", str(full), "--format", "csv")
    assert (done.returncode, done.stderr) == (
        2,
        f"error: writing the rows to {full}: No space left on device\n",
    )
    assert stat.S_ISCHR(os.stat(full).st_mode)
    with open(full, "w") as device:
        redirected = subprocess.run(
            [*INFER, str(folder), "--format", "csv"], stdout=device, stderr=subprocess.PIPE
        )
    assert redirected.returncode == 2
    said = redirected.stderr.decode()
    assert said == "error: writing the rows to stdout: No space left on device\n"


def test_o_dev_stdout_streams_without_a_temporary_file(folder: Path, tmp_path: Path) -> None:
    link = os.readlink("/dev/stdout")
    try:
        done = subprocess.run(
            [*INFER, str(folder), "-o", "/dev/stdout", "--format", "csv"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    finally:  # the code before renamed its rows onto /dev/stdout: put the link back
        if not os.path.islink("/dev/stdout"):
            os.unlink("/dev/stdout")
            os.symlink(link, "/dev/stdout")
            pytest.fail("-o /dev/stdout replaced /dev/stdout with a file (put back)")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 41
    assert list(tmp_path.iterdir()) == []
    log = tmp_path / "log.txt"  # >> log: what the shell opened to append, appended to
    log.write_text("kept\n")
    with open(log, "a") as appending:
        subprocess.run(
            [*INFER, str(folder), "-o", "/dev/stdout", "--format", "csv"],
            stdout=appending,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    lines = log.read_text().splitlines()
    assert lines[0] == "kept" and len(lines) == 42


def test_o_onto_a_socket_is_refused(folder: Path, tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        done = run(str(folder), "-o", str(path))
    finally:
        server.close()
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"error: --output {path} is not a regular file, a FIFO or a character device"
    )


def test_o_into_a_missing_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "x.csv"
    done = run(str(folder), "-o", str(out))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: --output {out}: the folder {out.parent} does not exist"
    assert not (tmp_path / "a").exists()


def test_a_file_name_that_is_not_utf8(folder: Path, tmp_path: Path) -> None:
    """Written as its own bytes in CSV and the table, escaped in JSON; nothing left."""
    images = tmp_path / "names"
    images.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1, not UTF-8
    Image.open(folder / "00.png").save(images / name)
    for fmt, suffix in (("csv", ".csv"), ("jsonl", ".jsonl")):
        out = tmp_path / f"rows{suffix}"
        done = run(str(images), "-o", str(out))
        assert done.returncode == 0, done.stderr
        data = out.read_bytes()
        if fmt == "csv":
            assert b"caf\xe9.png" in data
        else:
            assert b"caf\\udce9.png" in data  # JSON stays UTF-8
            data.decode("utf-8")
        assert not list(tmp_path.glob("*.partial"))  # nothing left behind
    piped = subprocess.run([*INFER, str(images), "--format", "csv"], capture_output=True)
    assert piped.returncode == 0 and b"caf\xe9.png" in piped.stdout


def test_the_same_folder_twice_is_classified_twice(folder: Path) -> None:
    done = run(str(folder), str(folder), "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 81
    assert "loop" not in done.stderr


def test_workers_die_quietly_with_their_parent(big: Path, tmp_path: Path) -> None:
    """kill -9 of the main process: its workers and walker end, and say nothing."""
    errors = tmp_path / "stderr"
    with errors.open("w") as err:
        process = subprocess.Popen(
            [*INFER, str(big), "--format", "csv", "--workers", "2", "--model", "cnn"],
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        assert process.stdout is not None
        process.stdout.readline()
        process.stdout.readline()  # a row: the workers are at work
        children = _children(process.pid)
        assert len(children) >= 2  # the workers (and the walker)
        process.kill()
        process.wait()
        deadline = time.monotonic() + 20
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not any(_alive(c) for c in children)
    assert "Traceback" not in errors.read_text(), errors.read_text()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
