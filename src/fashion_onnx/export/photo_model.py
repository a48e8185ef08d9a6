"""NAME_photo.onnx (#33): a plain model with the photo preparation in front, verified against
the Python preparation before it appears. Torch-free (onnx, onnxruntime, numpy, Pillow).

The photo model takes ``image``, uint8 [height, width, 3] RGB as any decoder returns it
(upright), and gives the plain model's outputs for that one picture ([1, 10] each) plus
``prepared``, uint8 [28, 28]: what the model saw.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, compose, helper
from PIL import Image

from fashion_onnx.constants import IMAGE_SIZE
from fashion_onnx.errors import ExportValidationError
from fashion_onnx.export.photo_graph import OPSET, preparation_graph
from fashion_onnx.infer.contract import check_contract
from fashion_onnx.infer.photo import WORK_SIDE
from fashion_onnx.infer.prepare import prepare
from fashion_onnx.photosets import shot_as_taken, with_margins

PHOTO_SUFFIX = "_photo"
AGREEMENT = 0.995  # the share of photos whose top-1 must equal the Python path's
PREPARED_TOLERANCE = 1  # grey levels between the graph's prepared and Python's
PROBABILITY_TOLERANCE = 1e-5  # on 28x28 pictures, against the plain model


def photo_path(plain: str | Path) -> Path:
    """model.onnx -> model_photo.onnx, beside it."""
    plain = Path(plain)
    return plain.with_name(plain.stem + PHOTO_SUFFIX + plain.suffix)


def build(plain: onnx.ModelProto) -> onnx.ModelProto:
    """The preparation graph joined to ``plain`` (its input fed the prepared picture as
    its contract says: scaled, the background's polarity, shape [1, 1, 28, 28])."""
    session = ort.InferenceSession(plain.SerializeToString(), providers=["CPUExecutionProvider"])
    contract = check_contract(session, "the plain model")
    prep = preparation_graph()
    g = prep.graph
    # prepared -> the plain model's input, as the contract says
    scaled = helper.make_node("Cast", ["prepared"], ["photo_prepared_f32"], to=TensorProto.FLOAT)
    nodes = [scaled]
    value = "photo_prepared_f32"
    if contract.background == "light":  # the model wants dark garments on light
        nodes.append(helper.make_node("Sub", ["photo_255", value], ["photo_flipped"]))
        value = "photo_flipped"
    nodes += [
        helper.make_node("Div", [value, "photo_divisor"], ["photo_scaled"]),
        helper.make_node("Reshape", ["photo_scaled", "photo_shape"], ["model_input"]),
    ]
    if contract.background == "light":
        g.initializer.append(helper.make_tensor("photo_255", TensorProto.FLOAT, [], [255.0]))
    g.initializer.extend(
        [
            helper.make_tensor("photo_divisor", TensorProto.FLOAT, [], [contract.divide_by]),
            helper.make_tensor(
                "photo_shape", TensorProto.INT64, [4], [1, 1, IMAGE_SIZE, IMAGE_SIZE]
            ),
        ]
    )
    g.node.extend(nodes)
    g.output.append(
        helper.make_tensor_value_info(
            "model_input", TensorProto.FLOAT, [1, 1, IMAGE_SIZE, IMAGE_SIZE]
        )
    )
    prep.ir_version = plain.ir_version
    input_name = session.get_inputs()[0].name
    joined = compose.merge_models(
        prep, plain, io_map=[("model_input", input_name)], prefix2="model_"
    )
    # the plain model's outputs under their own names
    renames = {f"model_{o.name}": o.name for o in plain.graph.output}
    for node in joined.graph.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    for output in joined.graph.output:
        output.name = renames.get(output.name, output.name)
    opsets = {o.domain: o.version for o in joined.opset_import}  # merge_models repeats them
    del joined.opset_import[:]
    joined.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets.items())
    del joined.metadata_props[:]
    props = {p.key: p.value for p in plain.metadata_props}
    props.update(
        input_layout="HWC",
        input_shape=json.dumps(["height", "width", 3]),
        input_scale=json.dumps({"dtype": "uint8", "range": [0, 255], "note": "RGB as decoded"}),
        background="any",
        preparation=json.dumps(
            {
                "what": "fashion_onnx.infer.photo inside the graph: 28x28 pictures as the "
                "dataset (grayscale, inverted if the border is light); any other picture as a "
                "photo (background from the border in colour, levels, trim, straightening, "
                "fit, centre, sharpen)",
                "work_side": WORK_SIDE,
                "prepared": "output 'prepared', uint8 [28, 28], light garment on black",
                "orientation": "give the pixels upright: the graph does not read EXIF",
            }
        ),
        photo_opset=str(OPSET),
    )
    for key, value in props.items():
        joined.metadata_props.add(key=key, value=value)
    joined.producer_name = plain.producer_name
    joined.producer_version = plain.producer_version
    joined.doc_string = (
        "FashionMNIST classifier for photos: input 'image' uint8 [height, width, 3] RGB, "
        "upright; outputs 'logits', 'probabilities', 'calibrated_probabilities' [1, 10] and "
        "'prepared' uint8 [28, 28]. " + plain.doc_string
    )
    onnx.checker.check_model(joined, full_check=True)
    return joined


