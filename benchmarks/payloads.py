"""Request bodies built from real MNIST digits: TF Serving row JSON and V2 with binary tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from service.datafiles import find_idx_sets, read_idx_set

BINARY_HEADER = "Inference-Header-Content-Length"


def load_digits(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All images of the first IDX set in ``data_dir`` as float32 in [0, 1], and their labels."""
    sets = find_idx_sets(data_dir)
    if not sets:
        raise FileNotFoundError(f"No MNIST IDX files (images + labels) in {data_dir}.")
    loaded = read_idx_set(*sets[sorted(sets)[0]])
    return (loaded.images / np.float32(255.0)).astype(np.float32), loaded.labels


def tfs_rows(images: np.ndarray) -> bytes:
    """``{"instances": [...]}``: one 28x28 nested list per image, as a TF Serving client sends it."""
    return orjson.dumps({"instances": images}, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_binary(images: np.ndarray) -> tuple[bytes, int]:
    """A V2 infer body with the images as binary FP32 and binary probabilities asked back.

    Built by tritonclient itself, so it is byte for byte what a real Triton client sends.
    """
    from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput

    tensor = InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=True)
    wanted = InferRequestedOutput("probabilities", binary_data=True)
    body, header_length = InferenceServerClient.generate_request_body([tensor], outputs=[wanted])
    return body, int(header_length)
