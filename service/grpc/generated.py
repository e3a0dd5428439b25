"""The generated gRPC code this service speaks, imported from the published packages that ship it.

Nothing generated lives in this repository: TF Serving's API comes from ``tensorflow-serving-api``
(installed with ``--no-deps`` beside tensorflow-cpu; see the Makefile), its tensor messages from
TensorFlow's own ``tensorflow.core.framework``, the V2 ``inference`` package from tritonclient, the
health and reflection services from grpcio-health-checking and grpcio-reflection.

Importing any ``tensorflow.*`` module runs TensorFlow's ``__init__``, which would also import Keras
(~100 MB per worker); importing :mod:`service.models.runtime` first brings TensorFlow in without it. So
this module belongs in the workers only, like the runtime: never import it in the gunicorn master.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from service.models import runtime  # noqa: F401  # TensorFlow without Keras, before the protos import it

try:
    from tensorflow_serving.apis import (
        classification_pb2,
        get_model_metadata_pb2,
        get_model_status_pb2,
        inference_pb2,
        input_pb2,
        model_pb2,
        model_service_pb2,  # the service descriptors: reflection (grpcurl) serves them from these;
        model_service_pb2_grpc,  # the *_grpc modules do not import them
        predict_pb2,
        prediction_service_pb2,
        prediction_service_pb2_grpc,
        regression_pb2,
    )
except ImportError as exc:
    raise ImportError(
        "TF Serving's gRPC API is not installed. `make serve` installs it; by hand: "
        f"pip install --no-deps 'tensorflow-serving-api=={'.'.join(version('tensorflow-cpu').split('.')[:2])}.*' "
        "(--no-deps: its requirement on `tensorflow` would install a second TensorFlow beside tensorflow-cpu)."
    ) from exc
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tritonclient.grpc import service_pb2 as v2_pb2
from tritonclient.grpc import service_pb2_grpc as v2_pb2_grpc

__all__ = [
    "classification_pb2",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "inference_pb2",
    "input_pb2",
    "meta_graph_pb2",
    "model_pb2",
    "model_service_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_service_pb2",
    "prediction_service_pb2_grpc",
    "regression_pb2",
    "tensor_pb2",
    "tensor_shape_pb2",
    "types_pb2",
    "v2_pb2",
    "v2_pb2_grpc",
    "versions",
]


def versions() -> dict[str, str]:
    """The installed versions behind the generated code, for start-up logs and bug reports."""
    found = {}
    for name in ("tensorflow-serving-api", "tensorflow-cpu", "tritonclient", "protobuf", "grpcio"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found
