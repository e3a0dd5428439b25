"""MNIST's IDX files (an images file and a labels file), read a row range at a time.

Raw files are read with seek + read: only the chunk being read is in memory (a memory map would
leave every page it touched resident and counted in the job's RSS). Gzip files are decompressed
as a stream; skipping forward decompresses what is skipped. A file's size is checked against its
header before anything is scored (for gzip, against the length its trailer records).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import IO

import numpy as np

from service.datafiles import idx_header
from service.errors import DataFormatError, JobError
from service.evaluation.batch.locations import Location
from service.evaluation.batch.rows import Batch, array_inputs
from service.models.card import TensorSpec

_GZIP_MAGIC = b"\x1f\x8b"


class IdxFile:
    """One IDX file: its element type, dimensions, and where its data starts."""

    def __init__(self, location: Location) -> None:
        self.location = location
        with location.open() as handle:
            start = handle.read(4096)
            self.compressed = start[:2] == _GZIP_MAGIC
            if self.compressed:
                try:
                    start = gzip.GzipFile(fileobj=_rewound(handle)).read(4096)
                except (OSError, EOFError, zlib.error) as exc:
                    raise JobError(f"{location.url} is a truncated or corrupt gzip file ({exc}).") from None
            try:
                dtype, self.dims, self.header = idx_header(start, location.url)
            except DataFormatError as exc:
                raise JobError(str(exc)) from None
            self.dtype = dtype.newbyteorder("=") if dtype.itemsize > 1 else dtype
            self._source_dtype = dtype
            self.row_bytes = int(np.prod(self.dims[1:], dtype=np.int64)) * dtype.itemsize
            self._check_size(handle)

    @property
    def count(self) -> int:
        return self.dims[0]

    def _check_size(self, handle: IO[bytes]) -> None:
        expected = self.header + self.count * self.row_bytes
        size = handle.seek(0, 2)
        if self.compressed:  # gzip's trailer holds the uncompressed length modulo 2**32
            handle.seek(size - 4)
            actual = int.from_bytes(handle.read(4), "little")
            expected %= 1 << 32
        else:
            actual = size
        if actual != expected:
            raise JobError(
                f"{self.location.url} does not match its IDX header {list(self.dims)} "
                f"({actual} bytes where {expected} are due): the file is truncated or corrupt."
            )

    def rows(self, stream: IO[bytes], span: range) -> np.ndarray:
        """Rows ``span`` from ``stream`` (this file, opened by :meth:`stream`)."""
        stream.seek(self.header + span.start * self.row_bytes)
        size = len(span) * self.row_bytes
        try:
            data = stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise JobError(f"{self.location.url} is truncated or corrupt ({exc}).") from None
        if len(data) != size:
            raise JobError(f"{self.location.url} ended before row {span.stop - 1}: it is truncated.")
        array = np.frombuffer(data, dtype=self._source_dtype).reshape((len(span), *self.dims[1:]))
        return array.astype(self.dtype, copy=False)

    def stream(self, stack: ExitStack) -> IO[bytes]:
        handle = stack.enter_context(self.location.open())
        return gzip.GzipFile(fileobj=handle) if self.compressed else handle  # type: ignore[return-value]


def _rewound(handle: IO[bytes]) -> IO[bytes]:
    handle.seek(0)
    return handle


class IdxRows:
    """An images file and its labels file, row by row."""

    def __init__(self, images: Location, labels: Location, divisor: float | None) -> None:
        self.images, self.labels, self.divisor = IdxFile(images), IdxFile(labels), divisor
        if len(self.labels.dims) != 1 or self.labels.count != self.images.count:
            raise JobError(
                f"{labels.url} holds labels of shape {list(self.labels.dims)} for "
                f"{self.images.count} images in {images.url}."
            )

    @property
    def count(self) -> int:
        return self.images.count

    def read(self, spans: Iterable[range]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        with ExitStack() as stack:
            images, labels = self.images.stream(stack), self.labels.stream(stack)
            for span in spans:
                yield self.images.rows(images, span), self.labels.rows(labels, span)

    def decode(self, span: range, raw: tuple[np.ndarray, np.ndarray], specs: Sequence[TensorSpec]) -> Batch:
        images, labels = raw
        rows = np.arange(span.start, span.stop)
        return Batch(rows, array_inputs(images, specs, self.divisor), labels.astype(np.int64))
