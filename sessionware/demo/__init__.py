"""The demo web app served by ``sessionware demo``: Django's session API, page by page."""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