@dataclass(frozen=True)
class PhotoCheck:
    """How the photo model agreed with the Python preparation plus the plain model."""

    photos: int
    top1_agreement: float  # on the photos
    prepared_identical: float  # share of photos whose prepared pixels are equal
    prepared_max_diff: int  # grey levels, worst photo
    squares: int  # 28x28 pictures (real test images as RGB)
    squares_top1_agreement: float
    squares_max_abs_probabilities: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def check_photos(images: np.ndarray, count: int = 200, seed: int = 33) -> list[np.ndarray]:
    """``count`` photos made from ``images`` (test garments) at export time: half as taken,
    half with margins, decoded with Pillow (upright, RGB)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), count, replace=False)
    pictures = []
    for n, i in enumerate(chosen):
        photo = shot_as_taken(images[i], rng).save() if n % 2 else with_margins(images[i], rng)
        pictures.append(np.asarray(Image.open(io.BytesIO(photo.data)).convert("RGB")))
    return pictures


def verify(
    photo_bytes: bytes, plain_bytes: bytes, pictures: list[np.ndarray], squares: np.ndarray
) -> PhotoCheck:
    """Run the photo model and the plain one (after ``prepare``) on the same pictures.

    Raises:
        ExportValidationError: top-1 agreement under AGREEMENT on the photos, a prepared
            picture more than PREPARED_TOLERANCE levels off, or on the 28x28 pictures any
            top-1 that differs or a probability off by more than PROBABILITY_TOLERANCE.
    """
    photo = ort.InferenceSession(photo_bytes, providers=["CPUExecutionProvider"])
    plain = ort.InferenceSession(plain_bytes, providers=["CPUExecutionProvider"])
    input_name = plain.get_inputs()[0].name
    scale = check_contract(plain, "the plain model").divide_by

    def plain_probabilities(prepared: np.ndarray) -> np.ndarray:
        x = prepared.reshape(-1, 1, IMAGE_SIZE, IMAGE_SIZE).astype(np.float32) / np.float32(scale)
        return np.asarray(plain.run(["probabilities"], {input_name: x})[0])

    agree, identical, worst = 0, 0, 0
    for picture in pictures:
        probabilities, prepared = photo.run(["probabilities", "prepared"], {"image": picture})
        expected = prepare(picture)
        diff = int(np.abs(prepared.astype(int) - expected).max())
        worst, identical = max(worst, diff), identical + (diff == 0)
        agree += int(probabilities.argmax() == plain_probabilities(expected).argmax())
    rgb = np.repeat(squares[..., None], 3, axis=3)
    square_probs = np.concatenate([photo.run(["probabilities"], {"image": s})[0] for s in rgb])
    reference = plain_probabilities(squares)
    check = PhotoCheck(
        photos=len(pictures),
        top1_agreement=agree / max(len(pictures), 1),
        prepared_identical=identical / max(len(pictures), 1),
        prepared_max_diff=worst,
        squares=len(squares),
        squares_top1_agreement=float((square_probs.argmax(1) == reference.argmax(1)).mean()),
        squares_max_abs_probabilities=float(np.abs(square_probs - reference).max()),
    )
    problems = []
    if check.top1_agreement < AGREEMENT:
        problems.append(
            f"photo model: top-1 agrees with the Python preparation on "
            f"{check.top1_agreement:.1%} of {check.photos} photos (< {AGREEMENT:.1%})"
        )
    if check.prepared_max_diff > PREPARED_TOLERANCE:
        problems.append(
            f"photo model: a prepared picture is {check.prepared_max_diff} grey levels "
            f"off Python's (> {PREPARED_TOLERANCE})"
        )
    if (
        check.squares_top1_agreement < 1
        or check.squares_max_abs_probabilities > PROBABILITY_TOLERANCE
    ):
        problems.append(
            f"photo model on 28x28 pictures: top-1 agreement "
            f"{check.squares_top1_agreement:.2%}, max |Δ probabilities| "
            f"{check.squares_max_abs_probabilities:.2g} (needs 100%, <= "
            f"{PROBABILITY_TOLERANCE:g})"
        )
    if problems:
        raise ExportValidationError(problems)
    return check


def write_photo_model(plain_path: Path, out: Path, images: np.ndarray) -> PhotoCheck:
    """Build the photo model of the ONNX file at ``plain_path``, verify it on photos made
    from ``images`` and on them as 28x28 pictures, and write it to ``out`` (the caller
    makes the write atomic)."""
    plain = onnx.load(str(plain_path))
    joined = build(plain)
    data = joined.SerializeToString()
    check = verify(data, plain.SerializeToString(), check_photos(images), images)
    out.write_bytes(data)
    return check
