"""The open inference protocol (KServe v2, as Triton speaks it), without any HTTP server:
parsing infer requests (JSON tensors and the binary tensor data extension), encoding infer
responses, parsing multipart uploads, and the one error type every bad request becomes.

Everything here takes bytes and returns arrays or bytes; nothing decodes an image or runs
a model.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BINARY_HEADER = "inference-header-content-length"  # the binary extension's header
DATATYPES = {"FP32": np.dtype("<f4"), "BYTES": None}


class ProtocolError(Exception):
    """A request the server refuses: an HTTP status (4xx) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message.splitlines()[0] if message else "bad request"


@dataclass
class Tensor:
    """One input tensor: numbers (``array``) or BYTES elements (``items``)."""

    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray | None = None
    items: list[bytes] | None = None


@dataclass
class InferRequest:
    """A parsed ``POST /v2/models/{name}/infer``."""

    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None  # the requested outputs' names; None: all
    binary_outputs: dict[str, bool] = field(default_factory=dict)  # per output name
    binary_default: bool = False  # ``binary_data_output`` for outputs not named


def _no_constants(name: str) -> Any:
    raise ProtocolError(400, f"malformed JSON: {name} is not a JSON number")


def parse_json(data: bytes) -> Any:
    """Strict JSON: ``NaN`` and ``Infinity`` (not JSON) are refused.

    Raises:
        ProtocolError: 400, with where parsing stopped.
    """
    try:
        return json.loads(data, parse_constant=_no_constants)
    except ProtocolError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ProtocolError(400, f"malformed JSON: {exc}") from None


def _shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise ProtocolError(400, f"input {name!r}: shape must be a list of integers >= 0")
    return value


