"""Bearer tokens with scopes, a reloading token file, and per-caller rate limits; pure, no HTTP."""
