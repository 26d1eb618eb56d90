"""Runnable examples of sessionware with Starlette, FastAPI, Flask, raw ASGI and WSGI."""
