"""Parquet through pyarrow: numeric feature columns (or one list column per row) and a label column.

Batches are streamed with ``iter_batches`` from the row group holding a range's first row, so
memory follows the file's row groups as it was written, not its size; a range further on (a
shard, a resumed job) starts at its own row group instead of reading what comes before. Each
batch of ``READ_ROWS`` rows is turned into one row-major matrix at once: with hundreds of columns
(MNIST's 784) the cost is per column, so converting job-sized chunks one by one cost ~6 ms per
1,024 rows, far more than scoring them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from service.errors import JobError
from service.evaluation.batch.locations import Location
from service.evaluation.batch.rows import Batch, array_inputs
from service.models.card import TensorSpec

READ_ROWS = 4096  # pyarrow holds ~10x a batch while decoding it: 16,384 rows cost 175 MB, 4,096 rows 46 MB
Arrays = tuple[np.ndarray, Any]  # (features matrix, labels as an array or a list)


class ParquetRows:
    def __init__(self, location: Location, label_column: str, divisor: float | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.location, self.divisor = location, divisor
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

    def read(self, spans: Iterable[range]) -> Iterator[Arrays]:
        import pyarrow.parquet as pq

        with self.location.open() as handle:
            # Pre-buffering coalesces a row group's column reads: worth it remotely, not on a local disk,
            # where it only holds whole row groups in memory.
            file = pq.ParquetFile(handle, pre_buffer=not self.location.local)
            cursor = _Cursor(file, self.group_starts, self._arrays)
            for span in spans:
                yield cursor.take(span)

    def decode(self, span: range, raw: Arrays, specs: Sequence[TensorSpec]) -> Batch:
        matrix, labels = raw
        return Batch(np.arange(span.start, span.stop), array_inputs(matrix, specs, self.divisor), labels)

    def _arrays(self, batch: Any) -> Arrays:
        """One record batch as a row-major features matrix and its labels."""
        label = batch.column(self.label)
        labels = label.to_numpy(zero_copy_only=False) if _numeric(label.type) else label.to_pylist()
        if self.listed:
            values = batch.column(self.features[0]).flatten().to_numpy(zero_copy_only=False)
            return values.reshape(batch.num_rows, -1) if batch.num_rows else values.reshape(0, 0), labels
        columns = [batch.column(name).to_numpy(zero_copy_only=False) for name in self.features]
        return np.column_stack(columns), labels


def _numeric(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


class _Cursor:
    """Reads forward through the row groups; a range behind, or in a later row group, restarts there."""

    def __init__(self, file: Any, group_starts: np.ndarray, convert: Callable[[Any], Arrays]) -> None:
        self.file, self.group_starts, self.convert = file, group_starts, convert
        self._batches: Iterator[Any] = iter(())
        self._pending: Arrays | None = None  # the unread rest of the last batch
        self._at = -1  # the row _pending starts with (or the next batch, when nothing is pending)

    def take(self, span: range) -> Arrays:
        if self._at < 0 or span.start < self._at or self._group(span.start) > self._group(self._at):
            self._restart(self._group(span.start))
        self._consume(span.start - self._at)
        parts = self._consume(len(span))
        if len(parts) == 1:
            return parts[0]
        labels = [p[1] for p in parts]
        arrays = all(isinstance(x, np.ndarray) for x in labels)
        joined = np.concatenate(labels) if arrays else [x for part in labels for x in part]
        return np.concatenate([p[0] for p in parts]), joined

    def _group(self, row: int) -> int:
        return int(np.searchsorted(self.group_starts, row, side="right")) - 1

    def _restart(self, group: int) -> None:
        groups = list(range(group, len(self.group_starts) - 1))
        self._batches = self.file.iter_batches(batch_size=READ_ROWS, row_groups=groups, use_threads=False)
        self._pending, self._at = None, int(self.group_starts[group])

    def _consume(self, rows: int) -> list[Arrays]:
        """The next ``rows`` rows, as slices of the batches they come in."""
        parts: list[Arrays] = []
        while rows > 0:
            batch = self._pending
            if batch is None:
                try:
                    batch = self.convert(next(self._batches))
                except StopIteration:
                    raise JobError("The Parquet file holds fewer rows than its metadata says.") from None
            taken = min(rows, len(batch[0]))
            parts.append((batch[0][:taken], batch[1][:taken]))
            rows -= taken
            self._at += taken
            rest = (batch[0][taken:], batch[1][taken:])
            self._pending = rest if len(rest[0]) else None
        return parts
