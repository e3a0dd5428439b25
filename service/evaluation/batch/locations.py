"""Where the batch job's data lives: a local path or a URL fsspec opens (s3://, gs://, https://...).

Also what identifies a file's content for resuming and for the report (:class:`FileId`). Local
files and text files (CSV, JSONL, read whole once anyway to index their lines) are identified by a
sha256 computed while they are read. Remote binary files (IDX, npz, Parquet) are identified by
their size and the store's ETag or modification time instead: hashing them would download them an
extra time, and an object store changes the ETag whenever an object is rewritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import IO, Any

from service.errors import JobError

READ_BLOCK = 8 << 20  # bytes per read while hashing or indexing: large enough to reach disk speed


@dataclass(frozen=True)
class FileId:
    """A data file as the report names it and as a checkpoint recognises it."""

    path: str
    sha256: str | None = None
    size: int | None = None
    etag: str | None = None  # or the modification time, when the store has no ETag

    def report(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def fingerprint(self, local: bool) -> list[Any]:
        """What must match to resume: a local file may move, a remote object is named by its URL."""
        name = PurePosixPath(self.path).name if local else self.path
        return [name, self.sha256] if self.sha256 else [name, self.size, self.etag]


class Location:
    """One file or folder, local or remote, opened through fsspec."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        try:
            import fsspec

            # A fresh instance per job: a cached one would answer with listings (ETags) of a past run.
            options = {"skip_instance_cache": True, **dict(storage_options or {})}
            self.fs, self.path = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise JobError(f"Cannot open {url}: {exc} (install the package fsspec names).") from None
        except ValueError as exc:
            raise JobError(f"Cannot open {url}: {exc}.") from None
        self.local = "file" in _protocols(self.fs)

    def child(self, name: str) -> Location:
        joined = Location.__new__(Location)
        joined.url = f"{self.url.rstrip('/')}/{name}"
        joined.fs, joined.path, joined.local = self.fs, f"{self.path.rstrip('/')}/{name}", self.local
        return joined

    @property
    def name(self) -> str:
        return PurePosixPath(self.path.rstrip("/")).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    def exists(self) -> bool:
        return bool(self._call(self.fs.exists, self.path))

    def isdir(self) -> bool:
        return bool(self._call(self.fs.isdir, self.path))

    def listdir(self) -> list[str]:
        """Names of the files in this folder."""
        entries = self._call(self.fs.ls, self.path, detail=False)
        return sorted(PurePosixPath(str(e).rstrip("/")).name for e in entries)

    def info(self) -> dict[str, Any]:
        return dict(self._call(self.fs.info, self.path))

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        handle = self._call(
            self.fs.open, self.path, "rb", **({} if self.local else {"block_size": READ_BLOCK})
        )
        try:
            yield handle
        finally:
            handle.close()

    def identity(self, sha256: str | None = None) -> FileId:
        """This file's :class:`FileId`; local files are hashed here unless ``sha256`` is given."""
        if self.local:
            return FileId(self.path, sha256 or self.sha256())
        info = self.info()
        tag = next((str(info[k]) for k in ("ETag", "etag", "md5Hash", "crc32c") if info.get(k)), None)
        if tag is None:
            tag = next((str(info[k]) for k in ("LastModified", "mtime", "updated") if info.get(k)), None)
        if sha256 is None and tag is None:
            sha256 = self.sha256()  # the store says nothing that changes with the content
        return FileId(self.url, sha256, int(info.get("size") or 0), tag)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.open() as handle:
            for block in iter(lambda: handle.read(READ_BLOCK), b""):
                digest.update(block)
        return digest.hexdigest()

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """A storage call, its failure as one line: the job exits 2 saying why, not with a traceback."""
        try:
            return method(*args, **kwargs)
        except FileNotFoundError:
            raise JobError(f"Data path {self.url} does not exist.") from None
        except Exception as exc:  # remote stores raise their own types (botocore, aiohttp...)
            raise JobError(f"Cannot read {self.url}: {type(exc).__name__}: {exc}") from None


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
