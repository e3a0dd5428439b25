"""Baseline (a): a careful, unbatched Flask app serving one SavedModel, for ``benchmarks.run``.

What a competent engineer writes without a serving framework, so the comparison is fair:

- the SavedModel is loaded in each worker after fork (gunicorn calls ``create_app()`` there),
  with TensorFlow's intra-op pool sized like the service's (cores // workers), and warmed up;
- the serving signature is called directly (no Keras ``predict`` and its per-call overhead);
- the body is parsed by orjson and turned into one float32 array by ``np.asarray``, with no
  Python loop over pixels; the response is written by orjson straight from numpy arrays;
- no batching: each request is one signature call, on gunicorn's sync workers.

It answers TF Serving's row format only: ``POST /v1/models/<name>:predict`` with
``{"instances": [...]}`` gives ``{"predictions": [{output: value, ...}, ...]}``.

    BASELINE_MODEL=models/mnist/1 BASELINE_NAME=mnist BASELINE_INTRA_OP=1 \\
        gunicorn -w 2 -k sync 'benchmarks.baseline_app:create_app()'
"""

from __future__ import annotations

import os

import numpy as np
import orjson
from flask import Flask, Response, request


def _error(message: str, status: int) -> Response:
    return Response(orjson.dumps({"error": message}), status, mimetype="application/json")


def _rows(outputs: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    names = sorted(outputs)
    return [dict(zip(names, row, strict=True)) for row in zip(*(outputs[n] for n in names), strict=True)]


def create_app() -> Flask:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # in the worker, after fork

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("BASELINE_INTRA_OP", "1")))
    tf.config.threading.set_inter_op_parallelism_threads(1)
    name = os.environ.get("BASELINE_NAME", "mnist")
    signature = tf.saved_model.load(os.environ["BASELINE_MODEL"]).signatures["serving_default"]
    _, specs = signature.structured_input_signature
    (input_name, spec), *others = specs.items()
    if others:
        raise SystemExit("The baseline serves single-input models only.")
    shape = tuple(-1 if d is None else d for d in spec.shape.as_list())
    signature(**{input_name: tf.zeros([1 if d < 0 else d for d in shape], spec.dtype)})  # warm up
    dtype = spec.dtype.as_numpy_dtype

    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Response:  # the pid tells the benchmark which workers have finished loading
        return Response(orjson.dumps({"ready": True, "pid": os.getpid()}), 200, mimetype="application/json")

    @app.post(f"/v1/models/{name}:predict")
    def predict() -> Response:
        try:
            x = np.asarray(orjson.loads(request.get_data())["instances"], dtype=dtype)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            return _error(f"Cannot read 'instances': {exc}", 400)
        if x.ndim != len(shape) or any(d not in (-1, n) for d, n in zip(shape, x.shape, strict=True)):
            return _error(f"'instances' has shape {list(x.shape)}; the model takes {list(shape)}.", 400)
        outputs = {k: v.numpy() for k, v in signature(**{input_name: tf.constant(x)}).items()}
        body = orjson.dumps({"predictions": _rows(outputs)}, option=orjson.OPT_SERIALIZE_NUMPY)
        return Response(body, 200, mimetype="application/json")

    return app
