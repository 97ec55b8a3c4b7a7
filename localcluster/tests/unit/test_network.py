"""Pod network plumbing on this machine (needs root and iproute2; uses its own names and
addresses so that it never touches a running localcluster)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from localcluster import config, hostsfile, network
from localcluster.config import StateDir

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"
)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StateDir:
    monkeypatch.setattr(config, "BRIDGE_NAME", "lcutbr0")
    monkeypatch.setattr(config, "NETNS_PREFIX", "lcut-")
    monkeypatch.setattr(config, "GATEWAY_IP", "10.219.0.1")
    monkeypatch.setattr(network, "VETH_PREFIX", "lcutv")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    monkeypatch.setattr(hostsfile, "HOST_HOSTS", hosts)
    return StateDir(tmp_path / "state")


def test_pods_reach_the_host_and_teardown_removes_everything(isolated: StateDir) -> None:
    network.setup(isolated)
    network.setup(isolated)  # idempotent
    try:
        ns, veth = "lcut-abc", "lcutvabc"
        network.create_pod_netns(ns, veth, "10.219.0.20", "127.0.0.1 localhost\n", "")
        with socket.socket() as server:
            server.bind(("10.219.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            probe = f"import socket; socket.create_connection(('10.219.0.1', {port}), 2)"
            subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", probe], check=True)
        hostsfile.write_host_block(f"{hostsfile.BEGIN}\n10.219.0.20 x\n{hostsfile.END}\n")
    finally:
        network.teardown(isolated)
        network.teardown(isolated)  # idempotent
    assert not network.link_exists("lcutbr0")
    assert not network.link_exists("lcutvabc")
    assert network.list_pod_netns() == []
    assert not (network.NETNS_ETC / "lcut-abc").exists()
    assert hostsfile.HOST_HOSTS.read_text() == "127.0.0.1 localhost\n"
