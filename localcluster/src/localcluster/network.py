"""The pod network: one Linux bridge on the host, one network namespace plus veth per pod.

The host is the gateway (config.GATEWAY_IP on the bridge), so pods and host reach each
other directly. Everything created here is named with a fixed prefix so teardown can
find and remove it even after a crash that lost the state directory.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

from localcluster import config, hostsfile, hosttools
from localcluster.config import StateDir

log = logging.getLogger(__name__)

VETH_PREFIX = "lcv"
NETNS_ETC = Path("/etc/netns")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
PREFIX_LEN = ipaddress.ip_network(config.POD_CIDR).prefixlen


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def setup(state: StateDir) -> None:
    """Create the bridge with the gateway address and enable forwarding (idempotent); make
    sure the node agents will find `nft` to enforce NetworkPolicies."""
    state.root.mkdir(parents=True, exist_ok=True)
    hosttools.ensure_nft()
    ensure_bridge()
    saved = state.root / "ip_forward.orig"
    if not saved.exists():
        with contextlib.suppress(OSError):
            saved.write_text(IP_FORWARD.read_text())
    with contextlib.suppress(OSError):
        IP_FORWARD.write_text("1\n")


def ensure_bridge() -> None:
    """The bridge with the gateway address, up; recreated if something removed it."""
    if not link_exists(config.BRIDGE_NAME):
        _ip("link", "add", config.BRIDGE_NAME, "type", "bridge")
    gateway = f"{config.GATEWAY_IP}/{PREFIX_LEN}"
    addrs = _ip("-o", "addr", "show", "dev", config.BRIDGE_NAME).stdout
    if gateway not in addrs:
        _ip("addr", "add", gateway, "dev", config.BRIDGE_NAME)
    _ip("link", "set", config.BRIDGE_NAME, "up")


def bridge_ifindex() -> int | None:
    """Identity of the current bridge device (changes when it is recreated)."""
    try:
        return int(Path(f"/sys/class/net/{config.BRIDGE_NAME}/ifindex").read_text())
    except (OSError, ValueError):
        return None


def teardown(state: StateDir) -> None:
    """Remove every pod netns, veth, the bridge, leftover mounts and the hosts block."""
    for ns in list_pod_netns():
        delete_pod_netns(ns)
    for link in _list_links():
        if link.startswith(VETH_PREFIX):
            _ip("link", "del", link, check=False)
    if link_exists(config.BRIDGE_NAME):
        _ip("link", "del", config.BRIDGE_NAME, check=False)
    _unmount_under(state.root)
    saved = state.root / "ip_forward.orig"
    if saved.exists():
        with contextlib.suppress(OSError):
            IP_FORWARD.write_text(saved.read_text())
        saved.unlink()
    hostsfile.remove_host_block()


def _list_links() -> list[str]:
    out = _ip("-o", "link", "show", check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def list_pod_netns() -> list[str]:
    out = _ip("netns", "list", check=False).stdout
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    if NETNS_ETC.is_dir():
        names |= {p.name for p in NETNS_ETC.iterdir()}
    return sorted(n for n in names if n.startswith(config.NETNS_PREFIX))


def _unmount_under(root: Path) -> None:
    prefix = str(root.resolve()) + "/"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for target in sorted((t for t in targets if t.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def netns_name(pod_uid: str) -> str:
    return config.NETNS_PREFIX + short_id(pod_uid)


def veth_name(pod_uid: str) -> str:
    return VETH_PREFIX + short_id(pod_uid)


def short_id(pod_uid: str) -> str:
    # Interface names are limited to 15 characters; 10 hex digits of a UUID suffice.
    return pod_uid.replace("-", "")[:10]


def netns_hosts_file(ns: str) -> Path:
    return NETNS_ETC / ns / "hosts"


def create_pod_netns(ns: str, veth: str, ip: str, hosts: str, resolv: str) -> None:
    """Create the namespace, wire it into the bridge and write its /etc overrides."""
    ensure_bridge()
    delete_pod_netns(ns, veth)
    etc = NETNS_ETC / ns
    etc.mkdir(parents=True, exist_ok=True)
    # `ip netns exec` bind-mounts these over /etc/hosts and /etc/resolv.conf.
    (etc / "hosts").write_text(hosts)
    (etc / "resolv.conf").write_text(resolv)
    _ip("netns", "add", ns)
    _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _ip("link", "set", veth, "master", config.BRIDGE_NAME, "up")
    _ip("-n", ns, "addr", "add", f"{ip}/{PREFIX_LEN}", "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "route", "add", "default", "via", config.GATEWAY_IP)


def delete_pod_netns(ns: str, veth: str = "") -> None:
    """Kill anything left in the namespace, then remove it, its veth and /etc overrides."""
    pids = _ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)
    # Deleting the host end removes the pair at once; the netns's own teardown is lazy.
    if veth and link_exists(veth):
        _ip("link", "del", veth, check=False)
    _ip("netns", "del", ns, check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def set_link(veth: str, up: bool) -> None:
    _ip("link", "set", veth, "up" if up else "down")
