"""What the gRPC codecs cost per 1,024-image request: parse, decode to checked arrays, encode the answer.

    python -m benchmarks.grpc_codecs [--images 1024] [--repeat 200]

One process, no server: the requests are built as tritonclient.grpc and a TF Serving client build
them, serialized, then parsed and decoded in a timing loop (median of 5 loops).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import tritonclient.grpc as triton
from tritonclient.grpc._utils import _get_inference_request

from service.grpc.generated import predict_pb2, v2_pb2
from service.grpc.tfserving_codec import decode_inputs, fill_tensor
from service.grpc.v2_codec import decode_request, encode_response
from service.models.card import TensorSpec
from service.protocol.tensors import Limits

SPECS = [TensorSpec("images", "float32", (-1, 28, 28))]


def timed(work: Callable[[], object], repeat: int) -> float:
    """Milliseconds per call, median of 5 loops."""
    work()
    loops = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            work()
        loops.append((time.perf_counter() - started) / repeat * 1e3)
    return statistics.median(loops)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    images = rng.random((args.images, 28, 28), dtype=np.float32)
    probabilities = rng.random((args.images, 10), dtype=np.float32)

    tensor = triton.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    v2_wire = _get_inference_request(
        "mnist", [tensor], "", "", None, 0, False, False, 0, None, None
    ).SerializeToString()
    predict = predict_pb2.PredictRequest()
    predict.model_spec.name = "mnist"
    fill_tensor(predict.inputs["images"], images)
    tfs_wire = predict.SerializeToString()
    decoded = decode_request(v2_pb2.ModelInferRequest.FromString(v2_wire), SPECS, Limits())

    def tfs_answer() -> bytes:
        response = predict_pb2.PredictResponse()
        fill_tensor(response.outputs["probabilities"], probabilities)
        return bytes(response.SerializeToString())

    rows = {
        "V2: parse ModelInferRequest": lambda: v2_pb2.ModelInferRequest.FromString(v2_wire),
        "V2: parse + decode_request": lambda: decode_request(
            v2_pb2.ModelInferRequest.FromString(v2_wire), SPECS, Limits()
        ),
        "V2: encode_response + serialize": lambda: encode_response(
            "mnist", "1", {"probabilities": probabilities}, decoded, None, None
        ).SerializeToString(),
        "TF Serving: parse PredictRequest": lambda: predict_pb2.PredictRequest.FromString(tfs_wire),
        "TF Serving: parse + decode_inputs": lambda: decode_inputs(
            predict_pb2.PredictRequest.FromString(tfs_wire).inputs, SPECS, Limits()
        ),
        "TF Serving: encode + serialize": tfs_answer,
    }
    print(
        f"{args.images} images ({images.nbytes / 1e6:.1f} MB) per request; answer [{args.images}, 10] float32"
    )
    print("| step | ms per request |")
    print("| --- | ---: |")
    for name, work in rows.items():
        print(f"| {name} | {timed(work, args.repeat):.3f} |")


if __name__ == "__main__":
    main()
