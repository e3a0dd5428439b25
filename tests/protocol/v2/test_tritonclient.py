"""tritonclient.http as the real client: its request bodies decode, our responses parse."""

from __future__ import annotations

import numpy as np
import pytest

tritonclient_http = pytest.importorskip("tritonclient.http")

from service.models.card import TensorSpec  # noqa: E402
from service.protocol.tensors import Limits  # noqa: E402
from service.protocol.v2.request import decode_infer  # noqa: E402
from service.protocol.v2.response import encode_infer  # noqa: E402

Client = tritonclient_http.InferenceServerClient
SPECS = [
    TensorSpec("images", "float32", (-1, 28, 28)),
    TensorSpec("ids", "int64", (-1,)),
    TensorSpec("words", "string", (-1,)),
]
RNG = np.random.default_rng(7)
IMAGES = RNG.random((3, 28, 28), dtype=np.float32)
IDS = np.array([1, -2, 2**40], np.int64)
WORDS = np.array([b"cat", b"", "naïve".encode()], dtype=object)


def _inputs(binary: bool) -> list[object]:
    built = []
    for name, array, datatype in (
        ("images", IMAGES, "FP32"),
        ("ids", IDS, "INT64"),
        ("words", WORDS, "BYTES"),
    ):
        item = tritonclient_http.InferInput(name, list(array.shape), datatype)
        item.set_data_from_numpy(array, binary_data=binary)
        built.append(item)
    return built


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_requests_decode_exactly(binary: bool) -> None:
    outputs = [tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)]
    body, header_length = Client.generate_request_body(
        _inputs(binary), outputs=outputs, request_id="r7", parameters={"top_k": 2}
    )
    request = decode_infer(body, header_length, SPECS, Limits())
    assert request.id == "r7" and request.parameters == {"top_k": 2}
    assert np.array_equal(request.inputs["images"], IMAGES) and request.inputs["images"].dtype == np.float32
    assert request.inputs["ids"].tolist() == IDS.tolist() and request.inputs["ids"].dtype == np.int64
    assert request.inputs["words"].tolist() == WORDS.tolist()
    (wanted,) = request.outputs or []
    assert (wanted.name, wanted.binary, wanted.class_count) == ("probabilities", binary, 2)


def test_without_requested_outputs_tritonclient_asks_for_binary_outputs() -> None:
    body, header_length = Client.generate_request_body(_inputs(True))
    request = decode_infer(body, header_length, SPECS, Limits())
    assert request.outputs is None and request.binary_output is True


@pytest.mark.parametrize("binary", [True, False])
def test_responses_parse_in_tritonclient_and_round_trip(binary: bool) -> None:
    names = ("images", "ids", "words")
    requested = [tritonclient_http.InferRequestedOutput(n, binary_data=binary) for n in names]
    body, header_length = Client.generate_request_body(_inputs(binary), outputs=requested, request_id="r8")
    request = decode_infer(body, header_length, SPECS, Limits())
    response, headers = encode_infer("echo", "1", request.inputs, request, None, None)
    length = headers.get("Inference-Header-Content-Length")
    result = Client.parse_response_body(response, header_length=int(length) if length else None)
    assert result.get_response()["id"] == "r8" and result.get_response()["model_version"] == "1"
    assert np.array_equal(result.as_numpy("images"), IMAGES) and result.as_numpy("images").dtype == np.float32
    assert result.as_numpy("ids").tolist() == IDS.tolist() and result.as_numpy("ids").dtype == np.int64
    words = result.as_numpy("words").tolist()
    assert words == (WORDS.tolist() if binary else [w.decode() for w in WORDS.tolist()])


@pytest.mark.parametrize("binary", [True, False])
def test_classification_results_parse_in_tritonclient(binary: bool) -> None:
    requested = [tritonclient_http.InferRequestedOutput("probabilities", binary_data=binary, class_count=2)]
    body, header_length = Client.generate_request_body(_inputs(binary), outputs=requested)
    request = decode_infer(body, header_length, SPECS, Limits())
    probabilities = np.array([[0.1, 0.6, 0.3], [0.7, 0.2, 0.1], [0.2, 0.2, 0.6]], np.float32)
    response, headers = encode_infer(
        "m", "1", {"probabilities": probabilities}, request, ["a", "b", "c"], "probabilities"
    )
    length = headers.get("Inference-Header-Content-Length")
    classes = Client.parse_response_body(response, header_length=int(length) if length else None).as_numpy(
        "probabilities"
    )
    assert classes.shape == (3, 2)
    expected = [
        ["0.600000:1:b", "0.300000:2:c"],
        ["0.700000:0:a", "0.200000:1:b"],
        ["0.600000:2:c", "0.200000:0:a"],
    ]
    assert [[v.decode() if isinstance(v, bytes) else v for v in row] for row in classes.tolist()] == expected
