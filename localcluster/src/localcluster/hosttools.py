"""Host programs localcluster needs beyond Python and Go: installed by its own set-up.

`nft` (Debian's `nftables`) enforces NetworkPolicies inside pods' network namespaces
(node/netpol.py). It is not part of a minimal Debian, so `python -m localcluster build`
(what `make localcluster`, `make test` and `make demo` run) and `up` install it with
apt-get when it is missing; nothing is installed by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

NFT_PACKAGE = "nftables"
_SBIN = ("/usr/sbin", "/sbin")


def nft_path() -> str | None:
    """Where `nft` is, if installed (sbin may be missing from a non-login PATH)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN])
    return shutil.which("nft", path=path)


def ensure_nft(progress: bool = True) -> str | None:
    """The path of `nft`, installing Debian's package first when it is missing.

    Returns None (after saying why on stderr) when it cannot be installed here: the node
    agent then refuses to start pods that a NetworkPolicy selects instead of running
    them unprotected.
    """
    found = nft_path()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        print(
            "[localcluster] nft is missing and cannot be installed here (needs root and "
            f"apt-get): install the {NFT_PACKAGE} package; NetworkPolicies cannot be enforced",
            file=sys.stderr,
        )
        return None
    if progress:
        print(f"[localcluster] installing {NFT_PACKAGE} (apt-get)", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", NFT_PACKAGE]
    proc = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([apt, "update"], capture_output=True, env=env, check=False)
        proc = subprocess.run(install, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        print(
            f"[localcluster] installing {NFT_PACKAGE} failed: {proc.stderr.strip()[-400:]}",
            file=sys.stderr,
        )
        return None
    return nft_path()
