"""Request decoding and response encoding for OIP v2 and KServe v1 JSON.

Hand-written on top of orjson instead of pydantic models: on a ~1 ms request the validation
layer would cost more than a small model's predict. Every way a body can be wrong ends in a
:class:`BadRequestError` (or :class:`PayloadTooLargeError`) with a message, never in a 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from coalmine_serving.errors import BadRequestError, PayloadTooLargeError, ServingError
from coalmine_serving.runtimes.base import Signature

V2_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(np_type)
    for name, np_type in {
        "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
        "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
        "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
    }.items()
}  # fmt: skip
_NUMPY_TO_V2 = {dtype: name for name, dtype in V2_DTYPES.items()}


@dataclass(frozen=True)
class V2Request:
    request_id: str | None
    rows: np.ndarray


def parse_json(body: bytes) -> Any:
    if not body:
        raise BadRequestError("request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"request body is not valid JSON: {exc}") from None


def decode_v2(
    body: bytes, signature: Signature, max_rows: int, json_length: str | None = None
) -> V2Request:
    """Parse an OIP v2 inference request holding one input tensor of shape [rows, features].

    ``json_length`` is the ``Inference-Header-Content-Length`` header of the binary tensor
    extension (Triton clients send binary by default): the JSON part is that many bytes and
    the raw little-endian tensor follows it.
    """
    binary = b""
    if json_length is not None:
        if not json_length.isdigit() or not 0 < int(json_length) <= len(body):
            raise BadRequestError("Inference-Header-Content-Length does not fit the body")
        body, binary = body[: int(json_length)], body[int(json_length) :]
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise BadRequestError("request body must be a JSON object")
    # Overflow to inf in a cast is caught by the finiteness check, so numpy need not warn.
    with np.errstate(over="ignore", invalid="ignore"):
        return _decode_v2_doc(doc, signature, max_rows, binary)


def _decode_v2_doc(
    doc: dict[str, Any], signature: Signature, max_rows: int, binary: bytes
) -> V2Request:
    request_id = doc.get("id")
    if request_id is not None and not (isinstance(request_id, str) and len(request_id) <= 256):
        raise BadRequestError("'id' must be a string of at most 256 characters")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise BadRequestError("'inputs' must be a list with exactly one tensor")
    rows = _decode_tensor(inputs[0], signature, max_rows, binary)
    return V2Request(request_id or None, rows)


def _decode_tensor(tensor: Any, signature: Signature, max_rows: int, binary: bytes) -> np.ndarray:
    if not isinstance(tensor, dict):
        raise BadRequestError(
            "each input must be a JSON object with name, shape, datatype and data"
        )
    shape = tensor.get("shape")
    if not (isinstance(shape, list) and shape and all(_is_dim(d) for d in shape)):
        raise BadRequestError("'shape' must be a non-empty list of non-negative integers")
    if shape[0] > max_rows:
        raise PayloadTooLargeError(f"{shape[0]} rows in one request; the limit is {max_rows}")
    datatype = tensor.get("datatype")
    if datatype not in V2_DTYPES:
        raise BadRequestError(f"unsupported datatype {datatype!r} for this model; use FP32 or FP64")
    params = tensor.get("parameters")
    if isinstance(params, dict) and "binary_data_size" in params:
        array = _from_binary(params["binary_data_size"], binary, V2_DTYPES[datatype])
    else:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise BadRequestError("'data' must be a list (flat or nested)")
        array = _to_array(data, V2_DTYPES[datatype])
    if array.size != math.prod(shape):
        raise BadRequestError(
            f"'data' has {array.size} elements but shape {shape} needs {math.prod(shape)}"
        )
    return check_rows(array.reshape(shape), signature)


def _from_binary(size: Any, binary: bytes, dtype: np.dtype) -> np.ndarray:
    if not _is_dim(size) or size != len(binary):
        raise BadRequestError(
            f"binary_data_size {size!r} does not match the {len(binary)} bytes after the JSON "
            "header (send Inference-Header-Content-Length)"
        )
    if size % dtype.itemsize:
        raise BadRequestError(f"{size} bytes is not a whole number of {_NUMPY_TO_V2[dtype]}")
    # The extension's tensors are little-endian; frombuffer copies nothing.
    return np.frombuffer(binary, dtype=dtype.newbyteorder("<"))


def _is_dim(value: Any) -> bool:
    return type(value) is int and value >= 0  # `type is`: a bool is not a dimension


def _to_array(data: list[Any], dtype: np.dtype) -> np.ndarray:
    try:
        return np.asarray(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRequestError(
            f"'data' does not fit datatype {_NUMPY_TO_V2[dtype]}: {exc}"
        ) from None


def check_rows(array: np.ndarray, signature: Signature) -> np.ndarray:
    """Enforce [rows, n_features], cast to the model's dtype, refuse NaN and infinity."""
    width = signature.n_features
    if array.ndim != 2 or (width is not None and array.shape[1] != width):
        expected = f"[rows, {width}]" if width is not None else "[rows, features]"
        raise BadRequestError(
            f"input shape {list(array.shape)} does not match the model's {expected}"
        )
    if array.dtype != signature.dtype:
        array = array.astype(signature.dtype)
    if array.dtype.kind == "f" and not _all_finite(array):
        raise BadRequestError("input contains NaN or infinity")
    return array


