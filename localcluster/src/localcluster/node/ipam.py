"""Pod address allocation from config.POD_CIDR, persisted so restarts never reuse live IPs."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localcluster import config
from localcluster.config import StateDir

# Low addresses are left for the gateway and anything else the host may want to put there.
FIRST_HOST_OFFSET = 10
CURSOR = "next"  # not an address: where the next search starts


@contextmanager
def _locked(state: StateDir) -> Iterator[dict[str, str]]:
    """The allocation table {ip: pod uid}, under an exclusive lock shared by all agents."""
    path = state.root / "ipam.json"
    state.root.mkdir(parents=True, exist_ok=True)
    with (state.root / "ipam.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        before = dict(table)
        yield table
        if table != before:
            tmp = Path(f"{path}.tmp")
            tmp.write_text(json.dumps(table, indent=0, sort_keys=True))
            os.replace(tmp, path)


def allocate(state: StateDir, uid: str) -> str:
    """The pod's address; the same one again if it already has one."""
    with _locked(state) as table:
        for ip, owner in table.items():
            if owner == uid and ip != CURSOR:
                return ip
        network = ipaddress.ip_network(config.POD_CIDR)
        gateway = ipaddress.ip_address(config.GATEWAY_IP)
        size = network.num_addresses - 2
        # Round-robin from the last allocation: a just-freed address is reused last, so
        # stale DNS records of a deleted pod never point at a new pod for long.
        cursor = int(table.get(CURSOR, FIRST_HOST_OFFSET))
        for step in range(size):
            offset = FIRST_HOST_OFFSET + (cursor - FIRST_HOST_OFFSET + step) % (
                size - FIRST_HOST_OFFSET
            )
            host = network.network_address + 1 + offset
            if host == gateway or str(host) in table:
                continue
            table[str(host)] = uid
            table[CURSOR] = str(offset + 1)
            return str(host)
    raise RuntimeError(f"pod network {config.POD_CIDR} is exhausted")


def release(state: StateDir, uid: str) -> None:
    with _locked(state) as table:
        for ip in [ip for ip, owner in table.items() if owner == uid and ip != CURSOR]:
            del table[ip]


def allocations(state: StateDir) -> dict[str, str]:
    with _locked(state) as table:
        return {ip: uid for ip, uid in table.items() if ip != CURSOR}
