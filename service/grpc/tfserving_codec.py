"""TF Serving's TensorProto <-> numpy, and a Predict request's inputs checked against a signature.

Pure protobuf and numpy: no TensorFlow call (``tf.make_ndarray`` would do the decoding, but not the
checks, and would tie this module to the runtime). Follows ``tensor.proto`` and TensorFlow's
``Tensor::FromProto``: the values are either ``tensor_content`` (raw little-endian bytes, row-major)
or the typed field of the dtype (``float_val``, ``int_val``, ``half_val`` holding float16 bit
patterns, ``string_val``...), and a typed field with fewer values than the shape repeats its last
value (how ``tf.make_tensor_proto(0.5, shape=[3])`` is sent). Stricter than TensorFlow, as the REST
dialect is, where it would silently guess: no values at all, more values than the shape holds,
values in another dtype's field, both ``tensor_content`` and a typed field, and out-of-range
integers are refused instead of zero-filled, truncated, ignored or wrapped. A dtype other than
the signature's is converted when no value can change (the V2 rules of
:func:`service.protocol.v2.datatypes.convert`), where TF Serving refuses it outright.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np

from service.errors import InvalidInput
from service.grpc.generated import tensor_pb2, tensor_shape_pb2, types_pb2
from service.models.card import TensorSpec
from service.protocol.tensors import (
    Limits,
    category,
    check_batch_size,
    check_float_values,
    check_inputs,
    check_int_range,
    check_names,
    fits,
    shape_text,
)
from service.protocol.v2.datatypes import convert, unpack_little_endian

TensorProto: TypeAlias = tensor_pb2.TensorProto
TensorShapeProto: TypeAlias = tensor_shape_pb2.TensorShapeProto

# DataType -> (tensor spec dtype name, the TensorProto field holding its values).
_TYPES: dict[int, tuple[str, str]] = {
    types_pb2.DT_FLOAT: ("float32", "float_val"),
    types_pb2.DT_DOUBLE: ("float64", "double_val"),
    types_pb2.DT_HALF: ("float16", "half_val"),
    types_pb2.DT_INT8: ("int8", "int_val"),
    types_pb2.DT_INT16: ("int16", "int_val"),
    types_pb2.DT_INT32: ("int32", "int_val"),
    types_pb2.DT_INT64: ("int64", "int64_val"),
    types_pb2.DT_UINT8: ("uint8", "int_val"),
    types_pb2.DT_UINT16: ("uint16", "int_val"),
    types_pb2.DT_UINT32: ("uint32", "uint32_val"),
    types_pb2.DT_UINT64: ("uint64", "uint64_val"),
    types_pb2.DT_BOOL: ("bool", "bool_val"),
    types_pb2.DT_STRING: ("string", "string_val"),
}
_BY_SPEC = {name: enum for enum, (name, _) in _TYPES.items()}
_VALUE_FIELDS = tuple(
    f.name for f in TensorProto.DESCRIPTOR.fields if f.name.endswith("_val") and f.is_repeated
)
_CONVERTIBLE = {("int", "int"), ("int", "float"), ("float", "float")}


def dtype_name(dtype: int) -> str:
    """``DT_FLOAT`` for 1: how dtypes appear in every message."""
    try:
        return str(types_pb2.DataType.Name(dtype))
    except ValueError:
        return f"DataType {dtype}"


def dtype_enum(spec_dtype: str) -> int:
    """The DataType of a tensor spec dtype name (``"float32"`` -> DT_FLOAT), for metadata."""
    return _BY_SPEC[spec_dtype]


def shape_proto(shape: Sequence[int] | None) -> TensorShapeProto:
    """A TensorShapeProto; ``None`` is unknown rank and -1 an unknown dimension (signature shapes)."""
    if shape is None:
        return TensorShapeProto(unknown_rank=True)
    return TensorShapeProto(dim=[TensorShapeProto.Dim(size=int(size)) for size in shape])


def shape_of(proto: TensorShapeProto) -> tuple[int, ...] | None:
    """The dimensions of a TensorShapeProto (-1 where unknown), or ``None`` for unknown rank."""
    return None if proto.unknown_rank else tuple(int(d.size) for d in proto.dim)


def decode_inputs(
    inputs: Mapping[str, TensorProto], specs: Sequence[TensorSpec], limits: Limits
) -> dict[str, np.ndarray]:
    """A PredictRequest's ``inputs`` as arrays of the signature's dtypes, each checked against its spec."""
    check_names(inputs, specs, " in 'inputs'")  # PredictRequest.inputs, as REST's columnar field
    arrays = {}
    for spec in specs:
        where = f"Input {spec.name!r}"
        tensor = inputs[spec.name]
        shape = request_shape(tensor, where)
        if not fits(shape, spec.shape):
            raise InvalidInput(f"{where} must have shape {shape_text(spec.shape)}; got {shape_text(shape)}.")
        if spec.shape[:1] == (-1,):
            check_batch_size(shape[0], limits, where)
        array = tensor_to_array(tensor, where, limits.allow_nonfinite)
        arrays[spec.name] = _as_spec_dtype(array, tensor.dtype, spec.dtype, where)
    check_inputs(arrays, specs)
    return arrays


def request_shape(tensor: TensorProto, where: str) -> tuple[int, ...]:
    """A request tensor's shape, which must be fully known."""
    shape = shape_of(tensor.tensor_shape)
    if shape is None:
        raise InvalidInput(
            f"{where} has a tensor_shape of unknown rank; a request tensor needs its dimensions."
        )
    if any(size < 0 for size in shape):
        raise InvalidInput(
            f"{where} has an unknown (negative) dimension in tensor_shape {shape_text(shape)}."
        )
    return shape


