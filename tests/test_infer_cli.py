import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashion_onnx.gpu import gpu_present
from fashion_onnx.infer import Classifier
from fashion_onnx.infer.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


@pytest.fixture
def folder(tmp_path: Path, test_set) -> Path:
    """12 real test images as PNGs, with nested folders and an upper-case suffix."""
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    for i in range(12):
        sub = root / "nested" if i % 3 == 0 else root
        suffix = ".PNG" if i % 4 == 0 else ".png"
        Image.fromarray(test_set[0][i], mode="L").save(sub / f"{i:02d}{suffix}")
    return root


def rows_of(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def fashion_infer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command, in a process of its own."""
    command = [sys.executable, "-m", "fashion_onnx.infer", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


def truth_of(labels_csv: Path) -> dict[str, str]:
    with labels_csv.open(newline="") as handle:
        return {row["file"]: row["class"] for row in csv.DictReader(handle)}


def test_cli_and_api_give_identical_predictions(folder: Path) -> None:
    result = runner.invoke(app, [str(folder), "--format", "jsonl", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = rows_of(result.stdout)
    assert len(rows) == 12
    api = Classifier(device="cpu").predict([r["path"] for r in rows])
    assert [r["label"] for r in rows] == api.labels.tolist()
    assert [r["class"] for r in rows] == api.names
    np.testing.assert_allclose([r["confidence"] for r in rows], api.confidences, atol=1e-6)
    assert "12 image(s) classified, 0 failed, on CPUExecutionProvider" in result.stderr


def test_every_output_format_parses(folder: Path, tmp_path: Path) -> None:
    as_json = runner.invoke(app, [str(folder), "--format", "json", "--top-k", "3"])
    records = json.loads(as_json.stdout)
    assert len(records) == 12 and len(records[0]["top_k"]) == 3
    as_csv = runner.invoke(app, [str(folder), "--format", "csv", "--top-k", "2"])
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(table) == 12
    assert set(table[0]) == {"path", "label", "class", "confidence", "class_2", "confidence_2"}
    assert [r["class"] for r in table] == [r["class"] for r in records]
    out = tmp_path / "out" / "predictions.jsonl"
    out.parent.mkdir()  # a missing folder is refused (test_unix.py)
    to_file = runner.invoke(app, [str(folder), "--format", "jsonl", "-o", str(out)])
    assert to_file.exit_code == 0 and to_file.stdout == ""
    assert [r["class"] for r in rows_of(out.read_text())] == [r["class"] for r in records]
    assert os.listdir(out.parent) == ["predictions.jsonl"], "no temporary file is left"
    table_out = runner.invoke(app, [str(folder)])
    assert table_out.stdout.splitlines()[0].split()[:2] == ["class", "conf"]


def test_the_bundled_samples_and_their_labels(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(SAMPLES), "--labels", str(SAMPLES / "labels.csv")])
    assert result.exit_code == 0, result.output
    assert "20 image(s) classified, 0 failed" in result.stderr
    assert "correct: 17/20" in result.stderr


def test_the_cnn_classifies_the_samples_and_real_test_pngs(folder: Path, test_set) -> None:
    """--model cnn runs the CNN, not the MLP: its rows and its score are the CNN's own,
    which differ from the MLP's on some samples."""
    result = fashion_infer(
        str(SAMPLES), "--model", "cnn", "--labels", str(SAMPLES / "labels.csv"), "--format", "csv"
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    paths = [r["path"] for r in rows]
    cnn = Classifier("cnn", device="cpu").predict(paths)
    mlp = Classifier("mlp", device="cpu").predict(paths)
    assert [r["class"] for r in rows] == cnn.names
    truth = truth_of(SAMPLES / "labels.csv")
    right = sum(truth[Path(p).name] == name for p, name in zip(paths, cnn.names, strict=True))
    assert f"correct: {right}/20" in result.stderr
    np.testing.assert_allclose([float(r["confidence"]) for r in rows], cnn.confidences, atol=1e-6)
    assert cnn.names != mlp.names, "the check below could not tell the models apart"
    pngs = runner.invoke(app, [str(folder), "--model", "cnn", "--format", "jsonl"])
    rows = rows_of(pngs.stdout)
    assert len(rows) == 12
    assert [r["label"] for r in rows] == cnn_labels(r["path"] for r in rows)
    labels = [test_set[1][int(Path(r["path"]).stem)] for r in rows]
    assert sum(r["label"] == label for r, label in zip(rows, labels, strict=True)) >= 11


def cnn_labels(paths) -> list[int]:
    return Classifier("cnn", device="cpu").predict(list(paths)).labels.tolist()


def test_globs_and_single_files(folder: Path) -> None:
    result = runner.invoke(app, [str(folder / "*.png"), str(folder / "nested" / "00.PNG")])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 + 6 + 1  # header, 6 lower-case .png, one file


def test_bad_files_are_reported_and_the_good_ones_still_predicted(folder: Path) -> None:
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("hello, I am not an image")
    good = (folder / "01.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "broken-link.png").symlink_to(folder / "does-not-exist.png")
    (folder / "looks-like.png").mkdir()
    result = runner.invoke(
        app, [str(folder), str(folder / "looks-like.png*"), "missing.png", "--format", "jsonl"]
    )
    assert result.exit_code == 1
    assert len(rows_of(result.stdout)) == 12, "every readable image is still predicted"
    err = result.stderr
    assert f"{folder / 'empty.png'}: empty file (0 bytes)" in err
    assert f"{folder / 'text.png'}: not an image Pillow can read" in err
    assert f"{folder / 'truncated.png'}: truncated or corrupt image" in err
    assert f"{folder / 'broken-link.png'}: broken symlink" in err
    assert f"{folder / 'looks-like.png'}: is a directory, not an image file" in err
    assert "missing.png: no such file or directory" in err
    assert "12 image(s) classified, 6 failed" in err
    assert "Traceback" not in result.output


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    def png_header_only(path: Path, side: int) -> Path:
        header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # grayscale, 8-bit
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
        return path

    huge = png_header_only(tmp_path / "huge.png", 30000)  # 900 Mpx: Pillow's error first
    big = png_header_only(tmp_path / "big.png", 10000)  # 100 Mpx: Pillow's warning first
    large = png_header_only(tmp_path / "large.png", 7000)  # 49 Mpx: ours
    result = runner.invoke(app, [str(huge), str(big), str(large)])
    assert result.exit_code == 1
    for path, pixels in ((huge, "900,000,000"), (big, "100,000,000")):
        assert (
            f"{path}: decompression bomb refused before decoding: {pixels} pixels exceeds "
            "the 40,000,000-pixel limit"  # ours, not Pillow's 89,478,485 or 178,956,970
        ) in result.stderr
    assert (
        f"{large}: decompression bomb refused before decoding: 7000x7000 pixels exceeds "
        "the 40,000,000-pixel limit"
    ) in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "tpu"], "'tpu' is not one of auto, cuda, cpu"),
        (["--format", "xml"], "'xml' is not one of table, csv, json, jsonl"),
        (["--invert", "maybe"], "'maybe' is not one of auto, always, never"),
    ],
)
def test_bad_options_exit_2(folder: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [str(folder), *args])
    assert result.exit_code == 2
    assert message in result.output


