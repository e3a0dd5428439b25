"""gRPC status and metadata answers are the messages the REST documents print, field for field."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from service.grpc.generated import get_model_metadata_pb2, get_model_status_pb2, types_pb2
from service.grpc.metadata_codec import (
    tfs_model_metadata,
    tfs_model_status,
    v2_model_metadata,
    v2_repository_index,
    v2_server_metadata,
)
from service.models.card import TensorSpec
from service.models.servable import VersionStatus
from service.protocol.tfserving import documents
from service.protocol.v2 import response as v2

INPUTS = [TensorSpec("images", "float32", (-1, 28, 28)), TensorSpec("mask", "bool", (-1,))]
OUTPUTS = [TensorSpec("probabilities", "float32", (-1, 10)), TensorSpec("class_id", "int64", (-1,))]


def as_json(message: Any) -> dict[str, Any]:
    """Protobuf's JSON as TF Serving's REST layer prints it: field names kept, defaults printed."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def test_model_status_is_the_rest_document() -> None:
    versions = [
        VersionStatus(3, "LOADING"),
        VersionStatus(2, "END", "saved_model.pb is corrupt", "DATA_LOSS"),
        VersionStatus(1, "AVAILABLE"),
    ]
    rest = documents.model_status(versions)
    response = tfs_model_status(rest)
    assert as_json(response) == rest
    failed = response.model_version_status[1]
    assert failed.version == 2 and failed.state == get_model_status_pb2.ModelVersionStatus.END
    assert failed.status.error_message == "saved_model.pb is corrupt"
    assert failed.status.error_code == 15  # tensorflow.error.Code DATA_LOSS


def test_model_metadata_is_the_rest_document_with_the_signatures_packed() -> None:
    rest = documents.model_metadata("mnist", 3, "serving_default", INPUTS, OUTPUTS)
    response = tfs_model_metadata(rest)
    assert as_json(response.model_spec) == rest["model_spec"]
    assert response.model_spec.version.value == 3
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert as_json(signatures) == rest["metadata"]["signature_def"]
    signature = signatures.signature_def["serving_default"]
    assert signature.inputs["images"].dtype == types_pb2.DT_FLOAT
    assert [d.size for d in signature.inputs["images"].tensor_shape.dim] == [-1, 28, 28]
    assert signature.outputs["class_id"].name == "StatefulPartitionedCall:0"  # sorted, as TF flattens


def test_v2_documents_become_their_messages() -> None:
    rest = v2.model_metadata("mnist", ["1", "2"], v2.PLATFORM, INPUTS, OUTPUTS)
    model = v2_model_metadata(rest)
    assert model.name == "mnist" and list(model.versions) == ["1", "2"]
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
        ("images", "FP32", [-1, 28, 28]),
        ("mask", "BOOL", [-1]),
    ]
    server = v2_server_metadata(v2.server_metadata("model-serving", "0.1.0", ["classification"]))
    assert (server.name, server.version, list(server.extensions)) == (
        "model-serving",
        "0.1.0",
        ["classification"],
    )
    index = v2_repository_index([{"name": "mnist", "version": "1", "state": "READY", "reason": ""}])
    assert [(m.name, m.version, m.state) for m in index.models] == [("mnist", "1", "READY")]


def test_a_document_with_a_field_the_message_lacks_is_refused() -> None:
    """Parsing is strict, so a REST document drifting from the message fails here, not silently."""
    with pytest.raises(json_format.ParseError):
        v2_model_metadata({**v2.model_metadata("m", ["1"], v2.PLATFORM, INPUTS, OUTPUTS), "extra": 1})
