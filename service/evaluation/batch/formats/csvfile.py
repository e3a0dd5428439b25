"""CSV with a header: every column but the label column is a feature, in order.

A chunk is parsed by pyarrow's CSV reader in C++ (numbers straight into one float64 matrix,
labels converted column-wise). A chunk that reader refuses (a row with the wrong number of
fields, text in a feature column) is parsed again row by row in Python, which turns each bad row
into an error instead of failing the chunk. Both paths give the same values: an empty or
non-numeric feature cell is missing (NaN, refused for that row by the scorer) and a label reads as
an integer, else a number, else text.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import JobError
from service.evaluation.batch.locations import Location
from service.evaluation.batch.rows import Batch, array_inputs, parse_label, parse_number
from service.evaluation.batch.textrows import IndexedText, rows_of
from service.models.card import TensorSpec


class CsvRows(IndexedText):
    def __init__(self, location: Location, label_column: str, divisor: float | None = None) -> None:
        super().__init__(location, header=True)
        self.divisor = divisor
        header = self.index.header
        self.columns = next(csv.reader([header.decode("utf-8", "replace")])) if header else []
        if label_column not in self.columns:
            raise JobError(
                f"{location.url} has no column {label_column!r}; name the label column with --label-column."
            )
        self.label_at = self.columns.index(label_column)

    def decode(self, span: range, raw: bytes, specs: Sequence[TensorSpec]) -> Batch:
        lines = rows_of(raw, len(span), span.start)
        rows = np.arange(span.start, span.stop)
        parsed = self._columnar(lines)
        if parsed is None:
            return self._row_by_row(lines, rows, specs)
        features, labels = parsed
        return Batch(rows, array_inputs(features, specs, self.divisor), labels)

    def _columnar(self, lines: list[bytes]) -> tuple[np.ndarray, np.ndarray | list[Any]] | None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        label = self.columns[self.label_at]
        types = {name: pa.float64() for name in self.columns}
        types[label] = pa.string()
        try:
            table = pacsv.read_csv(
                pa.py_buffer(b"\n".join(lines)),
                read_options=pacsv.ReadOptions(column_names=self.columns, use_threads=False),
                convert_options=pacsv.ConvertOptions(column_types=types),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if table.num_rows != len(lines) or table.num_columns != len(self.columns):
            return None
        features = table.drop_columns([label]).combine_chunks().to_batches()
        matrix = (
            features[0].to_tensor(null_to_nan=True, row_major=True).to_numpy()
            if features
            else np.empty((len(lines), len(self.columns) - 1))
        )
        return matrix, _labels(table.column(label))

    def _row_by_row(self, lines: list[bytes], rows: np.ndarray, specs: Sequence[TensorSpec]) -> Batch:
        kept, features, labels, errors = [], [], [], []
        width = len(self.columns)
        for row, fields in zip(
            rows.tolist(), csv.reader(line.decode("utf-8", "replace") for line in lines), strict=True
        ):
            if len(fields) != width:
                errors.append((row, f"Row {row} has {len(fields)} fields; the header has {width}."))
                continue
            kept.append(row)
            features.append([parse_number(v) for j, v in enumerate(fields) if j != self.label_at])
            labels.append(parse_label(fields[self.label_at]))
        matrix = np.array(features, dtype=np.float64).reshape(len(kept), width - 1)
        inputs = array_inputs(matrix, specs, self.divisor)
        return Batch(np.array(kept, dtype=np.int64), inputs, labels, errors)


def _labels(column: Any) -> np.ndarray | list[Any]:
    """A text column as int64 if every value is an integer, else float64 if a number, else parsed one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(column, kind).to_numpy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return [parse_label(text) for text in column.to_pylist()]