def test_no_inputs_found_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, [str(tmp_path)])
    assert result.exit_code == 2
    assert "no image files found" in result.stderr


def test_an_output_equal_to_an_input_is_refused(folder: Path) -> None:
    target = folder / "01.png"
    before = target.read_bytes()
    result = runner.invoke(app, [str(folder), "-o", str(target)])
    assert result.exit_code == 2
    assert "is one of the inputs" in result.stderr
    assert target.read_bytes() == before


def test_a_missing_or_incompatible_model_exits_2(folder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, [str(folder), "--model", str(tmp_path / "none.onnx")])
    assert result.exit_code == 2
    assert "no such model file" in result.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage that is not protobuf")
    result = runner.invoke(app, [str(folder), "--model", str(junk)])
    assert result.exit_code == 2
    assert "not a loadable ONNX model" in result.stderr


@pytest.mark.skipif(gpu_present(), reason="this machine has a GPU")
def test_device_cuda_on_a_cpu_machine_is_a_clear_error(folder: Path) -> None:
    result = runner.invoke(app, [str(folder), "--device", "cuda"])
    assert result.exit_code == 2
    assert "CUDA is not usable here" in result.stderr
    assert "Traceback" not in result.output


def test_parallel_decoding_matches_in_process_decoding(tmp_path: Path, test_set) -> None:
    for i in range(300):  # above the parallel threshold
        Image.fromarray(test_set[0][i], mode="L").save(tmp_path / f"{i:03d}.png")
    (tmp_path / "150-bad.png").write_text("bad")
    one = runner.invoke(app, [str(tmp_path), "--workers", "1", "--format", "jsonl"])
    two = runner.invoke(app, [str(tmp_path), "--workers", "2", "--format", "jsonl"])
    assert one.exit_code == two.exit_code == 1
    assert rows_of(one.stdout) == rows_of(two.stdout)
    assert len(rows_of(two.stdout)) == 300
    assert "150-bad.png: not an image" in two.stderr