def _all_finite(array: np.ndarray) -> bool:
    if array.size <= 64:
        # For the usual single row, plain Python beats any numpy reduction's call overhead.
        return all(map(math.isfinite, array.ravel().tolist()))
    # A finite sum proves every element finite (one reduction, no temporary array); only an
    # infinite or NaN sum needs the exact check, since large finite values can overflow a sum.
    return math.isfinite(np.add.reduce(array, axis=None)) or bool(np.isfinite(array).all())


def decode_v1(body: bytes, signature: Signature, max_rows: int) -> np.ndarray:
    """Parse a KServe v1 ``{"instances": [[...], ...]}`` request (``inputs`` also accepted)."""
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise BadRequestError("request body must be a JSON object")
    instances = doc.get("instances", doc.get("inputs"))
    if not isinstance(instances, list) or not instances:
        raise BadRequestError("'instances' must be a non-empty list of rows")
    if len(instances) > max_rows:
        raise PayloadTooLargeError(f"{len(instances)} rows in one request; the limit is {max_rows}")
    with np.errstate(over="ignore", invalid="ignore"):
        return check_rows(_to_array(instances, signature.dtype), signature)


def v2_name(dtype: np.dtype) -> str:
    """OIP datatype name of a numpy dtype; strings and objects are BYTES."""
    return _NUMPY_TO_V2.get(dtype, "BYTES")


def v2_datatype(array: np.ndarray) -> str:
    return v2_name(array.dtype)


def _plain(array: np.ndarray) -> Any:
    """orjson writes numeric arrays natively (fast); strings and objects go through tolist."""
    if array.dtype.kind in "biuf":
        return np.ascontiguousarray(array).ravel()
    return [str(item) for item in array.ravel().tolist()]


_DUMP_OPTS = orjson.OPT_SERIALIZE_NUMPY


def encode_v2(
    model_name: str,
    model_version: str,
    request_id: str,
    output_name: str,
    outputs: np.ndarray,
    receipt: str,
) -> bytes:
    return orjson.dumps(
        {
            "model_name": model_name,
            "model_version": model_version,
            "id": request_id,
            # OIP v2 puts extensions in "parameters"; the label pipeline keeps this and
            # posts it back with the true label.
            "parameters": {"receipt": receipt},
            "outputs": [
                {
                    "name": output_name,
                    "shape": list(outputs.shape),
                    "datatype": v2_datatype(outputs),
                    "data": _plain(outputs),
                }
            ],
        },
        option=_DUMP_OPTS,
    )


def encode_v1(outputs: np.ndarray, receipt: str) -> bytes:
    data = outputs.tolist() if outputs.dtype.kind in "biuf" else _plain(outputs)
    return orjson.dumps({"predictions": data, "receipt": receipt})


def encode_error(error: ServingError) -> bytes:
    """OIP v2's error shape, ``{"error": "<message>"}``, for every error either path answers."""
    return orjson.dumps({"error": error.message})


class Feedback(NamedTuple):
    """One label (``receipt`` and ``truth``), or a batch of them (``labels``)."""

    receipt: Any = None
    truth: Any = None
    labels: list[Any] | None = None


def decode_feedback(body: bytes, max_batch: int) -> Feedback:
    """``{"receipt": "...", "truth": <value, or one per row>}`` or ``{"labels": [those, ...]}``."""
    doc = parse_json(body)
    if not isinstance(doc, dict):
        raise BadRequestError("feedback must be a JSON object: {receipt, truth} or {labels: [...]}")
    if "labels" in doc:
        labels = doc["labels"]
        if not isinstance(labels, list) or not labels:
            raise BadRequestError("'labels' must be a non-empty list of {receipt, truth}")
        if len(labels) > max_batch:
            raise PayloadTooLargeError(
                f"{len(labels)} labels in one request; the limit is {max_batch}"
            )
        return Feedback(labels=labels)
    if "id" in doc and "receipt" not in doc:
        raise BadRequestError(
            "feedback needs 'receipt' (from the prediction's response), not 'id': a request id "
            "proves nothing about who made the prediction"
        )
    if "truth" not in doc or doc["truth"] is None:
        raise BadRequestError("feedback needs 'truth': the true label or value, one per row")
    return Feedback(doc.get("receipt"), doc["truth"])
