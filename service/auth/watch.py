"""The token file as a live source: re-read when it changes, so a token is revoked without a restart."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from service.auth.tokens import TokenFileError, Tokens, parse_tokens, read_limited

log = logging.getLogger(__name__)

Signature = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino): any edit or replacement changes one


def _signature(st: os.stat_result) -> Signature:
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class TokenSource:
    """The latest good Tokens from ``path``, checked for changes at most every ``poll_interval`` s.

    The hot path is a clock read and a comparison; once per interval one request also pays a
    ``stat`` (and, when the file changed, a read and parse). An invalid or deleted file keeps the
    last good tokens, with one log line per change saying why.
    """

    def __init__(
        self, path: Path, poll_interval: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._clock = clock
        self._lock = threading.Lock()
        # What the last check saw: a good file's Signature, None while missing, or a stat error.
        self._seen: object = None
        self._next_check = clock() + poll_interval
        if not self.path.exists():
            # A secret not mounted yet (or a mistyped path): closed, not open, until the file appears.
            self._tokens = Tokens(())
            log.error(
                "Auth: no token file at %s yet; every guarded route answers 401 until it appears.", self.path
            )
            return
        # At start there is no last good file to fall back on: an invalid one is fatal.
        self._tokens, self._seen = self._read()
        log.info(
            "Auth: %d token(s) from %s: %s.", len(self._tokens), self.path, ", ".join(self._tokens.names)
        )

    def current(self) -> Tokens:
        """The tokens to authenticate this request with."""
        if self._clock() >= self._next_check and self._lock.acquire(blocking=False):
            # Non-blocking: while one request re-reads the file, the others use the tokens they have.
            try:
                self._refresh()
            finally:
                self._lock.release()
        return self._tokens

    def _refresh(self) -> None:
        self._next_check = self._clock() + self.poll_interval
        try:
            signature: Signature | None = _signature(os.stat(self.path))
        except FileNotFoundError:
            signature = None
        except OSError as exc:
            self._keep(("stat", str(exc)), f"cannot stat it ({exc})")
            return
        if signature == self._seen:
            return
        if signature is None:
            self._keep(None, "it was deleted")
            return
        try:
            tokens, signature = self._read()
        except TokenFileError as exc:
            self._keep(signature, str(exc))
            return
        self._tokens, self._seen = tokens, signature
        log.info("Auth: reloaded %d token(s) from %s: %s.", len(tokens), self.path, ", ".join(tokens.names))

    def _read(self) -> tuple[Tokens, Signature]:
        try:
            with open(self.path, "rb") as fh:
                # The signature comes from the open file, so it describes exactly the bytes parsed;
                # a write landing after this changes it again and is picked up at the next check.
                signature = _signature(os.fstat(fh.fileno()))
                text = read_limited(fh, str(self.path))
        except OSError as exc:
            raise TokenFileError(f"{self.path}: cannot read the token file ({exc.strerror}).") from None
        return parse_tokens(text, str(self.path)), signature

    def _keep(self, seen: object, reason: str) -> None:
        """Stay on the last good tokens; log once per distinct bad state, not once per interval."""
        if seen != self._seen:
            log.error("Auth: %s: %s; keeping the last good tokens.", self.path, reason)
        self._seen = seen
