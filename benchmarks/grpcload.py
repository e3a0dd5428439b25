"""The gRPC scenarios' bodies and load: h2load posting one framed gRPC message, and a checked answer.

h2load (Debian's nghttp2-client) speaks HTTP/2 in C like wrk speaks HTTP/1.1, so the load generator
costs the shared cores about what wrk does. A gRPC call is an HTTP/2 POST to ``/package.Service/Method``
with ``content-type: application/grpc`` and ``te: trailers``, whose body is the message behind a
5-byte prefix (a compression flag and the big-endian length): built once, sent on every call. h2load
counts HTTP statuses only; a failed call is still HTTP 200 with its gRPC status in the trailers, so
the run's errors come from the service's own metrics as for HTTP (gRPC calls are counted there under
the HTTP status of their outcome). Latency percentiles come from h2load's per-request log.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.loadgen import Body, WrkResult

INSTALL_HINT = "h2load is not installed; as root: apt-get update && apt-get install -y nghttp2-client"
GRPC_TYPE = "application/grpc"
PREDICT = "/tensorflow.serving.PredictionService/Predict"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def find_h2load() -> str:
    found = shutil.which("h2load")
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found


def framed(message: bytes) -> bytes:
    """A gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, the bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def tfs_predict_body(images: np.ndarray, model: str) -> Body:
    """TF Serving's PredictRequest with the images as one DT_FLOAT tensor_content, as its clients send."""
    from service.grpc.generated import predict_pb2, types_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    tensor = request.inputs["images"]
    tensor.dtype = types_pb2.DT_FLOAT
    for size in images.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = images.astype("<f4").tobytes()
    return Body(PREDICT, framed(request.SerializeToString()), GRPC_TYPE)


def v2_infer_body(images: np.ndarray, model: str) -> Body:
    """A V2 ModelInferRequest built by tritonclient.grpc itself: raw FP32 in, probabilities asked back."""
    import tritonclient.grpc as triton
    from tritonclient.grpc._utils import _get_inference_request

    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    wanted = [triton.InferRequestedOutput("probabilities")]
    request = _get_inference_request(
        model_name=model, inputs=[tensor], model_version="", request_id="", outputs=wanted,
        sequence_id=0, sequence_start=False, sequence_end=False, priority=0, timeout=None, parameters=None,
    )  # fmt: skip
    return Body(MODEL_INFER, framed(request.SerializeToString()), GRPC_TYPE)


def predicted_classes(target: str, body: Body, instances: int, token: str | None = None) -> np.ndarray:
    """Send the body once with a real gRPC client; the class of each instance in the answer."""
    import grpc

    message = body.data[5:]
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        call = channel.unary_unary(body.path)  # bytes in, bytes out: the very message h2load sends
        metadata = [("authorization", f"Bearer {token}")] if token else None
        answer = call(message, timeout=60, metadata=metadata)
    if body.path == PREDICT:
        from service.grpc.generated import predict_pb2

        outputs = predict_pb2.PredictResponse.FromString(answer).outputs
        return np.frombuffer(outputs["class_id"].tensor_content, "<i8")
    import tritonclient.grpc as triton
    from tritonclient.grpc import service_pb2

    result = triton.InferResult(service_pb2.ModelInferResponse.FromString(answer))
    probabilities = result.as_numpy("probabilities")
    if probabilities is None or probabilities.shape != (instances, 10):
        raise ValueError(f"Unexpected V2 gRPC answer: {result.get_response()}")
    return probabilities.argmax(axis=1)


def run_h2load(
    target: str, body: Body, connections: int, seconds: float, threads: int, token: str | None = None
) -> WrkResult:
    """h2load for ``seconds`` with ``connections`` clients, one call in flight each (like wrk)."""
    with tempfile.TemporaryDirectory(prefix="bench-grpc-") as folder:
        data, log = Path(folder) / "body.bin", Path(folder) / "calls.tsv"
        data.write_bytes(body.data)
        command = [
            find_h2load(),
            f"-c{connections}",
            "-m1",
            f"-t{min(threads, connections)}",
            f"-D{seconds:g}",
        ]
        command += ["-d", str(data), "-H", f"content-type: {GRPC_TYPE}", "-H", "te: trailers"]
        if token:  # as the service's own clients send it: the authorization metadata
            command += ["-H", f"authorization: Bearer {token}"]
        command += [f"--log-file={log}", f"http://{target}{body.path}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
        if done.returncode != 0:
            raise RuntimeError(
                f"h2load failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
            )
        return parse(done.stdout, log.read_text())


def parse(report: str, log: str) -> WrkResult:
    """Totals from h2load's summary, percentiles from its log (start us, status, duration us per call)."""
    totals = re.search(r"finished in ([\d.]+)(m?s), [\d.]+ req/s", report)
    counts = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
        report,
    )
    if totals is None or counts is None:
        raise RuntimeError(f"h2load printed no summary:\n{report}")
    seconds = float(totals[1]) / (1000.0 if totals[2] == "ms" else 1.0)
    done, succeeded, failed, errored, timeouts = (int(counts[i]) for i in range(1, 6))
    durations = np.array([int(line.split("\t")[2]) for line in log.splitlines() if line.count("\t") >= 2])
    p50, p99 = (np.percentile(durations, [50, 99]) / 1000.0) if durations.size else (float("nan"),) * 2
    return WrkResult(
        requests=succeeded,
        seconds=seconds,
        p50_ms=float(p50),
        p99_ms=float(p99),
        errors=max(done - succeeded, failed + errored) + timeouts,  # not 2xx, or no answer at all
        report=report,
    )
