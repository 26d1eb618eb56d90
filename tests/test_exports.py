"""The public surface: complete, sorted, and every sync store method has its async twin."""

from __future__ import annotations

import inspect

import sessionware
import sessionware.stores
from sessionware.stores.base import SessionStore


def public_names(module: object) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("sessionware")
    )


def test_all_is_sorted_and_complete() -> None:
    assert sessionware.__all__ == sorted(sessionware.__all__)
    assert set(public_names(sessionware)) <= set(sessionware.__all__)
    for name in sessionware.__all__:
        assert hasattr(sessionware, name)


def test_stores_all_is_sorted_and_every_name_imports() -> None:
    assert sessionware.stores.__all__ == sorted(sessionware.stores.__all__)
    for name in sessionware.stores.__all__:
        exported = getattr(sessionware.stores, name)
        # The stores, and the one function that builds a store from a URL.
        assert inspect.isclass(exported) or name == "store_from_url"


def test_every_sync_store_method_has_an_async_twin_with_the_same_signature() -> None:
    classes = [SessionStore] + [
        getattr(sessionware.stores, name)
        for name in sessionware.stores.__all__
        if name != "store_from_url"
    ]
    operations = [
        "load",
        "insert",
        "update",
        "delete",
        "rotate",
        "renew",
        "clear_expired",
        "count_expired",
        "check",
        "close",
        "user_sessions",
        "revoke_session",
        "revoke_user",
    ]
    for cls in classes:
        for name in operations:
            sync, twin = getattr(cls, name), getattr(cls, "a" + name)
            assert inspect.iscoroutinefunction(twin), f"{cls.__name__}.a{name}"
            assert inspect.signature(sync) == inspect.signature(twin), f"{cls.__name__}.{name}"
