"""TensorProto decoding and encoding, held to TensorFlow's own make_ndarray/make_tensor_proto."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.errors import InvalidInput
from service.grpc.generated import tensor_pb2, types_pb2
from service.grpc.tfserving_codec import (
    array_to_tensor,
    decode_inputs,
    dtype_enum,
    shape_of,
    shape_proto,
    tensor_to_array,
)
from service.models.card import TensorSpec
from service.models.runtime import tf
from service.protocol.tensors import Limits
from service.protocol.tfserving.predict import decode_predict

NUMERIC = [
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
]
LIMITS = Limits()


def decode(tensor: Any, allow_nonfinite: bool = False) -> np.ndarray:
    return tensor_to_array(tensor, "Input 'x'", allow_nonfinite)


def same(left: np.ndarray, right: np.ndarray) -> None:
    """Equal dtype, shape and values, NaN included."""
    assert left.dtype == right.dtype and left.shape == right.shape
    np.testing.assert_array_equal(left, right)


def arrays(dtype: str) -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
    if dtype == "string":
        return hnp.arrays(object, shapes, elements=st.binary(max_size=6))
    return hnp.arrays(dtype, shapes)


@pytest.mark.parametrize("dtype", [*NUMERIC, "bool", "string"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_round_trips_match_tensorflow(dtype: str, data: st.DataObject) -> None:
    array = data.draw(arrays(dtype))
    # Ours -> TensorFlow's reader, TensorFlow's writer -> ours, ours -> ours.
    same(tf.make_ndarray(array_to_tensor(array)), array)
    same(decode(tf.make_tensor_proto(array), allow_nonfinite=True), array)
    same(decode(array_to_tensor(array), allow_nonfinite=True), array)


@pytest.mark.parametrize("dtype", [*NUMERIC, "bool"])
def test_typed_fields_decode_as_tensorflow_reads_them(dtype: str) -> None:
    """The ``*_val`` fields (tensor_content is what make_tensor_proto writes for arrays)."""
    values = (
        np.arange(6).astype(dtype).reshape(2, 3) if dtype != "bool" else np.array([[True, False, True]] * 2)
    )
    proto = tensor_pb2.TensorProto(dtype=dtype_enum(dtype), tensor_shape=shape_proto([2, 3]))
    field = {
        "float16": "half_val",
        "float32": "float_val",
        "float64": "double_val",
        "int64": "int64_val",
    }.get(dtype, "bool_val" if dtype == "bool" else "uint32_val" if dtype == "uint32" else "int_val")
    if dtype == "uint64":
        field = "uint64_val"
    flat = values.reshape(-1)
    getattr(proto, field).extend((flat.view(np.uint16) if dtype == "float16" else flat).tolist())
    same(decode(proto), values)
    same(decode(proto), tf.make_ndarray(proto))


def test_string_val_holds_arbitrary_bytes() -> None:
    proto = tf.make_tensor_proto([[b"\x00\xff", b"ok"]])
    assert proto.string_val  # TensorFlow writes strings there, never in tensor_content
    assert decode(proto).tolist() == [[b"\x00\xff", b"ok"]]


def test_a_short_typed_field_repeats_its_last_value_as_tensorflow_does() -> None:
    proto = tf.make_tensor_proto(0.5, dtype=tf.float32, shape=[2, 3])
    assert len(proto.float_val) == 1
    same(decode(proto), tf.make_ndarray(proto))
    partial = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, tensor_shape=shape_proto([4]), int_val=[1, 2])
    same(decode(partial), np.array([1, 2, 2, 2], dtype=np.int32))


def test_zero_size_tensors_decode_to_empty_arrays() -> None:
    for proto in (
        tf.make_tensor_proto(np.zeros((0, 3), np.float32)),
        array_to_tensor(np.zeros((2, 0), np.int64)),
    ):
        array = decode(proto)
        assert array.size == 0 and array.shape == tuple(shape_of(proto.tensor_shape) or ())


def test_outputs_encode_text_and_bytes_as_strings() -> None:
    labels = np.array(["7", "ünï"], dtype=object)
    tensor = array_to_tensor(labels)
    assert tensor.dtype == types_pb2.DT_STRING and list(tensor.string_val) == [b"7", "ünï".encode()]
    assert tf.make_ndarray(array_to_tensor(np.array(["a", "bc"]))).tolist() == [b"a", b"bc"]


@pytest.mark.parametrize("shape", [None, [], [-1], [-1, 28, 28], [0, 5]])
def test_shapes_round_trip_like_tensorflow(shape: list[int] | None) -> None:
    proto = shape_proto(shape)
    assert (
        proto == tf.TensorShape(None if shape is None else [None if d == -1 else d for d in shape]).as_proto()
    )
    assert shape_of(proto) == (None if shape is None else tuple(shape))


def tensor(dtype: int, shape: list[int] | None, **fields: Any) -> Any:
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape_proto(shape), **fields)


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (
            tensor(types_pb2.DT_FLOAT, [2], tensor_content=b"\0" * 7),
            "has 7 bytes of tensor_content; 2 DT_FLOAT values need 8",
        ),
        (
            tensor(types_pb2.DT_FLOAT, [2], float_val=[1, 2, 3]),
            "has 3 values in float_val; shape [2] needs 2",
        ),
        (tensor(types_pb2.DT_FLOAT, [2]), "has 0 values in float_val; shape [2] needs 2"),
        (
            tensor(types_pb2.DT_FLOAT, [1], int_val=[1]),
            "is DT_FLOAT, whose values go in float_val or tensor_content; it has int_val",
        ),
        (
            tensor(types_pb2.DT_FLOAT, [1], float_val=[1], tensor_content=b"\0" * 4),
            "has both tensor_content and float_val",
        ),
        (
            tensor(types_pb2.DT_STRING, [1], tensor_content=b"ab"),
            "is DT_STRING, whose values go in string_val",
        ),
        (
            tensor(types_pb2.DT_COMPLEX64, [1], scomplex_val=[1, 2]),
            "has dtype DT_COMPLEX64, which is not supported",
        ),
        (tensor(0, [1]), "has dtype DT_INVALID, which is not supported"),
        (tensor(types_pb2.DT_FLOAT, None, float_val=[1]), "has a tensor_shape of unknown rank"),
        (
            tensor(types_pb2.DT_FLOAT, [-1], float_val=[1]),
            "has an unknown (negative) dimension in tensor_shape [-1]",
        ),
        (tensor(types_pb2.DT_INT8, [2], int_val=[1, 300]), "value 300 at [1] is out of range for int8"),
        (tensor(types_pb2.DT_UINT16, [1], int_val=[-1]), "value -1 at [0] is out of range for uint16"),
        (
            tensor(types_pb2.DT_HALF, [1], half_val=[70000]),
            "half_val value 70000 at [0] is out of range for uint16",
        ),
        (
            tensor(types_pb2.DT_BOOL, [2], tensor_content=b"\x01\x02"),
            "has DT_BOOL tensor_content with bytes other than 0 and 1",
        ),
        (
            tensor(types_pb2.DT_DOUBLE, [2, 2], double_val=[1, 2, 3, float("inf")]),
            "must hold finite numbers; got Infinity at [1, 1]",
        ),
        (array_to_tensor(np.array([np.nan], np.float16)), "must hold finite numbers; got NaN at [0]"),
    ],
)
def test_malformed_tensors_are_refused_naming_the_input(proto: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(f"Input 'x' {message}")):
        decode(proto)


def test_nonfinite_values_pass_when_allowed() -> None:
    values = np.array([np.nan, np.inf, -np.inf, 1.0], np.float32)
    same(decode(array_to_tensor(values), allow_nonfinite=True), values)


SPECS = [TensorSpec("x", "float32", (-1, 2)), TensorSpec("k", "int64", (-1,))]


def predict(**inputs: np.ndarray) -> dict[str, np.ndarray]:
    return decode_inputs({name: tf.make_tensor_proto(value) for name, value in inputs.items()}, SPECS, LIMITS)


def rest_error(body: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_predict(body.encode(), SPECS, LIMITS)
    return caught.value.message


def grpc_error(**inputs: np.ndarray) -> str:
    with pytest.raises(InvalidInput) as caught:
        predict(**inputs)
    return caught.value.message


def test_inputs_decode_to_the_signature_dtypes() -> None:
    # numpy's default float64 and int32 arrive as DT_DOUBLE/DT_INT32: converted when lossless.
    arrays = predict(x=np.array([[0.5, 1.0]]), k=np.array([3], np.int32))
    same(arrays["x"], np.array([[0.5, 1.0]], np.float32))
    same(arrays["k"], np.array([3], np.int64))


def test_input_errors_say_what_rest_says() -> None:
    x, k = np.ones((2, 2), np.float32), np.ones(2, np.int64)
    assert grpc_error(x=x) == rest_error('{"inputs": {"x": [[1, 1], [1, 1]]}}')
    assert grpc_error(x=x, k=k, y=k) == rest_error('{"inputs": {"x": [[1, 1]], "k": [1], "y": [1]}}')
    assert grpc_error(x=np.ones((2, 3), np.float32), k=k) == rest_error(
        '{"inputs": {"x": [[1, 1, 1], [1, 1, 1]], "k": [1, 1]}}'
    )
    assert grpc_error(x=x, k=np.ones(3, np.int64)) == rest_error(
        '{"inputs": {"x": [[1, 1], [1, 1]], "k": [1, 2, 3]}}'
    )
    assert grpc_error(x=np.zeros((0, 2), np.float32), k=k) == rest_error('{"inputs": {"x": [], "k": [1]}}')
    nan = np.array([[1, np.nan]], np.float32)
    assert grpc_error(x=nan, k=k[:1]) == rest_error('{"inputs": {"x": [[1, NaN]], "k": [1]}}')
    too_big = np.array([[2**25 + 1, 0]], np.int64)
    assert grpc_error(x=too_big, k=k[:1]) == rest_error('{"inputs": {"x": [[33554433, 0]], "k": [1]}}')


def test_lossy_dtype_conversions_are_refused() -> None:
    message = grpc_error(x=np.ones((1, 2), np.float32), k=np.ones(1, np.float32))
    assert message == (
        "Input 'k' is sent as DT_FLOAT but the model takes DT_INT64, and that conversion could change "
        "values; send it as DT_INT64."
    )


def test_the_batch_limit_applies_before_any_value_is_expanded() -> None:
    huge = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto([10**9, 2]), float_val=[1]
    )
    with pytest.raises(InvalidInput, match="holds 1000000000 instances; at most 65536"):
        decode_inputs({"x": huge, "k": tf.make_tensor_proto(np.ones(1, np.int64))}, SPECS, LIMITS)
