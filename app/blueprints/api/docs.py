"""Swagger UI at /api/docs, from the assets bundled in the flask-swagger-ui package (no CDN)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, render_template, send_from_directory

from app.security import public

SWAGGER_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "index.css"})

bp = Blueprint("api_docs", __name__)


@bp.get("/api/docs")
@public
def swagger_ui():
    return render_template("api/docs.html")


@bp.get("/api/docs/assets/<name>")
@public
def asset(name: str):
    if name not in ASSETS:
        return "", 404
    return send_from_directory(SWAGGER_DIST, name, max_age=86400)
