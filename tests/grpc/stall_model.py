"""A tiny regression SavedModel that takes as long as a request asks: to hold the batcher busy on cue.

``x`` is [-1, 2]: column 0 the value (``y = 2 * x0``), column 1 the work, the number of 512x512
matrix products the call runs before answering (the largest in the batch counts). Zero work is
instant, so loading, warm-up and the row-padding calibration (all zeros or values below 1) stay
fast; a request with work 200 keeps the version's batcher busy for a good fraction of a second,
long enough for other requests to queue behind it.
"""

from __future__ import annotations

import tensorflow as tf

from service.models.repository import Repository

CARD = {
    "signature_name": "serving_default",
    "task": "regression",
    "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 2]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": [-1]}],
    "class_labels": None,
    "description": "tiny regressor that stalls on request",
}


class _Stall(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = tf.Variable(tf.eye(512) * 0.5)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        rounds = tf.cast(tf.reduce_max(tf.concat([x[:, 1], [0.0]], axis=0)), tf.int32)

        def step(i: tf.Tensor, m: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return i + 1, tf.matmul(m, self.block)

        _, m = tf.while_loop(lambda i, m: i < rounds, step, (tf.constant(0), self.block))
        settle = tf.reduce_sum(m) * 0.0  # ties the loop to the answer, adding nothing
        return {"y": 2.0 * x[:, 0] + settle}


def export_stall(repo: Repository, name: str = "stall") -> int:
    module = _Stall()
    with repo.stage(name) as staged:
        tf.saved_model.save(module, str(staged.path), signatures={"serving_default": module.serve})
        return staged.commit(CARD)
