"""Real Redis topologies on this machine: a Redis Cluster and a Sentinel set, from Debian's
``redis-server``, each in a temporary directory of its own, on free 127.0.0.1 ports.

Used by the cluster tests (through ``tests.servers``) and by the failover drills in
``bench/``, so nothing here needs pytest; use them as context managers (``stop()`` kills
every server and removes the directory, however the block ends).

Both run without persistence and with short failure timeouts (a master that stops
answering for ``NODE_TIMEOUT_MS`` is replaced), so a failover takes a few seconds.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import redis

from tests.redis_nodes import (
    DATA_CONFIG,
    NODE_TIMEOUT_MS,
    PASSWORD,
    SERVICE,
    Node,
    Topology,
    TopologyError,
    dying_with_us,
    free_port,
    wait_until,
)

__all__ = [
    "ClusterSet",
    "Node",
    "SentinelSet",
    "TopologyError",
    "dying_with_us",
    "free_port",
]


@dataclass
class ClusterSet(Topology):
    """A Redis Cluster of three masters with one replica each."""

    masters: int = 3

    def __enter__(self) -> ClusterSet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> None:
        for _ in range(self.masters * 2):
            bus = free_port(self.host) if not self.launcher else None
            node = self._node([])
            node.config = [
                *DATA_CONFIG,
                *self.config,
                "cluster-enabled yes",
                f"cluster-port {bus or node.port + 10000}",
                f"cluster-config-file nodes-{node.port}.conf",
                f"cluster-node-timeout {NODE_TIMEOUT_MS}",
                "cluster-replica-validity-factor 0",
            ]
            node.start()
        create = [*self.launcher, "redis-cli", "-a", PASSWORD, "--no-auth-warning"]
        create += ["--cluster", "create", *(node.name for node in self.nodes)]
        create += ["--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            raise TopologyError(f"redis-cli --cluster create failed: {done.stdout[-2000:]!r}")
        self.wait_healthy(20)

    @property
    def url(self) -> str:
        """The store URL: every node is a startup node."""
        hosts = ",".join(node.name for node in self.nodes)
        return f"redis+cluster://:{PASSWORD}@{hosts}/"

    def roles(self) -> dict[str, str]:
        """``{node name: "master" | "slave" | "fail"}`` as a live node sees the cluster."""
        for node in self.nodes:
            if not node.running:
                continue
            try:
                return self._roles_seen_by(node)
            except (redis.RedisError, OSError):
                continue
        raise TopologyError("no cluster node answers")

    @staticmethod
    def _roles_seen_by(node: Node) -> dict[str, str]:
        with node.client() as client:
            listing: str = client.execute_command("CLUSTER", "NODES")
        roles = {}
        for line in listing.splitlines():
            parts = line.split()
            address, flags = parts[1].split("@")[0], parts[2].split(",")
            failed = "fail" in flags or "fail?" in flags
            roles[address] = "fail" if failed else ("master" if "master" in flags else "slave")
        return roles

    def masters_now(self) -> list[Node]:
        return [self.node_at(name) for name, role in self.roles().items() if role == "master"]

    def healthy(self) -> bool:
        """Every node up, every slot served, every replica in sync with its master."""
        masters = 0
        for node in self.nodes:
            with node.client() as client:
                info = client.execute_command("CLUSTER", "INFO")
                if "cluster_state:ok" not in info:
                    return False
                replication = client.info("replication")
                if replication["role"] == "slave" and replication["master_link_status"] != "up":
                    return False
                masters += replication["role"] == "master"
        roles = self.roles()
        return masters == self.masters and list(roles.values()).count("fail") == 0

    def wait_healthy(self, timeout: float = 30) -> None:
        wait_until(self.healthy, timeout, "cluster healthy")

    def replica_of(self, master: Node) -> Node:
        for node in self.nodes:
            if node is master or not node.running:
                continue
            with node.client() as client:
                info = client.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master.port:
                return node
        raise TopologyError(f"{master.name} has no replica")

    def fail_over(self, master: Node, timeout: float = 20) -> Node:
        """SIGKILL ``master``, wait until its replica serves its slots; the new master."""
        replica = self.replica_of(master)
        master.kill()
        return self.wait_promoted(replica, timeout)

    def wait_promoted(self, replica: Node, timeout: float = 20) -> Node:
        """Wait until every live node knows ``replica`` as a master (a client may read the
        slot map from any of them) and the cluster serves every slot again."""

        def promoted() -> bool:
            live = [node for node in self.nodes if node.running]
            return all(self._roles_seen_by(node).get(replica.name) == "master" for node in live)

        wait_until(promoted, timeout, "promotion")
        with replica.client() as client:
            wait_until(
                lambda: "cluster_state:ok" in client.execute_command("CLUSTER", "INFO"),
                timeout,
                "cluster state ok after the failover",
            )
        return replica

    def bring_back(self, node: Node, timeout: float = 30) -> None:
        """Restart a killed node: it rejoins as a replica and resyncs."""
        node.start()
        self.wait_healthy(timeout)


@dataclass
class SentinelSet(Topology):
    """One master, two replicas and three sentinels watching them (quorum 2)."""

    service: str = SERVICE
    data: list[Node] = field(default_factory=list)
    sentinels: list[Node] = field(default_factory=list)

    def __enter__(self) -> SentinelSet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> None:
        master = self._node([*DATA_CONFIG, *self.config])
        master.start()
        self.data.append(master)
        for _ in range(2):
            replica = self._node(
                [*DATA_CONFIG, *self.config, f"replicaof {self.host} {master.port}"]
            )
            replica.start()
            self.data.append(replica)
        watch = [
            f"sentinel monitor {self.service} {self.host} {master.port} 2",
            f"sentinel auth-pass {self.service} {PASSWORD}",
            f"sentinel down-after-milliseconds {self.service} {NODE_TIMEOUT_MS}",
            f"sentinel failover-timeout {self.service} 5000",
            f"sentinel parallel-syncs {self.service} 2",
        ]
        for _ in range(3):
            sentinel = self._node(watch, sentinel=True)
            sentinel.start()
            self.sentinels.append(sentinel)
        self.wait_healthy(30)

    @property
    def url(self) -> str:
        hosts = ",".join(node.name for node in self.sentinels)
        return f"redis+sentinel://:{PASSWORD}@{hosts}/{self.service}"

    def master(self) -> Node:
        """The master the sentinels name now."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            try:
                with sentinel.client() as client:
                    host, port = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
                    )
            except (redis.RedisError, OSError):
                continue
            return self.node_at(f"{host}:{port}")
        raise TopologyError("no sentinel answers")

    def healthy(self) -> bool:
        """Every sentinel agrees on a live master whose two replicas are in sync, and each
        can reach a quorum (it knows the other sentinels)."""
        master = self.master()
        if not master.running:
            return False
        with master.client() as client:
            info = client.info("replication")
            if info["role"] != "master" or info["connected_slaves"] != 2:
                return False
            if any(info[f"slave{i}"]["state"] != "online" for i in range(2)):
                return False
        for sentinel in self.sentinels:
            with sentinel.client() as client:
                named = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                if f"{named[0]}:{named[1]}" != master.name:
                    return False
                client.execute_command("SENTINEL", "CKQUORUM", self.service)
                replicas = client.execute_command("SENTINEL", "REPLICAS", self.service)
                listed = [_pairs(replica) for replica in replicas]
                live = [r for r in listed if "s_down" not in r["flags"]]
                if len(live) != 2:
                    return False
        return True

    def wait_healthy(self, timeout: float = 30) -> None:
        wait_until(self.healthy, timeout, "sentinel set healthy")

    def fail_over(self, timeout: float = 20) -> tuple[Node, Node]:
        """SIGKILL the master, wait until the sentinels promoted a replica: (old, new)."""
        old = self.master()
        old.kill()
        return old, self.wait_promoted(old, timeout)

    def wait_promoted(self, old: Node, timeout: float = 20) -> Node:
        """Wait until every sentinel names the same master, other than ``old``, and it
        acts as one (a client may ask any sentinel)."""

        def promoted() -> bool:
            named = set()
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    host, port = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
                    )
                named.add(f"{host}:{port}")
            if len(named) != 1 or old.name in named:
                return False
            with self.node_at(named.pop()).client() as client:
                return bool(client.info("replication")["role"] == "master")

        wait_until(promoted, timeout, "sentinel failover")
        return self.master()

    def bring_back(self, node: Node, timeout: float = 30) -> None:
        """Restart a killed data node as a replica of the master now (what the sentinels
        would tell it within seconds)."""
        node.start()
        master = self.master()
        with node.client() as client:
            client.replicaof(master.host, master.port)
        self.wait_healthy(timeout)


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return flat
    return dict(zip(flat[::2], flat[1::2], strict=True))
