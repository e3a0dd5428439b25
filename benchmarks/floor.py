"""Floor (b): the bare signature call in one process and one thread, numpy in and numpy out.

No HTTP, no JSON, no batching: what any server around this model can at best approach per core.
Run as a subprocess by ``benchmarks.run`` (so TensorFlow never loads in the orchestrator) and
prints one JSON line per batch size.

    .venv/bin/python -m benchmarks.floor --model models/mnist/1 --data ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import orjson

from benchmarks.payloads import load_digits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(call, batch: np.ndarray, seconds: float) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for _ in range(20):
        call(batch)
    latencies, until = [], time.perf_counter() + seconds
    while (started := time.perf_counter()) < until:
        call(batch)
        latencies.append(time.perf_counter() - started)
    per_call = float(np.median(latencies))
    return {
        "instances": len(batch),
        "calls": len(latencies),
        "p50_ms": per_call * 1e3,
        "p99_ms": float(np.percentile(latencies, 99)) * 1e3,
        "calls_per_s": len(latencies) / sum(latencies),
        "instances_per_s": len(batch) * len(latencies) / sum(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__)
    parser.add_argument("--model", type=Path, required=True, help="a SavedModel version folder")
    parser.add_argument("--data", type=Path, required=True, help="MNIST IDX folder")
    parser.add_argument("--sizes", default="1,64,1024")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    signature = tf.saved_model.load(str(args.model)).signatures["serving_default"]

    def call(batch: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in signature(images=tf.constant(batch)).items()}

    images, _ = load_digits(args.data)
    for size in (int(s) for s in args.sizes.split(",")):
        batch = images[np.arange(size) % len(images)]
        print(orjson.dumps(measure(call, batch, args.seconds)).decode(), flush=True)


if __name__ == "__main__":
    main()