def test_the_entry_point_flushes_every_row_and_keeps_the_exit_status(
    tmp_path: Path, test_set
) -> None:
    """``fashion-infer`` ends without Python's teardown: rows piped to another process
    (block-buffered) must all arrive, and each exit status must survive."""
    import subprocess
    import sys

    root = tmp_path / "many"
    root.mkdir()
    for i in range(300):  # above PARALLEL_MIN_FILES: worker processes run
        Image.fromarray(test_set[0][i], mode="L").save(root / f"{i:03d}.png")
    (root / "broken.png").write_bytes(b"not a png")
    command = [sys.executable, "-m", "fashion_onnx.infer", "--format", "csv", "--device", "cpu"]
    partial = subprocess.run([*command, str(root)], capture_output=True, text=True)
    assert partial.returncode == 1, partial.stderr
    rows = list(csv.DictReader(io.StringIO(partial.stdout)))
    assert len(rows) == 300
    assert "broken.png" in partial.stderr and "300 image(s) classified, 1 failed" in partial.stderr
    (root / "broken.png").unlink()
    complete = subprocess.run([*command, str(root)], capture_output=True, text=True)
    assert complete.returncode == 0, complete.stderr
    assert complete.stdout == partial.stdout
    nothing = subprocess.run([*command, str(tmp_path / "absent")], capture_output=True, text=True)
    assert nothing.returncode == 2 and nothing.stderr.splitlines()[-1].startswith("error:")


