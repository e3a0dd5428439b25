"""Time TF Serving predict decoding of MNIST bodies on the fast and the slow path.

Run: ``.venv/bin/python -m tests.protocol.bench_decode`` (uses ``$MNIST_DIR`` or ../shared/data/mnist
when present, random pixels otherwise). Not collected by pytest.
"""

from __future__ import annotations

import gzip
import os
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson

from service.models.card import TensorSpec
from service.protocol.jsonio import SlowReader, decode_fast
from service.protocol.tensors import Limits
from service.protocol.tfserving.predict import read_predict

SPECS = [TensorSpec("images", "float32", (-1, 28, 28))]
LIMITS = Limits()
ROOT = Path(__file__).resolve().parents[2]


def mnist_pixels(count: int) -> np.ndarray:
    """``count`` MNIST images as uint8 [count, 28, 28] (random when the data set is absent)."""
    folder = Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist"))
    files = sorted(folder.glob("*images-idx3-ubyte.gz")) if folder.is_dir() else []
    if not files:
        return np.random.default_rng(0).integers(0, 256, (count, 28, 28), dtype=np.uint8)
    images = np.frombuffer(gzip.decompress(files[0].read_bytes())[16:], np.uint8).reshape(-1, 28, 28)
    return np.resize(images, (count, 28, 28))


def bodies(count: int) -> dict[str, bytes]:
    pixels = mnist_pixels(count)
    return {
        "uint8 ints": orjson.dumps({"instances": pixels.tolist()}),
        "float32/255": orjson.dumps({"instances": (pixels.astype(np.float32) / 255).tolist()}),
    }


def best_ms(call: Callable[[], object], budget: float = 0.5) -> float:
    once = timeit.timeit(call, number=1)
    number = max(1, int(budget / 5 / max(once, 1e-6)))
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e3


def _fast(body: bytes) -> Callable[[], object]:
    return lambda: decode_fast(body, lambda r: read_predict(r, SPECS, LIMITS))


def _slow(body: bytes) -> Callable[[], object]:
    return lambda: read_predict(SlowReader(body), SPECS, LIMITS)


def main() -> None:
    print(f"{'instances':>9} {'values':>12} {'body KB':>8} {'fast ms':>8} {'slow ms':>8} {'speed-up':>8}")
    for count in (1, 64, 1024):
        for kind, body in bodies(count).items():
            fast, slow = best_ms(_fast(body)), best_ms(_slow(body))
            print(
                f"{count:>9} {kind:>12} {len(body) / 1024:>8.0f} {fast:>8.2f} {slow:>8.2f} {slow / fast:>7.1f}x"
            )


if __name__ == "__main__":
    main()
