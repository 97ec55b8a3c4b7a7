"""Is the operator's view of the world still moving? (liveness)

kopf's watch streams can hang without an error (a half-open connection after the apiserver
restarted): the operator then looks alive while it reacts to nothing. Counting "no event for
N seconds" would also trip on idle clusters, so instead a cheap periodic list of the
EtcdClusters is compared with what the watch delivered: an object whose listed
resourceVersion the watch has not delivered for `stall_after` seconds means the stream is
stuck. A list that keeps failing for as long means the view is unconfirmed: also not live
(a restart re-establishes the connection). Idle clusters list with the version the watch
already delivered, so they never trip it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Key = tuple[str, str]  # namespace, name


@dataclass
class WatchFreshness:
    stall_after: float
    started: float
    delivered: dict[Key, str] = field(default_factory=dict)
    # Since when each listed object's version has not been delivered by the watch.
    behind_since: dict[Key, float] = field(default_factory=dict)
    last_list: float | None = None

    def event(self, key: Key, resource_version: str | None, *, deleted: bool = False) -> None:
        """The watch delivered an event for `key`."""
        if deleted:
            self.delivered.pop(key, None)
            self.behind_since.pop(key, None)
        elif resource_version:
            self.delivered[key] = resource_version
            self.behind_since.pop(key, None)

    def listed(self, versions: Mapping[Key, str], now: float) -> None:
        """A list answered with these objects and versions."""
        self.last_list = now
        for key in list(self.behind_since):
            if key not in versions:
                del self.behind_since[key]
        for key, version in versions.items():
            if self.delivered.get(key) == version:
                self.behind_since.pop(key, None)
            else:
                self.behind_since.setdefault(key, now)

    def problem(self, now: float) -> str | None:
        """Why the watch is not live, or None."""
        since = self.last_list if self.last_list is not None else self.started
        if now - since > self.stall_after:
            return f"no successful list of EtcdClusters for {now - since:.0f}s"
        for (namespace, name), behind in sorted(self.behind_since.items()):
            if now - behind > self.stall_after:
                return (
                    f"the watch has not delivered {namespace}/{name}'s current version"
                    f" for {now - behind:.0f}s"
                )
        return None
