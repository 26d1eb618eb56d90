"""Two network namespaces joined by a veth pair, for the partition drill (needs root and
iproute2).

``swdrill-app`` holds the app servers and the load; ``swdrill-store`` holds the Redis
servers, which listen on ``STORE_HOST``, an address on the store namespace's loopback, so
that cutting the veth leaves the servers talking to each other (a clean partition: only
the app loses the store). The cut sets the store's end of the pair down: the app's end
keeps its route, and every packet it sends is dropped without a word, as on a real
network that fails (connections time out; nothing is refused).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

APP_NS = "swdrill-app"
STORE_NS = "swdrill-store"
APP_END, STORE_END = "swd-app", "swd-store"
APP_ADDRESS, STORE_END_ADDRESS = "10.213.0.1", "10.213.0.2"
STORE_HOST = "10.213.1.2"


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class NetworkError(RuntimeError):
    """A namespace or link could not be set up (not root, no iproute2, a kernel that
    refuses network namespaces)."""


def in_store(*command: str) -> tuple[str, ...]:
    return ("ip", "netns", "exec", STORE_NS, *command)


def in_app(*command: str) -> tuple[str, ...]:
    return ("ip", "netns", "exec", APP_NS, *command)


@contextmanager
def namespaces() -> Iterator[None]:
    """Create both namespaces and the link; remove them on exit, whatever happened."""
    remove()  # what an interrupted run may have left
    try:
        ip("netns", "add", APP_NS)
        ip("netns", "add", STORE_NS)
        ip("link", "add", APP_END, "type", "veth", "peer", "name", STORE_END)
        ip("link", "set", APP_END, "netns", APP_NS)
        ip("link", "set", STORE_END, "netns", STORE_NS)
        for ns, end, address in (
            (APP_NS, APP_END, APP_ADDRESS),
            (STORE_NS, STORE_END, STORE_END_ADDRESS),
        ):
            ip("-n", ns, "addr", "add", f"{address}/24", "dev", end)
            ip("-n", ns, "link", "set", end, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", STORE_NS, "addr", "add", f"{STORE_HOST}/32", "dev", "lo")
        ip("-n", APP_NS, "route", "add", f"{STORE_HOST}/32", "via", STORE_END_ADDRESS)
        yield
    finally:
        remove()


def remove() -> None:
    for ns in (APP_NS, STORE_NS):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def cut() -> None:
    ip("-n", STORE_NS, "link", "set", STORE_END, "down")


def restore() -> None:
    ip("-n", STORE_NS, "link", "set", STORE_END, "up")


if __name__ == "__main__":  # a quick check that this machine allows all of it
    with namespaces():
        print("network namespaces and a veth pair: available", file=sys.stderr)
