"""The API documentation page at /docs: Swagger UI from the flask-swagger-ui package, read at start-up."""

from __future__ import annotations

from importlib import resources

from service.http.console import Asset, load_assets

# Swagger UI styles its widgets inline and shows data: images; everything else comes from here.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Swagger UI's own files, as the flask-swagger-ui package ships them (nothing is fetched at run time).
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def load() -> dict[str, Asset]:
    """This folder's page and start-up script, plus Swagger UI's bundle and stylesheet."""
    swagger = load_assets(resources.files("flask_swagger_ui") / "dist")
    return {**load_assets(resources.files(__name__)), **{name: swagger[name] for name in SWAGGER_FILES}}