def _parameters(entry: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = entry.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError(400, f"{where}: parameters must be an object")
    return parameters


def _bytes_from_binary(blob: bytes, name: str) -> list[bytes]:
    """BYTES elements in the binary extension: each a 4-byte little-endian length, then
    that many bytes."""
    items, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ProtocolError(400, f"input {name!r}: BYTES element length cut short")
        (size,) = struct.unpack_from("<I", blob, offset)
        offset += 4
        if offset + size > len(blob):
            raise ProtocolError(400, f"input {name!r}: BYTES element longer than its data")
        items.append(blob[offset : offset + size])
        offset += size
    return items


def _bytes_from_json(data: Any, name: str) -> list[bytes]:
    """BYTES elements in JSON: base64 strings (JSON cannot carry raw bytes)."""
    flat = _flatten(data, name)
    items = []
    for element in flat:
        if not isinstance(element, str):
            raise ProtocolError(400, f"input {name!r}: BYTES data must be base64 strings")
        try:
            items.append(base64.b64decode(element, validate=True))
        except (binascii.Error, ValueError):
            raise ProtocolError(400, f"input {name!r}: BYTES element is not base64") from None
    return items


def _flatten(data: Any, name: str) -> list[Any]:
    if not isinstance(data, list):
        raise ProtocolError(400, f"input {name!r}: data must be a list")
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for row in data:
            out.extend(_flatten(row, name))
        return out
    return data


def _numbers(data: Any, name: str, dtype: np.dtype) -> np.ndarray:
    try:
        array = np.asarray(data, dtype=dtype)
    except (ValueError, TypeError):
        raise ProtocolError(
            400, f"input {name!r}: data must be (nested lists of) numbers of one shape"
        ) from None
    if array.dtype == object:
        raise ProtocolError(400, f"input {name!r}: data must be numbers")
    return array.reshape(-1)


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """A v2 infer request, in JSON or with the binary tensor data extension.

    Args:
        body: the whole request body.
        header_length: the ``Inference-Header-Content-Length`` header, if sent.

    Raises:
        ProtocolError: 400 for anything malformed (the message names the input and what
            is wrong).
    """
    binary = b""
    if header_length is not None:
        if not header_length.strip().isdigit():
            raise ProtocolError(
                400, f"Inference-Header-Content-Length {header_length!r} is not a number"
            )
        size = int(header_length)
        if size > len(body):
            raise ProtocolError(
                400,
                f"Inference-Header-Content-Length {size} is longer than the body "
                f"({len(body)} bytes)",
            )
        body, binary = body[:size], body[size:]
    request = parse_json(body)
    if not isinstance(request, dict):
        raise ProtocolError(400, "the request must be a JSON object")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(400, "id must be a string")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError(400, "inputs must be a non-empty list")
    tensors, offset = [], 0
    for entry in inputs:
        if not isinstance(entry, dict):
            raise ProtocolError(400, "each input must be an object")
        name = entry.get("name")
        if not isinstance(name, str):
            raise ProtocolError(400, "each input needs a name")
        datatype = entry.get("datatype")
        if datatype not in DATATYPES:
            raise ProtocolError(
                400, f"input {name!r}: datatype {datatype!r} is not one of FP32, BYTES"
            )
        shape = _shape(entry.get("shape"), name)
        count = math.prod(shape)
        blob_size = _parameters(entry, f"input {name!r}").get("binary_data_size")
        tensor = Tensor(name, datatype, shape)
        if blob_size is not None:
            size = blob_size
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ProtocolError(400, f"input {name!r}: binary_data_size must be >= 0")
            if offset + size > len(binary):
                raise ProtocolError(
                    400, f"input {name!r}: binary_data_size {size} is past the body's end"
                )
            blob = binary[offset : offset + size]
            offset += size
            if datatype == "BYTES":
                tensor.items = _bytes_from_binary(blob, name)
            else:
                dtype = DATATYPES[datatype]
                assert dtype is not None
                if size != count * dtype.itemsize:
                    raise ProtocolError(
                        400,
                        f"input {name!r}: {size} bytes of data for shape {shape} "
                        f"({count * dtype.itemsize} expected)",
                    )
                tensor.array = np.frombuffer(blob, dtype=dtype)
        elif "data" in entry:
            if datatype == "BYTES":
                tensor.items = _bytes_from_json(entry["data"], name)
            else:
                dtype = DATATYPES[datatype]
                assert dtype is not None
                tensor.array = _numbers(entry["data"], name, dtype)
        else:
            raise ProtocolError(400, f"input {name!r} has neither data nor binary_data_size")
        found = len(tensor.items) if tensor.items is not None else tensor.array.size  # type: ignore[union-attr]
        if found != count:
            raise ProtocolError(
                400, f"input {name!r}: {found} elements do not fill shape {shape} ({count})"
            )
        tensors.append(tensor)
    if offset != len(binary):
        raise ProtocolError(400, f"{len(binary) - offset} bytes of binary data belong to no input")
    parameters = _parameters(request, "the request")
    binary_default = parameters.get("binary_data_output", False) is True
    outputs, binary_outputs = None, {}
    if "outputs" in request:
        if not isinstance(request["outputs"], list):
            raise ProtocolError(400, "outputs must be a list")
        outputs = []
        for entry in request["outputs"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ProtocolError(400, "each requested output needs a name")
            outputs.append(entry["name"])
            flag = _parameters(entry, f"output {entry['name']!r}").get("binary_data")
            binary_outputs[entry["name"]] = binary_default if flag is None else flag is True
    return InferRequest(request_id, tensors, outputs, binary_outputs, binary_default)


def encode_infer(
    model: str,
    request: InferRequest,
    results: dict[str, np.ndarray],
) -> tuple[bytes, int | None]:
    """(the response body, the JSON header's length when binary outputs follow it).

    ``results`` holds the outputs to send, in order; each goes as binary data when the
    request asked for it (per output, or ``binary_data_output``), else as JSON data.
    """
    entries, blobs = [], []
    for name, array in results.items():
        entry: dict[str, Any] = {"name": name, "datatype": "FP32", "shape": list(array.shape)}
        if request.binary_outputs.get(name, request.binary_default):
            blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = array.reshape(-1).tolist()
        entries.append(entry)
    response: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": entries}
    if request.id is not None:
        response["id"] = request.id
    header = json.dumps(response, separators=(",", ":")).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)


# -- multipart/form-data ---------------------------------------------------------------

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION_FIELD = re.compile(rb'(?i)\b(name|filename)="([^"]*)"')


@dataclass(frozen=True)
class Upload:
    """One multipart part: its field name, its filename ("" if none) and its bytes."""

    field: str
    filename: str
    data: bytes


def parse_multipart(body: bytes, content_type: str) -> list[Upload]:
    """The parts of a ``multipart/form-data`` body.

    Raises:
        ProtocolError: 415 for another content type, 400 for a malformed body.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind != "multipart/form-data":
        raise ProtocolError(
            415, f"send multipart/form-data with file fields, not {kind or 'no content type'}"
        )
    match = _BOUNDARY.search(content_type)
    if not match:
        raise ProtocolError(400, "multipart/form-data without a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    pieces = body.split(delimiter)
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise ProtocolError(400, "malformed multipart body: no closing boundary")
    uploads = []
    for piece in pieces[1:-1]:
        if not piece.startswith(b"\r\n") or not piece.endswith(b"\r\n"):
            raise ProtocolError(400, "malformed multipart body: a part is not CRLF-delimited")
        head, separator, data = piece[2:-2].partition(b"\r\n\r\n")
        if not separator:
            raise ProtocolError(400, "malformed multipart body: a part has no headers' end")
        fields: dict[bytes, bytes] = {}
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-disposition:"):
                fields = {k.lower(): v for k, v in _DISPOSITION_FIELD.findall(line)}
        if b"name" not in fields:
            raise ProtocolError(400, "malformed multipart body: a part has no field name")
        uploads.append(
            Upload(
                fields[b"name"].decode("utf-8", "replace"),
                fields.get(b"filename", b"").decode("utf-8", "replace"),
                data,
            )
        )
    return uploads
