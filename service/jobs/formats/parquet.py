"""Parquet through pyarrow: numeric feature columns (or one list column per row) and a label column.

Batches are streamed with ``iter_batches`` from the row group holding a range's first row, so
memory follows the file's row groups as it was written, not its size; a range further on (a
shard, a resumed job) starts at its own row group instead of reading what comes before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from service.jobs import JobError
from service.jobs.locations import Location
from service.jobs.rows import Batch, array_inputs
from service.repository import TensorSpec


class ParquetRows:
    def __init__(
        self, location: Location, label_column: str, divisor: float | None = None, batch_rows: int = 1024
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.location, self.divisor, self.batch_rows = location, divisor, batch_rows
        with location.open() as handle:
            try:
                meta = pq.ParquetFile(handle)
            except pa.ArrowException as exc:
                raise JobError(f"{location.url} is not a readable Parquet file ({exc}).") from None
            schema = meta.schema_arrow
            sizes = [meta.metadata.row_group(i).num_rows for i in range(meta.num_row_groups)]
        if label_column not in schema.names:
            raise JobError(f"{location.url} has no column {label_column!r}; name it with --label-column.")
        self.label = label_column
        self.features = [name for name in schema.names if name != label_column]
        self.listed = len(self.features) == 1 and _is_list(schema.field(self.features[0]).type)
        kinds = [schema.field(n).type for n in self.features]
        if self.listed:
            kinds = [kinds[0].value_type]
        bad = [
            n
            for n, t in zip(self.features, kinds, strict=True)
            if not (pa.types.is_integer(t) or pa.types.is_floating(t))
        ]
        if bad or not self.features:
            raise JobError(f"{location.url}: feature columns must be numbers; {bad or 'there are none'}.")
        self.group_starts = np.cumsum([0, *sizes])
        self.count = int(self.group_starts[-1])

    def read(self, spans: Iterable[range]) -> Iterator[Any]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self.location.open() as handle:
            cursor = _Cursor(pq.ParquetFile(handle), self.group_starts, self.batch_rows)
            for span in spans:
                yield pa.Table.from_batches(cursor.take(span), schema=cursor.schema)

    def decode(self, span: range, raw: Any, specs: Sequence[TensorSpec]) -> Batch:
        features = raw.select(self.features).combine_chunks()
        if self.listed:
            values = features.column(0).combine_chunks().flatten().to_numpy(zero_copy_only=False)
            matrix = values.reshape(len(span), -1) if len(span) else values.reshape(0, 0)
        else:
            matrix = features.to_batches()[0].to_tensor(null_to_nan=True, row_major=True).to_numpy()
        label = raw.column(self.label)
        labels = label.to_numpy(zero_copy_only=False) if _numeric(label.type) else label.to_pylist()
        return Batch(np.arange(span.start, span.stop), array_inputs(matrix, specs, self.divisor), labels)


def _numeric(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


class _Cursor:
    """Reads forward through the row groups; a range behind, or in a later row group, restarts there."""

    def __init__(self, file: Any, group_starts: np.ndarray, batch_rows: int) -> None:
        self.file, self.group_starts, self.batch_rows = file, group_starts, batch_rows
        self.schema = file.schema_arrow
        self._batches: Iterator[Any] = iter(())
        self._pending: Any = None  # the unread rest of the last batch
        self._at = -1  # the row _pending starts with (or the next batch, when nothing is pending)

    def take(self, span: range) -> list[Any]:
        if self._at < 0 or span.start < self._at or self._group(span.start) > self._group(self._at):
            self._restart(self._group(span.start))
        self._consume(span.start - self._at)
        return self._consume(len(span))

    def _group(self, row: int) -> int:
        return int(np.searchsorted(self.group_starts, row, side="right")) - 1

    def _restart(self, group: int) -> None:
        groups = list(range(group, len(self.group_starts) - 1))
        self._batches = self.file.iter_batches(batch_size=self.batch_rows, row_groups=groups)
        self._pending, self._at = None, int(self.group_starts[group])

    def _consume(self, rows: int) -> list[Any]:
        """The next ``rows`` rows, as slices of the batches they come in."""
        parts = []
        while rows > 0:
            batch = self._pending
            if batch is None:
                try:
                    batch = next(self._batches)
                except StopIteration:
                    raise JobError("The Parquet file holds fewer rows than its metadata says.") from None
            piece = batch.slice(0, rows)
            parts.append(piece)
            rows -= piece.num_rows
            self._at += piece.num_rows
            rest = batch.slice(piece.num_rows)
            self._pending = rest if rest.num_rows else None
        return parts


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))
