"""Journal: what ``-o FILE``'s resume journal costs, and how soon ``--resume`` gets going.

- cost: ``fashion-infer TREE -o FILE`` (rows through the journal, fsynced every second,
  renamed at the end) against the same run writing to stdout redirected to a file, in
  alternating rounds. Target: at most 3% slower.
- resume: a run stopped by SIGINT about halfway, then ``--resume``: the seconds from its
  start to its first new row, beside the seconds it takes to walk past the finished chunks
  (discovery and their keys, in-process). Target: at most 1 s plus that walk.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from bench.common import BIN, WORK, median_processes

CPU = ["--device", "cpu", "--no-progress"]


def walk_seconds(folder: Path, chunks_done: int) -> float:
    """Seconds to walk past ``chunks_done`` chunks of ``folder`` as ``--resume`` does."""
    from fashion_onnx.infer.sources import chunk_names, chunks, key_of

    start = time.perf_counter()
    for index, chunk in enumerate(chunks([str(folder)])):
        if index >= chunks_done:
            break
        key_of(chunk_names(chunk))
    return time.perf_counter() - start


def resume_startup(folder: Path, out: Path, total_bytes: int) -> dict[str, float] | None:
    """Stop a run at about half with SIGINT; time ``--resume`` to its first new row. None
    when the run ended before it could be stopped (a quick run's few files)."""
    partial = Path(f"{out}.partial")
    rows = partial / "rows"
    cmd = [str(BIN / "fashion-infer"), str(folder), "-o", str(out), *CPU]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not rows.exists() or rows.stat().st_size < total_bytes // 2:
        if first.poll() is not None:  # done before half its rows were saved: too small
            return None
        time.sleep(0.01)
    first.send_signal(signal.SIGINT)
    if first.wait() != 130:
        raise RuntimeError(f"the interrupted run exited {first.returncode}")
    records = len((partial / "journal").read_bytes().splitlines()) - 1
    saved = rows.stat().st_size
    start = time.perf_counter()
    second = subprocess.Popen(
        [*cmd, "--resume"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while not rows.exists() or rows.stat().st_size <= saved:
        if second.poll() is not None:
            break
        time.sleep(0.002)
    first_row = time.perf_counter() - start
    second.wait()
    walk = walk_seconds(folder, records)
    return {
        "chunks_done": records,
        "first_new_row_s": first_row,
        "walk_s": walk,
        "over_walk_s": first_row - walk,
    }


def run(folder: Path, repeats: int) -> dict[str, object]:
    out = WORK / "journal-out.csv"
    out.unlink(missing_ok=True)
    plain = [str(BIN / "fashion-infer"), str(folder), "--format", "csv", *CPU]
    journaled = [str(BIN / "fashion-infer"), str(folder), "-o", str(out), *CPU]
    to_file, through_journal = median_processes([plain, journaled], repeats)
    files = len(to_file.stdout.splitlines()) - 1
    resumed = resume_startup(folder, out, len(to_file.stdout.encode()))
    if out.read_text() != to_file.stdout:
        raise RuntimeError("the resumed file differs from the uninterrupted one")
    return {
        "files": files,
        "stdout_to_file_s": to_file.seconds,
        "journal_s": through_journal.seconds,
        "cost": through_journal.seconds / to_file.seconds - 1,
        "resume": resumed,
    }
