"""``python -m service``: serve the model repository under gunicorn with the configured workers."""

from __future__ import annotations

import argparse
import sys

from service.config import SettingsError, load_settings


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
    print(f"Serving {settings.model_repository} on http://{settings.host}:{settings.port}", flush=True)
    from service.http.server import serve  # gunicorn: imported only to serve

    serve(settings)


if __name__ == "__main__":
    main()