def test_exiting_at_once_keeps_what_the_command_printed_and_its_status(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "tool.py"
    script.write_text(
        "import sys, typer\n"
        "from fashion_onnx.cli_common import run_then_exit_at_once\n"
        "app = typer.Typer()\n"
        "@app.command()\n"
        "def go(how: str) -> None:\n"
        "    sys.stdout.write('partial line, no newline')\n"
        "    if how == 'status': raise typer.Exit(3)\n"
        "    if how == 'message': sys.exit('went wrong')\n"
        "    if how == 'crash': raise RuntimeError('a bug')\n"
        "run_then_exit_at_once(app)\n"
    )
    results = {
        how: subprocess.run([sys.executable, str(script), how], capture_output=True, text=True)
        for how in ("ok", "status", "message", "crash")
    }
    assert [r.returncode for r in results.values()] == [0, 3, 1, 1]
    assert all(r.stdout == "partial line, no newline" for r in results.values())
    assert results["message"].stderr.strip() == "went wrong"
    assert "RuntimeError: a bug" in results["crash"].stderr  # a bug keeps its traceback


# -- -o and the format (the suffix decides when --format is not given) ----------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("out.csv", "csv"),
        ("OUT.CSV", "csv"),
        ("out.json", "json"),
        ("out.jsonl", "jsonl"),
        ("out.txt", "table"),  # an unknown suffix keeps the table
        ("predictions", "table"),
    ],
)
def test_the_output_suffix_picks_the_format(folder: Path, tmp_path: Path, name, fmt) -> None:
    out = tmp_path / name
    result = fashion_infer(str(folder), "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 12 and set(rows[0]) == {"path", "label", "class", "confidence"}
    elif fmt == "json":
        assert len(json.loads(text)) == 12
    elif fmt == "jsonl":
        assert len(rows_of(text)) == 12
    else:
        assert text.splitlines()[0].split() == ["class", "conf", "path"]
        assert len(text.splitlines()) == 13


def test_an_explicit_format_wins_over_no_suffix_and_a_contradiction_is_refused(
    folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "rows.txt"
    agreed = fashion_infer(str(folder), "--format", "jsonl", "-o", str(out))
    assert agreed.returncode == 0 and len(rows_of(out.read_text())) == 12
    clash = tmp_path / "out.csv"
    refused = fashion_infer(str(folder), "--format", "json", "-o", str(clash))
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"error: --output {clash} ends in .csv, but --format is json: "
        "change one of them (or leave --format out: the suffix decides)"
    ]
    assert not clash.exists()
    table = fashion_infer(str(folder), "--format", "table", "-o", str(clash))
    assert table.returncode == 2 and "but --format is table" in table.stderr


def test_a_parquet_suffix_needs_the_ray_engine(folder: Path, tmp_path: Path) -> None:
    result = fashion_infer(str(folder), "-o", str(tmp_path / "out.parquet"))
    assert result.returncode == 2
    assert "parquet needs --engine ray" in result.stderr


# -- --labels ---------------------------------------------------------------------------


def test_labels_that_match_no_input_warn_with_the_rule(tmp_path: Path) -> None:
    """The paths are relative to the CSV: a copy of labels.csv elsewhere matches nothing."""
    elsewhere = tmp_path / "labels.csv"
    elsewhere.write_text((SAMPLES / "labels.csv").read_text())
    result = fashion_infer(str(SAMPLES), "--labels", str(elsewhere))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: --labels {elsewhere}: none of its 20 files was among the inputs "
        f"(00_t-shirt-top.png, 01_t-shirt-top.jpg, 02_trouser.bmp, ...); its paths are "
        f"relative to the CSV's folder, {tmp_path}"
    ]
    assert "correct: 0/0" in result.stderr


def test_labels_that_list_some_of_the_inputs_say_so(tmp_path: Path) -> None:
    """correct: 4/5 of 20 images once came without a word."""
    partial = SAMPLES / "labels.csv"
    lines = partial.read_text().splitlines()
    some = tmp_path / "some.csv"
    some.write_text("\n".join(lines[:6]) + "\n")  # the header and 5 files
    for name in os.listdir(SAMPLES):
        if name != "labels.csv":
            os.symlink(SAMPLES / name, tmp_path / name)
    result = fashion_infer(str(tmp_path), "--labels", str(some))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: --labels {some}: lists 5 of the 20 inputs; only those are judged"
    ]
    assert "correct: " in result.stderr and "/5 (" in result.stderr


def test_labels_accept_any_case_and_warn_once_per_unknown_class(tmp_path: Path) -> None:
    truth = truth_of(SAMPLES / "labels.csv")
    lines = ["file,class"]
    for name, cls in truth.items():
        if "coat" in name:
            cls = "Jacket"  # not a class: two files
        elif "bag" in name:
            cls = "BAG"
        else:
            cls = cls.lower()
        lines.append(f"{SAMPLES / name},{cls}")  # absolute paths work from anywhere
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(lines) + "\n")
    result = fashion_infer(str(SAMPLES), "--model", "cnn", "--labels", str(labels))
    assert result.returncode == 0, result.stderr
    judged = sorted(name for name in truth if "coat" not in name)
    cnn = Classifier("cnn", device="cpu").predict([SAMPLES / name for name in judged])
    right = sum(truth[name] == got for name, got in zip(judged, cnn.names, strict=True))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: --labels {labels}: 'Jacket' is not one of the model's classes "
        "(T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, "
        "Ankle boot); its 2 file(s) are not counted"
    ]
    assert f"correct: {right}/18" in result.stderr  # "coat" and "BAG" count; "Jacket" does not


