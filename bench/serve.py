"""Entry points for the real servers: ``uvicorn --factory bench.serve:asgi`` and
``gunicorn 'bench.serve:wsgi()'``; the app is named by ``SWBENCH_APP``."""

from __future__ import annotations

import os

from starlette.types import ASGIApp

from .apps import build_asgi
from .config import Run
from .inprocess import WSGIApp
from .wsgi_apps import build_wsgi

APP_VAR = "SWBENCH_APP"


def asgi() -> ASGIApp:
    return build_asgi(os.environ[APP_VAR], Run.from_env()).app


def wsgi() -> WSGIApp:
    return build_wsgi(os.environ[APP_VAR], Run.from_env()).app
