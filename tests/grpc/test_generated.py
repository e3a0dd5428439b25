"""The generated gRPC code imports from the installed packages, and says how to install what is missing."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.server import ROOT


def test_every_generated_service_is_importable_with_the_pinned_runtime() -> None:
    from service.grpc import generated

    assert generated.prediction_service_pb2_grpc.PredictionServiceStub
    assert generated.model_service_pb2_grpc.ModelServiceStub
    assert generated.v2_pb2_grpc.GRPCInferenceServiceStub
    request = generated.predict_pb2.PredictRequest()
    request.inputs["x"].CopyFrom(generated.tensor_pb2.TensorProto(dtype=generated.types_pb2.DT_FLOAT))
    assert generated.predict_pb2.PredictRequest.FromString(request.SerializeToString()) == request
    versions = generated.versions()
    assert "missing" not in versions.values(), versions


def test_a_missing_tf_serving_api_names_the_install_command() -> None:
    # None in sys.modules makes the import fail as if the package were absent.
    code = "import sys; sys.modules['tensorflow_serving'] = None; import service.grpc.generated"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "TF Serving's gRPC API is not installed" in run.stderr
    assert "pip install --no-deps 'tensorflow-serving-api==2." in run.stderr


def test_importing_it_keeps_keras_out_of_the_worker() -> None:
    code = "import sys, service.grpc.generated; print('keras' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr[-2000:]


def test_reflection_serves_the_generated_services_whole_descriptors() -> None:
    """What grpcurl needs: each service's file and every file it imports, from the packages' descriptors."""
    from service.grpc import generated  # noqa: F401  # registers the descriptors

    services = {
        "tensorflow.serving.PredictionService": {"Predict", "Classify", "Regress", "GetModelMetadata"},
        "tensorflow.serving.ModelService": {"GetModelStatus", "HandleReloadConfigRequest"},
        "inference.GRPCInferenceService": {"ModelInfer", "ServerLive", "ModelReady", "RepositoryModelLoad"},
    }
    server = grpc.server(ThreadPoolExecutor(2))
    reflection.enable_server_reflection([*services, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            pool = DescriptorPool(database)  # resolves imports (tensor.proto...) through reflection
            for name, methods in services.items():
                assert methods <= {m.name for m in pool.FindServiceByName(name).methods}
    finally:
        server.stop(None)
