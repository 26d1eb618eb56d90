"""The HTTP load of a failover drill: ``python -m bench.drill_load --servers … --until T``.

Virtual users log in, write, read and log out in a loop, each request to the next server
in turn (no sticky sessions), until the wall-clock time ``--until``. Every request is
recorded (start, end, route, status, server). A user reads its session right after a
login: a login that did not take (its cookie named a key ended by a login or logout
whose answer was lost: the middleware ignores such a request for the stale-key window)
is counted and tried again. Then it remembers the writes the app acknowledged (200) and,
before logging out, reads its session back until a read succeeds: an acknowledged key
missing then is a lost write (a write answered 401 means the session had vanished).
After the load every cookie that was logged out (200) is read once more: one that shows
data again is a logged-out session that came back. Results go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

COOKIE = "sessionid"
#: A request slower than this is a hang, not an answer (the drills' store timeout is 1 s).
HANG = 30.0
WRITES_PER_LOGIN = 6


@dataclass
class Tally:
    """What all users saw."""

    records: list[tuple[float, float, str, int | str, str]] = field(default_factory=list)
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    logged_out: list[tuple[float, str]] = field(default_factory=list)
    unverified: int = 0
    logins_not_taken: int = 0
    lockouts: list[float] = field(default_factory=list)  # seconds a user could not log in


class User:
    def __init__(self, number: int, servers: list[str], tally: Tally) -> None:
        self.name = f"vu{number}"
        self.servers = itertools.cycle(servers[number % len(servers) :] + servers)
        self.tally = tally
        self.client = httpx.AsyncClient(timeout=HANG)

    async def call(self, path: str) -> tuple[int | str, Any]:
        started = time.time()
        body: Any = None
        server = next(self.servers)
        try:
            response = await self.client.get(server + path)
            status: int | str = response.status_code
            if status == 200:
                body = response.json()
        except httpx.TimeoutException:
            status = "hang"
        except httpx.HTTPError as exc:
            status = f"error:{type(exc).__name__}"
        route = path.split("?", maxsplit=1)[0]
        self.tally.records.append((started, time.time(), route, status, server))
        return status, body

    async def run(self, until: float) -> None:
        serial = 0
        locked_since: float | None = None
        while time.time() < until:
            status, _ = await self.call(f"/login?user={self.name}")
            if status != 200 or not await self.logged_in(until + 60):
                if status == 200 and locked_since is None:
                    locked_since = time.time()
                await asyncio.sleep(0.05)
                continue
            if locked_since is not None:
                self.tally.lockouts.append(time.time() - locked_since)
                locked_since = None
            acknowledged = {"user_id"}
            for _ in range(WRITES_PER_LOGIN):
                serial += 1
                key = f"w{serial}"
                status, _ = await self.call(f"/write?k={key}&v={serial}")
                if status == 200:
                    acknowledged.add(key)
                elif status == 401:
                    break  # the session is gone: verify() counts what it took along
                await self.call("/read")
            await self.verify(acknowledged, until + 60)
            before = self.client.cookies.get(COOKIE)
            if (await self.call("/logout"))[0] == 200 and before:
                self.tally.logged_out.append((time.time(), before))
        if locked_since is not None:  # still locked out when the load ended
            self.tally.lockouts.append(time.time() - locked_since)

    async def read_back(self, give_up: float) -> dict[str, Any] | None:
        """The session's data, read until a read succeeds (None: never)."""
        while time.time() < give_up:
            status, data = await self.call("/read")
            if status == 200:
                return dict(data)
            await asyncio.sleep(0.1)
        return None

    async def logged_in(self, give_up: float) -> bool:
        data = await self.read_back(give_up)
        if data is not None and data.get("user_id") == self.name:
            return True
        self.tally.logins_not_taken += 1
        return False

    async def verify(self, acknowledged: set[str], give_up: float) -> None:
        """Read the session back (until a read succeeds): what it lacks was lost."""
        self.tally.acknowledged += len(acknowledged)
        data = await self.read_back(give_up)
        if data is None:
            self.tally.unverified += len(acknowledged)
        else:
            self.tally.lost += [f"{self.name}:{key}" for key in acknowledged - set(data)]


async def came_back(servers: list[str], logged_out: list[tuple[float, str]]) -> list[str]:
    """The logged-out cookies whose session shows data again."""
    back = []
    async with httpx.AsyncClient(timeout=HANG) as client:
        for index, (_, cookie) in enumerate(logged_out):
            server = servers[index % len(servers)]
            for _ in range(100):  # the store may still be recovering: retry a failed read
                response = await client.get(
                    server + "/read", headers={"cookie": f"{COOKIE}={cookie}"}
                )
                if response.status_code == 200:
                    if response.json():
                        back.append(cookie[:8])
                    break
                await asyncio.sleep(0.1)
    return back


async def drive(servers: list[str], users: int, until: float) -> dict[str, Any]:
    tally = Tally()
    crowd = [User(number, servers, tally) for number in range(users)]
    try:
        await asyncio.gather(*(user.run(until) for user in crowd))
    finally:
        for user in crowd:
            await user.client.aclose()
    back = await came_back(servers, tally.logged_out)
    return {
        "records": tally.records,
        "acknowledged": tally.acknowledged,
        "lost": tally.lost,
        "unverified": tally.unverified,
        "logins_not_taken": tally.logins_not_taken,
        "lockouts": tally.lockouts,
        "logged_out": len(tally.logged_out),
        "came_back": back,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drill_load", description=__doc__)
    parser.add_argument("--servers", required=True, help="comma-separated base URLs")
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--until", type=float, required=True, help="wall-clock end (epoch s)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(drive(args.servers.split(","), args.users, args.until))
    with open(args.out, "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