def test_with_labels_the_table_marks_the_wrong_rows(tmp_path: Path) -> None:
    result = fashion_infer(str(SAMPLES), "--labels", str(SAMPLES / "labels.csv"))
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["class", "conf", "true", "path"]
    truth = truth_of(SAMPLES / "labels.csv")
    wrong = []
    for row in rows:
        path = Path(row.rsplit("  ", 1)[1])
        predicted = row[:12].strip()
        expected = truth[path.name]
        if predicted == expected:
            assert "  ✓  " in row and "✗" not in row, row
        else:
            assert f"  ✗ {expected}  " in row, row
            wrong.append(path.name)
    assert wrong, "the MLP misses some samples: the check above saw both kinds of row"
    assert f"correct: {20 - len(wrong)}/20" in result.stderr


def test_without_labels_the_table_has_no_true_column() -> None:
    result = fashion_infer(str(SAMPLES))
    assert result.stdout.splitlines()[0].split() == ["class", "conf", "path"]
    assert "✓" not in result.stdout and "✗" not in result.stdout


# -- --model: checkpoints, embedded names -------------------------------------------------


def test_a_pytorch_checkpoint_as_model_says_to_export_it_first(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.pth"
    with zipfile.ZipFile(ckpt, "w") as archive:  # what torch.save writes
        archive.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("model/version", b"3\n")
    legacy = tmp_path / "legacy.pt"  # torch.save(..., _use_new_zipfile_serialization=False)
    legacy.write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")
    for path in (ckpt, legacy, REPO / "models" / "fashion_mlp.pth"):
        result = fashion_infer(str(SAMPLES), "--model", str(path))
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"error: {path}: a PyTorch checkpoint, not an ONNX model: run "
            f"fashion-export {path} -o model.onnx first, and use model.onnx"
        ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mpl", "mpl: no such model file (the embedded models are mlp and cnn: did you mean mlp?)"),
        ("ccn", "ccn: no such model file (the embedded models are mlp and cnn: did you mean cnn?)"),
        ("resnet", "resnet: no such model file (the embedded models are mlp and cnn)"),
    ],
)
def test_a_model_name_that_is_no_file_names_the_embedded_ones(name: str, message: str) -> None:
    result = fashion_infer(str(SAMPLES), "--model", name)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {message}"]


def test_embedded_model_names_are_accepted_in_any_case(tmp_path: Path) -> None:
    upper = fashion_infer(str(SAMPLES), "--model", "CNN", "--format", "jsonl")
    assert upper.returncode == 0, upper.stderr
    rows = rows_of(upper.stdout)
    assert [r["label"] for r in rows] == cnn_labels(r["path"] for r in rows)
    assert Classifier("MLP").source == Classifier("mlp").source


def test_the_marks_fall_back_to_ascii_where_the_stream_cannot_encode_them() -> None:
    from fashion_onnx.infer.output import RowWriter

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", newline="")
    names = [f"c{i}" for i in range(10)]
    writer = RowWriter(stream, "table", names, 1, labelled=True)
    probs = np.eye(10, dtype=np.float32)[[0, 1, 2]]
    writer.write(["a.png", "b.png", "c.png"], probs, ["c0", "c9", None])
    writer.close()
    lines = raw.getvalue().decode("ascii").splitlines()
    assert [line.split()[2:] for line in lines] == [
        ["true", "path"],
        ["ok", "a.png"],
        ["x", "c9", "b.png"],
        ["c.png"],
    ]
