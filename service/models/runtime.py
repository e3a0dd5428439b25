"""The only module that imports TensorFlow: load a SavedModel and call its serving signature.

Imported lazily by the app factory, which runs in each gunicorn worker after fork, so the master
process never initialises TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from service.config import quiet_tensorflow
from service.errors import ModelLoadError
from service.models.card import TensorSpec


def _import_tensorflow() -> ModuleType:
    """TensorFlow without Keras, when this process has not imported TensorFlow yet.

    TensorFlow's ``__init__`` imports Keras eagerly, inside a ``try/except ImportError`` (to
    register Keras optimizers for SavedModels that hold them). Serving never touches Keras: it
    loads SavedModels with ``tf.saved_model.load`` and calls their signatures. Keras 3 in turn
    imports scikit-learn, SciPy and matplotlib through its wrappers. Hiding it for the duration of
    the import saves each worker ~100 MB of RSS and ~1 s of start-up (measured on all six models).
    """
    if "tensorflow" in sys.modules:  # the trainer, or tests, already have it with Keras
        import tensorflow

        return tensorflow
    hidden = "keras" not in sys.modules
    if hidden:
        sys.modules["keras"] = None  # type: ignore[assignment]  # makes ``import keras`` raise ImportError
    try:
        import tensorflow
    finally:
        if hidden:
            del sys.modules["keras"]  # a later, deliberate ``import keras`` works as usual
    return tensorflow


if TYPE_CHECKING:
    import tensorflow as tf
else:
    quiet_tensorflow()
    tf = _import_tensorflow()

_threads_configured = False


def configure_threads(intra_op: int, inter_op: int) -> None:
    """Size TensorFlow's thread pools; effective only before the first TensorFlow operation."""
    global _threads_configured
    if _threads_configured:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        pass  # the runtime is already initialised (tests building several apps): keep its pools
    _threads_configured = True


def _spec_of(name: str, tensor_spec: tf.TensorSpec) -> TensorSpec:
    if tensor_spec.shape.rank is None:
        raise ModelLoadError(f"Signature tensor {name!r} has an unknown rank; this server needs one.")
    shape = tuple(-1 if d is None else int(d) for d in tensor_spec.shape.as_list())
    return TensorSpec(name, tensor_spec.dtype.name, shape)


class LoadedModel:
    """One SavedModel's serving signature, called with and returning numpy arrays."""

    def __init__(self, path: Path, signature_name: str) -> None:
        try:
            self._saved = tf.saved_model.load(str(path))
        except Exception as exc:  # TensorFlow raises many unrelated types for corrupt files
            raise ModelLoadError(f"Cannot load the SavedModel at {path}: {_first_line(exc)}") from exc
        signatures = self._saved.signatures
        if signature_name not in signatures:
            raise ModelLoadError(
                f"SavedModel at {path} has no signature {signature_name!r} (has: {', '.join(signatures) or 'none'})."
            )
        self.signature_name = signature_name
        self._fn = signatures[signature_name]
        # Calls are padded to a multiple of this many rows. TensorFlow's CPU kernels (oneDNN
        # matmuls, Eigen's vectorised element-wise ops) round a row's result differently in the
        # last bit depending on where it falls relative to SIMD packets, i.e. on the batch size;
        # service.models.loading measures the multiple that makes every row's answer independent of the
        # batch it ran in, so micro-batched answers equal unbatched ones exactly.
        self.row_multiple = 1
        self.bytes_per_row = 0  # TensorFlow's working memory per row, measured by the loader
        _, kwargs = self._fn.structured_input_signature
        self.inputs = tuple(_spec_of(name, spec) for name, spec in sorted(kwargs.items()))
        self.outputs = tuple(
            _spec_of(name, spec) for name, spec in sorted(self._fn.structured_outputs.items())
        )

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(inputs.values())))
        padded = -(-rows // self.row_multiple) * self.row_multiple
        if padded != rows:
            inputs = {name: _pad(value, padded) for name, value in inputs.items()}
        results = self._fn(**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: tensor.numpy()[:rows] for name, tensor in results.items()}


def _pad(value: np.ndarray, rows: int) -> np.ndarray:
    """Repeat the last row up to ``rows``: the extra rows are computed and thrown away."""
    return np.concatenate([value, np.repeat(value[-1:], rows - len(value), axis=0)])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_against_card(
    model: LoadedModel, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> None:
    """Refuse a version whose signature disagrees with what its model card promises."""
    for kind, actual, promised in (("inputs", model.inputs, inputs), ("outputs", model.outputs, outputs)):
        if sorted(actual, key=lambda s: s.name) != sorted(promised, key=lambda s: s.name):
            raise ModelLoadError(
                f"The signature's {kind} {[s.to_dict() for s in actual]} do not match the model card's "
                f"{[s.to_dict() for s in promised]}."
            )


def working_bytes_per_row(model: LoadedModel, inputs: Mapping[str, np.ndarray]) -> int:
    """Bytes TensorFlow's CPU allocator takes per row during one call on ``inputs`` (0 if unknown).

    With oneDNN, large tensors come from a BFC allocator that keeps what it ever held: a worker's
    memory stays at the largest call's working set, which grows with the rows per call. Small
    tensors go to malloc and are not counted (0 for small models).
    """
    rows = len(next(iter(inputs.values())))
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
        before = tf.config.experimental.get_memory_info("CPU:0")["current"]
        model(inputs)
        peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    except (ValueError, RuntimeError):  # a build without allocator statistics
        return 0
    return max(0, int(peak) - int(before)) // max(rows, 1)


def tensor_from_proto(raw: bytes) -> np.ndarray:
    """A serialised ``tensorflow.TensorProto`` (from a warm-up record) as an array."""
    from tensorflow.core.framework import tensor_pb2

    try:
        array = tf.make_ndarray(tensor_pb2.TensorProto.FromString(raw))
    except Exception as exc:  # protobuf's DecodeError, TypeError for unknown dtypes...
        raise ModelLoadError(f"A warm-up record holds an unreadable tensor: {_first_line(exc)}") from exc
    return np.asarray(array)


def verify_files(path: Path) -> None:
    """Read a version's files as TensorFlow would load them: the SavedModel proto and every
    variable; raise ModelLoadError naming what is damaged (a truncated saved_model.pb, say)."""
    from tensorflow.core.protobuf import saved_model_pb2

    try:
        saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        prefix = path / "variables" / "variables"
        if prefix.with_suffix(".index").exists():
            reader = tf.train.load_checkpoint(str(prefix))
            for name in reader.get_variable_to_shape_map():
                reader.get_tensor(name)
    except Exception as exc:  # OSError, DecodeError, TensorFlow's DataLossError...
        raise ModelLoadError(f"The files of {path} are damaged: {_first_line(exc)}") from exc


def load(path: Path, signature_name: str = "serving_default") -> LoadedModel:
    return LoadedModel(path, signature_name)
