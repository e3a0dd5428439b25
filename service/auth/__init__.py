"""Bearer tokens with scopes, a reloading token file, and per-caller rate limits; pure, no HTTP."""

from service.auth.ratelimit import RateLimiter, RateLimitError
from service.auth.tokens import SCOPES, Principal, Scope, TokenFileError, Tokens, load_tokens, parse_tokens
from service.auth.watch import TokenSource

__all__ = [
    "SCOPES",
    "Principal",
    "RateLimitError",
    "RateLimiter",
    "Scope",
    "TokenFileError",
    "TokenSource",
    "Tokens",
    "load_tokens",
    "parse_tokens",
]
