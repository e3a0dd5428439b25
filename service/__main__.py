"""``python -m service``: serve the model repository under gunicorn with the configured workers."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import sys

from service.auth.tokens import TokenFileError, load_tokens
from service.config import Settings, SettingsError, load_settings
from service.models.config import ModelConfigError, load_model_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument("--host", help="address to bind (env HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env PORT, default 8501)")
    parser.add_argument("--model-repository", help="repository root (env MODEL_REPOSITORY, default models)")
    parser.add_argument("--workers", type=int, help="gunicorn worker processes (env WORKERS)")
    parser.add_argument(
        "--threads", type=int, help="threads per worker for non-inference routes (env THREADS)"
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(
            host=args.host,
            port=args.port,
            model_repository=args.model_repository,
            workers=args.workers,
            threads=args.threads,
        )
    except SettingsError as exc:
        sys.exit(f"error: {exc}")
    if not settings.model_repository.is_dir():
        sys.exit(f"error: model repository {settings.model_repository} does not exist.")
    try:
        settings = with_token_file(settings)
    except (ModelConfigError, TokenFileError) as exc:
        sys.exit(f"error: {exc}")
    scheme = "https" if settings.tls_cert else "http"
    grpc = f", gRPC on {settings.host}:{settings.grpc_port}" if settings.grpc_port else ", gRPC off"
    print(
        f"Serving {settings.model_repository} on {scheme}://{settings.host}:{settings.port}{grpc}", flush=True
    )
    if settings.auth_tokens_file is None and not _loopback(settings.host):
        print(
            f"warning: {settings.host} is reachable from other machines and no AUTH_TOKENS_FILE is set: "
            "every route is open to anyone who can connect (python -m service.auth new NAME makes a token).",
            file=sys.stderr,
            flush=True,
        )
    from service.http.server import serve  # gunicorn: imported only to serve

    serve(settings)


def with_token_file(settings: Settings) -> Settings:
    """Settings with the token file serving.yaml names (unless AUTH_TOKENS_FILE did), checked now:
    an invalid file stops the server here rather than in every worker. A missing one is allowed
    (closed until it appears: a secret may be mounted late)."""
    path = settings.auth_tokens_file
    config_path = settings.model_config_path
    if path is None and config_path is not None:
        named = load_model_config(config_path).auth_tokens_file
        path = config_path.parent / named if named else None
    if path is not None and path.exists():
        load_tokens(path)
    return dataclasses.replace(settings, auth_tokens_file=path)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


if __name__ == "__main__":
    main()
