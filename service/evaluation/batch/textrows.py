"""Rows of a line-oriented text file (CSV, JSONL) found by one pass, then read by byte range.

The pass hashes the file and notes the byte offset of every ``MARK_EVERY``-th row, so memory is
about 8 bytes per 64 rows whatever the file's size, and any row range (a shard, the chunks a
resumed job still lacks) is read by seeking instead of parsing everything before it. A row is a
line holding anything but ASCII whitespace; blank lines are skipped and not numbered. In CSV the
first such line is the header. Newlines inside quoted CSV fields are not supported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np

from service.errors import JobError
from service.evaluation.batch.locations import READ_BLOCK, FileId, Location

MARK_EVERY = 64
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[list(b" \t\n\r\x0b\x0c")] = True  # what bytes.strip() removes


@dataclass
class _Line:
    """The line a block ends inside: where it starts, and whether it holds anything yet."""

    start: int
    content: bool = False


def _row_starts(block: bytes, base: int, line: _Line) -> np.ndarray:
    """Offsets of the rows (non-blank lines) that end in ``block``, which starts at offset ``base``.

    Works per line, not per byte, beyond finding the newlines: a line that starts with a
    non-whitespace byte is a row; only the rare others are looked at in Python.
    """
    buf = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) == 0:
        line.content = line.content or bool(block.strip())
        return np.empty(0, dtype=np.int64)
    starts = np.empty(len(ends), dtype=np.int64)
    starts[0] = line.start
    starts[1:] = base + ends[:-1] + 1
    content = np.ones(len(ends), dtype=bool)
    content[0] = line.content or bool(block[: ends[0]].strip())
    for i in np.flatnonzero(_WHITESPACE[buf[ends[:-1] + 1]]) + 1:
        content[i] = bool(block[ends[i - 1] + 1 : ends[i]].strip())
    line.start, line.content = base + int(ends[-1]) + 1, bool(block[ends[-1] + 1 :].strip())
    return starts[content]


def _blocks(handle: IO[bytes], size: int = READ_BLOCK) -> Iterator[bytes]:
    return iter(lambda: handle.read(size), b"")


@dataclass(frozen=True)
class LineIndex:
    rows: int
    header: bytes | None  # a CSV file's first non-blank line
    marks: np.ndarray  # byte offset of rows 0, MARK_EVERY, 2 * MARK_EVERY, ...
    size: int  # bytes in the file: where "the row after the last" starts
    sha256: str

    @classmethod
    def build(cls, handle: IO[bytes], header: bool) -> LineIndex:
        """One pass over ``handle`` from its start."""
        digest, marks, rows, offset = hashlib.sha256(), [], 0, 0
        line, first = _Line(0), None
        for block in _blocks(handle):
            digest.update(block)
            starts = _row_starts(block, offset, line)
            offset += len(block)
            if header and first is None and len(starts):
                first, starts = int(starts[0]), starts[1:]
            marks.append(starts[(-rows) % MARK_EVERY :: MARK_EVERY])
            rows += len(starts)
        if line.content:  # the last line has no newline
            if header and first is None:
                first = line.start
            else:
                marks.append(np.array([line.start] if rows % MARK_EVERY == 0 else [], dtype=np.int64))
                rows += 1
        head = None
        if header and first is not None:
            handle.seek(first)
            head = handle.readline().rstrip(b"\r\n")
        found = np.concatenate(marks) if marks else np.empty(0, dtype=np.int64)
        return cls(rows, head, found, offset, digest.hexdigest())

    def locate(self, handle: IO[bytes], row: int) -> int:
        """The byte offset where ``row`` starts (the file's size for ``row == rows``)."""
        if row >= self.rows:
            return self.size
        mark, skip = divmod(row, MARK_EVERY)
        start = int(self.marks[mark])
        if skip == 0:
            return start
        handle.seek(start)
        line, offset, seen = _Line(start), start, 0
        for block in _blocks(handle, 1 << 20):
            starts = _row_starts(block, offset, line)
            offset += len(block)
            if seen + len(starts) > skip:
                return int(starts[skip - seen])
            seen += len(starts)
        return line.start if line.content and seen == skip else self.size


class RangeReader:
    """The bytes of row ranges of one file, read in ascending order through one open handle."""

    def __init__(self, handle: IO[bytes], index: LineIndex) -> None:
        self.handle, self.index = handle, index
        self._known: tuple[int, int] = (-1, 0)  # (row, offset): the end of the last range read

    def read(self, rows: range) -> bytes:
        start = self._offset(rows.start)
        stop = self._offset(rows.stop)
        self._known = (rows.stop, stop)
        self.handle.seek(start)
        data = self.handle.read(stop - start)
        if len(data) != stop - start:
            raise JobError("The data file changed while it was being read (it is shorter than indexed).")
        return data

    def _offset(self, row: int) -> int:
        return self._known[1] if row == self._known[0] else self.index.locate(self.handle, row)


class IndexedText:
    """A line-oriented source: indexed in one pass when opened, then read by row ranges."""

    def __init__(self, location: Location, header: bool) -> None:
        self.location = location
        with location.open() as handle:
            self.index = LineIndex.build(handle, header=header)
        self.count = self.index.rows

    def identity(self) -> FileId:
        return self.location.identity(sha256=self.index.sha256)

    def read(self, spans: Iterable[range]) -> Iterator[bytes]:
        with self.location.open() as handle:
            reader = RangeReader(handle, self.index)
            for span in spans:
                yield reader.read(span)


def rows_of(data: bytes, expected: int, first: int) -> list[bytes]:
    """The non-blank lines of ``data`` (a range read by :class:`RangeReader`), checked against the index."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    if len(lines) != expected:
        raise JobError(
            f"The data file changed while it was being read: rows {first}..{first + expected - 1} "
            f"hold {len(lines)} lines."
        )
    return lines