def tensor_to_array(tensor: TensorProto, where: str, allow_nonfinite: bool) -> np.ndarray:
    """The values of a TensorProto as an array of its own dtype and shape.

    Check the shape first when it comes from a client (:func:`decode_inputs` does): a short typed
    field is repeated up to the size the shape declares.
    """
    if tensor.dtype not in _TYPES:
        known = ", ".join(dtype_name(d) for d in _TYPES)
        raise InvalidInput(
            f"{where} has dtype {dtype_name(tensor.dtype)}, which is not supported; use {known}."
        )
    dtype, field = _TYPES[tensor.dtype]
    shape = request_shape(tensor, where)
    content = tensor.tensor_content  # each read of a bytes field copies it: once
    _check_fields(tensor, field, bool(content), where)
    if content:
        flat = _from_content(content, tensor.dtype, math.prod(shape), where)
    else:
        flat = _from_field(tensor, dtype, field, shape, where)
    if category(dtype) == "float" and not np.isfinite(flat).all():
        flat = check_float_values(flat, dtype, allow_nonfinite, where, shape)  # refuses, naming the place
    return flat.reshape(shape)


def _check_fields(tensor: TensorProto, field: str, has_content: bool, where: str) -> None:
    # Repeated fields are read as views; ListFields() would also copy tensor_content's bytes.
    given = [name for name in _VALUE_FIELDS if len(getattr(tensor, name))]
    kind = dtype_name(tensor.dtype)
    for name in given:
        if name != field:
            raise InvalidInput(
                f"{where} is {kind}, whose values go in {field} or tensor_content; it has {name}."
            )
    if given and has_content:
        raise InvalidInput(f"{where} has both tensor_content and {field}; give its values in one of them.")


def _from_content(content: bytes, dtype_code: int, count: int, where: str) -> np.ndarray:
    kind = dtype_name(dtype_code)
    dtype, _ = _TYPES[dtype_code]
    if dtype == "string":
        raise InvalidInput(f"{where} is {kind}, whose values go in string_val, not tensor_content.")
    # content is a bytes object of its own (protobuf hands out a copy): a read-only view of it will
    # do, saving a second pass over a large tensor, unless the machine's byte order differs.
    return unpack_little_endian(
        content, np.dtype(dtype), count, where, source="tensor_content", kind=kind, unit="values", copy=False
    )


def _from_field(
    tensor: TensorProto, dtype: str, field: str, shape: tuple[int, ...], where: str
) -> np.ndarray:
    values = getattr(tensor, field)
    count, given = math.prod(shape), len(values)
    if given > count or (given == 0 and count > 0):
        raise InvalidInput(f"{where} has {given} values in {field}; shape {shape_text(shape)} needs {count}.")
    flat = _typed_values(values, dtype, field, where, shape)
    if given < count:  # TensorFlow's rule: the last value repeats
        flat = np.concatenate([flat, np.full(count - given, flat[-1], dtype=flat.dtype)])
    return flat


def _typed_values(
    values: Sequence[object], dtype: str, field: str, where: str, shape: tuple[int, ...]
) -> np.ndarray:
    if dtype == "string":
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
        return flat
    if field == "half_val":  # float16 bit patterns in int32s
        bits = check_int_range(np.array(values, dtype=np.int64), "uint16", f"{where} half_val", shape)
        return bits.view(np.float16)
    if field == "int_val" and dtype != "int32":  # int8/16, uint8/16 share int32's field
        return check_int_range(np.array(values, dtype=np.int64), dtype, where, shape)
    return np.array(values, dtype=dtype)


def _as_spec_dtype(array: np.ndarray, sent: int, expected: str, where: str) -> np.ndarray:
    source = _TYPES[sent][0]
    if source == expected:
        return array
    if (category(source), category(expected)) not in _CONVERTIBLE:
        wanted = dtype_name(_BY_SPEC[expected])
        raise InvalidInput(
            f"{where} is sent as {dtype_name(sent)} but the model takes {wanted}, and that "
            f"conversion could change values; send it as {wanted}."
        )
    return convert(array, expected, where)


def array_to_tensor(array: np.ndarray) -> TensorProto:
    """An output array as a new TensorProto (see :func:`fill_tensor`)."""
    tensor = TensorProto()
    fill_tensor(tensor, array)
    return tensor


def fill_tensor(tensor: TensorProto, array: np.ndarray) -> None:
    """Write ``array`` into ``tensor`` (e.g. ``response.outputs[name]``, filled in place, uncopied).

    Numbers and booleans go in ``tensor_content`` (one memcpy, and what clients decode fastest);
    strings (bytes, or text encoded as UTF-8) in ``string_val``.
    """
    text = array.dtype.kind in "OSU"
    tensor.dtype = types_pb2.DT_STRING if text else _BY_SPEC[array.dtype.name]
    tensor.tensor_shape.CopyFrom(shape_proto(array.shape))
    if text:
        tensor.string_val.extend(
            item.encode("utf-8") if isinstance(item, str) else bytes(item)
            for item in array.reshape(-1).tolist()
        )
    else:
        tensor.tensor_content = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
