"""Durable file writes: whole files replaced atomically, and records appended by many processes."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, and rename it over ``path``.

    The file gets ``mode``, by default the umask's usual one (mkstemp's 0600 is for secrets; cards,
    reports and history are read by other users, e.g. a server running under another uid).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o666 & ~current_umask() if mode is None else mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a new or renamed file) survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def append_line(path: Path, line: bytes) -> None:
    """Append ``line`` (without its newline) to a JSON-lines file, durably, from any process.

    One ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``, then ``fsync``: records
    of concurrent writers never interleave. A line torn by a crash is ended first, so it cannot
    swallow this one (readers skip the torn line).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    size = -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        view = memoryview(line + b"\n")
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    if size == 0:
        fsync_dir(path.parent)  # the new file's directory entry must survive a crash too
