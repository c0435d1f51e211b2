from __future__ import annotations

import numpy as np
import orjson
import pytest

from coalmine_serving.errors import BadRequestError, PayloadTooLargeError
from coalmine_serving.http import codec
from coalmine_serving.runtimes.base import Signature
from coalmine_serving.settings import Task

SIG = Signature("x", 4, np.dtype(np.float32), "label", Task.CLASSIFICATION)


def _v2(data: object, shape: object = (1, 4), datatype: str = "FP32", **extra: object) -> bytes:
    tensor = {"name": "x", "shape": list(shape) if isinstance(shape, tuple) else shape}
    tensor |= {"datatype": datatype, "data": data}
    return orjson.dumps({"inputs": [tensor], **extra})


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64", "INT8", "INT32", "INT64", "UINT8"])
def test_common_datatypes_decode_and_cast_to_the_model_dtype(datatype: str) -> None:
    rows = codec.decode_v2(_v2([1, 2, 3, 4], datatype=datatype), SIG, 10).rows
    assert rows.dtype == np.float32 and rows.tolist() == [[1, 2, 3, 4]]


def test_nested_data_and_request_id() -> None:
    decoded = codec.decode_v2(_v2([[1, 2, 3, 4], [5, 6, 7, 8]], (2, 4), id="r-1"), SIG, 10)
    assert decoded.request_id == "r-1" and decoded.rows.shape == (2, 4)


@pytest.mark.parametrize(
    "body,message",
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"inputs": []}', "exactly one tensor"),
        (_v2([1, 2, 3]), "needs 4"),
        (_v2([1, 2, 3, 4], (2, 2)), "does not match"),
        (_v2([1, 2, 3, 4], (4,)), "does not match"),
        (_v2([1, 2, 3, 4], "1x4"), "shape"),
        (_v2([1, 2, 3, 4], (1, -4)), "shape"),
        (_v2([1, 2, 3, 4], datatype="COMPLEX"), "unsupported datatype"),
        (_v2(["a", "b", "c", "d"]), "does not fit"),
        (_v2([[1, 2], [3]], (2, 2)), "does not fit"),
        (_v2([1, 2, "NaN", 4]), "NaN or infinity"),
        (_v2([1, 2, None, 4]), "NaN or infinity"),
        (_v2([1e300, 2, 3, 4]), "NaN or infinity"),  # overflows FP32 to inf
        (_v2([1e30, 2, 3, 4], datatype="INT64"), "does not fit"),
        (_v2({"a": 1}), "must be a list"),
        (_v2([1, 2, 3, 4], id=5), "'id'"),
        (b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":'
         b'{"binary_data_size":16}}]}', "binary_data_size"),
    ],
)  # fmt: skip
def test_bad_requests_are_client_errors_with_a_message(body: bytes, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        codec.decode_v2(body, SIG, 10)


def test_row_limit_is_checked_from_the_shape_before_building_arrays() -> None:
    with pytest.raises(PayloadTooLargeError, match="limit is 10"):
        codec.decode_v2(_v2([], (1_000_000, 4)), SIG, 10)


def test_v1_instances() -> None:
    rows = codec.decode_v1(b'{"instances": [[1,2,3,4],[4,3,2,1]]}', SIG, 10)
    assert rows.shape == (2, 4)
    with pytest.raises(PayloadTooLargeError):
        codec.decode_v1(orjson.dumps({"instances": [[1, 2, 3, 4]] * 11}), SIG, 10)
    with pytest.raises(BadRequestError, match="instances"):
        codec.decode_v1(b'{"instances": []}', SIG, 10)


def test_encode_v2_round_trips_through_json() -> None:
    body = codec.encode_v2("iris", "2", "r-1", "label", np.array([1, 0], dtype=np.int64), "k.p.m")
    assert orjson.loads(body) == {
        "model_name": "iris",
        "model_version": "2",
        "id": "r-1",
        "parameters": {"receipt": "k.p.m"},
        "outputs": [{"name": "label", "shape": [2], "datatype": "INT64", "data": [1, 0]}],
    }
    strings = orjson.loads(codec.encode_v2("m", "1", "r", "o", np.array(["a", "b"]), "k.p.m"))
    assert strings["outputs"][0]["datatype"] == "BYTES"
    assert strings["outputs"][0]["data"] == ["a", "b"]


def test_feedback_body_is_one_label_or_a_bounded_batch() -> None:
    one = codec.decode_feedback(b'{"receipt": "k.p.m", "truth": 1}', max_batch=2)
    assert (one.receipt, one.truth, one.labels) == ("k.p.m", 1, None)
    batch = codec.decode_feedback(b'{"labels": [{"receipt": "a", "truth": 0}]}', max_batch=2)
    assert batch.labels == [{"receipt": "a", "truth": 0}]
    with pytest.raises(BadRequestError, match=r"'receipt'.*not 'id'"):
        codec.decode_feedback(b'{"id": "a", "truth": 1}', max_batch=2)
    with pytest.raises(BadRequestError, match="'truth'"):
        codec.decode_feedback(b'{"receipt": "a"}', max_batch=2)
    with pytest.raises(BadRequestError, match="'labels'"):
        codec.decode_feedback(b'{"labels": []}', max_batch=2)
    with pytest.raises(PayloadTooLargeError, match="3 labels"):
        codec.decode_feedback(b'{"labels": [1, 2, 3]}', max_batch=2)


def _binary(array: np.ndarray, datatype: str, size: int | None = None) -> tuple[bytes, str]:
    raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
    header = orjson.dumps(
        {"inputs": [{"name": "x", "shape": list(array.shape), "datatype": datatype,
                     "parameters": {"binary_data_size": len(raw) if size is None else size}}]}
    )  # fmt: skip
    return header + raw, str(len(header))


def test_binary_tensor_extension() -> None:
    rows = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
    body, length = _binary(rows, "FP32")
    assert codec.decode_v2(body, SIG, 10, length).rows.tolist() == rows.tolist()
    body, length = _binary(rows.astype(np.float64), "FP64")
    assert codec.decode_v2(body, SIG, 10, length).rows.dtype == np.float32


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda body, length: (body, "x"), "Inference-Header-Content-Length"),
        (lambda body, length: (body, str(len(body) + 1)), "Inference-Header-Content-Length"),
        (lambda body, length: (body[:-4], length), "binary_data_size"),
        (lambda body, length: (body, None), "not valid JSON"),
    ],
)
def test_bad_binary_requests_are_client_errors(mangle, message) -> None:  # type: ignore[no-untyped-def]
    body, length = _binary(np.ones((1, 4), dtype=np.float32), "FP32")
    mangled_body, mangled_length = mangle(body, length)
    with pytest.raises(BadRequestError, match=message):
        codec.decode_v2(mangled_body, SIG, 10, mangled_length)


def test_binary_nan_is_refused_too() -> None:
    body, length = _binary(np.array([[1, np.nan, 3, 4]], dtype=np.float32), "FP32")
    with pytest.raises(BadRequestError, match="NaN"):
        codec.decode_v2(body, SIG, 10, length)
