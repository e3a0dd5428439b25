"""Readers and writers for the labelled data files the product consumes: IDX (MNIST) and Keras' npz.

Pure numpy; shared by the training pipeline and the batch evaluation job so both agree on what a
valid file is. Corrupt input raises :class:`service.errors.DataFormatError` with a message naming
the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.errors import DataFormatError

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); data is big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in _IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"{path} is a truncated or corrupt gzip file ({exc}).") from exc
    return raw


def idx_header(data: bytes, source: str = "<bytes>") -> tuple[np.dtype, tuple[int, ...], int]:
    """The element type, dimensions and header length of an IDX document that starts with ``data``."""
    if len(data) < 4:
        raise DataFormatError(f"{source} is too short to be an IDX file ({len(data)} bytes).")
    zero, type_code, ndim = int.from_bytes(data[0:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataFormatError(
            f"{source} is not an IDX file: bad magic number 0x{int.from_bytes(data[:4], 'big'):08x}."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFormatError(f"{source} is truncated inside its IDX header.")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return _IDX_DTYPES[type_code], dims, header


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX document, checking the magic number and that the payload fits the header."""
    dtype, dims, header = idx_header(data, source)
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header
    if actual != expected:
        raise DataFormatError(
            f"{source} holds {actual} data bytes but its header {list(dims)} promises {expected}: "
            "the file is truncated or corrupt."
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else array


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode ``array`` as an IDX document (inverse of :func:`parse_idx`)."""
    dtype = np.dtype(array.dtype).newbyteorder("=")
    if dtype not in _IDX_CODES:
        raise DataFormatError(f"IDX cannot hold dtype {array.dtype}.")
    code = _IDX_CODES[dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    body = np.ascontiguousarray(array).astype(_IDX_DTYPES[code], copy=False).tobytes()
    return header + body


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as IDX; gzip when ``compress`` is true or the name ends in ``.gz``."""
    path = Path(path)
    data = encode_idx(array)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def heldout_split(count: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of ``range(count)`` cut into (training indices, held-out indices).

    How training holds test images out of a single MNIST set; the service rebuilds a card's
    held-out split with it (rollout gates, drift references).
    """
    order = np.random.default_rng(seed).permutation(count)
    return order[test_size:], order[:test_size]


@dataclass(frozen=True)
class LabelledSet:
    """Images (uint8, N x 28 x 28) and their labels (N,), with the files they came from."""

    images: np.ndarray
    labels: np.ndarray
    files: tuple[Path, ...]


def _check_mnist_pair(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFormatError(f"{where}: images have shape {images.shape}, expected N x 28 x 28.")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataFormatError(f"{where}: {labels.shape[0]} labels for {images.shape[0]} images.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataFormatError(f"{where}: labels outside 0..9.")


# "train-images-idx3-ubyte.gz", "t10k-labels.idx1-ubyte", "mnist-9k-images-idx3-ubyte.gz", ...
_IDX_NAME = re.compile(
    r"^(?P<prefix>.*?)[-_.]?(?P<kind>images|labels)[-_.]idx(?P<ndim>[13])[-_.]ubyte(\.gz)?$"
)


def find_idx_sets(folder: str | Path) -> dict[str, tuple[Path, Path]]:
    """Map set prefix (``train``, ``t10k``, ``mnist-9k``...) to its (images, labels) IDX files."""
    folder = Path(folder)
    names = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
    return {prefix: (folder / i, folder / lb) for prefix, (i, lb) in idx_set_names(names).items()}


def idx_set_names(names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """:func:`find_idx_sets` on file names alone (a folder listing from anywhere, e.g. object storage)."""
    found: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        match = _IDX_NAME.match(name)
        if match:
            found.setdefault(match["prefix"], {}).setdefault(match["kind"], name)
    return {p: (kinds["images"], kinds["labels"]) for p, kinds in found.items() if len(kinds) == 2}


def read_idx_set(images_path: Path, labels_path: Path) -> LabelledSet:
    images, labels = read_idx(images_path), read_idx(labels_path)
    _check_mnist_pair(images, labels, f"{images_path.name} + {labels_path.name}")
    return LabelledSet(images, labels.astype(np.int64), (images_path, labels_path))


def read_mnist_npz(path: str | Path) -> dict[str, LabelledSet]:
    """Read Keras' ``mnist.npz`` (x_train, y_train, x_test, y_test) into train and test sets."""
    path, keys = Path(path), ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            arrays = {k: npz[k] for k in keys if k in npz.files}
    except (OSError, ValueError, zlib.error) as exc:
        raise DataFormatError(f"{path} is not a readable npz file ({exc}).") from exc
    if missing:
        # numpy's KeyError reads "x_test is not a file in the archive"; name the arrays ourselves.
        raise DataFormatError(
            f"{path} lacks {', '.join(map(repr, missing))}; expected Keras' mnist.npz layout."
        )
    sets = {}
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        _check_mnist_pair(images, labels, f"{path.name} [{split}]")
        sets[split] = LabelledSet(images.astype(np.uint8), labels.astype(np.int64), (path,))
    return sets
