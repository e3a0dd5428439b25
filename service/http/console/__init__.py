"""The browser console's static files, read from the package once at start-up and served from memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

# The console talks to this origin only and runs no inline code: the policy makes both true for
# the browser too, so a stray reference to a CDN or an injected <script> fails loudly instead of
# working on a developer's laptop and nowhere else. blob: is how card images arrive with a token.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidate (cheap: ETag) so a redeployed console is never stale
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(folder: Traversable | None = None) -> dict[str, Asset]:
    """Every file of ``folder`` (this one by default) a browser may fetch, by file name; no other
    name can be served."""
    assets = {}
    for entry in (folder or resources.files(__name__)).iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            assets[entry.name] = Asset(body, CONTENT_TYPES[suffix], hashlib.sha256(body).hexdigest()[:32])
    return assets
