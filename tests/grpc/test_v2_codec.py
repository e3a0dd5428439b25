"""ModelInfer decoding and encoding, driven by tritonclient.grpc's own request builder and reader."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tritonclient.grpc._utils import _get_inference_request  # what InferenceServerClient.infer sends

from service.errors import InvalidInput
from service.grpc.generated import v2_pb2
from service.grpc.v2_codec import decode_request, encode_response
from service.models.card import TensorSpec
from service.protocol.tensors import Limits
from service.protocol.v2.datatypes import DATATYPES, datatype_of, dtype_of
from service.protocol.v2.request import InferRequest, RequestedOutput, decode_infer

LIMITS = Limits()
SPECS = [TensorSpec("x", "float32", (-1, 2)), TensorSpec("k", "int64", (-1,))]


def client_request(inputs: dict[str, np.ndarray], outputs: list[Any] | None = None, **options: Any) -> Any:
    built = []
    for name, array in inputs.items():
        item = triton.InferInput(name, list(array.shape), datatype_of(array.dtype))
        item.set_data_from_numpy(array)
        built.append(item)
    defaults = dict(request_id="", sequence_id=0, sequence_start=False, sequence_end=False, priority=0)
    defaults.update(timeout=None, parameters=None)
    return _get_inference_request("m", built, "", outputs=outputs, **{**defaults, **options})


def any_spec(name: str, array: np.ndarray) -> TensorSpec:
    return TensorSpec(name, "string" if array.dtype == object else array.dtype.name, array.shape)


def same(left: np.ndarray, right: np.ndarray) -> None:
    assert left.dtype == right.dtype and left.shape == right.shape
    np.testing.assert_array_equal(left, right)


def arrays(datatype: str) -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
    if datatype == "BYTES":
        return hnp.arrays(object, shapes, elements=st.binary(max_size=6))
    return hnp.arrays(
        dtype_of(datatype), shapes, elements={"allow_nan": False} if datatype[:2] == "FP" else None
    )


@pytest.mark.parametrize("datatype", DATATYPES)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_raw_contents_round_trip_through_tritonclient(datatype: str, data: st.DataObject) -> None:
    array = data.draw(arrays(datatype))
    request = decode_request(
        client_request({"t": array}), [any_spec("t", array)], Limits(allow_nonfinite=True)
    )
    same(request.inputs["t"], array)
    response = encode_response("m", "1", request.inputs, request, None, None)
    result = triton.InferResult(response).as_numpy("t")
    same(result, array)


TYPED = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def typed_request(name: str, datatype: str, shape: list[int], **contents: Any) -> Any:
    tensor = v2_pb2.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=shape, contents=v2_pb2.InferTensorContents(**contents)
    )
    return v2_pb2.ModelInferRequest(model_name="m", inputs=[tensor])


@pytest.mark.parametrize(("datatype", "field"), TYPED.items())
def test_typed_contents_decode_like_rest_json(datatype: str, field: str) -> None:
    values: list[Any] = [True, False, True, True] if datatype == "BOOL" else [1, 0, 7, 3]
    if datatype == "BYTES":
        values = [b"a", b"", b"\xff", b"zz"]
    spec = TensorSpec("t", dtype_of(datatype).name if datatype != "BYTES" else "string", (-1, 2))
    request = decode_request(typed_request("t", datatype, [2, 2], **{field: values}), [spec], LIMITS)
    json_values = [v.decode("latin-1") for v in values] if datatype == "BYTES" else values
    body = {"inputs": [{"name": "t", "datatype": datatype, "shape": [2, 2], "data": json_values}]}
    rest = decode_infer(_json(body), None, [spec], LIMITS).inputs["t"]
    if datatype == "BYTES":
        assert request.inputs["t"].tolist() == [[b"a", b""], [b"\xff", b"zz"]]
    else:
        same(request.inputs["t"], rest)


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()


def test_inputs_are_converted_to_the_signature_dtypes() -> None:
    request = decode_request(
        client_request({"x": np.ones((2, 2)), "k": np.arange(2, dtype=np.int32)}), SPECS, LIMITS
    )
    same(request.inputs["x"], np.ones((2, 2), np.float32))
    same(request.inputs["k"], np.arange(2, dtype=np.int64))


def test_request_id_parameters_and_requested_outputs_carry_over() -> None:
    outputs = [triton.InferRequestedOutput("probabilities", class_count=3), triton.InferRequestedOutput("y")]
    grpc_request = client_request(
        {"x": np.ones((1, 2), np.float32), "k": np.ones(1, np.int64)},
        outputs,
        request_id="r1",
        priority=2,
        timeout=100,
        parameters={"top_k": 2, "threshold": 0.25, "note": "hi", "flag": True},
    )
    request = decode_request(grpc_request, SPECS, LIMITS)
    assert request.id == "r1"
    assert request.parameters == {
        "priority": 2,
        "timeout": 100,
        "top_k": 2,
        "threshold": 0.25,
        "note": "hi",
        "flag": True,
    }
    assert request.outputs == [RequestedOutput("probabilities", None, 3), RequestedOutput("y")]


def test_the_response_holds_the_requested_outputs_with_classification() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], np.float32)
    outputs = {"probabilities": scores, "class_id": np.array([1, 0], np.int64)}
    request = InferRequest("r9", {}, {}, [RequestedOutput("probabilities", None, 2)])
    response = encode_response("mnist", "3", outputs, request, ["zero", "one", "two"], "probabilities")
    assert (response.model_name, response.model_version, response.id) == ("mnist", "3", "r9")
    result = triton.InferResult(response)
    assert result.get_output("class_id") is None
    assert result.as_numpy("probabilities").tolist() == [
        [b"0.700000:1:one", b"0.200000:2:two"],
        [b"0.500000:0:zero", b"0.300000:2:two"],
    ]
    everything = encode_response("mnist", "3", outputs, InferRequest(None, {}, {}, None), None, None)
    same(triton.InferResult(everything).as_numpy("class_id"), outputs["class_id"])
    assert everything.id == ""


def test_an_unknown_requested_output_is_refused_as_in_rest() -> None:
    request = InferRequest(None, {}, {}, [RequestedOutput("nope")])
    with pytest.raises(
        InvalidInput, match=re.escape("Unknown output 'nope' requested; the model's outputs are 'y'.")
    ):
        encode_response("m", "1", {"y": np.ones(1)}, request, None, None)


def grpc_error(request: Any, allow_nonfinite: bool = False) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_request(request, SPECS, Limits(allow_nonfinite=allow_nonfinite))
    return caught.value.message


def rest_error(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_infer(_json(body), None, SPECS, LIMITS)
    return caught.value.message


def json_input(name: str, datatype: str, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


X, K = np.ones((1, 2), np.float32), np.ones(1, np.int64)
JX, JK = json_input("x", "FP32", [1, 2], [1, 1]), json_input("k", "INT64", [1], [1])


def test_input_errors_say_what_rest_says() -> None:
    assert grpc_error(client_request({"x": X})) == rest_error({"inputs": [JX]})
    assert grpc_error(client_request({"x": X, "k": K, "y": K})) == rest_error(
        {"inputs": [JX, JK, json_input("y", "INT64", [1], [1])]}
    )
    assert grpc_error(client_request({"x": np.ones((1, 3), np.float32), "k": K})) == rest_error(
        {"inputs": [json_input("x", "FP32", [1, 3], [1, 1, 1]), JK]}
    )
    assert grpc_error(client_request({"x": np.ones((2, 2), np.float32), "k": K})) == rest_error(
        {"inputs": [json_input("x", "FP32", [2, 2], [1, 1, 1, 1]), JK]}
    )
    assert grpc_error(client_request({"x": np.ones((0, 2), np.float32), "k": K})) == rest_error(
        {"inputs": [json_input("x", "FP32", [0, 2], []), JK]}
    )
    assert grpc_error(client_request({"x": X, "k": np.ones(1, np.float32)})) == rest_error(
        {"inputs": [JX, json_input("k", "FP32", [1], [1.0])]}
    )
    assert grpc_error(client_request({"x": np.array([[1, 2**25 + 1]], np.int64), "k": K})) == rest_error(
        {"inputs": [json_input("x", "INT64", [1, 2], [1, 2**25 + 1]), JK]}
    )


def test_nonfinite_values_follow_allow_nonfinite() -> None:
    nan = np.array([[1, np.nan]], np.float32)
    assert (
        grpc_error(client_request({"x": nan, "k": K}))
        == "Input 'x' must hold finite numbers; got NaN at [0, 1]."
    )
    request = decode_request(client_request({"x": nan, "k": K}), SPECS, Limits(allow_nonfinite=True))
    same(request.inputs["x"], nan)
    typed = typed_request("x", "FP32", [1, 2], fp32_contents=[np.inf, 0])
    typed.inputs.extend(client_request({"k": K}).inputs)
    typed.inputs[1].contents.int64_contents.append(1)
    assert grpc_error(typed) == "Input 'x' must hold finite numbers; got Infinity at [0, 0]."


def raw_pair(x_raw: bytes) -> Any:
    request = client_request({"x": X, "k": K})
    request.raw_input_contents[0] = x_raw
    return request


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (raw_pair(b"\0" * 7), "Input 'x' has 7 bytes of binary data; 2 FP32 elements need 8."),
        (
            typed_request("x", "FP16", [1, 2]),
            "Input 'x' is FP16, which has no typed contents field; send it in raw_input_contents.",
        ),
        (
            typed_request("x", "FP32", [1, 2], int_contents=[1, 2]),
            "Input 'x' is FP32, whose values go in fp32_contents; it has int_contents.",
        ),
        (
            typed_request("x", "FP32", [1, 2], fp32_contents=[1]),
            "Input 'x' has 1 values in fp32_contents; shape [1, 2] needs 2.",
        ),
        (
            typed_request("x", "FP8", [1, 2]),
            "Unknown datatype 'FP8'; expected one of " + ", ".join(DATATYPES) + ".",
        ),
        (typed_request("z", "FP32", [1, 2]), "Unknown input 'z'; the model's inputs are 'x', 'k'."),
        (
            v2_pb2.ModelInferRequest(),
            "An inference request needs 'inputs', a non-empty list of input tensors.",
        ),
    ],
)
def test_malformed_requests_are_refused(request_: Any, message: str) -> None:
    assert grpc_error(request_) == message


def test_raw_contents_must_cover_every_input_and_exclude_typed_contents() -> None:
    request = client_request({"x": X, "k": K})
    del request.raw_input_contents[1]
    assert grpc_error(request) == (
        "The request has 1 raw_input_contents for 2 inputs; give raw contents for every input or for none."
    )
    both = client_request({"x": X, "k": K})
    both.inputs[0].contents.fp32_contents.extend([1, 1])
    assert grpc_error(both) == "Input 'x' has both 'contents' and raw_input_contents; give one."
    twice = client_request({"x": X, "k": K})
    twice.inputs.append(twice.inputs[0])
    twice.raw_input_contents.append(twice.raw_input_contents[0])
    assert grpc_error(twice) == "Input 'x' is given twice."


def test_narrow_integers_in_wide_fields_are_range_checked() -> None:
    spec = [TensorSpec("t", "uint8", (-1,))]
    with pytest.raises(
        InvalidInput, match=re.escape("Input 't' value 256 at [1] is out of range for uint8.")
    ):
        decode_request(typed_request("t", "UINT8", [2], uint_contents=[1, 256]), spec, LIMITS)


def test_parameters_are_checked() -> None:
    request = client_request({"x": X, "k": K}, parameters={"top_k": 0})
    assert grpc_error(request) == "Parameter 'top_k' must be a positive integer; got the number 0."
    request = client_request({"x": X, "k": K})
    request.parameters["empty"].Clear()
    assert (
        grpc_error(request)
        == "The request's 'parameters' 'empty' has no value; set one of its parameter_choice fields."
    )
    request = client_request({"x": X, "k": K}, [triton.InferRequestedOutput("y")])
    request.outputs[0].parameters["classification"].int64_param = -1
    assert (
        grpc_error(request)
        == "Output 'y' 'parameters' 'classification' must be a non-negative integer; got the number -1."
    )
    request = client_request({"x": X, "k": K})
    request.inputs[0].parameters["shared_memory_region"].string_param = "r"
    assert grpc_error(request).startswith("Input 'x' uses shared memory")


@pytest.mark.parametrize("datatype", ["FP32", "BYTES", "BOOL"])
def test_zero_size_tensors_decode_and_encode(datatype: str) -> None:
    array = np.zeros((2, 0), dtype_of(datatype))
    request = decode_request(client_request({"t": array}), [any_spec("t", array)], LIMITS)
    same(request.inputs["t"], array)
    response = encode_response("m", "1", request.inputs, request, None, None)
    assert response.raw_output_contents[0] == b""
    same(triton.InferResult(response).as_numpy("t"), array)
