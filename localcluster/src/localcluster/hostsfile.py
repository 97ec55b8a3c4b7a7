"""Hosts files rewritten in place, and the marked cluster-DNS block in the host's /etc/hosts.

In place matters: ``ip netns exec`` bind-mounts per-netns hosts files over /etc/hosts,
and a bind mount pins the inode, so replacing the file would go unseen.
"""

from __future__ import annotations

from pathlib import Path

HOST_HOSTS = Path("/etc/hosts")
BEGIN = "# BEGIN localcluster cluster DNS (managed, removed by `localcluster down`)"
END = "# END localcluster cluster DNS"


def write_in_place(path: Path, content: str) -> bool:
    """Rewrite a file keeping its inode; returns whether it changed (False if missing)."""
    try:
        with path.open("r+") as f:
            if f.read() == content:
                return False
            f.seek(0)
            f.write(content)
            f.truncate()
            return True
    except FileNotFoundError:
        return False


def replace_block(text: str, block: str) -> str:
    """Text with the marked block replaced (or appended, or removed when block is empty)."""
    lines = text.splitlines(keepends=True)
    if BEGIN + "\n" in lines and END + "\n" in lines:
        start, end = lines.index(BEGIN + "\n"), lines.index(END + "\n")
        lines = lines[:start] + lines[end + 1 :]
    body = "".join(lines)
    if body and not body.endswith("\n"):
        body += "\n"
    return body + block


def write_host_block(block: str, hosts: Path | None = None) -> None:
    target = hosts or HOST_HOSTS
    write_in_place(target, replace_block(target.read_text(), block))


def remove_host_block(hosts: Path | None = None) -> None:
    target = hosts or HOST_HOSTS
    if target.exists():
        write_host_block("", target)
